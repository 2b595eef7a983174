use serde_json::{json, Value};

use crate::{apps, problem};

#[tokio::test]
async fn stock_is_set_adjusted_and_every_change_is_in_the_ledger() {
    for app in apps().await {
        let set = app.set_stock("MUG-1", 10).await;
        assert_eq!(set["available"], 10);
        let adjust = |delta: i64, reason: &'static str| {
            app.http
                .post(app.url("/stock/MUG-1/adjustments"))
                .bearer_auth(&app.admin)
                .json(&json!({"delta": delta, "reason": reason}))
                .send()
        };
        assert_eq!(adjust(5, "received").await.unwrap().status(), 200);
        assert_eq!(adjust(-3, "damaged").await.unwrap().status(), 200);
        problem(adjust(-100, "lost").await.unwrap(), 409).await;
        app.set_stock("MUG-1", 4).await;
        let stock = app.stock("MUG-1").await;
        assert_eq!(stock["on_hand"], 4);
        let movements: Value = app
            .http
            .get(app.url("/stock/MUG-1/movements?limit=2"))
            .bearer_auth(&app.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(movements["items"][0]["kind"], "set");
        assert_eq!(movements["items"][0]["delta"], -8);
        assert!(movements["next_cursor"].is_string());
        app.check_invariants("MUG-1").await;
        let many: Value = app
            .http
            .get(app.url("/stock?sku=MUG-1,NOPE-1"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(many["items"].as_array().unwrap().len(), 1);
        let types: Vec<String> = app
            .events()
            .await
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(types.len(), 4, "{types:?}");
        assert!(types
            .iter()
            .all(|t| t == "agora.inventory.stock_changed.v1"));
    }
}

#[tokio::test]
async fn bad_stock_requests_are_refused_and_change_nothing() {
    for app in apps().await {
        app.set_stock("MUG-1", 10).await;
        let put = |sku: &str, body: Value| {
            app.http
                .put(app.url(&format!("/stock/{sku}")))
                .bearer_auth(&app.admin)
                .json(&body)
                .send()
        };
        problem(
            put("MUG-1", json!({"on_hand": -1, "reason": "x"}))
                .await
                .unwrap(),
            422,
        )
        .await;
        problem(
            put("MUG-1", json!({"on_hand": 1, "reason": ""}))
                .await
                .unwrap(),
            422,
        )
        .await;
        problem(
            put("MUG-1", json!({"on_hand": "1", "reason": "x"}))
                .await
                .unwrap(),
            422,
        )
        .await;
        problem(
            put("mug 1", json!({"on_hand": 1, "reason": "x"}))
                .await
                .unwrap(),
            400,
        )
        .await;
        let adjust = |body: Value| {
            app.http
                .post(app.url("/stock/MUG-1/adjustments"))
                .bearer_auth(&app.admin)
                .json(&body)
                .send()
        };
        problem(
            adjust(json!({"delta": 0, "reason": "received"}))
                .await
                .unwrap(),
            422,
        )
        .await;
        problem(
            adjust(json!({"delta": 1, "reason": "because"}))
                .await
                .unwrap(),
            422,
        )
        .await;
        problem(
            app.http
                .post(app.url("/stock/NOPE-1/adjustments"))
                .bearer_auth(&app.admin)
                .json(&json!({"delta": 1, "reason": "received"}))
                .send()
                .await
                .unwrap(),
            404,
        )
        .await;
        problem(
            app.http.get(app.url("/stock/NOPE-1")).send().await.unwrap(),
            404,
        )
        .await;
        problem(
            app.http
                .put(app.url("/stock/MUG-1"))
                .bearer_auth(app.issuer.customer())
                .json(&json!({"on_hand": 1, "reason": "x"}))
                .send()
                .await
                .unwrap(),
            403,
        )
        .await;
        problem(
            app.http
                .put(app.url("/stock/MUG-1"))
                .json(&json!({"on_hand": 1, "reason": "x"}))
                .send()
                .await
                .unwrap(),
            401,
        )
        .await;
        assert_eq!(app.stock("MUG-1").await["on_hand"], 10, "{}", app.backend);
        app.check_invariants("MUG-1").await;
    }
}

#[tokio::test]
async fn a_new_sku_counted_while_its_product_event_arrives_is_created_once() {
    for db in testkit::TestDatabase::all().await {
        let (store, _db) = ::inventory::storage::connect(&db.url, 10).await.unwrap();
        for round in 0..20 {
            let sku = format!("RACE-NEW-{round}");
            let event = platform::events::Event::new(
                "products",
                "product_created",
                "p",
                serde_json::json!({"sku": sku}),
            );
            let (created, counted) = tokio::join!(
                store.apply_product(&event, &sku, false),
                store.set_on_hand(&sku, 5, "first count", None),
            );
            created.unwrap();
            let counted = counted.unwrap_or_else(|e| panic!("{}: {e}", db.backend));
            assert_eq!(counted.on_hand, 5);
            let row = store.stock(&sku).await.unwrap().unwrap();
            assert_eq!((row.on_hand, row.reserved), (5, 0), "{}", db.backend);
        }
    }
}

#[tokio::test]
async fn extreme_deltas_are_refused_with_422_and_change_nothing() {
    for app in apps().await {
        app.set_stock("MUG-1", 10).await;
        for delta in [
            i64::MIN,
            i64::MIN + 1,
            i64::MAX,
            -1_000_000_001,
            1_000_000_001,
        ] {
            let r = app
                .http
                .post(app.url("/stock/MUG-1/adjustments"))
                .bearer_auth(&app.admin)
                .json(&json!({"delta": delta, "reason": "received"}))
                .send()
                .await
                .unwrap();
            let body = problem(r, 422).await;
            assert_eq!(body["errors"][0]["field"], "delta", "{delta}: {body}");
        }
        let stock = app.stock("MUG-1").await;
        assert_eq!(stock["on_hand"], 10, "{} {stock}", app.backend);
        app.check_invariants("MUG-1").await;
    }
}

#[tokio::test]
async fn an_adjustment_past_the_most_on_hand_is_refused_and_changes_nothing() {
    for app in apps().await {
        app.set_stock("MUG-1", 1_000_000_000).await;
        let r = app
            .http
            .post(app.url("/stock/MUG-1/adjustments"))
            .bearer_auth(&app.admin)
            .json(&json!({"delta": 1_000_000_000, "reason": "received"}))
            .send()
            .await
            .unwrap();
        problem(r, 409).await;
        let stock = app.stock("MUG-1").await;
        assert_eq!(stock["on_hand"], 1_000_000_000, "{} {stock}", app.backend);
        app.check_invariants("MUG-1").await;
    }
}

/// A new product's stock row starts at zero, and says so: the catalog then shows "out of stock"
/// instead of "availability not known yet" until the first delivery. A redelivered
/// `product_created` publishes nothing more.
#[tokio::test]
async fn a_new_product_is_announced_out_of_stock_once() {
    for db in testkit::TestDatabase::all().await {
        let url = db.url.clone();
        let app = crate::spawn_app(db).await;
        let (store, _db) = ::inventory::storage::connect(&url, 5).await.unwrap();
        let event = platform::events::Event::new(
            "products",
            "product_created",
            "p",
            serde_json::json!({"sku": "NEW-1"}),
        );
        store.apply_product(&event, "NEW-1", false).await.unwrap();
        store.apply_product(&event, "NEW-1", false).await.unwrap();
        let announced: Vec<Value> = app
            .events()
            .await
            .into_iter()
            .filter(|e| e["subject"] == "NEW-1")
            .collect();
        assert_eq!(announced.len(), 1, "{}: {announced:?}", app.backend);
        assert_eq!(announced[0]["type"], "agora.inventory.stock_changed.v1");
        assert_eq!(announced[0]["data"]["available"], 0);
    }
}
