//! The demo catalog, loaded through the public API as the admin (never into a database directly),
//! so it exercises the same validation as any client. A 409 means "already there": running it
//! twice adds nothing twice. `--products N` adds generated products (`generated.rs`) up to N.
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use futures::stream::{self, StreamExt};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::credentials::{AdminCredentials, DemoShopper, ADMIN_USERNAME, DEMO_USERNAME};
use crate::generated;
use crate::services::ServiceName;

const DEMO_CATALOG: &str = include_str!("../data/demo-catalog.json");

/// Where to seed: a platform started by `agora up`.
#[derive(Args)]
pub struct Target {
    /// Base port the platform was started with (`agora up --port`).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The data directory of `agora up`, where the admin credentials are.
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    #[arg(skip)]
    admin_password: Option<String>,
}

impl Target {
    pub fn local(port: u16, admin: &AdminCredentials) -> Self {
        Self {
            port,
            data_dir: PathBuf::new(),
            admin_password: Some(admin.password.clone()),
        }
    }

    fn url(&self, service: ServiceName, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", service.port_from(self.port))
    }

    fn password(&self) -> anyhow::Result<String> {
        match &self.admin_password {
            Some(password) => Ok(password.clone()),
            None => Ok(AdminCredentials::resolve(&self.data_dir)?.password),
        }
    }
}

#[derive(Deserialize)]
struct Catalog {
    categories: Vec<Value>,
    products: Vec<Value>,
}

