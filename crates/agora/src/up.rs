//! `agora up`: the whole platform from one command. Every service runs as a child process of this
//! executable (`agora serve <name>`), each on its own port with its own SQLite file; the launcher
//! waits until each is ready, restarts one that dies, and stops them all on Ctrl-C or SIGTERM.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::credentials::{self, AdminCredentials, ADMIN_USERNAME};
use crate::observe;
use crate::secret_url;
use crate::seed;
use crate::services::ServiceName;

#[derive(Args)]
pub struct UpArgs {
    /// Directory for the services' SQLite files, logs and generated credentials.
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    /// Base port: the gateway's; every service's port shifts with it (users = base + 1, ...).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Load the demo catalog when the catalog is empty.
    #[arg(long, value_enum, default_value_t = SeedChoice::Demo)]
    pub seed: SeedChoice,
    /// How long to wait for every service to become ready, in seconds.
    #[arg(long, default_value_t = 120)]
    pub ready_timeout: u64,
    /// Run several instances of services behind the gateway, e.g. `products=3,users=2`. The first
    /// instance keeps the service's port; the next ones take port + 100, port + 200, ...
    #[arg(long, value_parser = parse_replicas, default_value = "")]
    pub replicas: Replicas,
    /// How events travel between services: `feed` (no broker) or `rabbitmq`.
    #[arg(long, value_enum, default_value_t = EventsChoice::Feed)]
    pub events: EventsChoice,
    /// The RabbitMQ broker for `--events rabbitmq` (default: the local broker's guest account).
    /// Without a password only: a URL with one goes in `AGORA_AMQP_URL` or `--amqp-url-file`.
    #[arg(long, value_name = "URL", conflicts_with = "amqp_url_file")]
    pub amqp_url: Option<String>,
    /// A file holding the RabbitMQ URL of `--amqp-url` (password allowed).
    #[arg(long, value_name = "FILE")]
    pub amqp_url_file: Option<PathBuf>,
    /// Run every service on PostgreSQL instead of SQLite: a URL of an existing database on the
    /// server, used to create one database per service (`<db-prefix>_<service>`) if missing.
    /// Without a password only: a command line is visible to every local user (`ps`), so a URL
    /// with one goes in `AGORA_POSTGRES_URL` or `--postgres-url-file`.
    #[arg(long, value_name = "URL", conflicts_with = "postgres_url_file")]
    pub postgres: Option<String>,
    /// A file holding the PostgreSQL URL of `--postgres` (password allowed).
    #[arg(long, value_name = "FILE")]
    pub postgres_url_file: Option<PathBuf>,
    /// Prefix of the per-service PostgreSQL databases (and of the RabbitMQ exchange and queues).
    #[arg(long, default_value = "agora")]
    pub db_prefix: String,
    /// Also run a local Prometheus (the `prometheus` on PATH) scraping every process, with the
    /// rules of deploy/observability loaded, on port 9090 (base port + 1010).
    #[arg(long)]
    pub observe: bool,
}

/// The PostgreSQL server's URL, if any: `--postgres` or `--postgres-url-file`, else `from_env`
/// (`AGORA_POSTGRES_URL`). A password given as an argument is refused, never echoed.
fn postgres_url(args: &UpArgs, from_env: Option<String>) -> anyhow::Result<Option<String>> {
    secret_url::Source {
        flag: ("--postgres", args.postgres.as_deref()),
        file: ("--postgres-url-file", args.postgres_url_file.as_deref()),
        env: ("AGORA_POSTGRES_URL", from_env),
    }
    .resolve()
}

/// The broker's URL: `--amqp-url` or `--amqp-url-file`, else `from_env` (`AGORA_AMQP_URL`), else
/// the local broker's default account. A password given as an argument is refused, never echoed.
fn amqp_url(args: &UpArgs, from_env: Option<String>) -> anyhow::Result<String> {
    Ok(secret_url::Source {
        flag: ("--amqp-url", args.amqp_url.as_deref()),
        file: ("--amqp-url-file", args.amqp_url_file.as_deref()),
        env: ("AGORA_AMQP_URL", from_env),
    }
    .resolve()?
    .unwrap_or_else(|| DEFAULT_AMQP_URL.to_owned()))
}

/// RabbitMQ's default account on a local broker (what `--events rabbitmq` uses when nothing else
/// is given).
const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventsChoice {
    Feed,
    Rabbitmq,
}

