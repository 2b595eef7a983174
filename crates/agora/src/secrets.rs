//! `agora secrets --out DIR`: each service's config file with newly generated secrets (service
//! client secrets, the PSP keys), for deployments where `agora up` is not the launcher: Compose
//! mounts them as secrets, Kubernetes takes them as Secrets (docs/deployment.md).
use std::path::PathBuf;

use crate::credentials;
use crate::services::ServiceName;
use crate::up::{parse_replicas, Replicas};

#[derive(clap::Args)]
pub struct SecretsArgs {
    /// Directory to write `config/<service>.toml` into (created; files of mode 0600).
    #[arg(long)]
    pub out: PathBuf,
    /// Where each service is reached, `{service}` standing for its name: Compose and Kubernetes
    /// name a service's host after it, and every service listens on 8080 in the images.
    #[arg(long, default_value = "http://{service}:8080")]
    pub url_pattern: String,
    /// More instances of a service behind the gateway (`products=2`): instance k > 1 is reached
    /// at the pattern's host with `-k` appended (`products-2`). An instance that is not running is
    /// ejected by the gateway's health checks.
    #[arg(long, value_parser = parse_replicas, default_value = "")]
    pub replicas: Replicas,
}

pub fn run(args: &SecretsArgs) -> anyhow::Result<()> {
    let url = |service: ServiceName| args.url_pattern.replace("{service}", service.as_str());
    let upstreams: Vec<(ServiceName, Vec<String>)> = ServiceName::ALL
        .into_iter()
        .filter(|s| *s != ServiceName::Gateway)
        .map(|s| {
            let urls = (1..=args.replicas.of(s))
                .map(|k| match k {
                    1 => url(s),
                    k => args
                        .url_pattern
                        .replace("{service}", &format!("{}-{k}", s.as_str())),
                })
                .collect();
            (s, urls)
        })
        .collect();
    let psp = credentials::Psp::resolve(
        url(ServiceName::PaymentGatewaySim),
        format!("{}/webhooks/gateway", url(ServiceName::Gateway)),
    );
    for (service, path) in credentials::write_service_configs(&args.out, &upstreams, &psp)? {
        println!("{:<20} {}", service.as_str(), path.display());
    }
    Ok(())
}
