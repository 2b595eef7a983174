use std::time::Duration;

use futures::future::join_all;
use serde_json::{json, Value};

use crate::{apps, new_id, problem};

#[tokio::test]
async fn sixty_four_buyers_of_the_last_ten_units_never_oversell() {
    for app in apps().await {
        app.set_stock("LAST-1", 10).await;
        let ids: Vec<String> = (0..64).map(|_| new_id()).collect();
        let buyers = ids
            .iter()
            .map(|id| app.reserve(id, json!([{"sku": "LAST-1", "quantity": 1}]), 60));
        let statuses: Vec<u16> = join_all(buyers)
            .await
            .iter()
            .map(|r| r.status().as_u16())
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 201).count(),
            10,
            "{} {statuses:?}",
            app.backend
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 409).count(),
            54,
            "{} {statuses:?}",
            app.backend
        );
        let stock = app.stock("LAST-1").await;
        assert_eq!(
            (
                stock["on_hand"].as_i64(),
                stock["reserved"].as_i64(),
                stock["available"].as_i64()
            ),
            (Some(10), Some(10), Some(0))
        );
        app.check_invariants("LAST-1").await;
    }
}

#[tokio::test]
async fn a_reservation_takes_all_lines_or_none_and_names_what_is_short() {
    for app in apps().await {
        app.set_stock("A-1", 5).await;
        app.set_stock("B-1", 1).await;
        let r = app
            .reserve(
                &new_id(),
                json!([{"sku": "A-1", "quantity": 2}, {"sku": "B-1", "quantity": 2}]),
                60,
            )
            .await;
        let body = problem(r, 409).await;
        assert_eq!(
            body["short"],
            json!([{"sku": "B-1", "requested": 2, "available": 1}])
        );
        assert_eq!(
            app.stock("A-1").await["reserved"],
            0,
            "{} nothing reserved",
            app.backend
        );
        let r = app
            .reserve(
                &new_id(),
                json!([{"sku": "A-1", "quantity": 2}, {"sku": "GHOST-1", "quantity": 1}]),
                60,
            )
            .await;
        let body = problem(r, 422).await;
        assert_eq!(body["unknown_skus"], json!(["GHOST-1"]));
        app.check_invariants("A-1").await;
    }
}

#[tokio::test]
async fn the_same_request_again_gets_the_same_answer_and_another_body_is_refused() {
    for app in apps().await {
        app.set_stock("A-1", 5).await;
        let id = new_id();
        let items = json!([{"sku": "A-1", "quantity": 2}]);
        let first: Value = app
            .reserve(&id, items.clone(), 60)
            .await
            .json()
            .await
            .unwrap();
        let again = app.reserve(&id, items, 60).await;
        assert_eq!(again.status(), 201);
        assert_eq!(again.json::<Value>().await.unwrap(), first);
        assert_eq!(app.stock("A-1").await["reserved"], 2, "reserved once");
        problem(
            app.reserve(&id, json!([{"sku": "A-1", "quantity": 3}]), 60)
                .await,
            422,
        )
        .await;
    }
}

