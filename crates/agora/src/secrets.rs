//! `agora secrets --out DIR`: each service's config file with newly generated secrets (service
//! client secrets, the PSP keys) and the gateway's upstreams, for deployments where `agora up` is
//! not the launcher: Compose mounts them as secrets, Kubernetes takes them as Secrets
//! (docs/deployment.md).
use std::path::PathBuf;

use crate::credentials;
use crate::services::ServiceName;
use crate::up::{parse_replicas, Replicas};

#[derive(clap::Args)]
pub struct SecretsArgs {
    /// Directory to write `config/<service>.toml` into (created; files of mode 0600).
    #[arg(long)]
    pub out: PathBuf,
    /// Where each service is reached: `{service}` stands for its name (Compose and Kubernetes name
    /// a service's host after it; every service listens on 8080 in the images), `{port}` for its
    /// port counted from `--base-port` as `agora up --port` counts them (containers on one host's
    /// network).
    #[arg(long, default_value = "http://{service}:8080")]
    pub url_pattern: String,
    /// The gateway's port when the pattern uses `{port}`.
    #[arg(long, default_value_t = 8080)]
    pub base_port: u16,
    /// More instances of a service behind the gateway (`products=2`): instance k > 1 is
    /// `{service}-k` on port `{port}` + 100·(k−1). An instance that is not running is ejected by
    /// the gateway's health checks.
    #[arg(long, value_parser = parse_replicas, default_value = "")]
    pub replicas: Replicas,
}

impl SecretsArgs {
    /// The URL of instance `k` (from 1) of `service`.
    fn url(&self, service: ServiceName, k: usize) -> String {
        let (name, offset) = match k {
            1 => (service.as_str().to_owned(), 0),
            k => (format!("{}-{k}", service.as_str()), 100 * (k - 1)),
        };
        let port = usize::from(service.port_from(self.base_port)) + offset;
        self.url_pattern
            .replace("{service}", &name)
            .replace("{port}", &port.to_string())
    }
}

pub fn run(args: &SecretsArgs) -> anyhow::Result<()> {
    let upstreams: Vec<(ServiceName, Vec<String>)> = ServiceName::ALL
        .into_iter()
        .filter(|s| *s != ServiceName::Gateway)
        .map(|s| {
            (
                s,
                (1..=args.replicas.of(s)).map(|k| args.url(s, k)).collect(),
            )
        })
        .collect();
    let psp = credentials::Psp::resolve(
        args.url(ServiceName::PaymentGatewaySim, 1),
        format!("{}/webhooks/gateway", args.url(ServiceName::Gateway, 1)),
    );
    for (service, path) in credentials::write_service_configs(&args.out, &upstreams, &psp)? {
        if service == ServiceName::Users {
            key_inside(&path, &args.out.join("key-encryption-key"))?;
        }
        println!("{:<20} {}", service.as_str(), path.display());
    }
    Ok(())
}

/// Moves users' key-encryption key from a file next to the configs into its config: `agora up`
/// names the file by a path on this machine, which a container does not have, while the config
/// itself is what Compose and Kubernetes mount as a secret.
fn key_inside(users_config: &std::path::Path, key_file: &std::path::Path) -> anyhow::Result<()> {
    let Ok(key) = std::fs::read_to_string(key_file) else {
        return Ok(());
    };
    let text = std::fs::read_to_string(users_config)?;
    let text: String = text
        .lines()
        .map(|line| {
            if line.starts_with("key_encryption_key_file") {
                format!("key_encryption_key = \"{}\"\n", key.trim())
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    std::fs::write(users_config, text)?;
    std::fs::remove_file(key_file)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(pattern: &str, replicas: &str) -> SecretsArgs {
        SecretsArgs {
            out: PathBuf::new(),
            url_pattern: pattern.into(),
            base_port: 28080,
            replicas: parse_replicas(replicas).unwrap(),
        }
    }

    #[test]
    fn instances_are_named_or_numbered_as_the_pattern_asks() {
        let by_name = args("http://{service}:8080", "products=2");
        assert_eq!(
            by_name.url(ServiceName::Products, 1),
            "http://products:8080"
        );
        assert_eq!(
            by_name.url(ServiceName::Products, 2),
            "http://products-2:8080"
        );
        let by_port = args("http://127.0.0.1:{port}", "");
        assert_eq!(by_port.url(ServiceName::Users, 1), "http://127.0.0.1:28081");
        assert_eq!(
            by_port.url(ServiceName::Products, 2),
            "http://127.0.0.1:28182"
        );
    }

    #[test]
    fn every_service_gets_a_private_config_and_the_gateway_every_instance() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args("http://{service}:8080", "products=2");
        a.out = dir.path().to_owned();
        run(&a).unwrap();
        let gateway = std::fs::read_to_string(dir.path().join("config/gateway.toml")).unwrap();
        assert!(
            gateway.contains(r#"products = ["http://products:8080", "http://products-2:8080"]"#),
            "{gateway}"
        );
        assert!(
            gateway.contains(r#"carts = ["http://carts:8080"]"#),
            "{gateway}"
        );
        // carts follows the catalog's, stock's and orders' events with a client of its own.
        let carts = std::fs::read_to_string(dir.path().join("config/carts.toml")).unwrap();
        assert!(carts.contains("client_id = \"carts\""), "{carts}");
        let users = std::fs::read_to_string(dir.path().join("config/users.toml")).unwrap();
        assert!(users.contains("key_encryption_key = \""), "{users}");
        assert!(users.contains("id = \"carts\""), "{users}");
        assert!(!users.contains("key_encryption_key_file"), "{users}");
        assert!(!dir.path().join("key-encryption-key").exists());
        let payments = std::fs::read_to_string(dir.path().join("config/payments.toml")).unwrap();
        assert!(payments.contains("psp_webhook_secret"), "{payments}");
        assert!(payments.contains(r#"psp_url = "http://payment-gateway-sim:8080""#));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("config/users.toml"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
