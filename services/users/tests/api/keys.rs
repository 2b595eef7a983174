use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use serde_json::{json, Value};

use crate::{spawn_with, start, TestApp, PASSWORD};

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

/// The signing keys as stored: (private key as stored, encrypted flag).
async fn stored_keys(app: &TestApp) -> Vec<(String, bool)> {
    let (store, _db) = users::storage::connect(&app.db.url, 1).await.unwrap();
    store
        .keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.private_key, k.encrypted))
        .collect()
}

/// Whether `stored` is a usable Ed25519 private key as it is, without any decryption.
fn is_plaintext_key(stored: &str) -> bool {
    STANDARD
        .decode(stored)
        .is_ok_and(|der| ed25519_dalek::SigningKey::from_pkcs8_der(&der).is_ok())
}

async fn me_status(app: &TestApp, token: &str) -> u16 {
    app.http
        .get(app.url("/users/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn with_a_key_encryption_key_the_stored_key_is_not_the_plaintext_key_and_old_tokens_verify_after_a_restart(
) {
    for db in testkit::TestDatabase::all().await {
        let app = spawn_with(db, json!({"key_encryption_key": KEK}))
            .await
            .unwrap();
        let stored = stored_keys(&app).await;
        assert_eq!(stored.len(), 1);
        assert!(stored[0].1, "{}: marked encrypted", app.backend);
        assert!(!is_plaintext_key(&stored[0].0), "{}", app.backend);
        let token = app.admin().await;
        let (db, dir) = (app.db, app.dir);

        let again = start(db, dir, json!({"key_encryption_key": KEK}))
            .await
            .unwrap();
        assert_eq!(me_status(&again, &token).await, 200, "{}", again.backend);
    }
}

#[tokio::test]
async fn a_plaintext_key_is_encrypted_in_place_once_a_key_encryption_key_is_given() {
    for db in testkit::TestDatabase::all().await {
        let app = spawn_with(db, json!({})).await.unwrap();
        assert!(is_plaintext_key(&stored_keys(&app).await[0].0));
        let token = app.admin().await;
        let (db, dir) = (app.db, app.dir);

        let again = start(db, dir, json!({"key_encryption_key": KEK}))
            .await
            .unwrap();
        let stored = stored_keys(&again).await;
        assert_eq!(stored.len(), 1, "the same key, not a new one");
        assert!(stored[0].1, "{}: now marked encrypted", again.backend);
        assert!(!is_plaintext_key(&stored[0].0), "{}", again.backend);
        assert_eq!(me_status(&again, &token).await, 200, "{}", again.backend);
        let (db, dir) = (again.db, again.dir);

        let wrong = start(db, dir, json!({"key_encryption_key": OTHER_KEK})).await;
        let message = wrong.err().unwrap().to_string();
        assert!(message.contains("AGORA_KEY_ENCRYPTION_KEY"), "{message}");
    }
}

#[tokio::test]
async fn the_key_encryption_key_can_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kek");
    std::fs::write(&file, format!("{KEK}\n")).unwrap();
    let app = spawn_with(
        testkit::TestDatabase::sqlite(),
        json!({"key_encryption_key_file": file.display().to_string()}),
    )
    .await
    .unwrap();
    let stored = stored_keys(&app).await;
    assert!(stored[0].1 && !is_plaintext_key(&stored[0].0));
    let token = app.admin().await;
    let (db, app_dir) = (app.db, app.dir);
    let again = start(db, app_dir, json!({"key_encryption_key": KEK}))
        .await
        .unwrap();
    assert_eq!(
        me_status(&again, &token).await,
        200,
        "the file's key is the key"
    );

    let missing = dir.path().join("no-such-file");
    let error = spawn_with(
        testkit::TestDatabase::sqlite(),
        json!({"key_encryption_key_file": missing.display().to_string()}),
    )
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(error.contains("AGORA_KEY_ENCRYPTION_KEY_FILE"), "{error}");
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
