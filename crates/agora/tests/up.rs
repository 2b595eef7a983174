//! `agora up` as a new user runs it: the real binary, every service a child process, real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Ports `base..=base + PORTS` are the gateway's and the services'.
const PORTS: u16 = 6;

fn free_base_port() -> u16 {
    loop {
        let base = 20_000 + (rand::random::<u16>() % 20_000);
        if (base..=base + PORTS).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return base;
        }
    }
}

fn port_is_served(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[tokio::test]
async fn up_starts_every_service_seeds_the_catalog_and_stops_cleanly_on_ctrl_c() {
    let data = tempfile::tempdir().unwrap();
    let base = free_base_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_agora"))
        .args(["up", "--port", &base.to_string(), "--data-dir"])
        .arg(data.path())
        .env_remove("AGORA_ADMIN_EMAIL")
        .env_remove("AGORA_ADMIN_PASSWORD")
        .env_remove("AGORA_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut output = String::new();
    while !output.contains("Press Ctrl-C") {
        assert!(
            Instant::now() < deadline,
            "agora up did not come up:\n{output}"
        );
        match tokio::time::timeout(Duration::from_secs(180), lines.next_line()).await {
            Ok(Ok(Some(line))) => {
                output.push_str(&line);
                output.push('\n');
            }
            other => panic!("agora up stopped early ({other:?}):\n{output}"),
        }
    }
    assert!(output.contains("demo catalog"), "{output}");

    let users = format!("http://127.0.0.1:{}", base + 1);
    let gateway = format!("http://127.0.0.1:{base}");
    let http = reqwest::Client::new();

    // The generated admin password is shown once and kept in a private file.
    let credentials = std::fs::read_to_string(data.path().join("admin-credentials")).unwrap();
    let password = credentials
        .lines()
        .find_map(|l| l.strip_prefix("password:"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(
        output.contains(&password),
        "the generated password is printed once"
    );
    let login: Value = http
        .post(format!("{users}/auth/login"))
        .json(&json!({"login": "admin", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(login["access_token"].is_string(), "{login}");

    let search: Value = http
        .get(format!("{gateway}/api/products?q=coffee"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!search["items"].as_array().unwrap().is_empty(), "{search}");

    // Across services: the admin sets stock in inventory; the catalog shows it shortly after,
    // through inventory's outbox and the event feed products follows.
    let admin = login["access_token"].as_str().unwrap();
    let product = &search["items"][0];
    let (id, sku) = (
        product["id"].as_str().unwrap(),
        product["sku"].as_str().unwrap(),
    );
    let set = http
        .put(format!("{gateway}/api/stock/{sku}"))
        .bearer_auth(admin)
        .json(&json!({"on_hand": 77, "reason": "count"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen: Value = http
            .get(format!("{gateway}/api/products/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if seen["availability"]["available"] == 77 {
            assert_eq!(seen["availability"]["status"], "in_stock");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "availability did not follow: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Ctrl-C: every child stops, and so does the launcher, within seconds.
    kill(Pid::from_raw(child.id().unwrap() as i32), Signal::SIGINT).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(8), child.wait())
        .await
        .expect("agora up stops within 8 s of Ctrl-C")
        .unwrap();
    assert!(status.success(), "{status}");
    for port in base..=base + PORTS {
        assert!(!port_is_served(port), "port {port} still served after stop");
    }
}

#[tokio::test]
async fn up_fails_clearly_when_a_port_is_taken() {
    let data = tempfile::tempdir().unwrap();
    let base = free_base_port();
    let _taken = std::net::TcpListener::bind(("127.0.0.1", base + 2)).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_agora"))
        .args(["up", "--port", &base.to_string(), "--data-dir"])
        .arg(data.path())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("port {}", base + 2)), "{stderr}");
    assert!(stderr.contains("products"), "{stderr}");
}

#[tokio::test]
async fn the_gateway_spreads_requests_evenly_over_three_product_replicas() {
    let data = tempfile::tempdir().unwrap();
    let base = loop {
        let base = free_base_port();
        if (0..3).all(|r| std::net::TcpListener::bind(("127.0.0.1", base + 2 + 100 * r)).is_ok()) {
            break base;
        }
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_agora"))
        .args([
            "up",
            "--replicas",
            "products=3",
            "--port",
            &base.to_string(),
            "--data-dir",
        ])
        .arg(data.path())
        .env_remove("AGORA_DATABASE_URL")
        .env("AGORA_RATE_LIMIT_IP_PER_SECOND", "100000")
        .env("AGORA_RATE_LIMIT_IP_BURST", "100000")
        .stdout(Stdio::piped())
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
    let http = reqwest::Client::new();
    let gateway = format!("http://127.0.0.1:{base}");
    let page: Value = http
        .get(format!("{gateway}/api/products?limit=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = page["items"][0]["id"].as_str().unwrap().to_owned();
    let replica_hits = |text: &str| -> u64 {
        text.lines()
            .filter(|l| {
                l.starts_with("http_requests_total") && l.contains(r#"route="/products/{id}""#)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let mut before = Vec::new();
    for r in 0..3u16 {
        let text = http
            .get(format!("http://127.0.0.1:{}/metrics", base + 2 + 100 * r))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        before.push(replica_hits(&text));
    }
    for _ in 0..3000 {
        let status = http
            .get(format!("{gateway}/api/products/{id}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
    for r in 0..3u16 {
        let text = http
            .get(format!("http://127.0.0.1:{}/metrics", base + 2 + 100 * r))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let hits = replica_hits(&text) - before[r as usize];
        assert!(
            (850..=1150).contains(&hits),
            "replica {r} served {hits} of 3000 (expected 1000 ± 15%)"
        );
    }
    kill(Pid::from_raw(child.id().unwrap() as i32), Signal::SIGINT).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}
