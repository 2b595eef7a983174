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
        app.http
            .delete(app.url(&path))
            .bearer_auth(&app.admin)
            .send()
            .await
            .unwrap();
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
