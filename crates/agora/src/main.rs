//! `agora`: one binary for the whole platform. `serve` runs one service, `up` runs them all as
//! child processes of this executable, `seed` loads the demo catalog.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod credentials;
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
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Run every service as a child process, wait until all are ready, and keep them running.
    Up(up::UpArgs),
    /// Load data through the public API.
    Seed {
        #[arg(value_enum)]
        what: SeedKind,
        #[command(flatten)]
        target: seed::Target,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum SeedKind {
    /// A demo catalog: categories with subcategories and products.
    Demo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
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
            Command::Seed {
                what: SeedKind::Demo,
                target,
            } => seed::demo(&target).await.map(|report| println!("{report}")),
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