#[tokio::test]
async fn commit_sells_release_gives_back_and_illegal_moves_are_409() {
    for app in apps().await {
        app.set_stock("A-1", 5).await;
        let sold = new_id();
        app.reserve(&sold, json!([{"sku": "A-1", "quantity": 2}]), 60)
            .await;
        let published = app.events().await;
        assert_eq!(published.last().unwrap()["data"]["available"], 3);
        let committed: Value = app.act(&sold, "commit").await.json().await.unwrap();
        assert_eq!(committed["status"], "committed");
        assert_eq!(app.act(&sold, "commit").await.status(), 200, "idempotent");
        problem(app.act(&sold, "release").await, 409).await;
        let stock = app.stock("A-1").await;
        assert_eq!(
            (stock["on_hand"].as_i64(), stock["reserved"].as_i64()),
            (Some(3), Some(0))
        );
        // A sale takes reserved units: what is available stays 3, and no event says otherwise.
        assert_eq!(stock["available"], 3);
        assert_eq!(
            app.events().await.len(),
            published.len(),
            "a sale publishes nothing"
        );

        let returned = new_id();
        app.reserve(&returned, json!([{"sku": "A-1", "quantity": 3}]), 60)
            .await;
        assert_eq!(
            app.act(&returned, "release")
                .await
                .json::<Value>()
                .await
                .unwrap()["status"],
            "released"
        );
        assert_eq!(
            app.act(&returned, "release").await.status(),
            200,
            "idempotent"
        );
        problem(app.act(&returned, "commit").await, 409).await;
        assert_eq!(app.stock("A-1").await["available"], 3);
        // A release changes what is available: its level is published.
        let after_release = app.events().await;
        assert!(after_release.len() > published.len());
        assert_eq!(after_release.last().unwrap()["data"]["available"], 3);
        assert_eq!(
            after_release.last().unwrap()["type"],
            "agora.inventory.stock_changed.v1"
        );
        problem(app.act(&new_id(), "commit").await, 404).await;
        problem(app.act("not-an-id", "commit").await, 400).await;
        app.check_invariants("A-1").await;
    }
}

#[tokio::test]
async fn an_uncommitted_reservation_expires_and_its_stock_comes_back() {
    for app in apps().await {
        app.set_stock("A-1", 5).await;
        let id = new_id();
        app.reserve(&id, json!([{"sku": "A-1", "quantity": 4}]), 1)
            .await;
        assert_eq!(app.stock("A-1").await["available"], 1);
        tokio::time::sleep(Duration::from_millis(1600)).await;
        let r: Value = app
            .http
            .get(app.url(&format!("/reservations/{id}")))
            .bearer_auth(&app.orders)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["status"], "expired", "{}", app.backend);
        assert_eq!(app.stock("A-1").await["available"], 5);
        problem(app.act(&id, "commit").await, 409).await;
        let types: Vec<String> = app
            .events()
            .await
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            types.contains(&"agora.inventory.reservation_expired.v1".to_owned()),
            "{types:?}"
        );
        app.check_invariants("A-1").await;
    }
}

#[tokio::test]
async fn bad_reservations_are_refused_and_reserve_nothing() {
    for app in apps().await {
        app.set_stock("A-1", 5).await;
        for (id, items, ttl) in [
            (new_id(), json!([{"sku": "A-1", "quantity": 0}]), 60),
            (new_id(), json!([{"sku": "A-1", "quantity": -2}]), 60),
            (new_id(), json!([{"sku": "A-1", "quantity": 1}]), 0),
            (new_id(), json!([{"sku": "A-1", "quantity": 1}]), 100_000),
            (new_id(), json!([]), 60),
            (
                "not-a-uuid".to_owned(),
                json!([{"sku": "A-1", "quantity": 1}]),
                60,
            ),
            (new_id(), json!([{"sku": "a 1", "quantity": 1}]), 60),
        ] {
            problem(app.reserve(&id, items, ttl).await, 422).await;
        }
        let no_scope = app.http.post(app.url("/reservations")).bearer_auth(app.issuer.service("x", "events:read"))
            .json(&json!({"reservation_id": new_id(), "items": [{"sku": "A-1", "quantity": 1}], "ttl_seconds": 60})).send().await.unwrap();
        problem(no_scope, 403).await;
        let customer = app.http.post(app.url("/reservations")).bearer_auth(app.issuer.customer())
            .json(&json!({"reservation_id": new_id(), "items": [{"sku": "A-1", "quantity": 1}], "ttl_seconds": 60})).send().await.unwrap();
        problem(customer, 403).await;
        assert_eq!(app.stock("A-1").await["reserved"], 0, "{}", app.backend);
    }
}

