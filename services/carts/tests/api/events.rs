use std::time::Duration;

use platform::events::EventHandler;
use reqwest::Method;
use serde_json::{json, Value};
use testkit::TestDatabase;

use crate::{apps, lines, problem, spawn_with, TestApp};

/// The `cart_abandoned` events published for `cart`.
async fn announced(app: &TestApp, cart: &str) -> Vec<Value> {
    app.events()
        .await
        .into_iter()
        .filter(|e| e["type"] == "agora.carts.cart_abandoned.v1" && e["data"]["cart_id"] == cart)
        .collect()
}

/// Waits (bounded) until `cart` was announced abandoned `count` times.
async fn wait_for(app: &TestApp, cart: &str, count: usize) -> Vec<Value> {
    testkit::eventually(Duration::from_secs(20), || async move {
        let found = announced(app, cart).await;
        if found.len() >= count {
            Ok(found)
        } else {
            Err(format!("{} announcements of {cart}", found.len()))
        }
    })
    .await
}

#[tokio::test]
async fn repriced_sold_out_and_deleted_products_are_flagged_until_acknowledged() {
    for app in apps().await {
        let a = app.product("A-1", 1000).await;
        let b = app.product("B-1", 200).await;
        let c = app.product("C-1", 300).await;
        let keep = app.product("K-1", 400).await;
        for (i, sku) in ["A-1", "B-1", "C-1", "K-1"].iter().enumerate() {
            app.stock(sku, 5, i as i64 + 1).await;
        }
        let g = app.new_guest().await;
        for p in [&a, &b, &c, &keep] {
            assert_eq!(app.guest_add(&g, p, 2).await.status(), 200);
        }
        app.product_event("price_changed", &a, "A-1", 1200, "EUR")
            .await;
        app.stock("B-1", 0, 10).await;
        // An older level delivered late changes nothing.
        app.stock("B-1", 5, 9).await;
        app.product_event("product_deleted", &c, "C-1", 300, "EUR")
            .await;

        let cart = app.guest_read(&g).await;
        let item = |id: &str| -> Value {
            cart["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["product_id"] == id)
                .unwrap()
                .clone()
        };
        assert_eq!(
            item(&a)["flags"],
            json!([{"kind": "price_changed", "old_price": {"amount": 1000, "currency": "EUR"},
                "new_price": {"amount": 1200, "currency": "EUR"}}]),
            "{}",
            app.backend
        );
        assert_eq!(item(&a)["unit_price"]["amount"], 1200);
        assert_eq!(
            item(&b)["flags"],
            json!([{"kind": "unavailable", "reason": "sold_out"}])
        );
        assert_eq!(item(&b)["availability"], "sold_out");
        assert_eq!(
            item(&c)["flags"],
            json!([{"kind": "unavailable", "reason": "discontinued"}])
        );
        assert_eq!(item(&keep)["flags"], json!([]));
        let mut review: Vec<&str> = cart["needs_review"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        review.sort_unstable();
        let mut expected = vec![a.as_str(), b.as_str(), c.as_str()];
        expected.sort_unstable();
        assert_eq!(review, expected);
        // Unavailable lines are not in the total.
        assert_eq!(cart["total"]["amount"], 2 * 1200 + 2 * 400);

        let r = app
            .as_guest(
                Method::POST,
                &format!("/carts/{}/acknowledge", g.id),
                &g.secret,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["notes"].as_array().unwrap().len(), 3, "{body}");
        assert_eq!(
            lines(&body["cart"]),
            vec![(a.clone(), 2), (keep.clone(), 2)],
            "{}",
            app.backend
        );
        assert_eq!(body["cart"]["needs_review"], json!([]));
        assert_eq!(body["cart"]["items"][0]["flags"], json!([]));
    }
}

#[tokio::test]
async fn a_confirmed_order_checks_the_cart_out_once_and_publishes_cart_checked_out() {
    for app in apps().await {
        let a = app.product("A-1", 100).await;
        let ada = app.user();
        let cart = app.user_cart(&ada).await;
        assert_eq!(app.user_add(&ada, &cart, &a, 2).await.status(), 200);
        let order = uuid::Uuid::now_v7().to_string();
        let event = app.confirm_order(&cart, &order).await;
        // Delivered again: nothing more happens.
        app.handler.handle(&event).await.unwrap();

        let read = app.user_read(&ada, &cart).await;
        assert_eq!(read["status"], "checked_out", "{}", app.backend);
        assert_eq!(read["order_id"], order.as_str());
        let published: Vec<Value> = app
            .events()
            .await
            .into_iter()
            .filter(|e| e["type"] == "agora.carts.cart_checked_out.v1")
            .collect();
        assert_eq!(published.len(), 1, "{published:?}");
        assert_eq!(published[0]["data"]["order_id"], order.as_str());
        assert_eq!(published[0]["data"]["lines"][0]["quantity"], 2);
        // A checked-out cart changes no more, and the user's next cart is a new one.
        let body = problem(app.user_add(&ada, &cart, &a, 1).await, 409).await;
        assert_eq!(body["type"], "https://agora.dev/problems/cart-not-open");
        assert_ne!(app.user_cart(&ada).await, cart);
    }
}

#[tokio::test]
async fn an_idle_cart_with_lines_is_announced_abandoned_once() {
    for db in TestDatabase::all().await {
        let app = spawn_with(
            db,
            json!({"abandon_after_seconds": 1, "housekeeping_interval_ms": 100}),
        )
        .await;
        let a = app.product("A-1", 100).await;
        let g = app.new_guest().await;
        let empty = app.new_guest().await;
        assert_eq!(app.guest_add(&g, &a, 1).await.status(), 200);
        let first = wait_for(&app, &g.id, 1).await;
        assert_eq!(
            first[0]["data"]["lines"][0]["quantity"], 1,
            "{}",
            app.backend
        );
        // Another cart going idle later proves the worker kept running after the first notice.
        let later = app.new_guest().await;
        assert_eq!(app.guest_add(&later, &a, 1).await.status(), 200);
        wait_for(&app, &later.id, 1).await;
        assert_eq!(announced(&app, &g.id).await.len(), 1, "announced once");
        assert!(
            announced(&app, &empty.id).await.is_empty(),
            "an empty cart is not abandoned"
        );
        // A change makes the contents new: idle again, they are announced again.
        assert_eq!(app.guest_add(&g, &a, 1).await.status(), 200);
        let again = wait_for(&app, &g.id, 2).await;
        assert_eq!(again[1]["data"]["lines"][0]["quantity"], 2);
    }
}

#[tokio::test]
async fn an_unused_guest_cart_expires_and_a_users_cart_does_not() {
    for db in TestDatabase::all().await {
        let app = spawn_with(
            db,
            json!({"guest_cart_ttl_seconds": 1, "housekeeping_interval_ms": 100}),
        )
        .await;
        let a = app.product("A-1", 100).await;
        let g = app.new_guest().await;
        assert_eq!(app.guest_add(&g, &a, 1).await.status(), 200);
        let ada = app.user();
        let cart = app.user_cart(&ada).await;
        assert_eq!(app.user_add(&ada, &cart, &a, 1).await.status(), 200);
        let (app, g) = (&app, &g);
        testkit::eventually(Duration::from_secs(20), || async move {
            let r = app
                .as_guest(Method::GET, &format!("/carts/{}", g.id), &g.secret)
                .send()
                .await
                .unwrap();
            if r.status() == 404 {
                Ok(())
            } else {
                Err(format!("still {}", r.status()))
            }
        })
        .await;
        assert_eq!(
            lines(&app.user_read(&ada, &cart).await),
            vec![(a, 1)],
            "{}",
            app.backend
        );
    }
}
