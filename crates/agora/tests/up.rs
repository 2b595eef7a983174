//! `agora up` as a new user runs it: the real binary, every service a child process, real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use testkit::eventually;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Ports `base..=base + PORTS` are the gateway's and the services'.
const PORTS: u16 = 6;

fn free_base_port() -> u16 {
    (0..1000)
        .map(|_| 20_000 + (rand::random::<u16>() % 20_000))
        .find(|&base| {
            (base..=base + PORTS).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        })
        .expect("seven free ports in a row")
}

/// Reads the launcher's output until it says it is up (bounded); returns what it printed.
async fn wait_until_up(child: &mut Child) -> String {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut output = String::new();
    let up = tokio::time::timeout(Duration::from_secs(300), async {
        while !output.contains("Press Ctrl-C") {
            match lines.next_line().await {
                Ok(Some(line)) => {
                    output.push_str(&line);
                    output.push('\n');
                }
                other => return Err(format!("{other:?}")),
            }
        }
        Ok(())
    })
    .await;
    match up {
        Ok(Ok(())) => {}
        Ok(Err(end)) => panic!("agora up stopped early ({end}):\n{output}"),
        Err(_) => panic!("agora up was not up within 300 s:\n{output}"),
    }
    // Keep draining the launcher's output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    output
}

/// Ctrl-C, then the launcher's exit status once it has stopped every child (bounded well above
/// the launcher's own 10 s grace for its children).
async fn ctrl_c(child: &mut Child) -> std::process::ExitStatus {
    kill(Pid::from_raw(child.id().unwrap() as i32), Signal::SIGINT).unwrap();
    tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("agora up stops after Ctrl-C")
        .unwrap()
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
    let output = wait_until_up(&mut child).await;
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
    let seen = eventually(Duration::from_secs(10), || async {
        let seen: Value = http
            .get(format!("{gateway}/api/products/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match seen["availability"]["available"] == 77 {
            true => Ok(seen),
            false => Err(format!("availability did not follow: {seen}")),
        }
    })
    .await;
    assert_eq!(seen["availability"]["status"], "in_stock");

    // Ctrl-C: every child stops, and so does the launcher.
    let status = ctrl_c(&mut child).await;
    assert!(status.success(), "{status}");
    for port in base..=base + PORTS {
        assert!(!port_is_served(port), "port {port} still served after stop");
    }
}

/// Every product of the catalog, paged through the products service.
async fn catalog_skus(http: &reqwest::Client, products: &str) -> Vec<String> {
    let mut skus = Vec::new();
    let mut url = format!("{products}/products?limit=100");
    loop {
        let page: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
        for item in page["items"].as_array().unwrap() {
            skus.push(item["sku"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => url = format!("{products}/products?limit=100&cursor={cursor}"),
            None => return skus,
        }
    }
}

/// `agora seed demo --products N` against the platform on `base`; what it printed.
async fn seed_generated(base: u16, data: &std::path::Path, products: usize) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_agora"))
        .args(["seed", "demo", "--products", &products.to_string()])
        .args(["--port", &base.to_string(), "--data-dir"])
        .arg(data)
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    report
}

#[tokio::test]
async fn seeding_a_generated_catalog_twice_adds_nothing_the_second_time() {
    let data = tempfile::tempdir().unwrap();
    let base = free_base_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_agora"))
        .args([
            "up",
            "--seed",
            "none",
            "--port",
            &base.to_string(),
            "--data-dir",
        ])
        .arg(data.path())
        .env_remove("AGORA_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_until_up(&mut child).await;
    let http = reqwest::Client::new();
    let products = format!("http://127.0.0.1:{}", base + 2);

    let first = seed_generated(base, data.path(), 240).await;
    assert!(
        first.contains("categories and 240 products created (0 and 0 were"),
        "{first}"
    );
    let mut skus = catalog_skus(&http, &products).await;
    assert_eq!(skus.len(), 240);
    skus.sort_unstable();
    skus.dedup();
    assert_eq!(skus.len(), 240, "every SKU once");
    assert!(
        skus.iter().any(|s| s.starts_with("GEN-")),
        "generated products are there"
    );

    let second = seed_generated(base, data.path(), 240).await;
    assert!(
        second.contains("categories and 0 products created (18 and 240 were already there)"),
        "{second}"
    );
    assert!(second.contains("stock set for 0"), "{second}");
    assert_eq!(catalog_skus(&http, &products).await.len(), 240);

    let status = ctrl_c(&mut child).await;
    assert!(status.success(), "{status}");
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
    let base = (0..100)
        .map(|_| free_base_port())
        .find(|&base| {
            (0..3).all(|r| std::net::TcpListener::bind(("127.0.0.1", base + 2 + 100 * r)).is_ok())
        })
        .expect("free ports for three replicas");
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
    wait_until_up(&mut child).await;
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
    let status = ctrl_c(&mut child).await;
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn up_refuses_a_database_password_on_its_command_line_and_never_echoes_it() {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_agora"))
        .args([
            "up",
            "--postgres",
            "postgres://agora:hunter2-secret@127.0.0.1:1/agora",
            "--data-dir",
        ])
        .arg(data.path())
        .env_remove("AGORA_POSTGRES_URL")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(printed.contains("AGORA_POSTGRES_URL"), "{printed}");
    assert!(printed.contains("--postgres-url-file"), "{printed}");
    assert!(!printed.contains("hunter2-secret"), "{printed}");
    assert!(!printed.contains("Starting Agora"), "{printed}");
}
