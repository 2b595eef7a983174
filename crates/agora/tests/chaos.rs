//! Chaos over real processes: `agora up` under a steady mixed load while its processes are killed,
//! its database and broker stop for a while, and the payment gateway misbehaves. After each fault
//! the shop must heal by itself and add up (`testkit::conservation` and more); during an outage the
//! affected routes answer a fast 503 problem+json and the others keep working.
//!
//! SQLite + the feed always; PostgreSQL + RabbitMQ as well when `AGORA_TEST_POSTGRES_URL` and
//! `AGORA_TEST_AMQP_URL` are set. That stack runs on private servers started by the test, never on
//! the shared ones it names. `AGORA_CHAOS_LONG=1` selects a longer run (more load, longer faults,
//! three rounds of kills); `AGORA_CHAOS_STACK=sqlite` or `=postgres` runs one stack only. The table
//! of every run is printed for docs/resilience.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::panic::AssertUnwindSafe;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::FutureExt;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use testkit::chaos::load::{Customer, Load, Outcome, Shop};
use testkit::chaos::servers::{PrivatePostgres, PrivateRabbit};
use testkit::chaos::Row;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// An outage answer must come at least this fast: a client should never wait on a dead component.
const FAST: Duration = Duration::from_secs(2);

/// Port offsets from the gateway's (see `ServiceName::default_port`).
const USERS: u16 = 1;
const PRODUCTS: u16 = 2;
const INVENTORY: u16 = 3;
const ORDERS: u16 = 4;
const PAYMENTS: u16 = 5;
const PSP: u16 = 6;

struct Settings {
    /// Requests per load worker, at most.
    requests_per_worker: usize,
    /// How long the database and the broker stay down.
    outage: Duration,
    /// How long the payment gateway misbehaves.
    psp_faults: Duration,
    /// Rounds of process kills.
    kill_rounds: usize,
}

impl Settings {
    fn from_env() -> Self {
        if std::env::var("AGORA_CHAOS_LONG").is_ok_and(|v| v == "1") {
            Self {
                requests_per_worker: 20_000,
                outage: Duration::from_secs(60),
                psp_faults: Duration::from_secs(60),
                kill_rounds: 3,
            }
        } else {
            Self {
                requests_per_worker: 3_000,
                outage: Duration::from_secs(20),
                psp_faults: Duration::from_secs(15),
                kill_rounds: 1,
            }
        }
    }
}

struct Platform {
    child: Child,
    base: u16,
    http: reqwest::Client,
    admin: String,
    psp_key: String,
    data: tempfile::TempDir,
}

fn free_base_port() -> u16 {
    testkit::free_ports(PSP + 2)
}

