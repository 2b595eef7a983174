//! The demo catalog, loaded through the public API as the admin (never into a database directly),
//! so it exercises the same validation as any client. A 409 means "already there": running it
//! twice adds nothing twice.
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::credentials::{AdminCredentials, DemoShopper, ADMIN_USERNAME, DEMO_USERNAME};
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
        demo(target).await.map(Some)
    } else {
        Ok(None)
    }
}

/// Seeds the demo catalog; returns what it created and what was already there.
pub async fn demo(target: &Target) -> anyhow::Result<String> {
    let catalog: Catalog = serde_json::from_str(DEMO_CATALOG)?;
    let http = client()?;
    let token = admin_token(&http, target).await?;
    let mut created = [0usize; 2];
    let mut existing = [0usize; 2];
    for (i, (path, items)) in [
        ("/categories", &catalog.categories),
        ("/products", &catalog.products),
    ]
    .into_iter()
    .enumerate()
    {
        for item in items {
            let response = http
                .post(target.url(ServiceName::Products, path))
                .bearer_auth(&token)
                .json(item)
                .send()
                .await?;
            match response.status() {
                StatusCode::CREATED => created[i] += 1,
                StatusCode::CONFLICT => existing[i] += 1,
                status => anyhow::bail!(
                    "POST {path} answered {status}: {}",
                    response.text().await.unwrap_or_default()
                ),
            }
        }
    }
    let stocked = stock_demo(&http, target, &token, &catalog.products).await?;
    Ok(format!(
        "{} categories and {} products created ({} and {} were already there), stock set for {stocked}",
        created[0], created[1], existing[0], existing[1]
    ))
}

/// Sets a plausible quantity for each demo product that has no stock yet; every eleventh is sold
/// out, so that availability shows both states.
async fn stock_demo(
    http: &reqwest::Client,
    target: &Target,
    token: &str,
    products: &[Value],
) -> anyhow::Result<usize> {
    let mut stocked = 0;
    for (i, product) in products.iter().enumerate() {
        let Some(sku) = product["sku"].as_str() else {
            continue;
        };
        let current = http
            .get(target.url(ServiceName::Inventory, &format!("/stock/{sku}")))
            .send()
            .await?;
        if current.status().is_success() {
            let stock: Value = current.json().await?;
            if stock["on_hand"].as_i64().unwrap_or(0) > 0 {
                continue;
            }
        }
        let on_hand = if i % 11 == 10 { 0 } else { 5 + (i * 7) % 40 };
        let response = http
            .put(target.url(ServiceName::Inventory, &format!("/stock/{sku}")))
            .bearer_auth(token)
            .json(&json!({"on_hand": on_hand, "reason": "demo seed", "low_stock_threshold": 3}))
            .send()
            .await?;
        if !response.status().is_success() {
            anyhow::bail!("PUT /stock/{sku} answered {}", response.status());
        }
        stocked += 1;
    }
    Ok(stocked)
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
            // 422: carts has not seen the product's event yet.
            if std::time::Instant::now() > deadline {
                anyhow::bail!("adding to the demo cart answered {}", added.status());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
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
}
