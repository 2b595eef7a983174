use std::collections::HashSet;

use serde_json::Value;

use crate::{apps, problem, TestApp};

async fn ids(app: &TestApp, query: &str) -> Vec<String> {
    let page: Value = app
        .get(&format!("/products?{query}"))
        .await
        .json()
        .await
        .unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn catalog(app: &TestApp) {
    app.category("home", None).await;
    app.category("kitchen", Some("home")).await;
    app.category("coffee", Some("kitchen")).await;
    app.category("books", None).await;
    app.product(
        "GR-1",
        "Burr Grinder",
        "Grinds coffee beans evenly",
        12900,
        "coffee",
    )
    .await;
    app.product(
        "KT-1",
        "Gooseneck Kettle",
        "For pour-over COFFEE and tea",
        7900,
        "kitchen",
    )
    .await;
    app.product("CF-1", "Coffee Beans", "Light roast", 1800, "coffee")
        .await;
    app.product(
        "BK-1",
        "The Coffee Book",
        "All about brewing",
        2600,
        "books",
    )
    .await;
    app.product("PN-1", "Frying Pan", "Cast iron", 4500, "kitchen")
        .await;
}

#[tokio::test]
async fn search_matches_words_case_insensitively_and_ranks_names_first() {
    for app in apps().await {
        catalog(&app).await;
        let found = ids(&app, "q=CoFfEe").await;
        assert_eq!(found.len(), 4, "{} {found:?}", app.backend);
        let by_description = ["Burr Grinder", "Gooseneck Kettle"];
        let last_name_hit = found
            .iter()
            .rposition(|n| !by_description.contains(&n.as_str()))
            .unwrap();
        let first_description_hit = found
            .iter()
            .position(|n| by_description.contains(&n.as_str()))
            .unwrap();
        assert!(
            last_name_hit < first_description_hit,
            "{} {found:?}",
            app.backend
        );
        assert_eq!(ids(&app, "q=cast iron").await, vec!["Frying Pan"]);
        assert_eq!(
            ids(&app, "q=grind").await,
            vec!["Burr Grinder"],
            "the last word is a prefix"
        );
        assert!(
            ids(&app, "q=\"AND* OR -(").await.is_empty(),
            "operators are only words"
        );
    }
}

#[tokio::test]
async fn a_category_filter_includes_its_subcategories_and_prices_bound_the_range() {
    for app in apps().await {
        catalog(&app).await;
        let mut home = ids(&app, "category=home&sort=name").await;
        home.sort();
        assert_eq!(
            home,
            vec![
                "Burr Grinder",
                "Coffee Beans",
                "Frying Pan",
                "Gooseneck Kettle"
            ]
        );
        assert_eq!(
            ids(&app, "category=coffee&sort=price").await,
            vec!["Coffee Beans", "Burr Grinder"]
        );
        assert_eq!(
            ids(&app, "min_price=2000&max_price=5000&sort=price").await,
            vec!["The Coffee Book", "Frying Pan"]
        );
        assert!(ids(&app, "category=ghost").await.is_empty());
        assert_eq!(
            ids(&app, "sort=-price&limit=2").await,
            vec!["Burr Grinder", "Gooseneck Kettle"]
        );
        assert_eq!(ids(&app, "sort=newest&limit=1").await, vec!["Frying Pan"]);
        assert_eq!(ids(&app, "sort=name&limit=1").await, vec!["Burr Grinder"]);
    }
}

#[tokio::test]
async fn pages_hold_every_match_exactly_once_for_every_sort() {
    for app in apps().await {
        app.category("misc", None).await;
        for i in 0..45 {
            // Repeated prices and names make ties that only the id can break.
            let name = format!("Widget {}", i % 7);
            let description = if i % 3 == 0 {
                "widget widget widget"
            } else {
                "a thing"
            };
            app.product(
                &format!("W-{i:03}"),
                &name,
                description,
                100 * (i % 5),
                "misc",
            )
            .await;
        }
        for query in [
            "sort=price",
            "sort=-price",
            "sort=name",
            "sort=newest",
            "q=widget",
            "q=widget&sort=price",
        ] {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut path = format!("/products?{query}&limit=7");
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={c}"));
                }
                let page: Value = app.get(&path).await.json().await.unwrap();
                for item in page["items"].as_array().unwrap() {
                    seen.push(item["id"].as_str().unwrap().to_owned());
                }
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
            }
            let unique: HashSet<&String> = seen.iter().collect();
            assert_eq!(
                unique.len(),
                seen.len(),
                "{} {query}: a product repeated",
                app.backend
            );
            assert_eq!(seen.len(), 45, "{} {query}", app.backend);
        }
    }
}

