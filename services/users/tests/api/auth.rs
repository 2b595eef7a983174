use platform::auth::JwtVerifier;
use serde_json::{json, Value};

use crate::{apps, problem, spawn_with, PASSWORD};

#[tokio::test]
async fn a_login_gives_a_token_that_verifies_against_the_published_keys() {
    for app in apps().await {
        app.register("alice").await;
        let r = app.login("ALICE@example.com", PASSWORD).await;
        assert_eq!(r.status(), 200);
        let tokens: Value = r.json().await.unwrap();
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["expires_in"], 900);
        assert!(
            tokens["refresh_token"].as_str().unwrap().len() >= 43,
            "256 bits"
        );
        let verifier = JwtVerifier::remote(&app.url("/.well-known/jwks.json"), "agora", "agora");
        let claims = verifier
            .verify(tokens["access_token"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(claims.roles, vec!["customer"]);
        assert_eq!(claims.exp - claims.iat, 900);
        assert!(claims.user_id().is_some());
        let config: Value = app
            .http
            .get(app.url("/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            config["id_token_signing_alg_values_supported"],
            json!(["EdDSA"])
        );
    }
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_answer() {
    for app in apps().await {
        app.register("alice").await;
        let wrong: Value = problem(app.login("alice", "not the password").await, 401).await;
        let unknown: Value = problem(app.login("nobody", "not the password").await, 401).await;
        assert_eq!(wrong, unknown);
    }
}

#[tokio::test]
async fn repeated_failures_are_throttled_with_retry_after() {
    for db in testkit::TestDatabase::all().await {
        let app = spawn_with(db, json!({"login_failures_per_account": 3}))
            .await
            .unwrap();
        app.register("alice").await;
        for _ in 0..3 {
            problem(app.login("alice", "not the password").await, 401).await;
        }
        let r = app.login("alice", PASSWORD).await;
        assert_eq!(r.status(), 429, "even the right password waits");
        assert!(r.headers().contains_key("retry-after"));
        assert_eq!(
            app.login("admin", "root secret phrase 42").await.status(),
            200,
            "other accounts are not blocked"
        );
    }
}

#[tokio::test]
async fn two_instances_on_one_database_share_the_failure_count() {
    for app in apps().await {
        let second = app.replica(json!({})).await;
        app.register("alice").await;
        for attempt in 0..5 {
            let r = if attempt % 2 == 0 {
                app.login("alice", "not the password").await
            } else {
                second.login("alice", "not the password").await
            };
            problem(r, 401).await;
        }
        let r = second.login("alice", PASSWORD).await;
        assert_eq!(
            r.status(),
            429,
            "{}: the sixth try, on the other instance",
            app.backend
        );
        let wait: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=900).contains(&wait), "{wait}");
        assert_eq!(app.login("alice", PASSWORD).await.status(), 429);
    }
}

#[tokio::test]
async fn a_restart_does_not_forget_failed_logins() {
    for db in testkit::TestDatabase::all().await {
        let app = spawn_with(db, json!({"login_failures_per_account": 2}))
            .await
            .unwrap();
        app.register("alice").await;
        for _ in 0..2 {
            problem(app.login("alice", "not the password").await, 401).await;
        }
        let (db, dir) = (app.db, app.dir);
        let again = crate::start(db, dir, json!({"login_failures_per_account": 2}))
            .await
            .unwrap();
        assert_eq!(
            again.login("alice", PASSWORD).await.status(),
            429,
            "{}",
            again.backend
        );
    }
}

#[tokio::test]
async fn a_refresh_rotates_and_a_replayed_token_revokes_the_family() {
    for app in apps().await {
        let first = app.customer("alice").await;
        let second: Value = app
            .post(
                "/auth/refresh",
                json!({"refresh_token": first["refresh_token"]}),
            )
            .await
            .json()
            .await
            .unwrap();
        assert!(second["access_token"].is_string());
        let third: Value = app
            .post(
                "/auth/refresh",
                json!({"refresh_token": second["refresh_token"]}),
            )
            .await
            .json()
            .await
            .unwrap();
        assert!(third["refresh_token"].is_string());
        // The first token again: theft. Every token of the family dies, the newest included.
        problem(
            app.post(
                "/auth/refresh",
                json!({"refresh_token": first["refresh_token"]}),
            )
            .await,
            401,
        )
        .await;
        problem(
            app.post(
                "/auth/refresh",
                json!({"refresh_token": third["refresh_token"]}),
            )
            .await,
            401,
        )
        .await;
        problem(
            app.post("/auth/refresh", json!({"refresh_token": "made-up"}))
                .await,
            401,
        )
        .await;
    }
}

#[tokio::test]
async fn logout_ends_the_login() {
    for app in apps().await {
        let tokens = app.customer("alice").await;
        let other = app
            .login("alice", PASSWORD)
            .await
            .json::<Value>()
            .await
            .unwrap();
        let r = app
            .post(
                "/auth/logout",
                json!({"refresh_token": tokens["refresh_token"]}),
            )
            .await;
        assert_eq!(r.status(), 204);
        problem(
            app.post(
                "/auth/refresh",
                json!({"refresh_token": tokens["refresh_token"]}),
            )
            .await,
            401,
        )
        .await;
        assert_eq!(
            app.post(
                "/auth/refresh",
                json!({"refresh_token": other["refresh_token"]})
            )
            .await
            .status(),
            200,
            "another login goes on"
        );
    }
}

#[tokio::test]
async fn failures_by_username_and_by_email_count_against_the_same_account() {
    for db in testkit::TestDatabase::all().await {
        let app = spawn_with(db, json!({"login_failures_per_account": 2}))
            .await
            .unwrap();
        app.register("alice").await;
        problem(app.login("alice", "not the password").await, 401).await;
        problem(
            app.login("ALICE@example.com", "not the password").await,
            401,
        )
        .await;
        let r = app.login("alice@example.com", "not the password").await;
        assert_eq!(r.status(), 429, "{}", app.backend);
        let seconds: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=900).contains(&seconds), "{seconds}");
    }
}

