use serde_json::{json, Value};

use crate::apps;

#[tokio::test]
async fn product_changes_are_published_in_the_feed_in_order() {
    for app in apps().await {
        app.category("audio", None).await;
        let p = app.product("HP-1", "Headphones", "", 100, "audio").await;
        let path = format!("/products/{}", p["id"].as_str().unwrap());
        app.http
            .patch(app.url(&path))
            .bearer_auth(&app.admin)
            .json(&json!({"price": {"amount": 90, "currency": "EUR"}}))
            .send()
            .await
            .unwrap();
        app.delete_as_admin(&path).await;
        let feed: Value = app
            .http
            .get(app.url("/events?after=0"))
            .bearer_auth(app.issuer.service("inventory", "events:read"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let types: Vec<&str> = feed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"]["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            vec![
                "agora.products.product_created.v1",
                "agora.products.product_updated.v1",
                "agora.products.price_changed.v1",
                "agora.products.product_deleted.v1"
            ],
            "{}",
            app.backend
        );
        assert_eq!(feed["items"][0]["event"]["data"]["sku"], "HP-1");
        assert_eq!(feed["items"][2]["event"]["data"]["price"]["amount"], 90);
        let denied = app
            .http
            .get(app.url("/events"))
            .bearer_auth(app.issuer.customer())
            .send()
            .await
            .unwrap();
        assert_eq!(denied.status(), 403);
    }
}

/// Inventory's levels of one SKU reach the catalog out of order (competing replicas, a
/// redelivery): whatever the order, the level with the highest outbox position is the one kept.
#[tokio::test]
async fn an_older_stock_level_delivered_after_a_newer_one_changes_nothing() {
    use platform::events::{Event, EventHandler};
    use products::domain::{Attributes, CategoryName, Description, Money, ProductName, Sku, Slug};
    use products::storage::{NewCategory, NewProduct};

    for db in testkit::TestDatabase::all().await {
        let backend = db.backend;
        let (store, _) = products::storage::connect(&db.url, 5).await.unwrap();
        store
            .create_category(&NewCategory {
                slug: Slug::parse("audio").unwrap(),
                name: CategoryName::parse("Audio").unwrap(),
                description: Description::parse("", 100).unwrap(),
                parent: None,
            })
            .await
            .unwrap();
        let product = store
            .create_product(&NewProduct {
                sku: Sku::parse("HP-1").unwrap(),
                name: ProductName::parse("Headphones").unwrap(),
                description: Description::parse("", 100).unwrap(),
                price: Money::parse(100, "EUR").unwrap(),
                category: Slug::parse("audio").unwrap(),
                attributes: Attributes::parse(Default::default()).unwrap(),
            })
            .await
            .unwrap();
        let handler = products::events::InventoryEvents {
            store: store.clone(),
        };
        let level = |available: i64| {
            Event::new(
                "inventory",
                "stock_changed",
                "HP-1",
                json!({"sku": "HP-1", "available": available}),
            )
        };
        let (first, second, third) = (level(5), level(0), level(7));
        // Committed in the order first, second, third; delivered first, third, second, then the
        // first again. A stock level is not a catalog change: kept pages stay (`routes/pages.rs`).
        let changes = store.changes();
        for (event, position) in [(&first, 1), (&third, 3), (&second, 2), (&first, 1)] {
            handler.handle_at(event, Some(position)).await.unwrap();
        }
        assert_eq!(store.changes(), changes, "{backend}");
        let row = store.product(&product.id).await.unwrap().unwrap();
        assert_eq!(row.available, Some(7), "{backend}");
        assert_eq!(row.availability_status, "in_stock", "{backend}");
    }
}

/// Stock events change a product's availability without a new version: its `ETag` must change
/// too, or a browser revalidating its copy gets a 304 and keeps showing the old stock. The tag as
/// read still works as `If-Match`.
#[tokio::test]
async fn a_stock_change_changes_the_etag_and_the_new_tag_still_guards_a_change() {
    use platform::events::{Event, EventHandler};

    for db in testkit::TestDatabase::all().await {
        let url = db.url.clone();
        let app = crate::spawn_app(db).await;
        app.category("audio", None).await;
        let product = app.product("HP-9", "Headphones", "", 100, "audio").await;
        let location = format!("/products/{}", product["id"].as_str().unwrap());
        let before = app.get(&location).await.headers()["etag"].clone();

        let (store, _) = products::storage::connect(&url, 5).await.unwrap();
        let handler = products::events::InventoryEvents { store };
        let level = Event::new(
            "inventory",
            "stock_changed",
            "HP-9",
            json!({"sku": "HP-9", "available": 5}),
        );
        handler.handle_at(&level, Some(1)).await.unwrap();

        let again = app
            .http
            .get(app.url(&location))
            .header("if-none-match", &before)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 200, "{}", app.backend);
        let after = again.headers()["etag"].clone();
        assert_ne!(after, before, "{}", app.backend);
        let read: serde_json::Value = again.json().await.unwrap();
        assert_eq!(read["availability"]["available"], 5);

        let changed = app
            .http
            .patch(app.url(&location))
            .bearer_auth(&app.admin)
            .header("if-match", &after)
            .json(&json!({"name": "Studio headphones"}))
            .send()
            .await
            .unwrap();
        assert_eq!(changed.status(), 200, "{}", app.backend);
        let stale = app
            .http
            .patch(app.url(&location))
            .bearer_auth(&app.admin)
            .header("if-match", &after)
            .json(&json!({"name": "Old headphones"}))
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), 412, "{}", app.backend);
    }
}
