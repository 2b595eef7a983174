//! `agora-load`: closed-loop HTTP load against a real `agora up`, side by side with a minimal axum
//! handler on the same machine in the same run, so results are ratios rather than absolute claims.
//!
//! `agora-load run` starts both as child processes on 127.0.0.1, drives each scenario with the same
//! client settings for the same time, prints a Markdown table, and stops everything.
//! `agora-load open` drives a shopper session mix at fixed arrival rates instead (`open.rs`),
//! stepping the rate up until an objective breaks, and draws its curves as SVG (`chart.rs`).
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

mod carts;
mod chart;
mod checkout;
mod cpu;
mod footprint;
mod open;
mod stats;

use stats::{ms, percentile, Outcome};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the baseline: a minimal axum handler returning a product-sized JSON document.
    Baseline {
        #[arg(long)]
        port: u16,
    },
    /// Run every scenario and print the results.
    Run {
        /// Seconds per scenario.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Concurrent connections.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Run only the scenarios whose name contains one of these (repeatable); the baseline
        /// always runs, the availability-delay measurement without a filter or with `--only
        /// availability` (then alone after the baseline).
        #[arg(long)]
        only: Vec<String>,
        /// Run the scenarios this many times in turn and add up each one's figures, so a drift in
        /// the shared machine's speed hits every scenario alike; the availability delay takes 50
        /// changes a round.
        #[arg(long, default_value_t = 1)]
        rounds: usize,
        #[command(flatten)]
        platform: PlatformArgs,
    },
    /// Drive the shopper mix at fixed arrival rates (open model), stepping the rate up until an
    /// objective breaks; print a table per step and write SVG charts.
    Open {
        #[command(flatten)]
        platform: PlatformArgs,
        /// Offered rates to try in turn, req/s (stops after the first that breaks an objective).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "50,100,200,300,400,500,600,800,1000,1200,1500,2000"
        )]
        rates: Vec<f64>,
        /// Seconds per step.
        #[arg(long, default_value_t = 10)]
        step_seconds: u64,
        /// Keep only these scenarios of the mix (repeatable; renormalised), e.g. `--scenario
        /// product` for one read at a fixed rate.
        #[arg(long)]
        scenario: Vec<String>,
        /// Most requests outstanding at once; an arrival beyond it counts as an error.
        #[arg(long, default_value_t = 2048)]
        max_in_flight: usize,
        /// Keep stepping after a step breaks an objective (to draw the whole curve).
        #[arg(long)]
        keep_going: bool,
        /// Directory for the SVG charts (none when unset).
        #[arg(long)]
        charts: Option<PathBuf>,
    },
    /// Start a fresh `agora up`, time it until every service answers ready, and print each
    /// process's resident memory once idle (and after a short load with `--load`).
    Footprint(footprint::Args),
}

/// How `agora up` is started: by `run` and `open` (through [`PlatformArgs`]) and by `footprint`.
#[derive(clap::Args)]
pub(crate) struct UpArgs {
    /// The `agora` binary (default: next to this one).
    #[arg(long)]
    agora_bin: Option<PathBuf>,
    /// Base port for `agora up` (the services take base+1, base+2, ...).
    #[arg(long, default_value_t = 18080)]
    pub(crate) port: u16,
    /// Extra arguments for `agora up`, e.g. `--up=--events --up=rabbitmq`.
    #[arg(long = "up", allow_hyphen_values = true)]
    pub(crate) up_args: Vec<String>,
}

impl UpArgs {
    /// The `agora` binary to start: `--agora-bin`, or the one next to this program.
    pub(crate) fn agora(&self) -> std::io::Result<PathBuf> {
        match &self.agora_bin {
            Some(path) => Ok(path.clone()),
            None => Ok(std::env::current_exe()?.with_file_name("agora")),
        }
    }
}