#[tokio::test]
async fn committed_stock_can_be_returned_once_and_the_ledger_still_sums() {
    for app in apps().await {
        app.set_stock("RET-1", 5).await;
        let id = new_id();
        let r = app
            .reserve(&id, json!([{"sku": "RET-1", "quantity": 2}]), 60)
            .await;
        assert_eq!(r.status(), 201);
        // Only committed stock can be returned.
        problem(app.act(&id, "return").await, 409).await;
        assert_eq!(app.act(&id, "commit").await.status(), 200);
        assert_eq!(app.stock("RET-1").await["on_hand"], 3);
        for _ in 0..2 {
            let r = app.act(&id, "return").await;
            assert_eq!(r.status(), 200);
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["status"], "returned");
        }
        let stock = app.stock("RET-1").await;
        assert_eq!(
            (stock["on_hand"].as_i64(), stock["reserved"].as_i64()),
            (Some(5), Some(0))
        );
        app.check_invariants("RET-1").await;
        problem(app.act(&new_id(), "return").await, 404).await;
    }
}

#[tokio::test]
async fn racing_commits_and_releases_of_one_reservation_apply_once() {
    for app in apps().await {
        app.set_stock("RACE-1", 10).await;
        for round in 0..5 {
            let id = new_id();
            let r = app
                .reserve(&id, json!([{"sku": "RACE-1", "quantity": 1}]), 60)
                .await;
            assert_eq!(r.status(), 201);
            // Eight callers at once (a saga and its recovery worker, say), one of them releasing.
            let actions = (0..8).map(|i| {
                let action = if i == 3 { "release" } else { "commit" };
                app.act(&id, action)
            });
            let statuses: Vec<u16> = join_all(actions)
                .await
                .iter()
                .map(|r| r.status().as_u16())
                .collect();
            assert!(
                statuses.iter().all(|s| [200, 409].contains(s)),
                "{statuses:?}"
            );
            let stock = app.stock("RACE-1").await;
            assert_eq!(
                stock["reserved"], 0,
                "{} round {round}: {stock}",
                app.backend
            );
            app.check_invariants("RACE-1").await;
        }
        let stock = app.stock("RACE-1").await;
        let sold = 10 - stock["on_hand"].as_i64().unwrap();
        assert!((0..=5).contains(&sold), "{stock}");
    }
}

/// Unknown and discontinued SKUs are named, and the line that could be had takes nothing, on both
/// databases (SQLite finds them with the units, PostgreSQL before them).
#[tokio::test]
async fn unknown_and_discontinued_skus_are_named_and_no_line_takes_anything() {
    use inventory::storage::{self, Reserved};
    for db in testkit::TestDatabase::all().await {
        let (store, _db) = storage::connect(&db.url, 5).await.unwrap();
        store.set_on_hand("GONE-1", 5, "count", None).await.unwrap();
        store.set_on_hand("OK-1", 5, "count", None).await.unwrap();
        let deleted =
            platform::events::Event::new("products", "product_deleted", "GONE-1", json!({}));
        store.apply_product(&deleted, "GONE-1", true).await.unwrap();
        let lines =
            [("GHOST-1", 1), ("GONE-1", 1), ("OK-1", 2)].map(|(sku, n)| (sku.to_owned(), n));
        let expires = chrono::Utc::now() + chrono::Duration::minutes(5);
        match store
            .reserve("r-unknown", &lines, "h", expires)
            .await
            .unwrap()
        {
            Reserved::Unknown(skus) => assert_eq!(skus, ["GHOST-1", "GONE-1"], "{}", db.backend),
            _ => panic!("{}: not refused as unknown", db.backend),
        }
        let ok = store.stock("OK-1").await.unwrap().unwrap();
        assert_eq!((ok.on_hand, ok.reserved), (5, 0), "{}", db.backend);
        assert!(
            store.reservation("r-unknown").await.unwrap().is_none(),
            "{}",
            db.backend
        );
    }
}