/// The services that keep data.
fn has_database(service: ServiceName) -> bool {
    !matches!(
        service,
        ServiceName::Gateway | ServiceName::PaymentGatewaySim
    )
}

/// Creates `<prefix>_<service>` on the server of `admin_url` for every service that keeps data,
/// when missing; returns each one's URL.
async fn postgres_databases(
    admin_url: &str,
    prefix: &str,
) -> anyhow::Result<HashMap<ServiceName, String>> {
    use sqlx::postgres::PgConnectOptions;
    use sqlx::{ConnectOptions, Connection};
    use std::str::FromStr;
    let ok = !prefix.is_empty()
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    anyhow::ensure!(ok, "--db-prefix must be lower-case letters, digits and '_'");
    let options = PgConnectOptions::from_str(admin_url)
        .map_err(|e| anyhow::anyhow!("the PostgreSQL URL: {e}"))?;
    let mut admin = options
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("PostgreSQL: cannot connect: {e}"))?;
    let mut urls = HashMap::new();
    for service in ServiceName::ALL.into_iter().filter(|s| has_database(*s)) {
        let name = format!("{prefix}_{}", service.as_str());
        let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
            .bind(&name)
            .fetch_optional(&mut admin)
            .await?;
        if exists.is_none() {
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await?;
        }
        urls.insert(
            service,
            options.clone().database(&name).to_url_lossy().to_string(),
        );
    }
    admin.close().await?;
    Ok(urls)
}

#[derive(Clone, Default)]
pub struct Replicas(HashMap<ServiceName, usize>);

impl Replicas {
    pub(crate) fn of(&self, service: ServiceName) -> usize {
        self.0.get(&service).copied().unwrap_or(1)
    }
}

pub(crate) fn parse_replicas(text: &str) -> Result<Replicas, String> {
    let mut replicas = HashMap::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, count) = item
            .split_once('=')
            .ok_or_else(|| format!("`{item}`: expected SERVICE=COUNT"))?;
        let service = <ServiceName as ValueEnum>::from_str(name.trim(), true)
            .map_err(|_| format!("`{name}` is not a service"))?;
        if service == ServiceName::Gateway {
            return Err("the gateway runs once; replicas are for the services behind it".into());
        }
        let count: usize = count
            .trim()
            .parse()
            .ok()
            .filter(|c| (1..=9).contains(c))
            .ok_or_else(|| format!("`{count}`: the count must be 1 to 9"))?;
        replicas.insert(service, count);
    }
    Ok(Replicas(replicas))
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SeedChoice {
    Demo,
    None,
}

/// A running child and what is needed to start it again.
struct Supervised {
    service: ServiceName,
    /// 0 for the first instance of a service, 1.. for its extra replicas.
    replica: usize,
    port: u16,
    child: Child,
    restarts: u32,
}

impl Supervised {
    fn name(&self) -> String {
        instance_name(self.service, self.replica)
    }
}

