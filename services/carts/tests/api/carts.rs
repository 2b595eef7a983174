use reqwest::Method;
use serde_json::json;

use crate::{apps, lines, problem};

#[tokio::test]
async fn a_guest_cart_shows_each_line_at_the_catalogs_price_and_totals_in_minor_units() {
    for app in apps().await {
        let a = app.product("A-1", 1999).await;
        let b = app.product("B-1", 500).await;
        app.stock("A-1", 10, 1).await;
        let g = app.new_guest().await;
        assert_eq!(app.guest_add(&g, &a, 2).await.status(), 200);
        assert_eq!(app.guest_add(&g, &b, 1).await.status(), 200);
        assert_eq!(app.guest_add(&g, &b, 2).await.status(), 200);
        let cart = app.guest_read(&g).await;
        assert_eq!(
            lines(&cart),
            vec![(a.clone(), 2), (b.clone(), 3)],
            "{}",
            app.backend
        );
        assert_eq!(cart["items"][0]["name"], "Product A-1");
        assert_eq!(
            cart["items"][0]["unit_price"],
            json!({"amount": 1999, "currency": "EUR"})
        );
        assert_eq!(cart["items"][0]["availability"], "in_stock");
        assert_eq!(cart["items"][1]["availability"], "unknown");
        assert_eq!(
            cart["total"],
            json!({"amount": 2 * 1999 + 3 * 500, "currency": "EUR"})
        );
        assert_eq!(cart["item_count"], 5);
        assert_eq!(cart["owner"], "guest");
        assert_eq!(cart["needs_review"], json!([]));
        assert!(cart["expires_at"].is_string());

        // Setting and removing lines.
        let r = app
            .as_guest(
                Method::PUT,
                &format!("/carts/{}/items/{b}", g.id),
                &g.secret,
            )
            .json(&json!({"quantity": 7}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = app
            .as_guest(
                Method::DELETE,
                &format!("/carts/{}/items/{a}", g.id),
                &g.secret,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(lines(&app.guest_read(&g).await), vec![(b, 7)]);
    }
}

#[tokio::test]
async fn a_guest_cart_answers_404_without_its_secret_and_nothing_changes() {
    for app in apps().await {
        let a = app.product("A-1", 100).await;
        let g = app.new_guest().await;
        assert_eq!(app.guest_add(&g, &a, 1).await.status(), 200);
        let path = format!("/carts/{}", g.id);
        problem(app.http.get(app.url(&path)).send().await.unwrap(), 404).await;
        problem(
            app.as_guest(Method::GET, &path, "wrong")
                .send()
                .await
                .unwrap(),
            404,
        )
        .await;
        let other = app.new_guest().await;
        problem(
            app.as_guest(Method::GET, &path, &other.secret)
                .send()
                .await
                .unwrap(),
            404,
        )
        .await;
        let r = app
            .as_guest(Method::POST, &format!("{path}/items"), "wrong")
            .json(&json!({"product_id": a, "quantity": 5}))
            .send()
            .await
            .unwrap();
        problem(r, 404).await;
        // A signed-in stranger does not see it either.
        let stranger = app.user();
        let r = app
            .http
            .get(app.url(&path))
            .bearer_auth(&stranger.token)
            .send()
            .await
            .unwrap();
        problem(r, 404).await;
        // A token that does not verify is a 401, not a guest.
        let r = app
            .as_guest(Method::GET, &path, &g.secret)
            .bearer_auth("forged")
            .send()
            .await
            .unwrap();
        problem(r, 401).await;
        assert_eq!(
            lines(&app.guest_read(&g).await),
            vec![(a, 1)],
            "{}",
            app.backend
        );
    }
}

#[tokio::test]
async fn bad_lines_are_refused_with_a_problem_and_change_nothing() {
    for app in apps().await {
        let a = app.product("A-1", 100).await;
        let usd = uuid::Uuid::now_v7().to_string();
        app.product_event("product_created", &usd, "U-1", 100, "USD")
            .await;
        let sold_out = app.product("S-1", 100).await;
        app.stock("S-1", 0, 1).await;
        let g = app.new_guest().await;
        assert_eq!(app.guest_add(&g, &a, 98).await.status(), 200);
        let before = app.guest_read(&g).await;

        let unknown = uuid::Uuid::now_v7().to_string();
        let body = problem(app.guest_add(&g, &unknown, 1).await, 422).await;
        assert_eq!(body["errors"][0]["field"], "product_id");
        let body = problem(app.guest_add(&g, &a, 0).await, 422).await;
        assert_eq!(body["errors"][0]["field"], "quantity");
        problem(app.guest_add(&g, &a, 1000).await, 422).await;
        problem(app.guest_add(&g, &a, -1).await, 422).await;
        // 98 + 2 would be 100 units on one line.
        let body = problem(app.guest_add(&g, &a, 2).await, 422).await;
        assert_eq!(body["errors"][0]["field"], "quantity");
        let body = problem(app.guest_add(&g, "not-a-uuid", 1).await, 422).await;
        assert_eq!(body["errors"][0]["field"], "product_id");
        problem(app.guest_add(&g, &usd, 1).await, 422).await;
        let body = problem(app.guest_add(&g, &sold_out, 1).await, 409).await;
        assert_eq!(body["type"], "https://agora.dev/problems/sold-out");
        let r = app
            .as_guest(Method::POST, &format!("/carts/{}/items", g.id), &g.secret)
            .json(&json!({"product_id": a, "quantity": 1, "price": 1}))
            .send()
            .await
            .unwrap();
        problem(r, 422).await;
        let r = app
            .as_guest(Method::POST, &format!("/carts/{}/items", g.id), &g.secret)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error());
        let r = app
            .as_guest(
                Method::PUT,
                &format!("/carts/{}/items/{a}", g.id),
                &g.secret,
            )
            .json(&json!({"quantity": 100}))
            .send()
            .await
            .unwrap();
        problem(r, 422).await;
        let r = app
            .as_guest(
                Method::PUT,
                &format!("/carts/{}/items/nope", g.id),
                &g.secret,
            )
            .json(&json!({"quantity": 1}))
            .send()
            .await
            .unwrap();
        problem(r, 400).await;
        let r = app
            .as_guest(
                Method::DELETE,
                &format!("/carts/{}/items/{unknown}", g.id),
                &g.secret,
            )
            .send()
            .await
            .unwrap();
        problem(r, 404).await;
        problem(
            app.as_guest(Method::GET, "/carts/not-a-uuid", &g.secret)
                .send()
                .await
                .unwrap(),
            400,
        )
        .await;

        let after = app.guest_read(&g).await;
        assert_eq!(lines(&after), lines(&before), "{}", app.backend);
        assert_eq!(after["total"], before["total"]);
    }
}

#[tokio::test]
async fn the_101st_line_is_refused_and_the_cart_keeps_its_100() {
    for app in apps().await {
        let g = app.new_guest().await;
        for i in 0..100 {
            let p = app.product(&format!("P-{i}"), 100).await;
            assert_eq!(app.guest_add(&g, &p, 1).await.status(), 200);
        }
        let extra = app.product("P-100", 100).await;
        let body = problem(app.guest_add(&g, &extra, 1).await, 409).await;
        assert_eq!(body["type"], "https://agora.dev/problems/cart-full");
        let cart = app.guest_read(&g).await;
        assert_eq!(lines(&cart).len(), 100, "{}", app.backend);
        assert!(lines(&cart).iter().all(|(p, _)| *p != extra));
    }
}

#[tokio::test]
async fn a_user_has_one_current_cart_that_nobody_else_reads_or_changes() {
    for app in apps().await {
        let a = app.product("A-1", 100).await;
        let (ada, bob) = (app.user(), app.user());
        let r = app
            .http
            .post(app.url("/carts"))
            .bearer_auth(&ada.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(body.get("secret").is_none(), "a user's cart has no secret");
        let cart = body["cart"]["id"].as_str().unwrap().to_owned();
        assert_eq!(app.user_cart(&ada).await, cart, "the same cart again");
        assert_eq!(app.user_add(&ada, &cart, &a, 3).await.status(), 200);

        problem(app.user_add(&bob, &cart, &a, 1).await, 404).await;
        let r = app
            .http
            .get(app.url(&format!("/carts/{cart}")))
            .bearer_auth(&bob.token)
            .send()
            .await
            .unwrap();
        problem(r, 404).await;
        problem(
            app.http
                .get(app.url(&format!("/carts/{cart}")))
                .send()
                .await
                .unwrap(),
            404,
        )
        .await;
        let r = app
            .http
            .post(app.url(&format!("/carts/{cart}/acknowledge")))
            .bearer_auth(&bob.token)
            .send()
            .await
            .unwrap();
        problem(r, 404).await;
        let mine = app.user_read(&ada, &cart).await;
        assert_eq!(lines(&mine), vec![(a, 3)], "{}", app.backend);
        assert_eq!(mine["owner"], "user");
        assert!(
            mine.get("expires_at").is_none(),
            "a user's cart does not expire"
        );
    }
}

#[tokio::test]
async fn merging_at_login_adds_up_capped_and_drops_discontinued_lines_with_a_note() {
    for app in apps().await {
        let a = app.product("A-1", 100).await;
        let b = app.product("B-1", 200).await;
        let gone = app.product("D-1", 300).await;
        let ada = app.user();
        let cart = app.user_cart(&ada).await;
        assert_eq!(app.user_add(&ada, &cart, &a, 50).await.status(), 200);

        let g = app.new_guest().await;
        assert_eq!(app.guest_add(&g, &a, 60).await.status(), 200);
        assert_eq!(app.guest_add(&g, &b, 2).await.status(), 200);
        assert_eq!(app.guest_add(&g, &gone, 1).await.status(), 200);
        app.product_event("product_deleted", &gone, "D-1", 300, "EUR")
            .await;

        let merge = |token: Option<&str>, secret: &str| {
            let mut r = app.as_guest(Method::POST, &format!("/carts/{}/merge", g.id), secret);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            r.send()
        };
        problem(merge(None, &g.secret).await.unwrap(), 401).await;
        problem(merge(Some(&ada.token), "wrong").await.unwrap(), 404).await;
        let service = app.issuer.service("orders", "events:read");
        problem(merge(Some(&service), &g.secret).await.unwrap(), 403).await;
        assert_eq!(
            lines(&app.guest_read(&g).await).len(),
            3,
            "nothing merged yet"
        );

        let r = merge(Some(&ada.token), &g.secret).await.unwrap();
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["cart"]["id"], cart.as_str());
        assert_eq!(
            lines(&body["cart"]),
            vec![(a.clone(), 99), (b.clone(), 2)],
            "{}",
            app.backend
        );
        let notes = body["notes"].as_array().unwrap();
        assert!(
            notes.iter().any(|n| n["product_id"] == gone.as_str()
                && n["note"].as_str().unwrap().contains("discontinued")),
            "{notes:?}"
        );
        assert!(
            notes
                .iter()
                .any(|n| n["product_id"] == a.as_str()
                    && n["note"].as_str().unwrap().contains("capped")),
            "{notes:?}"
        );
        // The guest cart is gone.
        let r = app
            .as_guest(Method::GET, &format!("/carts/{}", g.id), &g.secret)
            .send()
            .await
            .unwrap();
        problem(r, 404).await;
        assert_eq!(
            lines(&app.user_read(&ada, &cart).await),
            vec![(a, 99), (b, 2)]
        );
    }
}

#[tokio::test]
async fn a_user_cart_cannot_be_merged_as_if_it_were_a_guests() {
    for app in apps().await {
        let (ada, bob) = (app.user(), app.user());
        let cart = app.user_cart(&ada).await;
        let r = app
            .http
            .post(app.url(&format!("/carts/{cart}/merge")))
            .bearer_auth(&bob.token)
            .send()
            .await
            .unwrap();
        problem(r, 404).await;
        let r = app
            .http
            .post(app.url(&format!("/carts/{cart}/merge")))
            .bearer_auth(&ada.token)
            .send()
            .await
            .unwrap();
        problem(r, 404).await;
        assert_eq!(
            app.user_read(&ada, &cart).await["status"],
            "open",
            "{}",
            app.backend
        );
    }
}
