use std::collections::HashSet;

use serde_json::{json, Value};

use crate::{apps, fields, problem, PASSWORD};

#[tokio::test]
async fn the_admin_lists_searches_and_pages_through_every_user_once() {
    for app in apps().await {
        for i in 0..12 {
            app.register(&format!("user{i:02}")).await;
        }
        let admin = app.admin().await;
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = app.url("/users?limit=5");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page: Value = app
                .http
                .get(url)
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            seen.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| u["username"].as_str().unwrap().to_owned()),
            );
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 13, "{}", app.backend);
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 13);
        let found: Value = app
            .http
            .get(app.url("/users?q=USER0"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(found["items"].as_array().unwrap().len(), 10);
        let literal: Value = app
            .http
            .get(app.url("/users?q=%25"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            literal["items"].as_array().unwrap().is_empty(),
            "% is not a wildcard"
        );
    }
}

#[tokio::test]
async fn a_disabled_user_can_neither_log_in_nor_refresh() {
    for app in apps().await {
        let tokens = app.customer("alice").await;
        let admin = app.admin().await;
        let users: Value = app
            .http
            .get(app.url("/users?q=alice"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = users["items"][0]["id"].as_str().unwrap().to_owned();
        let r = app
            .http
            .patch(app.url(&format!("/users/{id}")))
            .bearer_auth(&admin)
            .json(&json!({"disabled": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        problem(app.login("alice", PASSWORD).await, 401).await;
        problem(
            app.post(
                "/auth/refresh",
                json!({"refresh_token": tokens["refresh_token"]}),
            )
            .await,
            401,
        )
        .await;
        let r = app
            .http
            .patch(app.url(&format!("/users/{id}")))
            .bearer_auth(&admin)
            .json(&json!({"roles": ["emperor"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(fields(&problem(r, 422).await), vec!["roles"]);
        let r = app
            .http
            .patch(app.url(&format!("/users/{id}")))
            .bearer_auth(&admin)
            .json(&json!({"disabled": false, "roles": ["admin", "customer"]}))
            .send()
            .await
            .unwrap();
        let user: Value = r.json().await.unwrap();
        assert_eq!(user["roles"], json!(["admin", "customer"]));
        assert_eq!(app.login("alice", PASSWORD).await.status(), 200);
        problem(
            app.http
                .get(app.url("/users/not-a-uuid"))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap(),
            400,
        )
        .await;
        problem(
            app.http
                .get(app.url("/users/0190f3c2-7d1e-7a3b-9c4d-5e6f7a8b9c0d"))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap(),
            404,
        )
        .await;
    }
}

#[tokio::test]
async fn changing_a_users_roles_ends_their_logins() {
    for app in apps().await {
        let admin = app.admin().await;
        let alice = app.register("alice").await;
        let id = alice["id"].as_str().unwrap().to_owned();
        let set_roles = |roles: Value| {
            app.http
                .patch(app.url(&format!("/users/{id}")))
                .bearer_auth(&admin)
                .json(&json!({"roles": roles}))
                .send()
        };
        assert_eq!(
            set_roles(json!(["admin", "customer"]))
                .await
                .unwrap()
                .status(),
            200
        );
        let r = app.login("alice", PASSWORD).await;
        assert_eq!(r.status(), 200);
        let as_admin: Value = r.json().await.unwrap();

        assert_eq!(set_roles(json!(["customer"])).await.unwrap().status(), 200);
        problem(
            app.post(
                "/auth/refresh",
                json!({"refresh_token": as_admin["refresh_token"]}),
            )
            .await,
            401,
        )
        .await;
        // A new login works, with the roles the user holds now.
        let fresh: Value = app.login("alice", PASSWORD).await.json().await.unwrap();
        let refreshed = app
            .post(
                "/auth/refresh",
                json!({"refresh_token": fresh["refresh_token"]}),
            )
            .await;
        assert_eq!(refreshed.status(), 200, "{}", app.backend);
        // An update that leaves the roles as they are ends nothing.
        let unchanged = app
            .http
            .patch(app.url(&format!("/users/{id}")))
            .bearer_auth(&admin)
            .json(&json!({"roles": ["customer"], "disabled": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(unchanged.status(), 200);
        let refreshed: Value = refreshed.json().await.unwrap();
        let again = app
            .post(
                "/auth/refresh",
                json!({"refresh_token": refreshed["refresh_token"]}),
            )
            .await;
        assert_eq!(again.status(), 200, "{}", app.backend);
    }
}

#[tokio::test]
async fn customers_get_403_on_admin_routes() {
    for app in apps().await {
        let tokens = app.customer("alice").await;
        let access = tokens["access_token"].as_str().unwrap();
        problem(
            app.http
                .get(app.url("/users"))
                .bearer_auth(access)
                .send()
                .await
                .unwrap(),
            403,
        )
        .await;
        problem(
            app.http
                .get(app.url("/clients"))
                .bearer_auth(access)
                .send()
                .await
                .unwrap(),
            403,
        )
        .await;
        problem(
            app.http
                .get(app.url("/users"))
                .bearer_auth("garbage")
                .send()
                .await
                .unwrap(),
            401,
        )
        .await;
    }
}