#[tokio::test]
async fn the_published_keys_and_the_spec_name_everything() {
    for app in apps().await {
        let jwks: Value = app
            .http
            .get(app.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = &jwks["keys"][0];
        for (field, value) in [
            ("kty", "OKP"),
            ("crv", "Ed25519"),
            ("alg", "EdDSA"),
            ("use", "sig"),
        ] {
            assert_eq!(key[field], value, "{jwks}");
        }
        assert!(key["kid"].is_string() && key["x"].is_string(), "{jwks}");
        assert!(key.get("d").is_none(), "never the private part");

        let spec: Value = app
            .http
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let paths = spec["paths"].as_object().unwrap();
        for (path, method) in [
            ("/users", "post"),
            ("/users", "get"),
            ("/users/me", "get"),
            ("/users/me", "patch"),
            ("/users/{id}", "get"),
            ("/users/{id}", "patch"),
            ("/auth/login", "post"),
            ("/auth/refresh", "post"),
            ("/auth/logout", "post"),
            ("/oauth/token", "post"),
            ("/clients", "post"),
            ("/clients", "get"),
            ("/clients/{id}", "delete"),
            ("/.well-known/jwks.json", "get"),
            ("/.well-known/openid-configuration", "get"),
        ] {
            assert!(
                paths[path][method].is_object(),
                "{method} {path} is in the spec"
            );
        }
        let config: Value = app
            .http
            .get(app.url("/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(config["issuer"], "agora");
        assert_eq!(
            config["grant_types_supported"],
            json!(["client_credentials"])
        );
        assert!(config["jwks_uri"]
            .as_str()
            .unwrap()
            .ends_with("/.well-known/jwks.json"));
        assert!(config["token_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/oauth/token"));
    }
}