/// Seeds the demo catalog unless the catalog already has products.
pub async fn demo_if_empty(target: &Target) -> anyhow::Result<Option<String>> {
    let http = client()?;
    let listing: Value = http
        .get(target.url(ServiceName::Products, "/products?limit=1"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let empty = listing["items"]
        .as_array()
        .is_none_or(|items| items.is_empty());
    if empty {
        demo(target, 0).await.map(Some)
    } else {
        Ok(None)
    }
}

/// Requests in flight while seeding: enough to keep the services busy on 2 cores without
/// queueing behind one another (the catalog's writes are serialised by its database anyway).
const IN_FLIGHT: usize = 8;

/// Seeds the demo catalog, then generated products (`generated.rs`) until the catalog holds
/// `products` of them in all; returns what it created and what was already there.
///
/// Everything goes through the public API, one `POST /products` per product, 8 in flight: on the
/// 2-core machine 10,000 products take well under a minute (docs/performance.md), so a faster
/// path straight into the database, which would skip validation and the outbox events inventory
/// needs to create the stock rows, is not worth its second code path.
pub async fn demo(target: &Target, products: usize) -> anyhow::Result<String> {
    let catalog: Catalog = serde_json::from_str(DEMO_CATALOG)?;
    let http = client()?;
    let token = admin_token(&http, target).await?;
    let (mut categories, mut existing_categories) = (0, 0);
    // Level by level: a subcategory names its parent, which must exist first; the categories of
    // one level go together.
    for level in category_levels(&catalog.categories) {
        let total = level.len();
        let (created, existing) = post_all(
            &http,
            target,
            &token,
            "/categories",
            level.into_iter(),
            total,
            IN_FLIGHT,
        )
        .await?;
        categories += created;
        existing_categories += existing;
    }
    let extra = products.saturating_sub(catalog.products.len());
    let all = catalog
        .products
        .iter()
        .cloned()
        .chain((0..extra).map(generated::product));
    let total = catalog.products.len() + extra;
    let (created, existing) =
        post_all(&http, target, &token, "/products", all, total, IN_FLIGHT).await?;
    let wanted = catalog
        .products
        .iter()
        .enumerate()
        .filter_map(|(i, p)| Some((p["sku"].as_str()?.to_owned(), demo_stock(i))))
        .chain((0..extra).map(|i| (generated::sku(i), generated::stock(i))));
    let stocked = stock_all(&http, target, &token, wanted, total).await?;
    Ok(format!(
        "{categories} categories and {created} products created ({existing_categories} and \
         {existing} were already there), stock set for {stocked}"
    ))
}

/// The categories in levels: first those without a parent, then those whose parent is in an
/// earlier level, and so on. A category whose parent is never defined goes last, where the
/// catalog's answer (its parent unknown) says what is wrong.
fn category_levels(categories: &[Value]) -> Vec<Vec<Value>> {
    let mut placed: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut left: Vec<&Value> = categories.iter().collect();
    let mut levels = Vec::new();
    while !left.is_empty() {
        let (ready, waiting): (Vec<&Value>, Vec<&Value>) = left
            .into_iter()
            .partition(|c| c["parent"].as_str().is_none_or(|p| placed.contains(p)));
        if ready.is_empty() {
            levels.push(waiting.into_iter().cloned().collect());
            break;
        }
        placed.extend(ready.iter().filter_map(|c| c["slug"].as_str()));
        levels.push(ready.into_iter().cloned().collect());
        left = waiting;
    }
    levels
}

/// POSTs every item to `path`, `in_flight` at a time, in order; returns how many were created and how many already existed (409).
async fn post_all(
    http: &reqwest::Client,
    target: &Target,
    token: &str,
    path: &str,
    items: impl Iterator<Item = Value>,
    total: usize,
    in_flight: usize,
) -> anyhow::Result<(usize, usize)> {
    let url = target.url(ServiceName::Products, path);
    let mut progress = Progress::new(path.trim_start_matches('/'), total);
    let mut answers = stream::iter(items)
        .map(|item| {
            let request = http.post(&url).bearer_auth(token).json(&item);
            async move {
                let response = request.send().await?;
                match response.status() {
                    StatusCode::CREATED => Ok(true),
                    StatusCode::CONFLICT => Ok(false),
                    status => anyhow::bail!(
                        "POST {path} answered {status}: {}",
                        response.text().await.unwrap_or_default()
                    ),
                }
            }
        })
        .buffered(in_flight);
    let (mut created, mut existing) = (0, 0);
    while let Some(answer) = answers.next().await {
        match answer? {
            true => created += 1,
            false => existing += 1,
        }
        progress.advance();
    }
    progress.finish();
    Ok((created, existing))
}

/// Units for the `i`-th hand-written demo product: every eleventh is sold out, so that
/// availability shows both states.
fn demo_stock(i: usize) -> u64 {
    if i % 11 == 10 {
        0
    } else {
        5 + (i as u64 * 7) % 40
    }
}

/// Sets the stock of every `(sku, units)` whose stock is still at zero (as the catalog's
/// `product_created` event leaves it) or not kept yet; returns how many it set. A product already
/// stocked, by an earlier seed or by the shop, keeps its figure.
async fn stock_all(
    http: &reqwest::Client,
    target: &Target,
    token: &str,
    wanted: impl Iterator<Item = (String, u64)>,
    total: usize,
) -> anyhow::Result<usize> {
    let mut progress = Progress::new("stock", total);
    let mut answers = stream::iter(wanted)
        .map(|(sku, units)| async move {
            let url = target.url(ServiceName::Inventory, &format!("/stock/{sku}"));
            let current = http.get(&url).send().await?;
            if current.status().is_success() {
                let stock: Value = current.json().await?;
                let on_hand = stock["on_hand"].as_u64().unwrap_or(0);
                if on_hand > 0 || on_hand == units {
                    return Ok(false);
                }
            }
            let response = http
                .put(&url)
                .bearer_auth(token)
                .json(&json!({"on_hand": units, "reason": "demo seed", "low_stock_threshold": 3}))
                .send()
                .await?;
            anyhow::ensure!(
                response.status().is_success(),
                "PUT /stock/{sku} answered {}",
                response.status()
            );
            Ok(true)
        })
        .buffered(IN_FLIGHT);
    let mut stocked = 0;
    while let Some(answer) = answers.next().await {
        stocked += usize::from(answer?);
        progress.advance();
    }
    progress.finish();
    Ok(stocked)
}

/// Progress of a long seed on stderr: one line redrawn in place on a terminal, a plain line every
/// 1,000 items otherwise (a log file or CI output gets no carriage returns). Silent for the
/// small demo catalog, which takes a second.
struct Progress {
    label: String,
    total: usize,
    done: usize,
    started: Instant,
    shown: Option<Instant>,
    terminal: bool,
}

/// Below this many items a seed is quick and says nothing until its summary.
const QUIET_BELOW: usize = 1_000;

impl Progress {
    fn new(label: &str, total: usize) -> Self {
        Self {
            label: label.to_owned(),
            total,
            done: 0,
            started: Instant::now(),
            shown: None,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn advance(&mut self) {
        self.done += 1;
        if self.total < QUIET_BELOW {
            return;
        }
        if self.terminal {
            let due = self
                .shown
                .is_none_or(|at| at.elapsed() >= Duration::from_millis(100));
            if due || self.done == self.total {
                self.shown = Some(Instant::now());
                eprint!(
                    "\r{:<72}",
                    progress_line(&self.label, self.done, self.total, self.started.elapsed())
                );
            }
        } else if self.done % 1_000 == 0 || self.done == self.total {
            eprintln!(
                "{}",
                progress_line(&self.label, self.done, self.total, self.started.elapsed())
            );
        }
    }

    fn finish(&self) {
        if self.terminal && self.total >= QUIET_BELOW {
            eprintln!();
        }
    }
}

/// `products  3400/10000  34%  812/s  8 s left`.
fn progress_line(label: &str, done: usize, total: usize, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        done as f64 / seconds
    } else {
        0.0
    };
    let left = if rate > 0.0 {
        format!("{:.0} s left", total.saturating_sub(done) as f64 / rate)
    } else {
        "time left unknown".to_owned()
    };
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    format!("{label:<10} {done}/{total}  {percent}%  {rate:.0}/s  {left}")
}

/// Registers the demo shopper (unless registered already) and leaves two products in their cart,
/// so that a new user sees a cart at once. The cart is added to through the carts service once its
/// catalog projection has the products (it follows products' events, moments behind).
pub async fn demo_shopper(target: &Target, shopper: &DemoShopper) -> anyhow::Result<String> {
    let http = client()?;
    let registered = http
        .post(target.url(ServiceName::Users, "/users"))
        .json(&json!({"username": DEMO_USERNAME, "email": "demo@agora.local", "password": shopper.password}))
        .send()
        .await?;
    if !matches!(
        registered.status(),
        StatusCode::CREATED | StatusCode::CONFLICT
    ) {
        anyhow::bail!(
            "registering the demo shopper answered {}",
            registered.status()
        );
    }
    let token = login(&http, target, DEMO_USERNAME, &shopper.password).await?;
    let cart: Value = http
        .post(target.url(ServiceName::Carts, "/carts"))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = cart["cart"]["id"].as_str().unwrap_or_default().to_owned();
    if cart["cart"]["item_count"].as_i64().unwrap_or(0) > 0 {
        return Ok(format!("{DEMO_USERNAME}'s cart was there already"));
    }
    let listing: Value = http
        .get(target.url(
            ServiceName::Products,
            "/products?in_stock=true&limit=2&sort=price",
        ))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let products: Vec<String> = listing["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|p| p["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for product in &products {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let added = http
                .post(target.url(ServiceName::Carts, &format!("/carts/{id}/items")))
                .bearer_auth(&token)
                .json(&json!({"product_id": product, "quantity": 1}))
                .send()
                .await?;
            if added.status().is_success() {
                break;
            }
            // 422: carts has not seen the product's event yet (moments behind: its feed wakes on
            // the catalog's commit).
            if std::time::Instant::now() > deadline {
                anyhow::bail!("adding to the demo cart answered {}", added.status());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(format!(
        "{DEMO_USERNAME} has {} products in their cart (password in {})",
        products.len(),
        shopper.file.display()
    ))
}

async fn login(
    http: &reqwest::Client,
    target: &Target,
    username: &str,
    password: &str,
) -> anyhow::Result<String> {
    let response = http
        .post(target.url(ServiceName::Users, "/auth/login"))
        .json(&json!({"login": username, "password": password}))
        .send()
        .await?;
    if !response.status().is_success() {
        anyhow::bail!("{username}'s login failed with {}", response.status());
    }
    let body: Value = response.json().await?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the login answer has no access_token"))
}

async fn admin_token(http: &reqwest::Client, target: &Target) -> anyhow::Result<String> {
    login(http, target, ADMIN_USERNAME, &target.password()?).await
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_go_level_by_level_each_after_its_parent() {
        let cat = |slug: &str, parent: Option<&str>| json!({"slug": slug, "parent": parent});
        // A grandchild listed first, and one whose parent is nowhere.
        let levels = category_levels(&[
            cat("vinyl", Some("audio")),
            cat("audio", Some("electronics")),
            cat("electronics", None),
            cat("books", None),
            cat("orphan", Some("nowhere")),
        ]);
        let slugs: Vec<Vec<&str>> = levels
            .iter()
            .map(|level| level.iter().map(|c| c["slug"].as_str().unwrap()).collect())
            .collect();
        assert_eq!(
            slugs,
            vec![
                vec!["electronics", "books"],
                vec!["audio"],
                vec!["vinyl"],
                vec!["orphan"]
            ]
        );
        // The demo catalog: every category placed once, each after its parent.
        let catalog: Catalog = serde_json::from_str(DEMO_CATALOG).unwrap();
        let levels = category_levels(&catalog.categories);
        assert_eq!(levels.concat().len(), catalog.categories.len());
        assert!(levels.len() >= 2, "{} levels", levels.len());
    }

    #[test]
    fn the_demo_catalog_has_fifty_products_in_six_categories_with_subcategories() {
        let catalog: Catalog = serde_json::from_str(DEMO_CATALOG).unwrap();
        let top = catalog
            .categories
            .iter()
            .filter(|c| c["parent"].is_null())
            .count();
        let sub = catalog.categories.len() - top;
        assert!(top >= 6, "{top} top-level categories");
        assert!(sub >= 6, "{sub} subcategories");
        assert!(catalog.products.len() >= 50);
        let mut skus: Vec<&str> = catalog
            .products
            .iter()
            .filter_map(|p| p["sku"].as_str())
            .collect();
        skus.sort_unstable();
        skus.dedup();
        assert_eq!(skus.len(), catalog.products.len(), "SKUs are unique");
        for product in &catalog.products {
            let category = product["category"].as_str().unwrap();
            assert!(
                catalog.categories.iter().any(|c| c["slug"] == category),
                "{category} exists"
            );
        }
    }

    #[test]
    fn the_progress_line_gives_the_rate_and_the_time_left() {
        assert_eq!(
            progress_line("products", 2_500, 10_000, Duration::from_secs(5)),
            "products   2500/10000  25%  500/s  15 s left"
        );
        assert_eq!(
            progress_line("stock", 0, 10_000, Duration::ZERO),
            "stock      0/10000  0%  0/s  time left unknown"
        );
        assert_eq!(
            progress_line("stock", 10_000, 10_000, Duration::from_secs(20)),
            "stock      10000/10000  100%  500/s  0 s left"
        );
    }
}