impl Platform {
    /// `agora up` with the arguments `stack.0` and the environment `stack.1`.
    async fn start(stack: &(Vec<String>, Vec<(String, String)>)) -> Self {
        let data = tempfile::tempdir().unwrap();
        let base = free_base_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_agora"))
            .args(["up", "--port", &base.to_string()])
            .args(&stack.0)
            .arg("--data-dir")
            .arg(data.path())
            .env_remove("AGORA_ADMIN_EMAIL")
            .env_remove("AGORA_ADMIN_PASSWORD")
            .env_remove("AGORA_DATABASE_URL")
            .env_remove("AGORA_POSTGRES_URL")
            .env_remove("AGORA_AMQP_URL")
            .env_remove("AGORA_PSP_API_KEY")
            .envs(stack.1.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut output = String::new();
        while !output.contains("Press Ctrl-C") {
            match tokio::time::timeout(Duration::from_secs(180), lines.next_line()).await {
                Ok(Ok(Some(line))) => {
                    output.push_str(&line);
                    output.push('\n');
                }
                other => panic!("agora up stopped early ({other:?}):\n{output}"),
            }
        }
        // The launcher's own lines (restarts) go to the test's output; the pipe never fills.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[agora up] {line}");
            }
        });
        let read = |file: &str, key: &str| {
            let text = std::fs::read_to_string(data.path().join(file)).unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap()
                .trim()
                .trim_start_matches('=')
                .trim()
                .trim_matches('"')
                .to_owned()
        };
        let password = read("admin-credentials", "password:");
        let psp_key = read("config/payment-gateway-sim.toml", "psp_api_key");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut platform = Self {
            child,
            base,
            http,
            admin: String::new(),
            psp_key,
            data,
        };
        platform.admin = platform.login("admin", &password).await.unwrap();
        platform
    }

    fn gateway(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.base)
    }

    fn service(&self, offset: u16) -> String {
        format!("http://127.0.0.1:{}", self.base + offset)
    }

    async fn login(&self, login: &str, password: &str) -> Option<String> {
        let r = self
            .http
            .post(self.gateway("/api/auth/login"))
            .json(&json!({"login": login, "password": password}))
            .send()
            .await
            .ok()?;
        let body: Value = r.json().await.ok()?;
        body["access_token"].as_str().map(str::to_owned)
    }

    async fn customer(&self, n: usize) -> Customer {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let login = format!("c{n}{}", &id[16..]);
        let password = "correct horse battery staple".to_owned();
        let r = self
            .http
            .post(self.gateway("/api/users"))
            .json(&json!({"username": login, "email": format!("{login}@example.com"), "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        Customer { login, password }
    }

    /// The first `n` products of the catalog, each stocked with `units`: (id, sku).
    async fn stock_products(&self, n: usize, units: i64) -> Vec<(String, String)> {
        let page: Value = self
            .http
            .get(self.gateway(&format!("/api/products?limit={n}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut products = Vec::new();
        for p in page["items"].as_array().unwrap() {
            let (id, sku) = (p["id"].as_str().unwrap(), p["sku"].as_str().unwrap());
            let r = self
                .http
                .put(self.gateway(&format!("/api/stock/{sku}")))
                .bearer_auth(&self.admin)
                .json(&json!({"on_hand": units, "reason": "chaos stock count"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            products.push((id.to_owned(), sku.to_owned()));
        }
        assert_eq!(products.len(), n, "the demo catalog has {n} products");
        products
    }

    async fn set_faults(&self, faults: Value) {
        let r = self
            .http
            .put(format!("{}/admin/faults", self.service(PSP)))
            .bearer_auth(&self.psp_key)
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }

    /// The pid of the running `agora serve <service>` child of the launcher.
    fn pid_of(&self, service: &str) -> Option<i32> {
        let launcher = self.child.id()?.to_string();
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let parent = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .nth(1);
            if args.iter().any(|a| a == "serve")
                && args.iter().any(|a| a == service)
                && parent == Some(launcher.as_str())
            {
                return Some(pid);
            }
        }
        None
    }

    /// Every order, or `None` while the orders service cannot list them.
    async fn orders(&self) -> Option<Vec<Value>> {
        let mut orders = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let mut url = format!("{}/orders?limit=100", self.service(ORDERS));
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let r = self
                .http
                .get(url)
                .bearer_auth(&self.admin)
                .send()
                .await
                .ok()?;
            if !r.status().is_success() {
                return None;
            }
            let page: Value = r.json().await.ok()?;
            orders.extend(page["items"].as_array()?.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return Some(orders),
            }
        }
        None
    }

    async fn get_json(&self, url: String) -> Option<Value> {
        let r = self
            .http
            .get(url)
            .bearer_auth(&self.admin)
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.json().await.ok()
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        // A failing test drops its platform while it panics: what the services said goes with it.
        if std::thread::panicking() {
            testkit::logs::print_trouble(self.data.path());
        }
        if let Some(pid) = self.child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
    }
}

/// A request that exercises one component, through the gateway unless it is the simulator.
#[derive(Clone, Copy)]
enum Probe {
    Login,
    Browse,
    Stock,
    MyOrders,
    Payments,
    Checkout,
    /// The catalog, inventory and login asked directly, not through the gateway: the gateway's
    /// health check hides an unready service, so this is what a service itself answers.
    DirectBrowse,
    DirectStock,
    DirectLogin,
}

struct Answer {
    /// `None`: no answer (refused or cut off).
    status: Option<u16>,
    problem_json: bool,
    took: Duration,
}

impl Answer {
    fn ok(&self) -> bool {
        matches!(self.status, Some(s) if (200..300).contains(&s))
    }

    /// What an outage may answer: a success (it healed, or did not need the component), a 503
    /// problem+json, or a refused connection (the gateway itself is down) -- and all of it fast.
    fn acceptable_in_outage(&self) -> bool {
        let shape = match self.status {
            None => true,
            Some(s) if (200..300).contains(&s) => true,
            Some(502..=504) => self.problem_json,
            Some(_) => false,
        };
        shape && self.took <= FAST
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(
                f,
                "{s}{} in {:.2}s",
                if self.problem_json {
                    " problem+json"
                } else {
                    ""
                },
                self.took.as_secs_f64()
            ),
            None => write!(f, "no answer after {:.2}s", self.took.as_secs_f64()),
        }
    }
}

/// The shop the suite runs against, with what its checks need.
struct Run<'a> {
    p: &'a Platform,
    products: Vec<(String, String)>,
    customer: Customer,
    token: String,
    load: Load,
    rows: Vec<Row>,
    /// Every broken promise, named; the test fails on them once the table is printed.
    failures: Vec<String>,
}

impl Run<'_> {
    async fn probe(&self, probe: Probe) -> Answer {
        let p = self.p;
        let (id, _) = &self.products[0];
        let started = Instant::now();
        let request = match probe {
            Probe::Login => p
                .http
                .post(p.gateway("/api/auth/login"))
                .json(&json!({"login": self.customer.login, "password": self.customer.password})),
            Probe::Browse => p.http.get(p.gateway(&format!("/api/products/{id}"))),
            Probe::Stock => p
                .http
                .get(p.gateway(&format!("/api/stock/{}", self.products[0].1)))
                .bearer_auth(&p.admin),
            Probe::MyOrders => p
                .http
                .get(p.gateway("/api/orders"))
                .bearer_auth(&self.token),
            Probe::Payments => p
                .http
                .get(p.gateway(&format!("/api/payments?order_id={}", uuid::Uuid::now_v7())))
                .bearer_auth(&p.admin),
            Probe::DirectBrowse => p.http.get(format!("{}/products/{id}", p.service(PRODUCTS))),
            Probe::DirectStock => p
                .http
                .get(format!(
                    "{}/stock/{}",
                    p.service(INVENTORY),
                    self.products[0].1
                ))
                .bearer_auth(&p.admin),
            Probe::DirectLogin => p
                .http
                .post(format!("{}/auth/login", p.service(USERS)))
                .json(&json!({"login": self.customer.login, "password": self.customer.password})),
            Probe::Checkout => p
                .http
                .post(p.gateway("/api/orders"))
                .bearer_auth(&self.token)
                .header("Idempotency-Key", uuid::Uuid::now_v7().to_string())
                .json(&json!({"items": [{"product_id": id, "quantity": 1}],
                    "payment_method": "pm_card_visa",
                    "shipping_address": {"name": "Chaos Probe", "line1": "2 Jungle Road",
                        "city": "Arlington", "postal_code": "22202", "country": "US"}})),
        };
        match request.timeout(Duration::from_secs(15)).send().await {
            Ok(r) => Answer {
                status: Some(r.status().as_u16()),
                problem_json: r
                    .headers()
                    .get("content-type")
                    .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json")),
                took: started.elapsed(),
            },
            Err(_) => Answer {
                status: None,
                problem_json: false,
                took: started.elapsed(),
            },
        }
    }

    /// Probes until every one of `probes` succeeds (bounded); the time it took from `since`.
    async fn recovered(&mut self, fault: &str, probes: &[Probe], since: Instant) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(90);
        'wait: while Instant::now() < deadline {
            for probe in probes {
                if !self.probe(*probe).await.ok() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue 'wait;
                }
            }
            return since.elapsed().as_secs_f64();
        }
        self.failures
            .push(format!("{fault}: did not recover within 90 s"));
        since.elapsed().as_secs_f64()
    }

    /// Sends `probes` now, while a component is down: each must answer fast, as an outage allows.
    async fn during_outage(&mut self, fault: &str, probes: &[Probe]) {
        for probe in probes {
            let answer = self.probe(*probe).await;
            if !answer.acceptable_in_outage() {
                self.failures.push(format!(
                    "{fault}: {} answered {answer} during the outage (want a fast 503 problem+json)",
                    probe_name(*probe)
                ));
            }
        }
    }

    /// Sends `probes` while another component is down: they must keep working.
    async fn unaffected(&mut self, fault: &str, probes: &[Probe]) {
        for probe in probes {
            let answer = self.probe(*probe).await;
            if !answer.ok() || answer.took > FAST {
                self.failures.push(format!(
                    "{fault}: {} answered {answer}; it does not depend on what is down",
                    probe_name(*probe)
                ));
            }
        }
    }

    /// With the load held: every order settles within its saga's deadline, the catalog's
    /// availability equals the inventory's (every stock event reached the catalog once), no
    /// consumer holds dead letters, and stock and money add up. Returns the table's summary.
    async fn invariants(&mut self, fault: &str, money: bool) -> String {
        self.load.pause().await;
        let mut broken = Vec::new();
        // Saga deadline (30 s) plus the recovery worker's lease and retries.
        let deadline = Instant::now() + Duration::from_secs(75);
        let settled = loop {
            let pending: Option<usize> = self
                .p
                .orders()
                .await
                .map(|orders| orders.iter().filter(|o| o["status"] == "pending").count());
            if pending == Some(0) {
                break true;
            }
            if Instant::now() > deadline {
                broken.push(format!(
                    "{pending:?} orders still pending past their deadline"
                ));
                break false;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        if money && settled {
            self.ship_some().await;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut apart = self.projection_apart().await;
        while !apart.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(300)).await;
            apart = self.projection_apart().await;
        }
        if !apart.is_empty() {
            broken.push(format!("availability differs from stock: {apart:?}"));
        }
        for (name, offset) in [
            ("products", PRODUCTS),
            ("inventory", INVENTORY),
            ("orders", ORDERS),
        ] {
            let url = format!("{}/admin/dead-letters", self.p.service(offset));
            if let Some(letters) = self.p.get_json(url).await {
                let n = letters["items"].as_array().map_or(0, Vec::len);
                if n > 0 {
                    broken.push(format!("{name} holds {n} dead letters: {letters}"));
                }
            }
        }
        let skus: Vec<&str> = self.products.iter().map(|(_, s)| s.as_str()).collect();
        let p = self.p;
        let platform = testkit::conservation::Platform {
            http: &p.http,
            inventory: &p.service(INVENTORY),
            orders: &p.service(ORDERS),
            payments: &p.service(PAYMENTS),
            psp: &p.service(PSP),
            psp_key: &p.psp_key,
            admin_token: &p.admin,
        };
        // Stock and money must add up once what the fault left running has finished (a saga
        // undoing an order waits for the restarted service; until then the order still reads
        // confirmed while its authorization is voided, seen once after inventory's kill): checked
        // again for up to 30 s, like the projection above.
        let deadline = Instant::now() + Duration::from_secs(30);
        let checked = loop {
            let checked = if money {
                AssertUnwindSafe(testkit::conservation::check(&platform, &skus))
                    .catch_unwind()
                    .await
            } else {
                AssertUnwindSafe(stock_conserved(p, &skus))
                    .catch_unwind()
                    .await
            };
            if checked.is_ok() || Instant::now() > deadline {
                break checked;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        if let Err(e) = checked {
            let what = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            broken.push(format!("conservation: {what}"));
        }
        self.load.resume();
        if broken.is_empty() {
            if money {
                "settled, stock and money conserved, availability = stock, no dead letters".into()
            } else {
                "settled, stock conserved, availability = stock, no dead letters (the simulator forgets its ledger)".into()
            }
        } else {
            for b in &broken {
                self.failures.push(format!("{fault}: {b}"));
            }
            format!("BROKEN: {}", broken.join("; "))
        }
    }

    /// Ships (captures) a few confirmed orders, so that the money check sees captures too.
    async fn ship_some(&mut self) {
        let Some(orders) = self.p.orders().await else {
            return;
        };
        for order in orders.iter().filter(|o| o["status"] == "confirmed").take(2) {
            let id = order["id"].as_str().unwrap_or_default();
            let r = self
                .p
                .http
                .post(self.p.gateway(&format!("/api/orders/{id}/ship")))
                .bearer_auth(&self.p.admin)
                .send()
                .await;
            if !r.as_ref().is_ok_and(|r| r.status() == 200) {
                self.failures.push(format!(
                    "shipping confirmed order {id}: {:?}",
                    r.map(|r| r.status())
                ));
            }
        }
    }

    /// Products whose catalog availability differs from the inventory's.
    async fn projection_apart(&self) -> Vec<String> {
        let mut apart = Vec::new();
        for (id, sku) in &self.products {
            let product = self
                .p
                .get_json(self.p.gateway(&format!("/api/products/{id}")))
                .await;
            let stock = self
                .p
                .get_json(self.p.service(INVENTORY) + &format!("/stock/{sku}"))
                .await;
            let shown = product
                .as_ref()
                .map(|p| p["availability"]["available"].clone());
            let held = stock.as_ref().map(|s| s["available"].clone());
            if shown.is_none() || shown != held {
                apart.push(format!("{sku}: catalog {shown:?}, inventory {held:?}"));
            }
        }
        apart
    }

    fn row(&mut self, fault: &str, from: Instant, recovered_after: f64, invariants: String) {
        let outcomes: Vec<Outcome> = self
            .load
            .since(from)
            .into_iter()
            .filter(|o| o.at <= from + Duration::from_secs_f64(recovered_after))
            .collect();
        let row = Row {
            fault: fault.to_owned(),
            sent: outcomes.len(),
            failed: outcomes.iter().filter(|o| !o.ok()).count(),
            recovered_after,
            invariants,
        };
        eprintln!("{}", row.markdown());
        self.rows.push(row);
    }

    /// SIGKILL one process; the launcher must bring it back.
    async fn kill(&mut self, service: &str, affected: &[Probe], unaffected: &[Probe], money: bool) {
        let fault = format!("SIGKILL {service}");
        let Some(pid) = self.p.pid_of(service) else {
            self.failures
                .push(format!("{fault}: {service} is not running"));
            return;
        };
        let from = Instant::now();
        kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
        // The launcher waits at least a second before restarting: these run in the outage.
        self.during_outage(&fault, affected).await;
        self.unaffected(&fault, unaffected).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.p.pid_of(service).is_none_or(|p| p == pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let recovered = self.recovered(&fault, affected, from).await;
        let invariants = self.invariants(&fault, money).await;
        self.row(&fault, from, recovered, invariants);
    }
}

fn probe_name(probe: Probe) -> &'static str {
    match probe {
        Probe::Login => "login",
        Probe::Browse => "browse",
        Probe::Stock => "stock",
        Probe::MyOrders => "order history",
        Probe::Payments => "payments",
        Probe::Checkout => "checkout",
        Probe::DirectBrowse => "products (direct)",
        Probe::DirectStock => "inventory (direct)",
        Probe::DirectLogin => "users (direct)",
    }
}

/// The stock half of the conservation check, for when the simulator has forgotten its ledger.
async fn stock_conserved(p: &Platform, skus: &[&str]) {
    let orders = p.orders().await.expect("orders lists");
    let settled = ["confirmed", "shipped", "delivered"];
    for sku in skus {
        let stock = p
            .get_json(format!("{}/stock/{sku}", p.service(INVENTORY)))
            .await
            .expect("stock");
        let on_hand = stock["on_hand"].as_i64().unwrap();
        assert_eq!(
            on_hand,
            stock["available"].as_i64().unwrap() + stock["reserved"].as_i64().unwrap(),
            "{sku}: {stock}"
        );
        let (mut ledger, mut sold) = (0, 0);
        let mut cursor: Option<String> = None;
        for _ in 0..10_000 {
            let mut url = format!("{}/stock/{sku}/movements?limit=100", p.service(INVENTORY));
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page = p.get_json(url).await.expect("movements");
            for m in page["items"].as_array().unwrap() {
                let delta = m["delta"].as_i64().unwrap();
                ledger += delta;
                if m["kind"] == "sale" || m["kind"] == "return" {
                    sold -= delta;
                }
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(ledger, on_hand, "{sku}: the ledger does not sum to on_hand");
        let ordered: i64 = orders
            .iter()
            .filter(|o| settled.contains(&o["status"].as_str().unwrap_or_default()))
            .flat_map(|o| o["items"].as_array().cloned().unwrap_or_default())
            .filter(|l| l["sku"] == *sku)
            .map(|l| l["quantity"].as_i64().unwrap_or(0))
            .sum();
        assert_eq!(
            sold, ordered,
            "{sku}: units sold differ from settled orders"
        );
    }
}

/// The private servers of the PostgreSQL stack.
struct Servers {
    postgres: PrivatePostgres,
    rabbit: PrivateRabbit,
}

async fn chaos(
    stack: &str,
    args: (Vec<String>, Vec<(String, String)>),
    mut servers: Option<Servers>,
) -> (Vec<Row>, Vec<String>) {
    let settings = Settings::from_env();
    let p = Platform::start(&args).await;
    let products = p.stock_products(4, 100_000).await;
    let mut customers = Vec::new();
    for n in 0..5 {
        customers.push(p.customer(n).await);
    }
    let customer = customers.pop().unwrap();
    let token = p.login(&customer.login, &customer.password).await.unwrap();
    let load = Load::start(
        Shop {
            gateway: p.gateway(""),
            products: products.iter().map(|(id, _)| id.clone()).collect(),
            customers,
        },
        settings.requests_per_worker,
    );
    let mut run = Run {
        p: &p,
        products,
        customer,
        token,
        load,
        rows: Vec::new(),
        failures: Vec::new(),
    };
    use Probe::*;
    let everything_but = |skip: &[Probe]| -> Vec<Probe> {
        [Login, Browse, Stock, MyOrders, Payments]
            .into_iter()
            .filter(|p| !skip.iter().any(|s| probe_name(*s) == probe_name(*p)))
            .collect()
    };
    for _ in 0..settings.kill_rounds {
        run.kill(
            "users",
            &[Login],
            &everything_but(&[Login, MyOrders, Payments]),
            true,
        )
        .await;
        run.kill("products", &[Browse], &everything_but(&[Browse]), true)
            .await;
        // Browsing goes on while inventory is down: the catalog keeps its own availability.
        run.kill("inventory", &[Stock], &everything_but(&[Stock]), true)
            .await;
        run.kill("orders", &[MyOrders], &everything_but(&[MyOrders]), true)
            .await;
        run.kill("payments", &[Payments], &everything_but(&[Payments]), true)
            .await;
        run.kill("gateway", &[Browse, Login], &[], true).await;
        // Checkouts in the steady load order explicit lines: nothing else waits on carts.
        run.kill("carts", &[], &everything_but(&[]), true).await;
    }

    // The payment gateway errs, loses answers and is slow; checkouts must still end well.
    let fault = "simulator: 30% errors, 10% lost answers, 2 s latency";
    let from = Instant::now();
    p.set_faults(json!({"error_rate": 0.3, "lost_answer_rate": 0.1, "latency_ms": 2000}))
        .await;
    run.unaffected(fault, &[Browse, Login, Stock]).await;
    let holding = Instant::now() + settings.psp_faults;
    while Instant::now() < holding {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    p.set_faults(json!({"error_rate": 0.0, "lost_answer_rate": 0.0, "latency_ms": 0}))
        .await;
    let healed = Instant::now();
    let recovered = run.recovered(fault, &[Checkout], healed).await;
    let invariants = run.invariants(fault, true).await;
    let whole = from.elapsed().as_secs_f64() - healed.elapsed().as_secs_f64() + recovered;
    run.row(fault, from, whole, invariants);

    if let Some(servers) = servers.as_mut() {
        let fault = format!("PostgreSQL stopped {} s", settings.outage.as_secs());
        let from = Instant::now();
        tokio::task::block_in_place(|| servers.postgres.pause());
        let back = Instant::now() + settings.outage;
        while Instant::now() < back {
            run.during_outage(
                &fault,
                &[
                    Browse,
                    Login,
                    Stock,
                    MyOrders,
                    Payments,
                    DirectBrowse,
                    DirectStock,
                    DirectLogin,
                ],
            )
            .await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tokio::task::block_in_place(|| servers.postgres.resume());
        let recovered = run
            .recovered(
                &fault,
                &[Browse, Login, Stock, MyOrders, Payments, Checkout],
                from,
            )
            .await;
        let invariants = run.invariants(&fault, true).await;
        run.row(&fault, from, recovered, invariants);

        let fault = format!("RabbitMQ stopped {} s", settings.outage.as_secs());
        let from = Instant::now();
        tokio::task::block_in_place(|| servers.rabbit.pause());
        let back = Instant::now() + settings.outage;
        while Instant::now() < back {
            run.unaffected(&fault, &[Browse, Login, Stock, MyOrders])
                .await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tokio::task::block_in_place(|| servers.rabbit.resume());
        let recovered = run.recovered(&fault, &[Browse, Checkout], from).await;
        let invariants = run.invariants(&fault, true).await;
        run.row(&fault, from, recovered, invariants);
    }

    // Last: the simulator keeps its ledger in memory, so after a restart only stock can be checked.
    run.kill("payment-gateway-sim", &[Checkout], &[Browse, Login], false)
        .await;
    let Run {
        load,
        rows,
        mut failures,
        ..
    } = run;
    let outcomes = load.stop().await;
    let failed = outcomes.iter().filter(|o| !o.ok()).count();
    eprintln!("{stack}: {} requests, {failed} failed", outcomes.len());
    if outcomes.len() < 100 {
        failures.push(format!(
            "{stack}: the load sent only {} requests",
            outcomes.len()
        ));
    }
    (rows, failures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_process_kill_outage_and_gateway_fault_heals_and_leaves_the_shop_consistent() {
    type Stack = (
        String,
        (Vec<String>, Vec<(String, String)>),
        Option<Servers>,
    );
    let mut stacks: Vec<Stack> = vec![("sqlite+feed".to_owned(), Default::default(), None)];
    let skipped =
        |stack: &str| std::env::var("AGORA_CHAOS_STACK").is_ok_and(|s| !stack.starts_with(&s));
    if testkit::db::postgres_url().is_some()
        && testkit::db::amqp_url().is_some()
        && !skipped("postgres")
    {
        let postgres = tokio::task::block_in_place(PrivatePostgres::start)
            .expect("PostgreSQL 15 binaries for the private server");
        let rabbit = tokio::task::block_in_place(PrivateRabbit::start)
            .expect("the RabbitMQ server for the private node");
        let args = ["--postgres", &postgres.url(), "--events", "rabbitmq"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        // The broker's URL holds its password: by environment, as `agora up` requires.
        let env = vec![("AGORA_AMQP_URL".to_owned(), rabbit.url())];
        stacks.push((
            "postgres+rabbitmq".to_owned(),
            (args, env),
            Some(Servers { postgres, rabbit }),
        ));
    }
    let only = std::env::var("AGORA_CHAOS_STACK").unwrap_or_default();
    stacks.retain(|(stack, _, _)| stack.starts_with(&only));
    let mut failures = Vec::new();
    for (stack, args, servers) in stacks {
        eprintln!("stack: {stack}");
        let (rows, broken) = chaos(&stack, args, servers).await;
        eprintln!("\n{stack}\n{}", Row::header());
        for row in &rows {
            eprintln!("{}", row.markdown());
        }
        failures.extend(broken);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