#[tokio::test]
async fn bad_search_parameters_are_400() {
    for app in apps().await {
        for query in [
            "limit=101",
            "limit=0",
            "sort=cheapest",
            "min_price=10&max_price=5",
            "min_price=abc",
            "cursor=bogus",
        ] {
            problem(app.get(&format!("/products?{query}")).await, 400).await;
        }
        let page: Value = app
            .get("/products?sort=price&limit=1")
            .await
            .json()
            .await
            .unwrap();
        assert!(page["next_cursor"].is_null());
    }
}

/// The full-text index follows every change: a renamed product is found by its new words only,
/// once, and a deleted one not at all; the products around it stay found.
#[tokio::test]
async fn search_follows_a_rename_and_a_delete() {
    use serde_json::json;
    for app in apps().await {
        catalog(&app).await;
        let grinder = app
            .product("GR-2", "Blade Grinder", "", 2900, "coffee")
            .await;
        let path = format!("/products/{}", grinder["id"].as_str().unwrap());
        assert_eq!(
            ids(&app, "q=blade").await,
            ["Blade Grinder"],
            "{}",
            app.backend
        );

        let renamed = app
            .http
            .patch(app.url(&path))
            .bearer_auth(&app.admin)
            .json(&json!({"name": "Spice Mill"}))
            .send()
            .await
            .unwrap();
        assert_eq!(renamed.status(), 200, "{}", app.backend);
        assert!(ids(&app, "q=blade").await.is_empty(), "{}", app.backend);
        assert_eq!(
            ids(&app, "q=spice").await,
            ["Spice Mill"],
            "{}",
            app.backend
        );
        assert_eq!(
            ids(&app, "q=grinder").await,
            ["Burr Grinder"],
            "{}: the other grinder is still found, the renamed one no longer",
            app.backend
        );

        let deleted = app.delete_as_admin(&path).await;
        assert_eq!(deleted.status(), 204);
        assert!(ids(&app, "q=spice").await.is_empty(), "{}", app.backend);
        assert_eq!(ids(&app, "q=coffee").await.len(), 4, "{}", app.backend);
    }
}

/// Another replica keeps the order of a search's hits for a while (`products::storage::RANKING_TTL`)
/// and a rendered page for a shorter one (`products::PAGE_TTL`): a product it has
/// ranked shows a new price, and a deleted one is gone, within the page's lifetime; a new product
/// is found within the ranking's.
#[tokio::test]
async fn another_replicas_search_shows_changes_within_a_pages_lifetime_and_new_products_within_a_rankings(
) {
    use serde_json::json;
    use std::time::Duration;
    for app in apps().await {
        catalog(&app).await;
        let replica = crate::spawn_replica(&app).await;
        let search = |query: &'static str| {
            let (http, base) = (app.http.clone(), replica.base.clone());
            async move {
                let page: Value = http
                    .get(format!("{base}/products?{query}"))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                crate::names_and_prices(&page)
            }
        };
        // The replica ranks "grinder" now, before the changes.
        let before = search("q=grinder").await;
        assert_eq!(
            before,
            [("Burr Grinder".to_owned(), 12900)],
            "{}",
            app.backend
        );

        let burr = app
            .get("/products?q=burr")
            .await
            .json::<Value>()
            .await
            .unwrap();
        let burr = format!("/products/{}", burr["items"][0]["id"].as_str().unwrap());
        let repriced = app
            .http
            .patch(app.url(&burr))
            .bearer_auth(&app.admin)
            .json(&json!({"price": {"amount": 9900, "currency": "EUR"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(repriced.status(), 200, "{}", app.backend);
        // What the replica shows for "grinder" within a kept page's lifetime, with a margin for a
        // slow machine.
        let replica_shows = async |expected: (&str, i64)| {
            let within = products::PAGE_TTL + Duration::from_secs(10);
            testkit::eventually(within, || async {
                let seen = search("q=grinder").await;
                if seen == [(expected.0.to_owned(), expected.1)] {
                    Ok(())
                } else {
                    Err(format!("{}: {seen:?}", app.backend))
                }
            })
            .await
        };
        replica_shows(("Burr Grinder", 9900)).await;

        app.product("GR-3", "Hand Grinder", "", 3900, "coffee")
            .await;
        let within = products::storage::RANKING_TTL + Duration::from_secs(10);
        testkit::eventually(within, || async {
            let names: Vec<String> = search("q=grinder")
                .await
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            if names.len() == 2 && names.contains(&"Hand Grinder".to_owned()) {
                Ok(())
            } else {
                Err(format!("{names:?}"))
            }
        })
        .await;

        // The replica ranks "grinder" again (both), then the burr grinder is deleted here.
        let deleted = app.delete_as_admin(&burr).await;
        assert_eq!(deleted.status(), 204);
        replica_shows(("Hand Grinder", 3900)).await;
    }
}
