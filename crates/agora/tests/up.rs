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
const PORTS: u16 = 7;

fn free_base_port() -> u16 {
    testkit::free_ports(PORTS + 1)
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

/// Runs `agora <args>` with none of the URL variables set, checks that it fails without printing
/// the password, and returns what it printed.
async fn refused(args: &[&str]) -> String {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_agora"))
        .args(args)
        .arg("--data-dir")
        .arg(data.path())
        .env_remove("AGORA_POSTGRES_URL")
        .env_remove("AGORA_AMQP_URL")
        .env_remove("AGORA_DATABASE_URL")
        .env_remove("AGORA_DATABASE_URL_FILE")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !output.status.success(),
        "{args:?} was accepted:\n{printed}"
    );
    assert!(!printed.contains("hunter2-secret"), "{printed}");
    printed
}

#[tokio::test]
async fn up_refuses_a_database_password_on_its_command_line_and_never_echoes_it() {
    let printed = refused(&[
        "up",
        "--postgres",
        "postgres://agora:hunter2-secret@127.0.0.1:1/agora",
    ])
    .await;
    assert!(printed.contains("AGORA_POSTGRES_URL"), "{printed}");
    assert!(printed.contains("--postgres-url-file"), "{printed}");
    assert!(!printed.contains("Starting Agora"), "{printed}");
}

#[tokio::test]
async fn up_refuses_a_broker_password_on_its_command_line_and_never_echoes_it() {
    let printed = refused(&[
        "up",
        "--events",
        "rabbitmq",
        "--amqp-url",
        "amqp://agora:hunter2-secret@127.0.0.1:1/%2f",
    ])
    .await;
    assert!(printed.contains("AGORA_AMQP_URL"), "{printed}");
    assert!(printed.contains("--amqp-url-file"), "{printed}");
    assert!(!printed.contains("Starting Agora"), "{printed}");
}

#[tokio::test]
async fn serve_refuses_a_database_password_on_its_command_line_and_never_echoes_it() {
    for url in [
        "postgres://agora:hunter2-secret@127.0.0.1:1/agora",
        "postgres://agora@127.0.0.1:1/agora?password=hunter2-secret",
    ] {
        let port = free_base_port().to_string();
        let printed = refused(&["serve", "users", "--port", &port, "--database-url", url]).await;
        assert!(printed.contains("--database-url"), "{printed}");
        assert!(printed.contains("AGORA_DATABASE_URL"), "{printed}");
        assert!(printed.contains("AGORA_DATABASE_URL_FILE"), "{printed}");
    }
}

/// `agora up` on a fresh data directory and free ports, with `extra` arguments and `env`;
/// returns the launcher, its data directory, its base port and what it printed until it was up.
async fn start_up(extra: &[&str], env: &[(&str, &str)]) -> (Child, tempfile::TempDir, u16, String) {
    let data = tempfile::tempdir().unwrap();
    let base = (0..100)
        .map(|_| free_base_port())
        .find(|&base| std::net::TcpListener::bind(("127.0.0.1", base + 1010)).is_ok())
        .expect("free ports for the platform and Prometheus");
    let mut child = Command::new(env!("CARGO_BIN_EXE_agora"))
        .args(["up", "--port", &base.to_string()])
        .args(extra)
        .arg("--data-dir")
        .arg(data.path())
        .env_remove("AGORA_ADMIN_EMAIL")
        .env_remove("AGORA_ADMIN_PASSWORD")
        .env_remove("AGORA_DATABASE_URL")
        .env_remove("AGORA_POSTGRES_URL")
        .env_remove("AGORA_PSP_API_KEY")
        .env_remove("AGORA_PSP_WEBHOOK_SECRET")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = wait_until_up(&mut child).await;
    (child, data, base, output)
}

