//! Cart scenarios: reading a cart (priced from carts' own catalog projection, no call to products)
//! and adding to one, beside the catalog reads they compete with in a shop.
use std::sync::Arc;

use serde_json::{json, Value};

use crate::Request;

/// Guest carts the add-to-cart scenario spreads its requests over: a line holds at most 99 units
/// and a cart 100 lines, so each `(cart, product)` pair must be hit rarely enough to stay under.
const CARTS: usize = 400;
/// Products per cart in the add-to-cart scenario (carts take at most 100 lines).
const PRODUCTS: usize = 40;

struct GuestCart {
    id: String,
    secret: String,
}

/// What the cart scenarios need: guest carts on the running platform.
pub struct Setup {
    /// The carts service's base URL and the gateway's `/api`.
    carts: String,
    gateway: String,
    /// A cart of three lines, read by the read scenarios.
    read: GuestCart,
    fill: Arc<Vec<GuestCart>>,
    products: Arc<Vec<String>>,
}

async fn guest_cart(http: &reqwest::Client, carts: &str) -> anyhow::Result<GuestCart> {
    let created: Value = http
        .post(format!("{carts}/carts"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let field = |v: &Value| v.as_str().map(str::to_owned);
    Ok(GuestCart {
        id: field(&created["cart"]["id"]).ok_or_else(|| anyhow::anyhow!("no cart id"))?,
        secret: field(&created["secret"]).ok_or_else(|| anyhow::anyhow!("no cart secret"))?,
    })
}

/// Adds one unit of `product_id` to `cart`, retrying (bounded) while carts has not seen the
/// product's event yet.
async fn add_when_known(
    http: &reqwest::Client,
    carts: &str,
    cart: &GuestCart,
    product_id: &str,
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let added = http
            .post(format!("{carts}/carts/{}/items", cart.id))
            .header("x-cart-secret", &cart.secret)
            .json(&json!({"product_id": product_id, "quantity": 1}))
            .send()
            .await?;
        if added.status().is_success() {
            return Ok(());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "carts does not know product {product_id}: {}",
            added.status()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

impl Setup {
    /// `carts` is the service's base URL, `gateway` the gateway's `/api`; `ids` the catalog.
    pub async fn new(
        http: &reqwest::Client,
        carts: String,
        gateway: String,
        ids: &[String],
    ) -> anyhow::Result<Self> {
        let read = guest_cart(http, &carts).await?;
        // Carts learns the catalog from products' events: wait until it knows every product the
        // scenarios add (one unit each into a cart of their own), and put three in the read cart.
        let products: Vec<String> = ids.iter().take(PRODUCTS).cloned().collect();
        let probe = guest_cart(http, &carts).await?;
        for product_id in &products {
            add_when_known(http, &carts, &probe, product_id).await?;
        }
        for product_id in products.iter().take(3) {
            add_when_known(http, &carts, &read, product_id).await?;
        }
        let mut fill = Vec::with_capacity(CARTS);
        for _ in 0..CARTS {
            fill.push(guest_cart(http, &carts).await?);
        }
        Ok(Self {
            carts,
            gateway,
            read,
            fill: Arc::new(fill),
            products: Arc::new(products),
        })
    }

    /// The shopper mix's cart request, through the gateway as the storefront sends it: every
    /// other one adds a unit of a product to one of the carts, the others read one of them.
    pub fn shopper(&self) -> Request {
        let (gateway, fill, products) = (
            self.gateway.clone(),
            self.fill.clone(),
            self.products.clone(),
        );
        Arc::new(move |client, i| {
            let cart = &fill[(i / 2) % fill.len()];
            if i % 2 == 0 {
                // As in the add scenario: each (cart, product) pair is hit rarely.
                let product = &products[(i / 2 / fill.len()) % products.len()];
                client
                    .post(format!("{gateway}/carts/{}/items", cart.id))
                    .header("x-cart-secret", &cart.secret)
                    .json(&json!({"product_id": product, "quantity": 1}))
            } else {
                client
                    .get(format!("{gateway}/carts/{}", cart.id))
                    .header("x-cart-secret", &cart.secret)
            }
        })
    }

    pub fn scenarios(&self) -> Vec<(&'static str, Request)> {
        let read_on = |base: &str| -> Request {
            let (url, secret) = (
                format!("{base}/carts/{}", self.read.id),
                self.read.secret.clone(),
            );
            Arc::new(move |client, _| client.get(&url).header("x-cart-secret", &secret))
        };
        let (carts, fill, products) =
            (self.carts.clone(), self.fill.clone(), self.products.clone());
        // Request i adds one unit of product (i / CARTS) to cart i % CARTS: every pair is hit
        // once per CARTS × PRODUCTS requests, far under the 99 units a line may hold in a run.
        let add: Request = Arc::new(move |client, i| {
            let cart = &fill[i % fill.len()];
            let product = &products[(i / fill.len()) % products.len()];
            client
                .post(format!("{carts}/carts/{}/items", cart.id))
                .header("x-cart-secret", &cart.secret)
                .json(&json!({"product_id": product, "quantity": 1}))
        });
        vec![
            (
                "read a cart (GET /carts/{id}, 3 lines priced from the projection)",
                read_on(&self.carts),
            ),
            (
                "GET /api/carts/{id} through the gateway",
                read_on(&self.gateway),
            ),
            ("add to cart (POST /carts/{id}/items)", add),
        ]
    }
}