/// The platform a command runs against: always a fresh `agora up` on 127.0.0.1.
#[derive(clap::Args)]
struct PlatformArgs {
    #[command(flatten)]
    up: UpArgs,
    /// Products in the catalog: the demo catalog, then `agora seed demo --products N`.
    #[arg(long, default_value_t = 0)]
    products: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Baseline { port } => baseline(port).await,
        Cmd::Run {
            duration,
            concurrency,
            only,
            rounds,
            platform,
        } => {
            run(
                platform,
                Duration::from_secs(duration.clamp(1, 300)),
                concurrency.clamp(1, 512),
                &only,
                rounds.clamp(1, 20),
            )
            .await
        }
        Cmd::Open {
            platform,
            rates,
            step_seconds,
            scenario,
            max_in_flight,
            keep_going,
            charts,
        } => {
            let options = OpenOptions {
                // Bounded: at most 20 steps of at most 5,000 req/s for at most 120 s each.
                rates: rates
                    .into_iter()
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .map(|r| r.min(5_000.0))
                    .take(20)
                    .collect(),
                step: Duration::from_secs(step_seconds.clamp(1, 120)),
                only: scenario,
                max_in_flight: max_in_flight.clamp(1, 8_192),
                keep_going,
                charts,
            };
            open_model(platform, options).await
        }
        Cmd::Footprint(args) => footprint::run(args).await,
    }
}