/// `agora logs` with `args` over `data`; its standard output.
async fn agora_logs(data: &std::path::Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_agora"))
        .arg("logs")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The second column of `agora logs` lines: the process that wrote each.
fn processes(printed: &str) -> std::collections::BTreeSet<String> {
    printed
        .lines()
        .filter(|l| !l.starts_with('─'))
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect()
}

/// Logs in through the gateway; the token response.
async fn login(http: &reqwest::Client, gateway: &str, login: &str, password: &str) -> Value {
    let r = http
        .post(format!("{gateway}/api/auth/login"))
        .json(&json!({"login": login, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// A new customer, logged in: its password and token response.
async fn customer(http: &reqwest::Client, gateway: &str) -> (String, Value) {
    let password = format!("log-canary-{}", uuid::Uuid::new_v4().simple());
    let name = format!("u{}", &uuid::Uuid::now_v7().simple().to_string()[12..]);
    let created = http
        .post(format!("{gateway}/api/users"))
        .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let tokens = login(http, gateway, &name, &password).await;
    (password, tokens)
}

/// Orders one unit of a demo product with `headers`; the order's id.
async fn checkout(
    http: &reqwest::Client,
    gateway: &str,
    token: &str,
    headers: &[(&str, &str)],
) -> String {
    let found: Value = http
        .get(format!("{gateway}/api/products?q=coffee"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let product = found["items"][0]["id"].as_str().unwrap();
    let mut request = http
        .post(format!("{gateway}/api/orders"))
        .bearer_auth(token)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .json(&json!({"items": [{"product_id": product, "quantity": 1}], "payment_method": "pm_card_visa",
            "shipping_address": {"name": "Grace Hopper", "line1": "1 Navy Way", "city": "Arlington",
                "postal_code": "22202", "country": "US"}}));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let placed = request.send().await.unwrap();
    assert_eq!(placed.status(), 201);
    let order: Value = placed.json().await.unwrap();
    order["id"].as_str().unwrap().to_owned()
}

/// Waits (bounded) until the order is confirmed.
async fn confirmed(http: &reqwest::Client, gateway: &str, token: &str, id: &str) {
    eventually(Duration::from_secs(60), || async {
        let order: Value = http
            .get(format!("{gateway}/api/orders/{id}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match order["status"] == "confirmed" {
            true => Ok(()),
            false => Err(format!("order not confirmed: {order}")),
        }
    })
    .await;
}

#[tokio::test]
async fn agora_logs_follows_one_checkout_across_services_and_no_log_holds_a_secret() {
    let (mut child, data, base, _) = start_up(&[], &[]).await;
    let gateway = format!("http://127.0.0.1:{base}");
    let http = reqwest::Client::new();
    let credentials = std::fs::read_to_string(data.path().join("admin-credentials")).unwrap();
    let admin_password = credentials
        .lines()
        .find_map(|l| l.strip_prefix("password:"))
        .unwrap()
        .trim()
        .to_owned();
    let admin = login(&http, &gateway, "admin", &admin_password).await;
    let (customer_password, customer) = customer(&http, &gateway).await;
    let token = customer["access_token"].as_str().unwrap();

    // One checkout, with the request id and trace the caller chose.
    let request_id = format!("logs-test-{}", uuid::Uuid::new_v4().simple());
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let headers = [
        ("x-request-id", request_id.as_str()),
        ("traceparent", traceparent.as_str()),
    ];
    let id = checkout(&http, &gateway, token, &headers).await;
    confirmed(&http, &gateway, token, &id).await;

    // The request's lines, from every service it crossed, and only those.
    let wanted = ["gateway", "orders", "products", "inventory", "payments"];
    let printed = eventually(Duration::from_secs(10), || async {
        let printed = agora_logs(data.path(), &["--request-id", &request_id]).await;
        let seen = processes(&printed);
        match wanted.iter().all(|s| seen.contains(*s)) {
            true => Ok(printed),
            false => Err(format!("not every service logged the request:\n{printed}")),
        }
    })
    .await;
    for line in printed.lines().filter(|l| !l.starts_with('─')) {
        assert!(line.contains(&format!("request_id={request_id}")), "{line}");
    }
    let traced = agora_logs(data.path(), &["--trace-id", &trace_id]).await;
    let seen = processes(&traced);
    assert!(wanted.iter().all(|s| seen.contains(*s)), "{traced}");
    assert!(!traced.contains('\x1b'), "no colour into a pipe");

    // No password, token or generated secret in any log line.
    let mut secrets = vec![
        ("the admin password".to_owned(), admin_password),
        ("the customer's password".to_owned(), customer_password),
    ];
    for (who, body) in [("admin", &admin), ("customer", &customer)] {
        for field in ["access_token", "refresh_token"] {
            if let Some(token) = body[field].as_str() {
                secrets.push((format!("the {who}'s {field}"), token.to_owned()));
            }
        }
    }
    for entry in std::fs::read_dir(data.path().join("config")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let key = key.trim();
            if [
                "secret",
                "client_secret",
                "psp_api_key",
                "psp_webhook_secret",
            ]
            .contains(&key)
            {
                secrets.push((
                    format!("{key} of {}", path.display()),
                    value.trim().trim_matches('"').to_owned(),
                ));
            }
        }
    }
    let kek = std::fs::read_to_string(data.path().join("key-encryption-key")).unwrap();
    secrets.push(("the key-encryption key".into(), kek.trim().to_owned()));
    assert!(
        secrets.len() >= 12,
        "every generated secret was found: {}",
        secrets.len()
    );
    let mut logs = String::new();
    for entry in std::fs::read_dir(data.path().join("logs")).unwrap() {
        logs.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    assert!(
        logs.contains(&request_id),
        "the logs scanned are this run's"
    );
    for (what, secret) in &secrets {
        assert!(secret.len() >= 16, "{what} is a real secret");
        assert!(!logs.contains(secret.as_str()), "{what} appears in a log");
    }

    let status = ctrl_c(&mut child).await;
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn up_observe_runs_a_prometheus_that_scrapes_every_process_with_the_rules_loaded() {
    let installed = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join("prometheus").is_file())
    });
    let (mut child, data, base, output) = start_up(&["--observe", "--seed", "none"], &[]).await;
    if !installed {
        assert!(output.contains("no `prometheus` on PATH"), "{output}");
        assert!(output.contains("apt-get install prometheus"), "{output}");
        let line = "SKIPPED up_observe_runs_a_prometheus...: prometheus is not installed (apt-get install prometheus); only the message without it was checked\n";
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
        ctrl_c(&mut child).await;
        return;
    }
    let url = format!("http://127.0.0.1:{}", base + 1010);
    assert!(output.contains(&format!("Prometheus: {url}")), "{output}");
    let http = reqwest::Client::new();
    // Every process is scraped, and up.
    eventually(Duration::from_secs(60), || async {
        let targets: Value = http
            .get(format!("{url}/api/v1/targets"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let active = targets["data"]["activeTargets"].as_array().unwrap();
        let up: std::collections::BTreeSet<&str> = active
            .iter()
            .filter(|t| t["health"] == "up")
            .filter_map(|t| t["labels"]["service"].as_str())
            .collect();
        // Every process of `agora up`: the gateway, six services and the payment gateway simulator.
        match up.len() == 8 && active.len() == 8 {
            true => Ok(()),
            false => Err(format!("not every process is scraped and up: {targets}")),
        }
    })
    .await;
    // The rules of deploy/observability are loaded: every alert of alerts.yml is there.
    let alerts_file = include_str!("../../../deploy/observability/rules/alerts.yml");
    let expected: Vec<&str> = alerts_file
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(str::trim)
        .collect();
    assert!(!expected.is_empty());
    let rules: Value = http
        .get(format!("{url}/api/v1/rules"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let loaded: Vec<&str> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .filter_map(|r| r["name"].as_str())
        .collect();
    for alert in &expected {
        assert!(loaded.contains(alert), "{alert} not loaded: {loaded:?}");
    }
    // Its log joins the others in `agora logs`.
    let printed = agora_logs(data.path(), &["--service", "prometheus"]).await;
    assert!(printed.contains("prometheus"), "{printed}");

    let status = ctrl_c(&mut child).await;
    assert!(status.success(), "{status}");
    assert!(
        !port_is_served(base + 1010),
        "Prometheus stops with the platform"
    );
}

#[tokio::test]
async fn one_checkout_is_one_trace_across_every_service_and_the_events_it_caused() {
    // The broker-less feed always; RabbitMQ too when there is one (required in .ci/run). The
    // broker's URL goes by environment: `agora up` refuses a password on its command line.
    let mut transports: Vec<(Vec<String>, Option<String>)> = vec![(vec![], None)];
    if let Some(amqp) = testkit::db::amqp_url() {
        let exchange = format!(
            "agora_trace_{}",
            &uuid::Uuid::now_v7().simple().to_string()[16..]
        );
        transports.push((
            vec![
                "--events".to_owned(),
                "rabbitmq".to_owned(),
                "--db-prefix".to_owned(),
                exchange,
            ],
            Some(amqp),
        ));
    }
    for (args, amqp) in transports {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        eprintln!("transport: {args:?}");
        one_checkout_is_one_trace(&args, amqp.as_deref()).await;
    }
}

async fn one_checkout_is_one_trace(args: &[&str], amqp: Option<&str>) {
    let collector = testkit::otlp::Collector::start().await;
    let mut env = vec![("AGORA_OTLP_ENDPOINT", collector.url.as_str())];
    env.extend(amqp.map(|url| ("AGORA_AMQP_URL", url)));
    let (mut child, _data, base, _) = start_up(args, &env).await;
    let gateway = format!("http://127.0.0.1:{base}");
    let http = reqwest::Client::new();
    let (_, customer) = customer(&http, &gateway).await;
    let token = customer["access_token"].as_str().unwrap();
    // No traceparent from the client: the gateway starts the trace.
    let id = checkout(&http, &gateway, token, &[]).await;
    confirmed(&http, &gateway, token, &id).await;

    let root = eventually(Duration::from_secs(60), || async {
        let roots: Vec<_> = collector
            .spans()
            .into_iter()
            .filter(|s| s.service == "gateway" && s.name == "POST /api/orders")
            .collect();
        match roots.as_slice() {
            [root] => Ok(root.clone()),
            other => Err(format!("the gateway's span of the checkout: {other:?}")),
        }
    })
    .await;
    assert!(
        root.parent_id.is_empty(),
        "the client sent no trace: {root:?}"
    );
    // (service, span name prefix): the request through the gateway, the saga's calls and the
    // services answering them, the payment provider, and the events with their consumer.
    let wanted: &[(&str, &str)] = &[
        ("gateway", "POST orders"),
        ("orders", "POST /orders"),
        ("orders", "saga"),
        ("orders", "GET products"),
        ("products", "GET /products/"),
        ("orders", "POST inventory"),
        ("inventory", "POST /reservations"),
        // The transactions named by the store (platform::db), children of the request's span.
        ("inventory", "tx reserve"),
        ("inventory", "tx commit_reservation"),
        ("orders", "tx place_order"),
        ("orders", "POST payments"),
        ("payments", "POST /payments"),
        ("payment-gateway-sim", "POST /v1/payment_intents"),
        ("orders", "publish order_confirmed"),
        ("carts", "handle order_confirmed"),
        ("inventory", "publish stock_changed"),
        ("products", "handle stock_changed"),
    ];
    eventually(Duration::from_secs(60), || async {
        let trace = collector.trace(&root.trace_id);
        let missing: Vec<_> = wanted
            .iter()
            .filter(|(service, name)| {
                !trace
                    .iter()
                    .any(|s| s.service == *service && s.name.starts_with(name))
            })
            .collect();
        // One tree: every span but the gateway's has its parent in the trace.
        let ids: std::collections::HashSet<&str> =
            trace.iter().map(|s| s.span_id.as_str()).collect();
        let orphans: Vec<_> = trace
            .iter()
            .filter(|s| s.span_id != root.span_id && !ids.contains(s.parent_id.as_str()))
            .collect();
        match missing.is_empty() && orphans.is_empty() {
            true => Ok(()),
            false => Err(format!(
                "missing from the trace: {missing:?}; without their parent: {orphans:#?}\n{trace:#?}"
            )),
        }
    })
    .await;

    let status = ctrl_c(&mut child).await;
    assert!(status.success(), "{status}");
}

/// Whether the Prometheus text `metrics` has a sample of `name` with every label of `labels`
/// (`key="value"`) whose value is at least `min`.
fn sample_at_least(metrics: &str, name: &str, labels: &[&str], min: f64) -> bool {
    metrics.lines().any(|line| {
        let Some(rest) = line.strip_prefix(name) else {
            return false;
        };
        let value = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        (rest.starts_with('{') || rest.starts_with(' '))
            && labels.iter().all(|l| rest.contains(l))
            && value.is_some_and(|v| v >= min)
    })
}

#[tokio::test]
async fn a_checkout_shows_in_the_business_and_saturation_metrics() {
    let (mut child, _data, base, _) = start_up(&[], &[]).await;
    let gateway = format!("http://127.0.0.1:{base}");
    let http = reqwest::Client::new();
    let (_, customer) = customer(&http, &gateway).await;
    let token = customer["access_token"].as_str().unwrap();
    let id = checkout(&http, &gateway, token, &[]).await;
    confirmed(&http, &gateway, token, &id).await;

    // (port offset, metric, labels, at least): orders, inventory, payments, and the event feed
    // seen from inventory (producer) and products (consumer).
    let wanted: &[(u16, &str, &[&str], f64)] = &[
        (4, "orders_placed_total", &[], 1.0),
        (4, "orders_confirmed_total", &[], 1.0),
        (
            4,
            "orders_saga_step_duration_seconds_count",
            &[r#"step="reserve""#, r#"outcome="moved""#],
            1.0,
        ),
        (
            4,
            "orders_saga_step_duration_seconds_count",
            &[r#"step="commit""#],
            1.0,
        ),
        (
            3,
            "inventory_reservations_total",
            &[r#"outcome="held""#],
            1.0,
        ),
        (
            5,
            "payments_total",
            &[r#"outcome="authorized""#, "currency="],
            1.0,
        ),
        (
            5,
            "payments_amount_total",
            &[r#"outcome="authorized""#, "currency="],
            1.0,
        ),
        (3, "events_outbox_entries", &[], 1.0),
        (3, "events_feed_reader_lag", &[r#"reader="products""#], 0.0),
        (
            2,
            "events_consumer_lag_seconds",
            &[r#"consumer="products""#],
            0.0,
        ),
        // Inventory's gauges (sampled every few seconds) and every database's pool.
        (3, "inventory_reservations_held", &[], 0.0),
        (3, "inventory_stock_low_skus", &[], 0.0),
        (3, "inventory_stock_out_skus", &[], 0.0),
        (4, "db_pool_connections", &[r#"state="in_use""#], 0.0),
        (4, "db_pool_connections", &[r#"state="idle""#], 1.0),
        (4, "db_pool_connections_max", &[], 1.0),
        (1, "db_pool_connections_max", &[], 1.0),
        (2, "db_pool_connections_max", &[], 1.0),
        (3, "db_pool_connections_max", &[], 1.0),
        (5, "db_pool_connections_max", &[], 1.0),
    ];
    eventually(Duration::from_secs(30), || async {
        let mut missing = Vec::new();
        for (offset, name, labels, min) in wanted {
            let text = http
                .get(format!("http://127.0.0.1:{}/metrics", base + offset))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if !sample_at_least(&text, name, labels, *min) {
                missing.push(format!("{name}{labels:?} >= {min} on port +{offset}"));
            }
        }
        match missing.is_empty() {
            true => Ok(()),
            false => Err(format!("not in /metrics: {missing:?}")),
        }
    })
    .await;

    let status = ctrl_c(&mut child).await;
    assert!(status.success(), "{status}");
}
