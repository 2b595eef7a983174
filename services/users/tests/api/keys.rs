use serde_json::{json, Value};

use crate::{spawn_with, start, PASSWORD};

const KEK: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const OTHER_KEK: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

#[tokio::test]
async fn an_encrypted_signing_key_survives_a_restart_and_a_wrong_key_stops_the_start() {
    for db in testkit::TestDatabase::all().await {
        let app = spawn_with(db, json!({"key_encryption_key": KEK}))
            .await
            .unwrap();
        let jwks: Value = app
            .http
            .get(app.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let kid = jwks["keys"][0]["kid"].clone();
        assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
        let (db, dir) = (app.db, app.dir);

        let again = start(db, dir, json!({"key_encryption_key": KEK}))
            .await
            .unwrap();
        let jwks: Value = again
            .http
            .get(again.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(jwks["keys"][0]["kid"], kid, "the same key after a restart");
        assert_eq!(
            again.login("admin", "root secret phrase 42").await.status(),
            200
        );
        let (db, dir) = (again.db, again.dir);

        let wrong = start(db, dir, json!({"key_encryption_key": OTHER_KEK})).await;
        let message = wrong.err().unwrap().to_string();
        assert!(message.contains("AGORA_KEY_ENCRYPTION_KEY"), "{message}");
    }
}

#[tokio::test]
async fn a_weak_admin_password_stops_the_start_with_a_clear_message() {
    let db = testkit::TestDatabase::sqlite();
    let error = spawn_with(db, json!({"admin_password": "password1234"}))
        .await
        .err()
        .unwrap();
    assert!(error.to_string().contains("password"), "{error}");
}

#[tokio::test]
async fn the_admin_from_config_is_created_once_and_left_alone_afterwards() {
    for db in testkit::TestDatabase::all().await {
        let app = spawn_with(db, json!({})).await.unwrap();
        let admin = app.admin().await;
        let me: Value = app
            .http
            .get(app.url("/users/me"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["username"], "admin");
        assert_eq!(me["email"], "root@example.com");
        assert_eq!(me["roles"], json!(["admin", "customer"]));
        let (db, dir) = (app.db, app.dir);

        // Other settings on restart: the existing admin is not touched.
        let again = start(
            db,
            dir,
            json!({"admin_email": "other@example.com", "admin_password": PASSWORD}),
        )
        .await
        .unwrap();
        assert_eq!(
            again.login("admin", "root secret phrase 42").await.status(),
            200,
            "{}",
            again.backend
        );
        assert_eq!(again.login("admin", PASSWORD).await.status(), 401);
    }
}