fn instance_name(service: ServiceName, replica: usize) -> String {
    if replica == 0 {
        service.as_str().to_owned()
    } else {
        format!("{}-{}", service.as_str(), replica + 1)
    }
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let postgres = postgres_url(&args, std::env::var("AGORA_POSTGRES_URL").ok())?;
    let amqp = amqp_url(&args, std::env::var("AGORA_AMQP_URL").ok())?;
    std::fs::create_dir_all(&args.data_dir)?;
    let data_dir = std::fs::canonicalize(&args.data_dir)?;
    // Every instance to run: (service, replica, port).
    let instances: Vec<(ServiceName, usize, u16)> = ServiceName::ALL
        .iter()
        .flat_map(|&s| {
            let first = s.port_from(args.port);
            (0..args.replicas.of(s)).map(move |r| (s, r, first.saturating_add(100 * r as u16)))
        })
        .collect();
    check_ports_free(&instances)?;
    let upstreams: Vec<(ServiceName, Vec<String>)> = ServiceName::ALL
        .iter()
        // The gateway simulator stands for an outside system: nothing routes to it.
        .filter(|&&s| !matches!(s, ServiceName::Gateway | ServiceName::PaymentGatewaySim))
        .map(|&s| {
            let urls = instances
                .iter()
                .filter(|(service, _, _)| *service == s)
                .map(|(_, _, port)| format!("http://127.0.0.1:{port}"))
                .collect();
            (s, urls)
        })
        .collect();

    let admin = AdminCredentials::resolve(&data_dir)?;
    let local = |service: ServiceName| format!("http://127.0.0.1:{}", service.port_from(args.port));
    let psp = credentials::Psp::resolve(
        local(ServiceName::PaymentGatewaySim),
        format!("{}/webhooks/gateway", local(ServiceName::Gateway)),
    );
    let configs: HashMap<ServiceName, PathBuf> =
        credentials::write_service_configs(&data_dir, &upstreams, &psp)?
            .into_iter()
            .collect();
    let logs = data_dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let databases = match &postgres {
        Some(url) => postgres_databases(url, &args.db_prefix).await?,
        None => HashMap::new(),
    };
    let launch = Launch {
        data_dir: data_dir.clone(),
        logs: logs.clone(),
        users_url: local(ServiceName::Users),
        products_url: local(ServiceName::Products),
        inventory_url: local(ServiceName::Inventory),
        payments_url: local(ServiceName::Payments),
        orders_url: local(ServiceName::Orders),
        carts_url: local(ServiceName::Carts),
        databases: &databases,
        events: match args.events {
            EventsChoice::Feed => None,
            EventsChoice::Rabbitmq => Some((amqp, format!("{}.events", args.db_prefix))),
        },
        admin: &admin,
        configs: &configs,
    };

    println!(
        "Starting Agora ({} processes; logs in {})",
        instances.len(),
        logs.display()
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.ready_timeout);
    let mut shutdown = platform::shutdown::on_signal();
    // In waves, each started together and awaited together: users, whose keys every other
    // service checks tokens with (asked before users answers, a service waits out its key
    // refresh back-off); then the first instance of every other service; then the extra replicas,
    // which share their service's database and must find it migrated by the first; the gateway
    // last, whose health probe would otherwise take a replica still starting out of rotation.
    let wave_of = |&(service, replica, _): &(ServiceName, usize, u16)| match (service, replica) {
        (ServiceName::Gateway, _) => 3,
        (ServiceName::Users, 0) => 0,
        (_, 0) => 1,
        _ => 2,
    };
    let mut children: Vec<Supervised> = Vec::new();
    for wave in 0..4 {
        let first = children.len();
        for &(service, replica, port) in instances.iter().filter(|i| wave_of(i) == wave) {
            let child = launch.spawn(service, replica, port)?;
            children.push(Supervised {
                service,
                replica,
                port,
                child,
                restarts: 0,
            });
        }
        let (http, logs) = (&http, &logs);
        let waiting =
            futures::future::try_join_all(children[first..].iter_mut().map(|entry| async move {
                wait_ready(http, entry, logs, deadline).await?;
                println!(
                    "  ✓ {:<20} ready after {:.1}s",
                    entry.name(),
                    started.elapsed().as_secs_f64()
                );
                anyhow::Ok(())
            }));
        let outcome = tokio::select! {
            ready = waiting => Some(ready),
            _ = &mut shutdown => None,
        };
        match outcome {
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                stop_all(&mut children).await;
                return Err(e);
            }
            None => {
                stop_all(&mut children).await;
                return Ok(());
            }
        }
    }

    if args.seed == SeedChoice::Demo {
        let target = seed::Target::local(args.port, &admin);
        match seed::demo_if_empty(&target).await {
            Ok(Some(report)) => {
                println!("  ✓ demo catalog: {report}");
                // One demo user with a cart, so a new user sees the cart at once.
                let shopped = match credentials::DemoShopper::resolve(&data_dir) {
                    Ok(shopper) => seed::demo_shopper(&target, &shopper).await,
                    Err(e) => Err(e),
                };
                match shopped {
                    Ok(report) => println!("  ✓ demo shopper: {report}"),
                    Err(e) => println!("  ! demo shopper failed: {e:#}"),
                }
            }
            Ok(None) => println!("  ✓ catalog already has products; demo seed skipped"),
            Err(e) => println!("  ! demo seed failed: {e:#}"),
        }
    }

    let mut prometheus = None;
    if args.observe {
        let targets: Vec<observe::Target> = children
            .iter()
            .map(|entry| observe::Target {
                instance: entry.name(),
                service: entry.service.as_str(),
                port: entry.port,
            })
            .collect();
        let port = observe::port_from(args.port);
        match observe::start(&data_dir, &logs, port, &targets).await {
            Ok(started) => prometheus = started,
            Err(e) => {
                stop_all(&mut children).await;
                return Err(e);
            }
        }
    }

    print_table(&children, &admin, args.port);
    if let Some(prometheus) = &prometheus {
        println!(
            "  Prometheus: {}  (scraping {} processes; rules of deploy/observability loaded)",
            prometheus.url,
            children.len()
        );
    }
    println!(
        "  Logs, merged: agora logs --data-dir {}",
        data_dir.display()
    );
    println!("\n  Press Ctrl-C to stop.");

    supervise(&mut children, &launch, &mut shutdown).await;
    println!("\nStopping Agora…");
    if let Some(prometheus) = &mut prometheus {
        prometheus.stop().await;
    }
    stop_all(&mut children).await;
    println!("Stopped.");
    Ok(())
}

