use serde_json::{json, Value};

use crate::{apps, fields, problem, spawn_with};

async fn token(app: &crate::TestApp, id: &str, secret: &str) -> reqwest::Response {
    app.http
        .post(app.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_client_gets_tokens_with_its_scopes_until_it_is_deleted() {
    for app in apps().await {
        let admin = app.admin().await;
        let created = app
            .http
            .post(app.url("/clients"))
            .bearer_auth(&admin)
            .json(&json!({"name": "warehouse", "scopes": ["inventory:reserve", "events:read"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let created: Value = created.json().await.unwrap();
        let (id, secret) = (
            created["client_id"].as_str().unwrap(),
            created["client_secret"].as_str().unwrap(),
        );
        let listed: Value = app
            .http
            .get(app.url("/clients"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            !listed.to_string().contains(secret),
            "secrets are shown once"
        );

        let issued: Value = token(&app, id, secret).await.json().await.unwrap();
        assert_eq!(issued["scope"], "events:read inventory:reserve");
        let verifier = platform::auth::JwtVerifier::remote(
            &app.url("/.well-known/jwks.json"),
            "agora",
            "agora",
        );
        let claims = verifier
            .verify(issued["access_token"].as_str().unwrap())
            .await
            .unwrap();
        assert!(claims.has_scope("inventory:reserve"));
        assert!(claims.user_id().is_none());
        // Form fields work as well as HTTP Basic.
        let form = app
            .http
            .post(app.url("/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
                ("scope", "events:read"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(form.json::<Value>().await.unwrap()["scope"], "events:read");

        problem(token(&app, id, "wrong").await, 401).await;
        let other_grant = app
            .http
            .post(app.url("/oauth/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "password")])
            .send()
            .await
            .unwrap();
        problem(other_grant, 400).await;
        let deleted = app
            .http
            .delete(app.url(&format!("/clients/{id}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), 204);
        problem(token(&app, id, secret).await, 401).await;
    }
}

#[tokio::test]
async fn an_unknown_scope_is_refused() {
    for app in apps().await {
        let admin = app.admin().await;
        let r = app
            .http
            .post(app.url("/clients"))
            .bearer_auth(&admin)
            .json(&json!({"name": "x", "scopes": ["root"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(fields(&problem(r, 422).await), vec!["scopes"]);
    }
}

#[tokio::test]
async fn service_clients_from_config_get_tokens() {
    for db in testkit::TestDatabase::all().await {
        let app = spawn_with(
            db,
            json!({"service_clients": [{"id": "orders", "secret": "s3cret-from-the-launcher", "scopes": ["inventory:reserve"]}]}),
        )
        .await
        .unwrap();
        let issued: Value = token(&app, "orders", "s3cret-from-the-launcher")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(issued["scope"], "inventory:reserve");
    }
}
