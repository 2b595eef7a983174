use serde_json::{json, Value};

use crate::{apps, fields, problem};

#[tokio::test]
async fn categories_form_a_tree_and_subcategories_nest() {
    for app in apps().await {
        app.category("home", None).await;
        app.category("kitchen", Some("home")).await;
        app.category("knives", Some("kitchen")).await;
        app.category("books", None).await;
        let tree: Value = app.get("/categories").await.json().await.unwrap();
        let top: Vec<&str> = tree["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["slug"].as_str().unwrap())
            .collect();
        assert_eq!(top, vec!["books", "home"], "{}", app.backend);
        assert_eq!(
            tree["items"][1]["children"][0]["children"][0]["slug"],
            "knives"
        );
        let one: Value = app.get("/categories/kitchen").await.json().await.unwrap();
        assert_eq!(one["parent"], "home");
        problem(app.get("/categories/nope").await, 404).await;
    }
}

#[tokio::test]
async fn invalid_duplicate_and_orphan_categories_are_refused() {
    for app in apps().await {
        app.category("home", None).await;
        let r = app
            .post_as(
                &app.admin,
                "/categories",
                json!({"slug": "Bad Slug", "name": ""}),
            )
            .await;
        let body = problem(r, 422).await;
        assert_eq!(fields(&body), vec!["slug", "name"]);
        let r = app
            .post_as(
                &app.admin,
                "/categories",
                json!({"slug": "home", "name": "Again"}),
            )
            .await;
        problem(r, 409).await;
        let r = app
            .post_as(
                &app.admin,
                "/categories",
                json!({"slug": "x", "name": "X", "parent": "ghost"}),
            )
            .await;
        assert_eq!(fields(&problem(r, 422).await), vec!["parent"]);
        let tree: Value = app.get("/categories").await.json().await.unwrap();
        assert_eq!(
            tree["items"].as_array().unwrap().len(),
            1,
            "{}",
            app.backend
        );
    }
}

#[tokio::test]
async fn a_category_cannot_move_inside_itself() {
    for app in apps().await {
        app.category("a", None).await;
        app.category("b", Some("a")).await;
        app.category("c", Some("b")).await;
        let r = app
            .http
            .patch(app.url("/categories/a"))
            .bearer_auth(&app.admin)
            .json(&json!({"parent": "c"}))
            .send()
            .await
            .unwrap();
        assert_eq!(fields(&problem(r, 422).await), vec!["parent"]);
        let r = app
            .http
            .patch(app.url("/categories/c"))
            .bearer_auth(&app.admin)
            .json(&json!({"parent": null, "name": "Top C"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let c: Value = app.get("/categories/c").await.json().await.unwrap();
        assert_eq!(c["parent"], Value::Null);
        assert_eq!(c["name"], "Top C");
    }
}

#[tokio::test]
async fn a_category_with_children_or_products_cannot_be_deleted() {
    for app in apps().await {
        app.category("home", None).await;
        app.category("kitchen", Some("home")).await;
        let delete = |slug: &str| {
            app.http
                .delete(app.url(&format!("/categories/{slug}")))
                .bearer_auth(&app.admin)
                .send()
        };
        problem(delete("home").await.unwrap(), 409).await;
        app.product("PAN-1", "Pan", "", 100, "kitchen").await;
        problem(delete("kitchen").await.unwrap(), 409).await;
        app.category("empty", None).await;
        assert_eq!(delete("empty").await.unwrap().status(), 204);
        problem(delete("empty").await.unwrap(), 404).await;
    }
}

#[tokio::test]
async fn category_writes_need_an_admin() {
    for app in apps().await {
        let body = json!({"slug": "x", "name": "X"});
        problem(
            app.http
                .post(app.url("/categories"))
                .json(&body)
                .send()
                .await
                .unwrap(),
            401,
        )
        .await;
        problem(
            app.post_as(&app.issuer.customer(), "/categories", body.clone())
                .await,
            403,
        )
        .await;
        problem(app.post_as("garbage", "/categories", body).await, 401).await;
        let tree: Value = app.get("/categories").await.json().await.unwrap();
        assert!(tree["items"].as_array().unwrap().is_empty());
    }
}
