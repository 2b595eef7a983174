//! Listings of a category (its whole subtree) in every order, paged, on every backend; and the
//! category tree the store caches for them.
use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::{apps, spawn_replica, TestApp};

/// Every page of `query` at `limit` items a page: (price, id, name) of each item, in order.
async fn all_pages(base: &str, http: &reqwest::Client, query: &str) -> Vec<(i64, String, String)> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    // Bounded: the catalogs here hold fewer than 100 products.
    for _ in 0..100 {
        let mut url = format!("{base}/products?{query}&limit=4");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = http.get(url).send().await.unwrap().json().await.unwrap();
        for item in page["items"].as_array().unwrap() {
            seen.push((
                item["price"]["amount"].as_i64().unwrap(),
                item["id"].as_str().unwrap().to_owned(),
                item["name"].as_str().unwrap().to_owned(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return seen,
        }
    }
    panic!("{query}: more than 100 pages");
}

/// A tree `gear` > `tents`, `stoves` > `burners`, and `other` beside it, with repeated prices
/// in every subcategory so that only the id orders ties; returns each product's (price, id,
/// category).
async fn tree_catalog(app: &TestApp) -> Vec<(i64, String, String)> {
    app.category("gear", None).await;
    app.category("tents", Some("gear")).await;
    app.category("stoves", Some("gear")).await;
    app.category("burners", Some("stoves")).await;
    app.category("other", None).await;
    let mut made = Vec::new();
    for i in 0..26 {
        let category = ["gear", "tents", "stoves", "burners", "other"][i % 5];
        let price = 100 * (i as i64 % 4);
        let description = if i % 2 == 0 {
            "light widget"
        } else {
            "a thing"
        };
        let p = app
            .product(
                &format!("T-{i:03}"),
                &format!("Widget {}", i % 3),
                description,
                price,
                category,
            )
            .await;
        made.push((
            price,
            p["id"].as_str().unwrap().to_owned(),
            category.to_owned(),
        ));
    }
    made
}

#[tokio::test]
async fn a_category_listing_pages_through_its_whole_tree_once_in_every_order() {
    for app in apps().await {
        let made = tree_catalog(&app).await;
        let in_tree = |min: i64, max: i64| -> Vec<(i64, String)> {
            let mut expected: Vec<(i64, String)> = made
                .iter()
                .filter(|(price, _, c)| c != "other" && (min..=max).contains(price))
                .map(|(price, id, _)| (*price, id.clone()))
                .collect();
            expected.sort();
            expected
        };
        for (query, min, max) in [
            ("category=gear&sort=price", 0, i64::MAX),
            (
                "category=gear&sort=price&min_price=100&max_price=200",
                100,
                200,
            ),
            ("category=gear&sort=-price", 0, i64::MAX),
            ("category=gear&sort=-price&max_price=100", 0, 100),
        ] {
            let got: Vec<(i64, String)> = all_pages(&app.base, &app.http, query)
                .await
                .into_iter()
                .map(|(price, id, _)| (price, id))
                .collect();
            let mut expected = in_tree(min, max);
            if query.contains("-price") {
                expected.reverse();
            }
            assert_eq!(got, expected, "{} {query}", app.backend);
        }
        let burners = all_pages(&app.base, &app.http, "category=stoves&sort=price").await;
        assert_eq!(burners.len(), 10, "stoves and burners: {}", app.backend);
        // The other orders and the words read the tree as one list; they cover it all the same.
        for query in [
            "category=gear&sort=name",
            "category=gear&sort=newest",
            "category=gear&q=widget",
            "category=gear&q=light&sort=price",
        ] {
            let got = all_pages(&app.base, &app.http, query).await;
            let ids: HashSet<&String> = got.iter().map(|(_, id, _)| id).collect();
            assert_eq!(ids.len(), got.len(), "{} {query}: a repeat", app.backend);
            let expected = if query.contains("light") { 10 } else { 21 };
            assert_eq!(got.len(), expected, "{} {query}", app.backend);
        }
    }
}

#[tokio::test]
async fn a_category_change_shows_in_listings_at_once() {
    for app in apps().await {
        let made = tree_catalog(&app).await;
        assert_eq!(
            all_pages(&app.base, &app.http, "category=gear&sort=price")
                .await
                .len(),
            21
        );
        // A new subcategory and a product in it: listed under its parent straight away.
        app.category("pots", Some("gear")).await;
        app.product("T-POT", "Pot", "for the stove", 50, "pots")
            .await;
        let gear = all_pages(&app.base, &app.http, "category=gear&sort=price").await;
        assert_eq!(gear.len(), 22, "{}", app.backend);
        assert!(
            gear.iter().any(|(_, _, name)| name == "Pot"),
            "{}",
            app.backend
        );
        // `other` moved under `gear`: its products join gear's listing, and a new category is
        // listed even before anything else reads the tree.
        let moved = app
            .http
            .patch(app.url("/categories/other"))
            .bearer_auth(&app.admin)
            .json(&json!({"parent": "gear"}))
            .send()
            .await
            .unwrap();
        assert_eq!(moved.status(), 200, "{}", moved.text().await.unwrap());
        let gear = all_pages(&app.base, &app.http, "category=gear&sort=-price").await;
        assert_eq!(gear.len(), made.len() + 1, "{}", app.backend);
        app.category("lamps", None).await;
        app.product("T-LAMP", "Lamp", "bright", 700, "lamps").await;
        assert_eq!(
            all_pages(&app.base, &app.http, "category=lamps&sort=price")
                .await
                .len(),
            1
        );
    }
}

#[tokio::test]
async fn another_replicas_category_change_shows_within_the_trees_lifetime() {
    for app in apps().await {
        tree_catalog(&app).await;
        let replica = spawn_replica(&app).await;
        // The replica reads the tree now, before the change.
        assert_eq!(
            all_pages(&replica.base, &app.http, "category=gear&sort=price")
                .await
                .len(),
            21
        );
        app.category("pots", Some("gear")).await;
        app.product("T-POT", "Pot", "for the stove", 50, "pots")
            .await;
        // A new child of a category the replica knows: within the tree's lifetime
        // (products::storage::TREE_TTL), with a margin for a slow machine.
        let within = products::storage::TREE_TTL + Duration::from_secs(10);
        testkit::eventually(within, || async {
            let n = all_pages(&replica.base, &app.http, "category=gear&sort=price")
                .await
                .len();
            if n == 22 {
                Ok(())
            } else {
                Err(format!("{n} products under gear"))
            }
        })
        .await;
        // A slug the replica has not seen: read at once.
        app.category("lamps", None).await;
        app.product("T-LAMP", "Lamp", "bright", 700, "lamps").await;
        assert_eq!(
            all_pages(&replica.base, &app.http, "category=lamps&sort=price")
                .await
                .len(),
            1,
            "{}",
            app.backend
        );
    }
}

/// (name, price) of each item of the first page of `query` on `app`, and the answer's type.
async fn first_page(app: &TestApp, query: &str) -> (Vec<(String, i64)>, String) {
    let r = app.get(&format!("/products?{query}")).await;
    assert_eq!(r.status(), 200, "{query}");
    let kind = r.headers()["content-type"].to_str().unwrap().to_owned();
    let page: Value = r.json().await.unwrap();
    (crate::names_and_prices(&page), kind)
}

/// `products_pages_total{outcome="kept"}` as the app's `/metrics` shows it.
async fn kept_pages(app: &TestApp) -> u64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find(|l| l.starts_with("products_pages_total{") && l.contains("outcome=\"kept\""))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// Listing and search pages are kept for a moment (`products::PAGE_TTL`), yet a change made
/// through the process that keeps them shows on the next read: a new price, a rename, a deletion,
/// a new product, a product moved to another category.
#[tokio::test]
async fn a_kept_page_shows_a_change_made_through_this_process_at_once() {
    for app in apps().await {
        app.category("mugs", None).await;
        app.category("cups", None).await;
        let mug = app.product("M-1", "Mug", "stoneware", 500, "mugs").await;
        app.product("M-2", "Beaker", "stoneware", 700, "mugs").await;
        let mug = format!("/products/{}", mug["id"].as_str().unwrap());
        let listing = "category=mugs&sort=price";
        let owned = |items: &[(&str, i64)]| -> Vec<(String, i64)> {
            items.iter().map(|(n, p)| ((*n).to_owned(), *p)).collect()
        };
        let kept_before = kept_pages(&app).await;
        let first = first_page(&app, listing).await;
        assert_eq!(
            first.0,
            owned(&[("Mug", 500), ("Beaker", 700)]),
            "{}",
            app.backend
        );
        assert_eq!(first.1, "application/json");
        // Read again (now from the kept page): the same bytes' worth, counted as kept (the count
        // is the test process's, shared by tests running beside this one: at least one more).
        assert_eq!(first_page(&app, listing).await, first);
        assert!(kept_pages(&app).await > kept_before, "{}", app.backend);
        assert_eq!(first_page(&app, "q=stoneware&sort=price").await.0, first.0);

        let patch = |body: Value| {
            let (http, url, admin) = (app.http.clone(), app.url(&mug), app.admin.clone());
            async move {
                let r = http.patch(url).bearer_auth(admin).json(&body).send().await;
                assert_eq!(r.unwrap().status(), 200);
            }
        };
        patch(json!({"price": {"amount": 900, "currency": "EUR"}, "name": "Big Mug"})).await;
        let expected = owned(&[("Beaker", 700), ("Big Mug", 900)]);
        assert_eq!(
            first_page(&app, listing).await.0,
            expected,
            "{}",
            app.backend
        );
        assert_eq!(
            first_page(&app, "q=stoneware&sort=price").await.0,
            expected,
            "{}",
            app.backend
        );

        patch(json!({"category": "cups"})).await;
        assert_eq!(first_page(&app, listing).await.0, owned(&[("Beaker", 700)]));
        assert_eq!(
            first_page(&app, "category=cups&sort=price").await.0,
            owned(&[("Big Mug", 900)])
        );

        app.product("M-3", "Espresso Cup", "stoneware", 300, "mugs")
            .await;
        let deleted = app.delete_as_admin(&mug).await;
        assert_eq!(deleted.status(), 204);
        assert_eq!(
            first_page(&app, listing).await.0,
            owned(&[("Espresso Cup", 300), ("Beaker", 700)]),
            "{}",
            app.backend
        );
        assert_eq!(
            first_page(&app, "category=cups&sort=price").await.0,
            owned(&[])
        );
    }
}