async fn baseline(port: u16) -> anyhow::Result<()> {
    let product = json!({
        "id": "0190f3c2-7d1e-7a3b-9c4d-5e6f7a8b9c0d", "sku": "AUD-001",
        "name": "Studio Monitor Headphones",
        "description": "Closed-back over-ear headphones with a flat response for mixing and long listening sessions.",
        "price": {"amount": 12900, "currency": "EUR"}, "category": "audio",
        "attributes": {"color": "black", "connection": "wired"},
        "availability": {"status": "unknown", "available": null},
        "created_at": "2026-11-25T00:00:00Z", "updated_at": "2026-11-25T00:00:00Z", "version": 1
    });
    let app = axum::Router::new().route(
        "/products/{id}",
        axum::routing::get(move || {
            let product = product.clone();
            async move { axum::Json(product) }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// Builds the `i`-th request of a scenario.
type Request = Arc<dyn Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync>;

/// GETs of `urls`, in turn.
fn gets(urls: Vec<String>) -> Request {
    Arc::new(move |client, i| client.get(&urls[i % urls.len()]))
}

/// Closed loop: `concurrency` workers each send the next request as soon as the last one answered.
async fn drive(request: Request, duration: Duration, concurrency: usize) -> Outcome {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let client = client.clone();
        let request = request.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut i = worker;
            while Instant::now() < deadline {
                let built = request(&client, i);
                i += concurrency;
                let sent = Instant::now();
                match built.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(sent.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut outcome = Outcome::default();
    for worker in workers {
        if let Ok((latencies, errors)) = worker.await {
            outcome.latencies.extend(latencies);
            outcome.errors += errors;
        }
    }
    outcome.elapsed = started.elapsed();
    outcome.requests = outcome.latencies.len();
    outcome.latencies.sort_unstable();
    outcome
}

/// A fresh platform (`agora up` with the demo catalog, plus generated products if asked) and the
/// baseline server, stopped when [`Platform::stop`] runs.
struct Platform {
    /// The gateway's port; the services follow it.
    port: u16,
    baseline_port: u16,
    data: tempfile::TempDir,
    children: Vec<Child>,
    /// Every product id of the catalog.
    ids: Vec<String>,
    /// Those in stock when the run started (a cart refuses a sold-out product).
    in_stock: Vec<String>,
}

impl Platform {
    async fn start(args: PlatformArgs) -> anyhow::Result<Self> {
        let here = std::env::current_exe()?;
        let agora = args.up.agora()?;
        let data = tempfile::tempdir()?;
        let port = args.up.port;
        let baseline_port = port + 50;
        let mut up = spawn(
            Command::new(&agora)
                .args([
                    "up",
                    "--port",
                    &port.to_string(),
                    "--seed",
                    "demo",
                    "--data-dir",
                ])
                .arg(data.path())
                .args(&args.up.up_args)
                .envs(UNDER_LOAD)
                .stdout(Stdio::piped()),
        )?;
        let said = up
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no output of agora up"))?;
        let children = vec![
            up,
            spawn(
                Command::new(&here)
                    .args(["baseline", "--port", &baseline_port.to_string()])
                    .stdout(Stdio::null()),
            )?,
        ];
        let mut platform = Self {
            port,
            baseline_port,
            data,
            children,
            ids: Vec::new(),
            in_stock: Vec::new(),
        };
        if let Err(e) = platform.prepare(&agora, args.products, said).await {
            platform.stop().await;
            return Err(e);
        }
        Ok(platform)
    }

    fn url(&self, offset: u16, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port + offset)
    }

    /// Waits until `agora up` says it is up (the demo catalog and its stock in: listing earlier
    /// caught a part of the catalog, some of it not stocked yet) and the baseline answers, seeds
    /// the large catalog if asked, lists the product ids.
    async fn prepare(
        &mut self,
        agora: &std::path::Path,
        products: usize,
        said: tokio::process::ChildStdout,
    ) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let now = Instant::now();
        footprint::up_time(said, now, now + Duration::from_secs(180)).await?;
        wait_ready(
            &http,
            &format!("http://127.0.0.1:{}/products/x", self.baseline_port),
        )
        .await?;
        if products > 0 {
            let started = Instant::now();
            let status = Command::new(agora)
                .args(["seed", "demo", "--products", &products.to_string()])
                .args(["--port", &self.port.to_string(), "--data-dir"])
                .arg(self.data.path())
                .stdout(Stdio::null())
                .status()
                .await?;
            anyhow::ensure!(
                status.success(),
                "agora seed demo --products {products} failed"
            );
            println!(
                "seeded {products} products through the API in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        let (ids, _) = self.list_catalog(&http).await?;
        // The catalog and carts learn stock from inventory's events, in the order it made them:
        // once the newest product's availability is known, every earlier one's is (a run that
        // starts before would measure the projections catching up with the seed, not the mix).
        let newest = ids
            .iter()
            .max()
            .ok_or_else(|| anyhow::anyhow!("the demo catalog is empty"))?;
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let product: Value = http
                .get(self.url(2, &format!("/products/{newest}")))
                .send()
                .await?
                .json()
                .await?;
            if product["availability"]["status"] != "unknown" {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the catalog did not learn the stock of {newest} in time"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (ids, mut in_stock) = self.list_catalog(&http).await?;
        // Newest first: the cart scenarios wait until carts knows the products they add, and
        // carts knows the newest last.
        in_stock.sort_unstable_by(|a, b| b.cmp(a));
        (self.ids, self.in_stock) = (ids, in_stock);
        anyhow::ensure!(!self.ids.is_empty(), "the demo catalog is empty");
        Ok(())
    }

    /// Every product id of the catalog, and those in stock.
    async fn list_catalog(
        &self,
        http: &reqwest::Client,
    ) -> anyhow::Result<(Vec<String>, Vec<String>)> {
        let (mut ids, mut in_stock) = (Vec::new(), Vec::new());
        let mut cursor: Option<String> = None;
        loop {
            let mut url = self.url(2, "/products?limit=100");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page: Value = http.get(url).send().await?.json().await?;
            for item in page["items"].as_array().into_iter().flatten() {
                if let Some(id) = item["id"].as_str() {
                    ids.push(id.to_owned());
                    if item["availability"]["status"] == "in_stock" {
                        in_stock.push(id.to_owned());
                    }
                }
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        Ok((ids, in_stock))
    }

    async fn stop(&mut self) {
        for child in &mut self.children {
            if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
            }
            let _ = tokio::time::timeout(Duration::from_secs(15), child.wait()).await;
        }
    }
}

/// Search words: everyday words of the demo catalog and of the generated one (`agora seed demo
/// --products`), from a handful of matches to thousands.
const SEARCHES: [&str; 6] = ["coffee", "wireless", "jacket", "game", "steel", "book"];
/// Top-level categories: each listing walks the subcategory tree.
const CATEGORIES: [&str; 4] = ["electronics", "home-kitchen", "clothing", "books"];

/// `?q=…` for each search word.
fn search_paths() -> Vec<String> {
    SEARCHES
        .iter()
        .map(|q| format!("/products?q={q}"))
        .collect()
}

/// A category with its subcategories, sorted by price.
fn category_paths() -> Vec<String> {
    CATEGORIES
        .iter()
        .map(|c| format!("/products?category={c}&sort=price"))
        .collect()
}

/// A category, a price band and a sort: a shop's filtered listing.
fn filter_paths() -> Vec<String> {
    CATEGORIES
        .iter()
        .zip([
            (2_000, 20_000),
            (1_000, 5_000),
            (3_000, 15_000),
            (500, 2_000),
        ])
        .map(|(c, (min, max))| {
            format!("/products?category={c}&min_price={min}&max_price={max}&sort=price")
        })
        .collect()
}

/// The filtered listing with a price band no earlier request of the run asked for: the products
/// service keeps a page for a second by its query string (`services/products/src/routes/pages.rs`),
/// so this is what a page costs when it is read and rendered, not sent again.
fn new_band_every_time(base: &str) -> Request {
    let base = base.to_owned();
    Arc::new(move |client, i| {
        let category = CATEGORIES[i % CATEGORIES.len()];
        let min = 1_000 + i / CATEGORIES.len();
        let max = min + 10_000;
        client.get(format!(
            "{base}/products?category={category}&min_price={min}&max_price={max}&sort=price"
        ))
    })
}

fn product_paths(ids: &[String]) -> Vec<String> {
    ids.iter().map(|id| format!("/products/{id}")).collect()
}

/// GETs of `paths` on `base` (`http://127.0.0.1:port` and, through the gateway, `/api`).
fn gets_on(base: &str, paths: &[String]) -> Request {
    gets(paths.iter().map(|p| format!("{base}{p}")).collect())
}

async fn run(
    platform: PlatformArgs,
    duration: Duration,
    concurrency: usize,
    only: &[String],
    rounds: usize,
) -> anyhow::Result<()> {
    let mut platform = Platform::start(platform).await?;
    let result = run_scenarios(&platform, duration, concurrency, only, rounds).await;
    platform.stop().await;
    result
}

async fn run_scenarios(
    platform: &Platform,
    duration: Duration,
    concurrency: usize,
    only: &[String],
    rounds: usize,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let (direct, gateway) = (platform.url(2, ""), platform.url(0, "/api"));
    let ids = &platform.ids;
    let mut scenarios: Vec<(&str, Request)> = vec![
        (
            "baseline: minimal axum handler, same JSON",
            gets(vec![format!(
                "http://127.0.0.1:{}/products/x",
                platform.baseline_port
            )]),
        ),
        ("GET /products/{id}", gets_on(&direct, &product_paths(ids))),
        (
            "GET /api/products/{id} through the gateway",
            gets_on(&gateway, &product_paths(ids)),
        ),
        (
            "GET /products?q=… (full-text search)",
            gets_on(&direct, &search_paths()),
        ),
        (
            "GET /api/products?q=… through the gateway",
            gets_on(&gateway, &search_paths()),
        ),
        (
            "GET /products?category=…&sort=price",
            gets_on(&direct, &category_paths()),
        ),
        (
            "GET /products?category=…&min_price=…&max_price=…&sort=price",
            gets_on(&direct, &filter_paths()),
        ),
        (
            "GET /api/products?category=…&min_price=…&max_price=…&sort=price through the gateway",
            gets_on(&gateway, &filter_paths()),
        ),
        (
            "GET /products?category=…&min_price=…&max_price=…&sort=price, a new band every time",
            new_band_every_time(&direct),
        ),
    ];
    let carts = carts::Setup::new(
        &http,
        platform.url(7, ""),
        gateway.clone(),
        &platform.in_stock,
    )
    .await?;
    scenarios.extend(carts.scenarios());
    let setup = checkout::Setup::new(&http, platform.data.path(), platform.port, ids).await?;
    scenarios.extend(setup.scenarios());
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| name.contains(o.as_str()));
    let mut first = true;
    scenarios.retain(|(name, _)| std::mem::take(&mut first) || wanted(name));
    println!(
        "{} s per scenario × {rounds} round(s), {concurrency} connections, {} products\n",
        duration.as_secs(),
        ids.len()
    );
    let mut results: Vec<(Outcome, BTreeMap<String, f64>)> = Vec::new();
    for round in 0..rounds {
        for (i, (_, request)) in scenarios.iter().enumerate() {
            let before = cpu::snapshot();
            let outcome = drive(request.clone(), duration, concurrency).await;
            let after = cpu::snapshot();
            if round == 0 {
                results.push((outcome, BTreeMap::new()));
            } else if let Some(result) = results.get_mut(i) {
                result.0.merge(outcome);
            }
            if let Some(result) = results.get_mut(i) {
                cpu::accumulate(&mut result.1, &before, &after);
            }
        }
    }
    println!("| scenario | req/s | p50 ms | p99 ms | errors | vs baseline | CPU µs per request |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    let mut base = None;
    for ((name, _), (outcome, used)) in scenarios.iter().zip(&results) {
        let rps = outcome.throughput();
        let ratio = base
            .map(|b: f64| format!("{:.0}%", 100.0 * rps / b))
            .unwrap_or_else(|| "100%".into());
        base.get_or_insert(rps);
        println!(
            "| {name} | {rps:.0} | {:.2} | {:.2} | {} | {ratio} | {} |",
            ms(outcome.percentile(0.50)),
            ms(outcome.percentile(0.99)),
            outcome.errors,
            cpu::per_request(used, outcome.requests)
        );
    }
    print_memory();
    if !wanted("availability") {
        return Ok(());
    }
    // 50 changes a round: more rounds, a steadier p50 (one change is one sample).
    let delays = setup
        .availability_delays(&http, &ids[1], 50 * rounds)
        .await?;
    println!(
        "\nstock change → product availability, {} changes one after the other: p50 {:.1} ms, p99 {:.1} ms",
        delays.len(),
        ms(percentile(&delays, 0.50)),
        ms(percentile(&delays, 0.99))
    );
    Ok(())
}

fn print_memory() {
    let memory: Vec<String> = cpu::resident_mib()
        .iter()
        .map(|(label, mib)| format!("{label} {mib:.1}"))
        .collect();
    println!(
        "\nresident memory after the scenarios, MiB: {}",
        memory.join(", ")
    );
}

struct OpenOptions {
    rates: Vec<f64>,
    step: Duration,
    only: Vec<String>,
    max_in_flight: usize,
    keep_going: bool,
    charts: Option<PathBuf>,
}

/// The shopper mix of issue 18, every request through the gateway as a shop's clients send them.
fn shopper_mix(
    platform: &Platform,
    setup: &checkout::Setup,
    carts: &carts::Setup,
) -> Vec<open::Scenario> {
    let gateway = platform.url(0, "/api");
    let read_slo = Some(Duration::from_millis(50));
    let mut browse = category_paths();
    browse.extend(filter_paths());
    vec![
        open::Scenario {
            name: "browse",
            weight: 25.0,
            slo: read_slo,
            request: Some(gets_on(&gateway, &browse)),
        },
        open::Scenario {
            name: "product",
            weight: 30.0,
            slo: read_slo,
            request: Some(gets_on(&gateway, &product_paths(&platform.ids))),
        },
        open::Scenario {
            name: "search",
            weight: 12.0,
            slo: read_slo,
            request: Some(gets_on(&gateway, &search_paths())),
        },
        // Half adding a line, half reading a cart (priced from carts' own projection).
        open::Scenario {
            name: "cart",
            weight: 22.0,
            slo: read_slo,
            request: Some(carts.shopper()),
        },
        open::Scenario {
            name: "login",
            weight: 3.5,
            slo: None,
            request: Some(setup.login(&gateway)),
        },
        open::Scenario {
            name: "checkout",
            weight: 2.5,
            slo: Some(Duration::from_millis(500)),
            request: Some(setup.checkout(&gateway)),
        },
        open::Scenario {
            name: "orders",
            weight: 5.0,
            slo: None,
            request: Some(setup.orders(&gateway)),
        },
    ]
}

async fn open_model(platform: PlatformArgs, options: OpenOptions) -> anyhow::Result<()> {
    let mut platform = Platform::start(platform).await?;
    let result = open_steps(&platform, &options).await;
    platform.stop().await;
    result
}

async fn open_steps(platform: &Platform, options: &OpenOptions) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let setup = checkout::Setup::new(
        &http,
        platform.data.path(),
        platform.port,
        platform.ids.get(..1).unwrap_or_default(),
    )
    .await?;
    let carts = carts::Setup::new(
        &http,
        platform.url(7, ""),
        platform.url(0, "/api"),
        &platform.in_stock,
    )
    .await?;
    let mut mix = shopper_mix(platform, &setup, &carts);
    if !options.only.is_empty() {
        for scenario in &mut mix {
            if !options.only.iter().any(|o| o == scenario.name) {
                scenario.request = None;
            }
        }
    }
    let shares = open::shares(
        &mix.iter()
            .map(|s| (s.weight, s.request.is_some()))
            .collect::<Vec<_>>(),
    );
    let mix_text: Vec<String> = mix
        .iter()
        .zip(&shares)
        .map(|(s, share)| match s.request {
            Some(_) => format!("{} {:.1}%", s.name, 100.0 * share),
            None => format!("{} skipped", s.name),
        })
        .collect();
    println!(
        "open model, {} s per step, {} products, mix: {}\n",
        options.step.as_secs(),
        platform.ids.len(),
        mix_text.join(", ")
    );
    let requests: Vec<Option<Request>> = mix.iter().map(|s| s.request.clone()).collect();
    let objectives: Vec<(&str, Option<Duration>)> = mix.iter().map(|s| (s.name, s.slo)).collect();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.max_in_flight)
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut steps = Vec::new();
    for &rate in &options.rates {
        let before = cpu::snapshot();
        let outcomes = open::drive(
            &client,
            &requests,
            &shares,
            rate,
            options.step,
            options.max_in_flight,
        )
        .await;
        let after = cpu::snapshot();
        let mut used = BTreeMap::new();
        cpu::accumulate(&mut used, &before, &after);
        let step = open::Step {
            rate,
            outcomes,
            cpu: used,
        };
        let missed = open::breaches(&step, &objectives);
        print_step(&step, &mix, &missed);
        steps.push(step);
        if !missed.is_empty() && !options.keep_going {
            break;
        }
    }
    let best = steps
        .iter()
        .take_while(|s| open::breaches(s, &objectives).is_empty())
        .last()
        .map(|s| s.rate);
    match best {
        Some(rate) => println!("\nhighest offered rate meeting every objective: {rate:.0} req/s"),
        None => println!("\nno step met every objective"),
    }
    print_memory();
    if let Some(dir) = &options.charts {
        write_charts(dir, &steps, &mix)?;
    }
    Ok(())
}

fn print_step(step: &open::Step, mix: &[open::Scenario], missed: &[String]) {
    let total = step.total();
    println!(
        "offered {:.0} req/s: answered {:.0} req/s, errors {}, CPU µs per request: {}{}",
        step.rate,
        total.throughput(),
        total.errors,
        cpu::per_request(&step.cpu, total.requests),
        if missed.is_empty() {
            String::from(" — every objective met")
        } else {
            format!(" — BREAKS: {}", missed.join("; "))
        }
    );
    println!("| scenario | offered req/s | answered | errors | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (scenario, outcome) in mix.iter().zip(&step.outcomes) {
        if scenario.request.is_none() {
            continue;
        }
        println!(
            "| {} | {:.1} | {} | {} | {:.2} | {:.2} | {:.2} |",
            scenario.name,
            stats::rate(outcome.requests + outcome.errors, outcome.elapsed),
            outcome.requests,
            outcome.errors,
            ms(outcome.percentile(0.50)),
            ms(outcome.percentile(0.99)),
            ms(outcome.percentile(1.0)),
        );
    }
    println!();
}

/// `latency.svg` (p50 dashed and p99 solid per scenario against the offered rate) and `cpu.svg`
/// (CPU µs per request of the mix, per process).
fn write_charts(
    dir: &std::path::Path,
    steps: &[open::Step],
    mix: &[open::Scenario],
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut latency = Vec::new();
    for (i, scenario) in mix.iter().enumerate() {
        if scenario.request.is_none() {
            continue;
        }
        for (quantile, dashed) in [(0.99, false), (0.50, true)] {
            latency.push(chart::Series {
                name: format!("{} p{:.0}", scenario.name, quantile * 100.0),
                points: steps
                    .iter()
                    .filter_map(|s| {
                        let o = s.outcomes.get(i)?;
                        (o.requests > 0).then(|| (s.rate, ms(o.percentile(quantile))))
                    })
                    .collect(),
                dashed,
                colour: i,
            });
        }
    }
    let svg = chart::svg(&chart::Chart {
        title: "Shopper mix, open model: latency against offered rate",
        x_label: "offered rate, req/s (whole mix)",
        y_label: "latency from the intended send time, ms (log)",
        log_y: true,
        thresholds: vec![
            (50.0, "browse/product/search p99 objective, 50 ms".into()),
            (500.0, "checkout p99 objective, 500 ms".into()),
        ],
        series: latency,
    })?;
    std::fs::write(dir.join("open-model-latency.svg"), svg)?;
    let mut processes: Vec<String> = Vec::new();
    for step in steps {
        for (label, _) in cpu::per_request_micros(&step.cpu, step.total().requests) {
            if !processes.contains(&label) {
                processes.push(label);
            }
        }
    }
    let cpu_series = processes
        .iter()
        .enumerate()
        .map(|(i, label)| chart::Series {
            name: label.clone(),
            points: steps
                .iter()
                .filter_map(|s| {
                    let micros = cpu::per_request_micros(&s.cpu, s.total().requests);
                    let m = micros.iter().find(|(l, _)| l == label)?.1;
                    Some((s.rate, m))
                })
                .collect(),
            dashed: false,
            colour: i,
        })
        .collect();
    let svg = chart::svg(&chart::Chart {
        title: "Shopper mix, open model: CPU per request of the mix, per process",
        x_label: "offered rate, req/s (whole mix)",
        y_label: "CPU µs per request",
        log_y: false,
        thresholds: Vec::new(),
        series: cpu_series,
    })?;
    std::fs::write(dir.join("open-model-cpu.svg"), svg)?;
    println!("charts written to {}", dir.display());
    Ok(())
}

/// The environment of an `agora up` under load: one load generator on one address and one
/// customer, so the gateway's per-address and per-user limits are lifted; services log at `warn`
/// (the per-request access log is otherwise part of the cost).
pub const UNDER_LOAD: [(&str, &str); 5] = [
    ("AGORA_RATE_LIMIT_IP_PER_SECOND", "1000000"),
    ("AGORA_RATE_LIMIT_IP_BURST", "1000000"),
    ("AGORA_RATE_LIMIT_USER_PER_SECOND", "1000000"),
    ("AGORA_RATE_LIMIT_USER_BURST", "1000000"),
    ("RUST_LOG", "warn"),
];

/// Starts a child that stops with this process; its output goes nowhere unless the caller piped it.
fn spawn(command: &mut Command) -> anyhow::Result<Child> {
    Ok(command.stderr(Stdio::null()).kill_on_drop(true).spawn()?)
}

async fn wait_ready(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(180);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(url).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    anyhow::bail!("{url} did not become ready")
}
