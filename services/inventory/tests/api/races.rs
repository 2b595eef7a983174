//! Writers of the same stock rows at once: commits, returns, reservations, counts and adjustments.
use futures::future::join_all;
use reqwest::Response;
use serde_json::{json, Value};

use crate::{new_id, TestApp};

const SKUS: [&str; 3] = ["RACE-A", "RACE-B", "RACE-C"];

/// Status and body of `response` when it is not a success, for the failure message.
async fn failure(what: &str, response: Response) -> Option<String> {
    if response.status().is_success() {
        return None;
    }
    let status = response.status();
    Some(format!(
        "{what}: {status} {}",
        response.text().await.unwrap_or_default()
    ))
}

async fn adjust(app: &TestApp, sku: &str, delta: i64, reason: &str) -> Response {
    app.http
        .post(app.url(&format!("/stock/{sku}/adjustments")))
        .bearer_auth(&app.admin)
        .json(&json!({"delta": delta, "reason": reason}))
        .send()
        .await
        .unwrap()
}

async fn count(app: &TestApp, sku: &str, on_hand: i64) -> Response {
    app.http
        .put(app.url(&format!("/stock/{sku}")))
        .bearer_auth(&app.admin)
        .json(&json!({"on_hand": on_hand, "reason": "stock count"}))
        .send()
        .await
        .unwrap()
}

/// One worker's 50 rounds; what did not succeed.
async fn worker(app: &TestApp, task: usize) -> Vec<String> {
    let mut failures = Vec::new();
    let all: Value = SKUS
        .iter()
        .map(|sku| json!({"sku": sku, "quantity": 1}))
        .collect();
    for round in 0..50 {
        let sku = SKUS[(task + round) % SKUS.len()];
        let id = new_id();
        let mut steps: Vec<(&str, Response)> = Vec::new();
        match task % 4 {
            0 | 1 => {
                steps.push(("reserve all", app.reserve(&id, all.clone(), 60).await));
                steps.push(("commit all", app.act(&id, "commit").await));
                if task % 4 == 1 {
                    steps.push(("return all", app.act(&id, "return").await));
                }
            }
            2 => {
                steps.push(("adjust", adjust(app, sku, 1, "received").await));
                let one = json!([{"sku": sku, "quantity": 1}]);
                steps.push(("reserve one", app.reserve(&id, one, 60).await));
                steps.push(("release one", app.act(&id, "release").await));
            }
            _ => {
                let on_hand = 1_000_000 + i64::try_from(round).unwrap();
                steps.push(("count", count(app, sku, on_hand).await));
                let one = json!([{"sku": sku, "quantity": 1}]);
                steps.push(("reserve one", app.reserve(&id, one, 60).await));
                steps.push(("commit one", app.act(&id, "commit").await));
            }
        }
        for (what, response) in steps {
            failures.extend(failure(what, response).await);
        }
    }
    failures
}

#[tokio::test]
async fn multi_sku_commits_racing_reservations_counts_and_adjustments_all_succeed_and_conserve_stock(
) {
    for app in crate::apps().await {
        for sku in SKUS {
            app.set_stock(sku, 1_000_000).await;
        }
        let failures: Vec<String> = join_all((0..8).map(|task| worker(&app, task)))
            .await
            .into_iter()
            .flatten()
            .collect();
        assert!(
            failures.is_empty(),
            "{}: {} requests failed, e.g. {:?}",
            app.backend,
            failures.len(),
            failures.iter().take(3).collect::<Vec<_>>()
        );
        for sku in SKUS {
            assert_eq!(app.stock(sku).await["reserved"], 0, "{}", app.backend);
            app.check_invariants(sku).await;
        }
    }
}

#[tokio::test]
async fn a_count_racing_reservations_and_adjustments_answers_200_or_409_never_500() {
    for app in crate::apps().await {
        let sku = "RACE-COUNT-1";
        for round in 0..20 {
            app.set_stock(sku, 10).await;
            let ids: Vec<String> = (0..5).map(|_| new_id()).collect();
            let reservations = ids
                .iter()
                .map(|id| app.reserve(id, json!([{"sku": sku, "quantity": 1}]), 60));
            let (reserved, counted, removed, added) = tokio::join!(
                join_all(reservations),
                count(&app, sku, 3),
                adjust(&app, sku, -2, "damaged"),
                adjust(&app, sku, 1, "received"),
            );
            let mut outcomes: Vec<(&str, Response)> =
                vec![("count", counted), ("remove", removed), ("add", added)];
            outcomes.extend(reserved.into_iter().map(|r| ("reserve", r)));
            for (what, response) in outcomes {
                let status = response.status().as_u16();
                assert!(
                    [200, 201, 409].contains(&status),
                    "{} round {round}: {what}: {status} {}",
                    app.backend,
                    response.text().await.unwrap_or_default()
                );
                if status == 409 {
                    assert_eq!(
                        response.headers()["content-type"],
                        "application/problem+json"
                    );
                }
            }
            for id in &ids {
                let status = app.act(id, "release").await.status().as_u16();
                assert!([200, 404].contains(&status), "release: {status}");
            }
            app.check_invariants(sku).await;
        }
    }
}
