use serde_json::{json, Value};

use crate::{apps, fields, problem};

#[tokio::test]
async fn a_product_is_created_read_changed_and_deleted() {
    for app in apps().await {
        app.category("audio", None).await;
        app.category("video", None).await;
        let created = app
            .post_as(
                &app.admin,
                "/products",
                json!({"sku": "HP-1", "name": "  Headphones ", "description": "Closed-back",
                       "price": {"amount": 12900, "currency": "EUR"}, "category": "audio",
                       "attributes": {"color": "black"}}),
            )
            .await;
        assert_eq!(created.status(), 201);
        assert_eq!(created.headers()["etag"], "\"1.unknown.-\"");
        let location = created.headers()["location"].to_str().unwrap().to_owned();
        let product: Value = created.json().await.unwrap();
        assert_eq!(product["name"], "Headphones", "trimmed");
        assert_eq!(
            product["availability"],
            json!({"status": "unknown", "available": null})
        );
        assert_eq!(
            location,
            format!("/products/{}", product["id"].as_str().unwrap())
        );

        let read = app.get(&location).await;
        assert_eq!(read.headers()["etag"], "\"1.unknown.-\"");
        let not_modified = app
            .http
            .get(app.url(&location))
            .header("if-none-match", "\"1.unknown.-\"")
            .send()
            .await
            .unwrap();
        assert_eq!(not_modified.status(), 304);

        let changed = app
            .http
            .patch(app.url(&location))
            .bearer_auth(&app.admin)
            .header("if-match", "\"1\"")
            .json(&json!({"price": {"amount": 9900, "currency": "EUR"}, "category": "video"}))
            .send()
            .await
            .unwrap();
        assert_eq!(changed.status(), 200, "{}", app.backend);
        assert_eq!(changed.headers()["etag"], "\"2.unknown.-\"");
        let changed: Value = changed.json().await.unwrap();
        assert_eq!(changed["price"]["amount"], 9900);
        assert_eq!(changed["category"], "video");
        assert_eq!(changed["attributes"]["color"], "black");

        let deleted = app.delete_as_admin(&location).await;
        assert_eq!(deleted.status(), 204);
        problem(app.get(&location).await, 404).await;
        assert_eq!(app.count_products().await, 0);
        let again = app.post_as(&app.admin, "/products", json!({"sku": "HP-1", "name": "New", "price": {"amount": 1, "currency": "EUR"}, "category": "audio"})).await;
        problem(again, 409).await;
    }
}

#[tokio::test]
async fn a_stale_if_match_is_412_and_changes_nothing() {
    for app in apps().await {
        app.category("audio", None).await;
        let p = app.product("HP-1", "Headphones", "", 100, "audio").await;
        let path = format!("/products/{}", p["id"].as_str().unwrap());
        let patch = |tag: &'static str, name: &'static str| {
            app.http
                .patch(app.url(&path))
                .bearer_auth(&app.admin)
                .header("if-match", tag)
                .json(&json!({"name": name}))
                .send()
        };
        assert_eq!(patch("\"1\"", "First").await.unwrap().status(), 200);
        problem(patch("\"1\"", "Lost update").await.unwrap(), 412).await;
        problem(patch("garbage", "Lost update").await.unwrap(), 412).await;
        let now: Value = app.get(&path).await.json().await.unwrap();
        assert_eq!(now["name"], "First");
        assert_eq!(now["version"], 2);
    }
}

#[tokio::test]
async fn every_invalid_field_is_named_and_nothing_is_created() {
    for app in apps().await {
        app.category("audio", None).await;
        let r = app
            .post_as(
                &app.admin,
                "/products",
                json!({"sku": "x", "name": "", "description": "d".repeat(5001),
                       "price": {"amount": -1, "currency": "EUR"}, "category": "Bad Cat",
                       "attributes": {"": "empty key"}}),
            )
            .await;
        let body = problem(r, 422).await;
        assert_eq!(
            fields(&body),
            vec![
                "sku",
                "name",
                "description",
                "price.amount",
                "category",
                "attributes"
            ]
        );
        let r = app.post_as(&app.admin, "/products", json!({"sku": "OK-1", "name": "Ok", "price": {"amount": 1, "currency": "XXX"}, "category": "audio"})).await;
        assert_eq!(fields(&problem(r, 422).await), vec!["price.currency"]);
        let r = app.post_as(&app.admin, "/products", json!({"sku": "OK-1", "name": "Ok", "price": {"amount": 1, "currency": "EUR"}, "category": "ghost"})).await;
        assert_eq!(fields(&problem(r, 422).await), vec!["category"]);
        let r = app.post_as(&app.admin, "/products", json!({"sku": "OK-1", "name": "Ok", "price": {"amount": "1", "currency": "EUR"}, "category": "audio"})).await;
        problem(r, 422).await;
        let r = app.post_as(&app.admin, "/products", json!({"sku": "OK-1", "name": "Ok", "price": {"amount": 1, "currency": "EUR"}, "category": "audio", "colour": "red"})).await;
        problem(r, 422).await;
        assert_eq!(app.count_products().await, 0, "{}", app.backend);
    }
}

#[tokio::test]
async fn malformed_requests_get_clear_4xx_answers() {
    for app in apps().await {
        app.category("audio", None).await;
        let post = |body: String, content_type: &'static str| {
            app.http
                .post(app.url("/products"))
                .bearer_auth(&app.admin)
                .header("content-type", content_type)
                .body(body)
                .send()
        };
        problem(
            post("{\"sku\": ".into(), "application/json").await.unwrap(),
            400,
        )
        .await;
        problem(post("{}".into(), "text/plain").await.unwrap(), 415).await;
        let huge = format!(
            "{{\"sku\": \"A-1\", \"name\": \"{}\"}}",
            "x".repeat(1_100_000)
        );
        problem(post(huge, "application/json").await.unwrap(), 413).await;
        problem(app.get("/products/not-a-uuid").await, 400).await;
        problem(
            app.get("/products/0190f3c2-7d1e-7a3b-9c4d-5e6f7a8b9c0d")
                .await,
            404,
        )
        .await;
        let p = app.product("HP-1", "Headphones", "", 100, "audio").await;
        let r = app
            .http
            .patch(app.url(&format!("/products/{}", p["id"].as_str().unwrap())))
            .bearer_auth(&app.admin)
            .json(&json!({"sku": "NEW-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(fields(&problem(r, 422).await), vec!["sku"]);
    }
}

#[tokio::test]
async fn product_writes_need_an_admin() {
    for app in apps().await {
        app.category("audio", None).await;
        let body = json!({"sku": "HP-1", "name": "H", "price": {"amount": 1, "currency": "EUR"}, "category": "audio"});
        problem(
            app.http
                .post(app.url("/products"))
                .json(&body)
                .send()
                .await
                .unwrap(),
            401,
        )
        .await;
        problem(
            app.post_as(&app.issuer.customer(), "/products", body.clone())
                .await,
            403,
        )
        .await;
        problem(app.post_as("not.a.token", "/products", body).await, 401).await;
        assert_eq!(app.count_products().await, 0);
    }
}
