//! `agora up --observe`: a local Prometheus, scraping every process `agora up` runs with the
//! recording and alert rules of `deploy/observability/rules`, started after the platform and
//! stopped with it. Prometheus is not bundled: the `prometheus` found on `PATH` is used (Debian
//! and Ubuntu: `apt-get install prometheus`).
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// The rules operators load (deploy/observability), compiled in so the binary alone can run them.
const RULES: [(&str, &str); 2] = [
    (
        "recording.yml",
        include_str!("../../../deploy/observability/rules/recording.yml"),
    ),
    (
        "alerts.yml",
        include_str!("../../../deploy/observability/rules/alerts.yml"),
    ),
];

/// Prometheus's port: 9090 (its usual one) for the default base port 8080, shifting with it.
pub fn port_from(base: u16) -> u16 {
    base.saturating_add(1010)
}

/// One process to scrape: its instance name, its service and its port.
pub struct Target {
    pub instance: String,
    pub service: &'static str,
    pub port: u16,
}

/// The running Prometheus.
pub struct Prometheus {
    child: Child,
    pub url: String,
}

/// The first `name` on `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|file| file.is_file())
    })
}

/// The Prometheus configuration for `targets`, the same shape as
/// deploy/observability/prometheus/agora-up.yml (a `service` label per target) with this run's
/// ports and a shorter scrape interval, since a local run is short.
fn config(targets: &[Target]) -> String {
    let mut text = String::from(
        "# Written by `agora up --observe` at every start; deploy/observability/prometheus/agora-up.yml\n\
         # is the same for the default ports.\n\
         global:\n  scrape_interval: 5s\n  evaluation_interval: 5s\n\n\
         rule_files:\n",
    );
    for (name, _) in RULES {
        let _ = writeln!(text, "  - rules/{name}");
    }
    text.push_str(
        "\nscrape_configs:\n  - job_name: agora\n    metrics_path: /metrics\n    static_configs:\n",
    );
    for target in targets {
        let _ = write!(
            text,
            "      - targets: [\"127.0.0.1:{}\"]\n        labels:\n          service: {}\n          agora_instance: {}\n",
            target.port, target.service, target.instance
        );
    }
    text
}

/// Starts Prometheus on `port` for `targets`, its files under `<data-dir>/prometheus` and its log
/// in `logs/prometheus.log`, and waits (bounded) until it is ready. `Ok(None)` after a message
/// when it is not installed: the platform runs on without it.
pub async fn start(
    data_dir: &Path,
    logs: &Path,
    port: u16,
    targets: &[Target],
) -> anyhow::Result<Option<Prometheus>> {
    let Some(binary) = on_path("prometheus") else {
        println!(
            "  ! --observe: no `prometheus` on PATH, so no metrics are collected. Install it \
             (Debian/Ubuntu: apt-get install prometheus; elsewhere: https://prometheus.io/download/) \
             and start again; every service still serves /metrics."
        );
        return Ok(None);
    };
    if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port)) {
        anyhow::bail!("--observe: port {port} (for Prometheus) is not free: {e}; pass --port to shift every port");
    }
    let dir = data_dir.join("prometheus");
    std::fs::create_dir_all(dir.join("rules"))?;
    for (name, text) in RULES {
        std::fs::write(dir.join("rules").join(name), text)?;
    }
    let config_file = dir.join("prometheus.yml");
    std::fs::write(&config_file, config(targets))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logs.join("prometheus.log"))?;
    let child = Command::new(&binary)
        .arg(format!("--config.file={}", config_file.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        // JSON, like the services' logs, so `agora logs` merges it with theirs.
        .arg("--log.format=json")
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| anyhow::anyhow!("--observe: starting {}: {e}", binary.display()))?;
    let mut prometheus = Prometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = prometheus.child.try_wait()? {
            anyhow::bail!(
                "--observe: prometheus exited while starting ({status}); see {}",
                logs.join("prometheus.log").display()
            );
        }
        let ready = http
            .get(format!("{}/-/ready", prometheus.url))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return Ok(Some(prometheus));
        }
        if Instant::now() > deadline {
            prometheus.stop().await;
            anyhow::bail!("--observe: prometheus did not become ready within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Prometheus {
    /// SIGTERM (Prometheus then writes its head block), up to 10 s, then SIGKILL.
    pub async fn stop(&mut self) {
        if let Some(pid) = self.child.id().and_then(|id| i32::try_from(id).ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            println!("  ! prometheus did not stop in time; killing it");
            let _ = self.child.kill().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_process_is_scraped_with_its_service_label_and_the_rules_are_loaded() {
        let text = config(&[
            Target {
                instance: "products".into(),
                service: "products",
                port: 9082,
            },
            Target {
                instance: "products-2".into(),
                service: "products",
                port: 9182,
            },
        ]);
        assert!(text.contains("  - rules/recording.yml\n  - rules/alerts.yml\n"));
        assert!(text.contains(
            "      - targets: [\"127.0.0.1:9182\"]\n        labels:\n          service: products\n          agora_instance: products-2\n"
        ));
        assert_eq!(port_from(8080), 9090);
    }
}