/// Reservations that arrive together share one transaction (`platform::batch`), and each is still
/// decided alone, in arrival order: all its lines or none, never past what is on hand, an unknown
/// SKU refused, a repeat answered as before and a reused id refused, and only the reservations
/// made exist afterwards. What each should answer is worked out here by making them one by one.
#[tokio::test]
async fn reservations_made_together_are_each_all_or_nothing_in_arrival_order() {
    use inventory::storage::{self, Reserved};
    for db in testkit::TestDatabase::all().await {
        let (store, database) = storage::connect(&db.url, 5).await.unwrap();
        let mut left = [("HOT-1", 10), ("HOT-2", 3)];
        for (sku, on_hand) in left {
            store
                .set_on_hand(sku, on_hand, "count", None)
                .await
                .unwrap();
        }
        let expires = chrono::Utc::now() + chrono::Duration::minutes(5);
        type Ask = (String, Vec<(String, i64)>, &'static str);
        let mut asks: Vec<Ask> = (0..30)
            .map(|i| {
                let lines: &[(&str, i64)] = match i {
                    _ if i % 5 == 4 => &[("GHOST-1", 1), ("HOT-1", 1)],
                    _ if i % 3 == 0 => &[("HOT-1", 1), ("HOT-2", 1)],
                    _ => &[("HOT-1", 1)],
                };
                let lines = lines.iter().map(|(s, q)| ((*s).to_owned(), *q)).collect();
                (format!("r-{i}"), lines, "h")
            })
            .collect();
        asks.push(("r-0".into(), asks[0].1.clone(), "h"));
        asks.push(("r-0".into(), asks[0].1.clone(), "other"));

        let answers = join_all(
            asks.iter()
                .map(|(id, lines, hash)| store.reserve(id, lines, hash, expires)),
        )
        .await;

        let mut made = Vec::new();
        for ((id, lines, hash), answer) in asks.iter().zip(answers) {
            let answer = answer.unwrap();
            let fits = lines
                .iter()
                .all(|(sku, q)| left.iter().any(|(s, n)| s == sku && n >= q));
            let what = format!("{}: {id} {lines:?} {hash}", db.backend);
            match answer {
                Reserved::Unknown(skus) => assert_eq!(skus, ["GHOST-1"], "{what}"),
                _ if made.contains(id) => {
                    if *hash == "h" {
                        assert!(matches!(answer, Reserved::Replayed(_)), "{what}");
                    } else {
                        assert!(matches!(answer, Reserved::Mismatch), "{what}");
                    }
                }
                Reserved::Created(r) if fits => {
                    assert_eq!(&r.lines, lines, "{what}");
                    for (sku, q) in lines {
                        left.iter_mut().find(|(s, _)| s == sku).unwrap().1 -= q;
                    }
                    made.push(id.clone());
                }
                Reserved::Short(short) if !fits => {
                    for s in short {
                        let (_, n) = left.iter().find(|(sku, _)| *sku == s.sku).unwrap();
                        assert_eq!((s.available, s.requested), (*n, 1), "{what}");
                    }
                }
                _ => panic!("{what}: unexpected answer"),
            }
        }
        assert!(!made.is_empty());
        for (sku, n) in left {
            let row = store.stock(sku).await.unwrap().unwrap();
            assert_eq!(row.on_hand - row.reserved, n, "{}: {sku}", db.backend);
        }
        for (id, _, _) in &asks {
            let stored = store.reservation(id).await.unwrap();
            assert_eq!(stored.is_some(), made.contains(id), "{}: {id}", db.backend);
        }
        // They did share transactions: fewer stock changes published than reservations made.
        let (published,): (i64,) = platform::db::query(
            "SELECT COUNT(*) FROM agora_outbox WHERE event_type = 'agora.inventory.stock_changed.v1' AND subject = 'HOT-1'",
        )
        .fetch_one(&database)
        .await
        .unwrap();
        assert!(
            published < i64::try_from(made.len()).unwrap(),
            "{}: {published} stock changes for {} reservations",
            db.backend,
            made.len()
        );
    }
}