/// What every child start needs.
struct Launch<'a> {
    data_dir: PathBuf,
    logs: PathBuf,
    users_url: String,
    products_url: String,
    inventory_url: String,
    payments_url: String,
    orders_url: String,
    carts_url: String,
    /// Per service, its PostgreSQL URL (none: SQLite in the data dir).
    databases: &'a HashMap<ServiceName, String>,
    /// With RabbitMQ: the broker's URL and the exchange.
    events: Option<(String, String)>,
    admin: &'a AdminCredentials,
    configs: &'a HashMap<ServiceName, PathBuf>,
}

impl Launch<'_> {
    fn spawn(&self, service: ServiceName, replica: usize, port: u16) -> anyhow::Result<Child> {
        let exe = std::env::current_exe()?;
        let log = log_file(&self.logs, &instance_name(service, replica))?;
        let mut command = Command::new(exe);
        command
            .arg("serve")
            .arg(service.as_str())
            .arg("--port")
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env("AGORA_USERS_URL", &self.users_url)
            .env("AGORA_PRODUCTS_URL", &self.products_url)
            .env("AGORA_INVENTORY_URL", &self.inventory_url)
            .env("AGORA_PAYMENTS_URL", &self.payments_url)
            .env("AGORA_ORDERS_URL", &self.orders_url)
            .env("AGORA_CARTS_URL", &self.carts_url)
            .env("AGORA_LAUNCHER_PID", std::process::id().to_string())
            .env("AGORA_LOG_FORMAT", "json")
            // The server's URL is the launcher's; each service gets only its own database's.
            .env_remove("AGORA_POSTGRES_URL")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        if let Some(config) = self.configs.get(&service) {
            command.env("AGORA_CONFIG", config);
        }
        if let Some(url) = self.databases.get(&service) {
            command.env("AGORA_DATABASE_URL", url);
        }
        if let Some((amqp, exchange)) = &self.events {
            command
                .env("AGORA_EVENTS", "rabbitmq")
                .env("AGORA_AMQP_URL", amqp)
                .env("AGORA_AMQP_EXCHANGE", exchange);
        }
        if service == ServiceName::Users {
            command
                .env("AGORA_ADMIN_USERNAME", ADMIN_USERNAME)
                .env("AGORA_ADMIN_EMAIL", &self.admin.email)
                .env("AGORA_ADMIN_PASSWORD", &self.admin.password);
        }
        command
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {}: {e}", service.as_str()))
    }
}

/// The end of a log, indented, to show beside an error (why a service would not start is usually
/// in its last lines: a panic message, a refused setting).
fn last_lines(log: &Path, count: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(count)..];
    tail.iter().map(|line| format!("\n    {line}")).collect()
}

fn log_file(dir: &Path, instance: &str) -> anyhow::Result<std::fs::File> {
    Ok(std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{instance}.log")))?)
}

/// Fails with a clear message when a port the platform needs is taken.
fn check_ports_free(instances: &[(ServiceName, usize, u16)]) -> anyhow::Result<()> {
    for &(service, replica, port) in instances {
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            anyhow::bail!(
                "port {port} (for {}) is not free: {e}. Stop what uses it, or pass --port to shift every port (e.g. --port 9080)",
                instance_name(service, replica)
            );
        }
    }
    Ok(())
}

