//! `agora`: one binary for the whole platform. `serve` runs one service, `up` runs them all as
//! child processes of this executable, `logs` shows their logs merged, `seed` loads the demo
//! catalog.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod credentials;
mod generated;
mod health;
mod logs;
mod observe;
mod secret_url;
mod secrets;
mod seed;
mod services;
mod up;

use services::ServiceName;

/// mimalloc instead of the system allocator: a proxied request allocates and frees many small
/// buffers on several threads, where glibc's malloc showed up as ~15% of the gateway's CPU
/// (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "agora",
    version,
    about = "Agora: an e-commerce platform as Rust microservices"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one service in the foreground.
    Serve {
        service: ServiceName,
        /// Port to listen on (default: the service's own, e.g. 8081 for users).
        #[arg(long)]
        port: Option<u16>,
        /// Directory for SQLite files and generated files.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// `sqlite://...` or `postgres://...`; a SQLite file in the data directory when unset.
        /// Without a password only (a command line shows in `ps`): a URL with one goes in
        /// `AGORA_DATABASE_URL` or in a file named by `AGORA_DATABASE_URL_FILE`.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Run every service as a child process, wait until all are ready, and keep them running.
    Up(up::UpArgs),
    /// The logs of every process `agora up` runs, merged in time order (filter by service, level,
    /// request or trace; `--follow` to keep watching).
    Logs(logs::LogsArgs),
    /// Write each service's config file with newly generated secrets (for Compose and Kubernetes).
    Secrets(secrets::SecretsArgs),
    /// Exit 0 when `url` answers 2xx within the timeout, 1 otherwise: the health check of a
    /// container image that has no shell and no curl.
    Health {
        /// Default: `http://127.0.0.1:$AGORA_PORT/health/ready` (port 8080 when unset), this
        /// container's own service.
        url: Option<String>,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
    /// Load data through the public API.
    Seed {
        #[arg(value_enum)]
        what: SeedKind,
        /// Products in the catalog after seeding: the hand-written demo products, then generated
        /// ones (deterministic, by SKU) up to this many, e.g. 10000.
        #[arg(long, default_value_t = 0)]
        products: usize,
        #[command(flatten)]
        target: seed::Target,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum SeedKind {
    /// A demo catalog: categories with subcategories and products.
    Demo,
}

/// The async runtime of this process, with `AGORA_WORKER_THREADS` worker threads. A service
/// (`agora serve`) runs on one thread by default: its work is short steps between waits (a
/// connection, a SQLite statement on the connection's own thread, an upstream call), and with a
/// second worker thread each of those wake-ups could wake the other thread too. On the 2-core
/// benchmark one thread per service cut a checkout's CPU by a fifth, a reservation's by a tenth
/// and a product read's by a quarter (docs/performance.md, "Event work, one thread, search
/// rankings"); argon2 runs on the blocking pool either way. A service uses more cores as more
/// replicas (`agora up --replicas`, Kubernetes), or with the variable set. Other commands (`up`,
/// `seed`) use one thread per core.
fn runtime(cli: &Cli) -> std::io::Result<tokio::runtime::Runtime> {
    let threads = std::env::var("AGORA_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .or(match cli.command {
            Command::Serve { .. } => Some(1),
            _ => None,
        });
    match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
        None => tokio::runtime::Runtime::new(),
    }
}

fn main() -> ExitCode {
    // No transparent huge pages for this process. Allocators reserve memory in large aligned
    // regions, and with huge pages the kernel makes each 2 MiB region resident in full as soon as
    // one byte of it is touched: idle services held 9–28 MiB of heap each, 2–7 MiB without (users
    // more: argon2's buffers); the platform's Pss 178 → 78 MiB (docs/performance.md, "Memory and
    // start"). mimalloc is built without its MADV_HUGEPAGE (`no_thp` in Cargo.toml); this also
    // covers hosts whose THP setting is `always`, and SQLite's allocations (glibc's malloc). Best
    // effort: a kernel refusing it changes nothing else.
    let _ = nix::sys::prctl::set_thp_disable(true);
    let cli = Cli::parse();
    let runtime = match runtime(&cli) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve {
                service,
                port,
                data_dir,
                database_url,
            } => services::serve(service, port, data_dir, database_url).await,
            Command::Up(args) => up::run(args).await,
            Command::Logs(args) => logs::run(args).await,
            Command::Secrets(args) => secrets::run(&args),
            Command::Health { url, timeout } => {
                health::check(&url.unwrap_or_else(health::own_url), timeout).await
            }
            Command::Seed {
                what: SeedKind::Demo,
                products,
                target,
            } => seed::demo(&target, products)
                .await
                .map(|report| println!("{report}")),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
