//! `agora-load`: closed-loop HTTP load against a real `agora up`, side by side with a minimal axum
//! handler on the same machine in the same run, so results are ratios rather than absolute claims.
//!
//! `agora-load run` starts both as child processes on 127.0.0.1, drives each scenario with the same
//! client settings for the same time, prints a Markdown table, and stops everything.
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

mod checkout;
mod cpu;

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
        /// The `agora` binary (default: next to this one).
        #[arg(long)]
        agora_bin: Option<PathBuf>,
        /// Base port for `agora up` (the services take base+1, base+2, ...).
        #[arg(long, default_value_t = 18080)]
        port: u16,
        /// Seconds per scenario.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Concurrent connections.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Extra arguments for `agora up`, e.g. `--up=--events --up=rabbitmq`.
        #[arg(long = "up", allow_hyphen_values = true)]
        up_args: Vec<String>,
        /// Run only the scenarios whose name contains one of these (repeatable); the baseline
        /// always runs, the availability-delay measurement only without a filter.
        #[arg(long)]
        only: Vec<String>,
        /// Run the scenarios this many times in turn and add up each one's figures, so a drift in
        /// the shared machine's speed hits every scenario alike.
        #[arg(long, default_value_t = 1)]
        rounds: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Baseline { port } => baseline(port).await,
        Cmd::Run {
            agora_bin,
            port,
            duration,
            concurrency,
            up_args,
            only,
            rounds,
        } => {
            run(
                agora_bin,
                port,
                Duration::from_secs(duration.clamp(1, 300)),
                concurrency.clamp(1, 512),
                up_args,
                &only,
                rounds.clamp(1, 20),
            )
            .await
        }
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

struct Outcome {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Outcome {
    fn merge(&mut self, other: Outcome) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
        self.latencies.sort_unstable();
    }
    fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn percentile(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
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
    let mut outcome = Outcome {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
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

async fn run(
    agora_bin: Option<PathBuf>,
    port: u16,
    duration: Duration,
    concurrency: usize,
    up_args: Vec<String>,
    only: &[String],
    rounds: usize,
) -> anyhow::Result<()> {
    let here = std::env::current_exe()?;
    let agora = agora_bin.unwrap_or_else(|| here.with_file_name("agora"));
    let data = tempfile::tempdir()?;
    let baseline_port = port + 50;
    let products = port + 2;
    let mut children = vec![
        spawn(
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
                .args(&up_args)
                // One load generator on one address: lift the gateway's per-address limit.
                .env("AGORA_RATE_LIMIT_IP_PER_SECOND", "1000000")
                .env("AGORA_RATE_LIMIT_IP_BURST", "1000000")
                .env("RUST_LOG", "warn"),
        )?,
        spawn(Command::new(&here).args(["baseline", "--port", &baseline_port.to_string()]))?,
    ];
    let result = async {
        let http = reqwest::Client::new();
        wait_ready(
            &http,
            &format!("http://127.0.0.1:{products}/products?limit=1"),
            true,
        )
        .await?;
        wait_ready(
            &http,
            &format!("http://127.0.0.1:{baseline_port}/products/x"),
            false,
        )
        .await?;
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("http://127.0.0.1:{products}/products?limit=100");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page: Value = http.get(url).send().await?.json().await?;
            for item in page["items"].as_array().into_iter().flatten() {
                if let Some(id) = item["id"].as_str() {
                    ids.push(id.to_owned());
                }
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        anyhow::ensure!(!ids.is_empty(), "the demo catalog is empty");
        let mut scenarios: Vec<(&str, Request)> = vec![
            (
                "baseline: minimal axum handler, same JSON",
                gets(vec![format!("http://127.0.0.1:{baseline_port}/products/x")]),
            ),
            (
                "GET /products/{id}",
                gets(
                    ids.iter()
                        .map(|id| format!("http://127.0.0.1:{products}/products/{id}"))
                        .collect(),
                ),
            ),
            (
                "GET /api/products/{id} through the gateway",
                gets(
                    ids.iter()
                        .map(|id| format!("http://127.0.0.1:{port}/api/products/{id}"))
                        .collect(),
                ),
            ),
            (
                "GET /products?q=… (full-text search)",
                gets(
                    ["coffee", "wireless", "jacket", "game", "steel", "book"]
                        .iter()
                        .map(|q| format!("http://127.0.0.1:{products}/products?q={q}"))
                        .collect(),
                ),
            ),
            (
                "GET /products?category=…&sort=price",
                gets(
                    ["electronics", "home-kitchen", "clothing", "books"]
                        .iter()
                        .map(|c| {
                            format!("http://127.0.0.1:{products}/products?category={c}&sort=price")
                        })
                        .collect(),
                ),
            ),
        ];
        let setup = checkout::Setup::new(&http, data.path(), port, &ids[0]).await?;
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
                outcome.percentile(0.50).as_secs_f64() * 1000.0,
                outcome.percentile(0.99).as_secs_f64() * 1000.0,
                outcome.errors,
                cpu::per_request(used, outcome.requests)
            );
        }
        let memory: Vec<String> = cpu::resident_mib()
            .iter()
            .map(|(label, mib)| format!("{label} {mib:.1}"))
            .collect();
        println!("\nresident memory after the scenarios, MiB: {}", memory.join(", "));
        if !only.is_empty() {
            return Ok(());
        }
        let delays = setup.availability_delays(&http, &ids[1], 50).await?;
        println!(
            "\nstock change → product availability, {} changes one after the other: p50 {:.1} ms, p99 {:.1} ms",
            delays.len(),
            percentile(&delays, 0.50).as_secs_f64() * 1000.0,
            percentile(&delays, 0.99).as_secs_f64() * 1000.0
        );
        Ok(())
    }
    .await;
    for child in &mut children {
        if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
        }
        let _ = tokio::time::timeout(Duration::from_secs(15), child.wait()).await;
    }
    result
}

fn spawn(command: &mut Command) -> anyhow::Result<Child> {
    Ok(command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?)
}

async fn wait_ready(http: &reqwest::Client, url: &str, need_items: bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(180);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(url).send().await {
            if r.status().is_success() {
                let body: Value = r.json().await.unwrap_or(Value::Null);
                if !need_items || body["items"].as_array().is_some_and(|a| !a.is_empty()) {
                    return Ok(());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    anyhow::bail!("{url} did not become ready")
}
