//! A steady mixed load through the gateway (browse, login, checkout, cancel), bounded in count,
//! that records every answer so that a test can count what failed during a fault and when the
//! platform recovered.
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Browse,
    Login,
    Checkout,
    Cancel,
}

/// One request of the load and how it ended.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub at: Instant,
    pub op: Op,
    /// The HTTP status; `None` when no answer came (refused, cut off, timed out).
    pub status: Option<u16>,
}

impl Outcome {
    /// A success or an answer the shop gives by design (out of stock, declined, not cancellable).
    pub fn ok(&self) -> bool {
        matches!(self.status, Some(s) if (200..300).contains(&s) || s == 402 || s == 409)
    }
}

/// A customer the load acts as.
#[derive(Clone)]
pub struct Customer {
    pub login: String,
    pub password: String,
}

/// What the load needs to know about the shop.
pub struct Shop {
    /// The gateway's base URL, e.g. `http://127.0.0.1:20000`.
    pub gateway: String,
    /// Ids of the products the load browses and buys.
    pub products: Vec<String>,
    /// One customer per worker.
    pub customers: Vec<Customer>,
}

pub struct Load {
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    paused: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
    /// Requests in flight.
    busy: Arc<AtomicUsize>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

/// Time between two requests of one worker: a steady pace, not a flood.
const PACE: Duration = Duration::from_millis(150);

impl Load {
    /// Starts one worker per customer; each sends at most `per_worker` requests.
    pub fn start(shop: Shop, per_worker: usize) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let shop = Arc::new(shop);
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let paused = Arc::new(AtomicBool::new(false));
        let stopped = Arc::new(AtomicBool::new(false));
        let busy = Arc::new(AtomicUsize::new(0));
        let workers = (0..shop.customers.len())
            .map(|worker| {
                let context = Worker {
                    http: http.clone(),
                    shop: shop.clone(),
                    outcomes: outcomes.clone(),
                    paused: paused.clone(),
                    stopped: stopped.clone(),
                    busy: busy.clone(),
                    worker,
                };
                tokio::spawn(context.run(per_worker))
            })
            .collect();
        Self {
            outcomes,
            paused,
            stopped,
            busy,
            workers,
        }
    }

    /// Holds the load and waits (bounded by the client's timeout) until no request is in flight,
    /// so that the shop can settle for a check.
    pub async fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.busy.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }

    /// Every outcome recorded from `from` on.
    pub fn since(&self, from: Instant) -> Vec<Outcome> {
        self.outcomes
            .lock()
            .unwrap()
            .iter()
            .filter(|o| o.at >= from)
            .copied()
            .collect()
    }

    /// Stops every worker and returns everything recorded.
    pub async fn stop(self) -> Vec<Outcome> {
        self.stopped.store(true, Ordering::SeqCst);
        for worker in self.workers {
            let _ = worker.await;
        }
        let mut outcomes = self.outcomes.lock().unwrap();
        std::mem::take(&mut *outcomes)
    }
}

struct Worker {
    http: reqwest::Client,
    shop: Arc<Shop>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    paused: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
    busy: Arc<AtomicUsize>,
    worker: usize,
}

impl Worker {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.shop.gateway)
    }

    async fn run(self, requests: usize) {
        let customer = self.shop.customers[self.worker].clone();
        let mut token: Option<String> = None;
        let mut last_order: Option<String> = None;
        let mut sent = 0;
        let mut turn = self.worker;
        while sent < requests && !self.stopped.load(Ordering::SeqCst) {
            tokio::time::sleep(PACE).await;
            self.busy.fetch_add(1, Ordering::SeqCst);
            // Checked after counting this worker busy, so a pause never misses a request.
            if self.paused.load(Ordering::SeqCst) {
                self.busy.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            turn += 1;
            let product = &self.shop.products[turn % self.shop.products.len()];
            // Ten turns: four browses, two logins, three checkouts, one cancel.
            let op = match (turn % 10, &token, &last_order) {
                (_, None, _) | (4 | 9, _, _) => Op::Login,
                (6..=8, _, _) => Op::Checkout,
                (5, _, Some(_)) => Op::Cancel,
                _ => Op::Browse,
            };
            let at = Instant::now();
            let answer = match op {
                Op::Browse if turn % 2 == 0 => {
                    self.http
                        .get(self.url("/api/products?limit=20"))
                        .send()
                        .await
                }
                Op::Browse => {
                    self.http
                        .get(self.url(&format!("/api/products/{product}")))
                        .send()
                        .await
                }
                Op::Login => {
                    self.http
                        .post(self.url("/api/auth/login"))
                        .json(&json!({"login": customer.login, "password": customer.password}))
                        .send()
                        .await
                }
                Op::Checkout => {
                    self.http
                        .post(self.url("/api/orders"))
                        .bearer_auth(token.as_deref().unwrap_or_default())
                        .header("Idempotency-Key", uuid::Uuid::now_v7().to_string())
                        .json(&json!({"items": [{"product_id": product, "quantity": 1}],
                            "payment_method": "pm_card_visa",
                            "shipping_address": {"name": "Chaos Monkey", "line1": "1 Jungle Road",
                                "city": "Arlington", "postal_code": "22202", "country": "US"}}))
                        .send()
                        .await
                }
                Op::Cancel => {
                    let id = last_order.take().unwrap_or_default();
                    self.http
                        .post(self.url(&format!("/api/orders/{id}/cancel")))
                        .bearer_auth(token.as_deref().unwrap_or_default())
                        .send()
                        .await
                }
            };
            sent += 1;
            let status = match answer {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    match op {
                        Op::Login if status == 200 => {
                            token = body["access_token"].as_str().map(str::to_owned);
                        }
                        Op::Checkout if status == 201 || status == 202 => {
                            last_order = body["id"]
                                .as_str()
                                .or(body["order"]["id"].as_str())
                                .map(str::to_owned);
                        }
                        _ => {}
                    }
                    Some(status)
                }
                Err(_) => None,
            };
            self.outcomes
                .lock()
                .unwrap()
                .push(Outcome { at, op, status });
            self.busy.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