async fn wait_ready(
    http: &reqwest::Client,
    entry: &mut Supervised,
    logs: &Path,
    deadline: Instant,
) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{}/health/ready", entry.port);
    loop {
        if let Some(status) = entry.child.try_wait()? {
            let log = logs.join(format!("{}.log", entry.name()));
            anyhow::bail!(
                "{} exited while starting ({status}); its log is {}{}",
                entry.name(),
                log.display(),
                last_lines(&log, 10)
            );
        }
        if let Ok(response) = http.get(&url).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            anyhow::bail!("{} did not become ready in time", entry.name());
        }
        // Often: a service is up within tens of milliseconds, and the whole start waits on this.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn print_table(children: &[Supervised], admin: &AdminCredentials, base_port: u16) {
    println!("\nAgora is up.");
    println!("  Shop:  http://127.0.0.1:{base_port}/");
    println!("  Admin: http://127.0.0.1:{base_port}/admin");
    println!(
        "  API:   http://127.0.0.1:{base_port}/api/  (docs: http://127.0.0.1:{base_port}/docs)\n"
    );
    println!("  {:<20} {:<24} API DOCS", "SERVICE", "URL");
    for entry in children {
        let url = format!("http://127.0.0.1:{}", entry.port);
        // The simulator stands for Stripe, whose API reference documents it.
        let docs = if entry.service == ServiceName::PaymentGatewaySim {
            "Stripe's PaymentIntents API (a subset)".to_owned()
        } else {
            format!("{url}/docs")
        };
        println!("  {:<20} {:<24} {docs}", entry.name(), url);
    }
    println!();
    match (&admin.file, admin.generated) {
        (Some(file), true) => println!(
            "  Admin login: {ADMIN_USERNAME} / {}  (generated now, shown once; kept in {})",
            admin.password,
            file.display()
        ),
        (Some(file), false) => {
            println!(
                "  Admin login: {ADMIN_USERNAME}; the password is in {}",
                file.display()
            )
        }
        (None, _) => println!("  Admin login: {ADMIN_USERNAME}, with AGORA_ADMIN_PASSWORD"),
    }
}

