//! The search filters are outside input: whatever query string a shopper sends, the answer is a
//! page (200) or a problem (400), never a server error. On every backend.
use platform::pagination::encode_cursor;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

use crate::{apps, TestApp};

/// Values a field may take: plausible ones, edge numbers, and any text.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        Just("9223372036854775808".to_owned()),
        Just("-1".to_owned()),
        proptest::sample::select(vec![
            "relevance",
            "price",
            "-price",
            "name",
            "newest",
            "true",
            "false",
            "coffee"
        ])
        .prop_map(String::from),
        // A cursor for any sort, well-formed or not.
        prop_oneof![
            (any::<f64>(), ".{0,8}").prop_map(|(r, id)| serde_json::json!({"Rank": [r, id]})),
            (any::<i64>(), ".{0,8}").prop_map(|(p, id)| serde_json::json!({"Price": [p, id]})),
            (".{0,8}", ".{0,8}").prop_map(|(n, id)| serde_json::json!({"Name": [n, id]})),
            ".{0,8}".prop_map(|id| serde_json::json!({"Id": id})),
            ".{0,12}".prop_map(serde_json::Value::from),
        ]
        .prop_map(|cursor| encode_cursor(&cursor)),
        "\\PC{0,30}",
    ]
}

fn query() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = proptest::sample::select(vec![
        "q",
        "category",
        "min_price",
        "max_price",
        "in_stock",
        "sort",
        "limit",
        "cursor",
        "unknown",
    ]);
    proptest::collection::vec((name.prop_map(String::from), value()), 0..6)
}

async fn search_is_a_page_or_a_problem(
    app: &TestApp,
    pairs: &[(String, String)],
) -> Result<(), TestCaseError> {
    let response = app
        .http
        .get(app.url("/products"))
        .query(pairs)
        .send()
        .await
        .unwrap();
    let query = response.url().query().unwrap_or_default().to_owned();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.text().await.unwrap();
    prop_assert!(
        (status == 200 && content_type == "application/json")
            || (status == 400 && content_type == "application/problem+json"),
        "{:?}: {} {} {}",
        app.backend,
        status,
        query,
        body
    );
    Ok(())
}

#[test]
fn any_search_query_is_a_page_or_a_400() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let apps = runtime.block_on(async {
        let apps = apps().await;
        for app in &apps {
            app.category("coffee", None).await;
            app.product("FZ-1", "Coffee beans", "Dark roast", 1299, "coffee")
                .await;
            app.product("FZ-2", "Coffee grinder", "Burr", 4999, "coffee")
                .await;
            app.product("FZ-3", "Tea", "Green", 499, "coffee").await;
        }
        apps
    });
    let mut runner = TestRunner::default();
    runner
        .run(&query(), |pairs| {
            for app in &apps {
                runtime.block_on(search_is_a_page_or_a_problem(app, &pairs))?;
            }
            Ok(())
        })
        .unwrap();
}
