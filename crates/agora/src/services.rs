//! The services this binary can run, and how to run one of them.
use std::path::PathBuf;

use clap::ValueEnum;
use serde_json::{Map, Value};

/// Every service `agora` knows, in start order, with its port offset from the gateway's 8080.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum ServiceName {
    Gateway,
    Users,
    Products,
    Inventory,
    PaymentGatewaySim,
    Payments,
    Orders,
    Carts,
}

impl ServiceName {
    /// Start order: the gateway last, in front of services that are already up.
    pub const ALL: [ServiceName; 8] = [
        ServiceName::Users,
        ServiceName::Products,
        ServiceName::Inventory,
        ServiceName::PaymentGatewaySim,
        ServiceName::Payments,
        ServiceName::Orders,
        ServiceName::Carts,
        ServiceName::Gateway,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Gateway => gateway::NAME,
            ServiceName::Users => users::NAME,
            ServiceName::Products => products::NAME,
            ServiceName::Inventory => inventory::NAME,
            ServiceName::PaymentGatewaySim => payment_gateway_sim::NAME,
            ServiceName::Payments => payments::NAME,
            ServiceName::Orders => orders::NAME,
            ServiceName::Carts => carts::NAME,
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            ServiceName::Gateway => gateway::DEFAULT_PORT,
            ServiceName::Users => users::DEFAULT_PORT,
            ServiceName::Products => products::DEFAULT_PORT,
            ServiceName::Inventory => inventory::DEFAULT_PORT,
            ServiceName::PaymentGatewaySim => payment_gateway_sim::DEFAULT_PORT,
            ServiceName::Payments => payments::DEFAULT_PORT,
            ServiceName::Orders => orders::DEFAULT_PORT,
            ServiceName::Carts => carts::DEFAULT_PORT,
        }
    }

    /// The port when the platform's base port (the gateway's) is `base` instead of 8080.
    pub fn port_from(self, base: u16) -> u16 {
        base.saturating_add(self.default_port() - 8080)
    }

    /// The OAuth2 scopes this service's own client may ask for.
    pub fn client_scopes(self) -> &'static [&'static str] {
        match self {
            ServiceName::Gateway
            | ServiceName::Users
            | ServiceName::Payments
            | ServiceName::PaymentGatewaySim => &[],
            // Each follows the other's event feed.
            ServiceName::Products | ServiceName::Inventory => &["events:read"],
            // Follows the catalog, stock and confirmed orders.
            ServiceName::Carts => &["events:read"],
            // The checkout holds stock and takes payments.
            ServiceName::Orders => &["inventory:reserve", "payments:write", "events:read"],
        }
    }
}

/// Runs one service until SIGINT/SIGTERM, or until the launcher that started it goes away.
pub async fn serve(
    service: ServiceName,
    port: Option<u16>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
) -> anyhow::Result<()> {
    if let Some(url) = &database_url {
        crate::secret_url::refuse_password(
            "--database-url",
            url,
            "AGORA_DATABASE_URL or in a file named by AGORA_DATABASE_URL_FILE",
        )?;
    }
    platform::telemetry::init(service.as_str());
    let mut overrides = Map::new();
    if let Some(port) = port {
        overrides.insert("port".into(), Value::from(port));
    }
    if let Some(dir) = data_dir {
        overrides.insert("data_dir".into(), Value::from(dir.display().to_string()));
    }
    if let Some(url) = database_url {
        overrides.insert("database_url".into(), Value::from(url));
    }
    let shutdown: platform::shutdown::Shutdown = Box::pin(async {
        tokio::select! {
            _ = platform::shutdown::on_signal() => {},
            _ = launcher_gone() => tracing::warn!("the launcher is gone; shutting down"),
        }
    });
    let served = run(service, overrides, shutdown).await;
    // What the batch exporter still holds goes out before the process ends.
    platform::telemetry::otel::shutdown();
    served
}

async fn run(
    service: ServiceName,
    overrides: Map<String, Value>,
    shutdown: platform::shutdown::Shutdown,
) -> anyhow::Result<()> {
    match service {
        ServiceName::Gateway => {
            let app = gateway::Application::build(gateway::Config::load(overrides)?).await?;
            tracing::info!(port = app.port(), "gateway listening");
            app.run(shutdown).await
        }
        ServiceName::Users => {
            let app = users::Application::build(users::Config::load(overrides)?).await?;
            tracing::info!(port = app.port(), "users listening");
            app.run(shutdown).await
        }
        ServiceName::Products => {
            let app = products::Application::build(products::Config::load(overrides)?).await?;
            tracing::info!(port = app.port(), "products listening");
            app.run(shutdown).await
        }
        ServiceName::Inventory => {
            let app = inventory::Application::build(inventory::Config::load(overrides)?).await?;
            tracing::info!(port = app.port(), "inventory listening");
            app.run(shutdown).await
        }
        ServiceName::PaymentGatewaySim => {
            let app = payment_gateway_sim::Application::build(payment_gateway_sim::Config::load(
                overrides,
            )?)
            .await?;
            tracing::info!(port = app.port(), "payment gateway simulator listening");
            app.run(shutdown).await
        }
        ServiceName::Payments => {
            let app = payments::Application::build(payments::Config::load(overrides)?).await?;
            tracing::info!(port = app.port(), "payments listening");
            app.run(shutdown).await
        }
        ServiceName::Orders => {
            let app = orders::Application::build(orders::Config::load(overrides)?).await?;
            tracing::info!(port = app.port(), "orders listening");
            app.run(shutdown).await
        }
        ServiceName::Carts => {
            let app = carts::Application::build(carts::Config::load(overrides)?).await?;
            tracing::info!(port = app.port(), "carts listening");
            app.run(shutdown).await
        }
    }
}

/// Completes when the `agora up` that started this process has died, so that even a launcher
/// killed with SIGKILL leaves no orphan behind. Never completes for a service started by hand.
async fn launcher_gone() {
    let Some(launcher) = std::env::var("AGORA_LAUNCHER_PID")
        .ok()
        .and_then(|pid| pid.parse::<i32>().ok())
    else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        if nix::unistd::getppid().as_raw() != launcher {
            return;
        }
    }
}