/// Keeps the children running until `shutdown`: one that exits is restarted with a backoff that
/// grows with its restarts (1 s, 2 s, 4 s, ... up to 30 s).
async fn supervise(
    children: &mut [Supervised],
    launch: &Launch<'_>,
    shutdown: &mut std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) {
    loop {
        tokio::select! {
            _ = &mut *shutdown => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        for entry in children.iter_mut() {
            let Ok(Some(status)) = entry.child.try_wait() else {
                continue;
            };
            let delay =
                Duration::from_secs(1u64 << entry.restarts.min(5)).min(Duration::from_secs(30));
            println!(
                "  ! {} exited ({status}); restarting in {}s (log: {})",
                entry.name(),
                delay.as_secs(),
                launch.logs.join(format!("{}.log", entry.name())).display()
            );
            tokio::select! {
                _ = &mut *shutdown => return,
                _ = tokio::time::sleep(delay) => {}
            }
            entry.restarts += 1;
            match launch.spawn(entry.service, entry.replica, entry.port) {
                Ok(child) => {
                    entry.child = child;
                    println!("  ✓ {} restarted", entry.name());
                }
                Err(e) => println!("  ! restarting {} failed: {e:#}", entry.name()),
            }
        }
    }
}

/// SIGTERM to every child, then up to 10 s for them to finish in-flight work, then SIGKILL.
async fn stop_all(children: &mut [Supervised]) {
    for entry in children.iter() {
        if let Some(pid) = entry.child.id().and_then(|id| i32::try_from(id).ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for entry in children.iter_mut() {
        let left = deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, entry.child.wait())
            .await
            .is_err()
        {
            println!("  ! {} did not stop in time; killing it", entry.name());
            let _ = entry.child.kill().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn a_failed_start_shows_the_end_of_the_service_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("products.log");
        let text: String = (1..=15).map(|n| format!("line {n}\n")).collect();
        std::fs::write(&log, text).unwrap();
        let shown = last_lines(&log, 10);
        assert!(shown.starts_with("\n    line 6\n"), "{shown}");
        assert!(shown.ends_with("\n    line 15"), "{shown}");
        assert!(!shown.contains("line 5\n"), "{shown}");
        assert_eq!(last_lines(&dir.path().join("missing.log"), 10), "");
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        up: UpArgs,
    }

    fn args(argv: &[&str]) -> UpArgs {
        Cli::try_parse_from(std::iter::once("up").chain(argv.iter().copied()))
            .unwrap()
            .up
    }

    #[test]
    fn a_password_in_the_postgres_argument_is_refused_without_echoing_it() {
        for url in [
            "postgres://agora:s3cret-pw@db.example:5432/agora",
            "postgres://agora@db.example/agora?password=s3cret-pw",
        ] {
            let error = postgres_url(&args(&["--postgres", url]), None)
                .unwrap_err()
                .to_string();
            assert!(error.contains("AGORA_POSTGRES_URL"), "{error}");
            assert!(error.contains("--postgres-url-file"), "{error}");
            assert!(!error.contains("s3cret-pw"), "{error}");
        }
    }

    #[test]
    fn a_postgres_argument_without_a_password_is_taken_as_it_is() {
        let url = "postgres://postgres@127.0.0.1:5432/test";
        assert_eq!(
            postgres_url(&args(&["--postgres", url]), None).unwrap(),
            Some(url.to_owned())
        );
    }

    #[test]
    fn the_environment_may_hold_a_url_with_a_password() {
        let url = "postgres://agora:s3cret-pw@db.example/agora";
        assert_eq!(
            postgres_url(&args(&[]), Some(format!("{url}\n"))).unwrap(),
            Some(url.to_owned())
        );
        assert_eq!(postgres_url(&args(&[]), Some(String::new())).unwrap(), None);
        assert_eq!(postgres_url(&args(&[]), None).unwrap(), None);
    }

    #[test]
    fn a_file_may_hold_a_url_with_a_password_and_wins_over_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("postgres-url");
        let url = "postgres://agora:s3cret-pw@db.example/agora";
        std::fs::write(&file, format!("{url}\n")).unwrap();
        let from_file = args(&["--postgres-url-file", file.to_str().unwrap()]);
        assert_eq!(
            postgres_url(&from_file, Some("postgres://other@elsewhere/db".into())).unwrap(),
            Some(url.to_owned())
        );
        std::fs::write(&file, "  \n").unwrap();
        assert!(postgres_url(&from_file, None).is_err());
        let missing = args(&["--postgres-url-file", "/nonexistent/postgres-url"]);
        assert!(postgres_url(&missing, None).is_err());
    }

    #[test]
    fn a_password_in_the_amqp_argument_is_refused_without_echoing_it() {
        for url in [
            "amqp://agora:s3cret-pw@broker.example:5672/%2f",
            "amqps://agora@broker.example/%2f?password=s3cret-pw",
        ] {
            let error = amqp_url(&args(&["--amqp-url", url]), None)
                .unwrap_err()
                .to_string();
            assert!(error.contains("--amqp-url:"), "{error}");
            assert!(error.contains("AGORA_AMQP_URL"), "{error}");
            assert!(error.contains("--amqp-url-file"), "{error}");
            assert!(!error.contains("s3cret-pw"), "{error}");
        }
    }

    #[test]
    fn the_amqp_url_comes_from_the_argument_the_file_the_environment_or_the_default() {
        let plain = "amqp://agora@broker.example:5672/%2f";
        assert_eq!(
            amqp_url(&args(&["--amqp-url", plain]), None).unwrap(),
            plain
        );
        let secret = "amqp://agora:s3cret-pw@broker.example:5672/%2f";
        assert_eq!(
            amqp_url(&args(&[]), Some(format!("{secret}\n"))).unwrap(),
            secret
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("amqp-url");
        std::fs::write(&file, format!("{secret}\n")).unwrap();
        let from_file = args(&["--amqp-url-file", file.to_str().unwrap()]);
        assert_eq!(
            amqp_url(&from_file, Some("amqp://other@elsewhere/%2f".into())).unwrap(),
            secret
        );
        assert_eq!(amqp_url(&args(&[]), None).unwrap(), DEFAULT_AMQP_URL);
        assert!(
            Cli::try_parse_from(["up", "--amqp-url", plain, "--amqp-url-file", "/tmp/u"]).is_err()
        );
    }

    #[test]
    fn the_postgres_argument_and_a_url_file_cannot_both_be_given() {
        let both = Cli::try_parse_from([
            "up",
            "--postgres",
            "postgres://postgres@127.0.0.1/test",
            "--postgres-url-file",
            "/tmp/url",
        ]);
        assert!(both.is_err());
    }
}
