use serde_json::{json, Value};

use crate::{apps, fields, problem, PASSWORD};

#[tokio::test]
async fn registration_returns_the_account_without_any_hash() {
    for app in apps().await {
        let r = app
            .post(
                "/users",
                json!({"username": "Alice", "email": "Alice@Example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["username"], "alice");
        assert_eq!(body["email"], "alice@example.com");
        assert_eq!(body["roles"], json!(["customer"]));
        assert_eq!(location, format!("/users/{}", body["id"].as_str().unwrap()));
        assert!(!body.to_string().contains("argon2"), "{body}");
        assert!(body.get("password_hash").is_none());
    }
}

#[tokio::test]
async fn every_invalid_registration_is_refused_and_creates_nothing() {
    for app in apps().await {
        app.register("alice").await;
        let cases = [
            (
                json!({"username": "al", "email": "x@example.com", "password": PASSWORD}),
                422,
                vec!["username"],
            ),
            (
                json!({"username": "a".repeat(33), "email": "x@example.com", "password": PASSWORD}),
                422,
                vec!["username"],
            ),
            (
                json!({"username": "bob smith", "email": "x@example.com", "password": PASSWORD}),
                422,
                vec!["username"],
            ),
            (
                json!({"username": "bob", "email": "not-an-email", "password": PASSWORD}),
                422,
                vec!["email"],
            ),
            (
                json!({"username": "bob", "email": "x@example.com", "password": "short"}),
                422,
                vec!["password"],
            ),
            (
                json!({"username": "bob", "email": "x@example.com", "password": "password1234"}),
                422,
                vec!["password"],
            ),
            (
                json!({"username": "bob", "email": "x@example.com", "password": "my-BOB-is-great"}),
                422,
                vec!["password"],
            ),
            (
                json!({"username": "x", "email": "y", "password": "z"}),
                422,
                vec!["username", "email", "password"],
            ),
            (
                json!({"username": "ALICE", "email": "x@example.com", "password": PASSWORD}),
                409,
                vec!["username"],
            ),
            (
                json!({"username": "bob", "email": "ALICE@example.com", "password": PASSWORD}),
                409,
                vec!["email"],
            ),
        ];
        for (body, status, expected) in cases {
            let answer = problem(app.post("/users", body.clone()).await, status).await;
            assert_eq!(fields(&answer), expected, "{} {body}", app.backend);
        }
        problem(app.post("/users", json!({"username": "bob"})).await, 422).await;
        problem(
            app.post(
                "/users",
                json!({"username": 42, "email": "x@example.com", "password": PASSWORD}),
            )
            .await,
            422,
        )
        .await;
        let malformed = app
            .http
            .post(app.url("/users"))
            .header("content-type", "application/json")
            .body("{")
            .send()
            .await
            .unwrap();
        problem(malformed, 400).await;
        let untyped = app
            .http
            .post(app.url("/users"))
            .body("{}")
            .send()
            .await
            .unwrap();
        problem(untyped, 415).await;
        let huge = format!("{{\"username\": \"{}\"}}", "x".repeat(2_000_000));
        let huge = app
            .http
            .post(app.url("/users"))
            .header("content-type", "application/json")
            .body(huge)
            .send()
            .await
            .unwrap();
        problem(huge, 413).await;
        assert_eq!(
            app.count_users().await,
            2,
            "admin and alice only ({})",
            app.backend
        );
    }
}

#[tokio::test]
async fn the_signed_in_user_reads_and_changes_their_account() {
    for app in apps().await {
        let tokens = app.customer("alice").await;
        let access = tokens["access_token"].as_str().unwrap();
        let me: Value = app
            .http
            .get(app.url("/users/me"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["username"], "alice");
        problem(
            app.http.get(app.url("/users/me")).send().await.unwrap(),
            401,
        )
        .await;

        let patch = |body: Value| {
            app.http
                .patch(app.url("/users/me"))
                .bearer_auth(access)
                .json(&body)
                .send()
        };
        let r = patch(json!({"email": "new@example.com", "current_password": PASSWORD}))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let wrong =
            patch(json!({"password": "another long phrase", "current_password": "nope nope nope"}))
                .await
                .unwrap();
        problem(wrong, 403).await;
        assert_eq!(
            app.login("alice", PASSWORD).await.status(),
            200,
            "the password did not change"
        );

        let other_login: Value = app.login("alice", PASSWORD).await.json().await.unwrap();
        let changed =
            patch(json!({"password": "another long phrase", "current_password": PASSWORD}))
                .await
                .unwrap();
        assert_eq!(changed.status(), 200);
        let changed: Value = changed.json().await.unwrap();
        assert!(
            changed["tokens"]["refresh_token"].is_string(),
            "this login goes on"
        );
        problem(app.login("alice", PASSWORD).await, 401).await;
        assert_eq!(
            app.login("new@example.com", "another long phrase")
                .await
                .status(),
            200
        );
        let refresh = app
            .post(
                "/auth/refresh",
                json!({"refresh_token": other_login["refresh_token"]}),
            )
            .await;
        problem(refresh, 401).await;
        let mine = app
            .post(
                "/auth/refresh",
                json!({"refresh_token": changed["tokens"]["refresh_token"]}),
            )
            .await;
        assert_eq!(mine.status(), 200);
    }
}

#[tokio::test]
async fn an_email_change_needs_the_current_password() {
    for app in apps().await {
        let tokens = app.customer("alice").await;
        let access = tokens["access_token"].as_str().unwrap();
        let patch = |body: Value| {
            app.http
                .patch(app.url("/users/me"))
                .bearer_auth(access)
                .json(&body)
                .send()
        };
        let missing = patch(json!({"email": "stolen@example.com"})).await.unwrap();
        assert_eq!(
            fields(&problem(missing, 422).await),
            vec!["current_password"],
            "{}",
            app.backend
        );
        let wrong =
            patch(json!({"email": "stolen@example.com", "current_password": "nope nope nope"}))
                .await
                .unwrap();
        problem(wrong, 403).await;
        let me: Value = app
            .http
            .get(app.url("/users/me"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["email"], "alice@example.com", "{}", app.backend);

        let right = patch(json!({"email": "alice2@example.com", "current_password": PASSWORD}))
            .await
            .unwrap();
        assert_eq!(right.status(), 200);
        let right: Value = right.json().await.unwrap();
        assert_eq!(right["user"]["email"], "alice2@example.com");
        let spec: Value = app
            .http
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let described = spec["components"]["schemas"]["UpdateMe"]["properties"]["current_password"]
            ["description"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(described.contains("email"), "{described}");
    }
}

#[tokio::test]
async fn a_change_with_a_taken_email_changes_nothing_not_even_the_password() {
    for app in apps().await {
        app.register("bob").await;
        let tokens = app.customer("alice").await;
        let r = app
            .http
            .patch(app.url("/users/me"))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .json(&json!({"email": "BOB@example.com", "password": "another long phrase", "current_password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            fields(&problem(r, 409).await),
            vec!["email"],
            "{}",
            app.backend
        );
        assert_eq!(
            app.login("alice", PASSWORD).await.status(),
            200,
            "the old password still works"
        );
        let refresh = app
            .post(
                "/auth/refresh",
                json!({"refresh_token": tokens["refresh_token"]}),
            )
            .await;
        assert_eq!(refresh.status(), 200, "no login was ended");
    }
}

#[tokio::test]
async fn concurrent_registrations_of_one_name_or_email_create_one_account() {
    for app in apps().await {
        for (a, b, field) in [
            (
                ("carol", "c1@example.com"),
                ("CAROL", "c2@example.com"),
                "username",
            ),
            (
                ("dave1", "d@example.com"),
                ("dave2", "D@example.com"),
                "email",
            ),
        ] {
            let register = |(username, email): (&str, &str)| {
                app.post(
                    "/users",
                    json!({"username": username, "email": email, "password": PASSWORD}),
                )
            };
            let (first, second) = tokio::join!(register(a), register(b));
            let mut statuses = [first.status().as_u16(), second.status().as_u16()];
            statuses.sort();
            assert_eq!(statuses, [201, 409], "{field} on {}", app.backend);
            let loser = if first.status() == 409 { first } else { second };
            assert_eq!(fields(&problem(loser, 409).await), vec![field]);
        }
        assert_eq!(app.count_users().await, 3, "admin, carol, one dave");
    }
}
