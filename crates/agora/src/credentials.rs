//! Secrets the launcher makes for the platform it starts: the first admin's password and each
//! service's own OAuth2 client. They live in files of mode 0600 under the data directory.
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rand::distributions::Alphanumeric;
use rand::Rng;

use crate::services::ServiceName;

pub const ADMIN_USERNAME: &str = "admin";
const DEFAULT_ADMIN_EMAIL: &str = "admin@agora.local";

/// The first admin's login, from `AGORA_ADMIN_EMAIL`/`AGORA_ADMIN_PASSWORD`, else from
/// `<data-dir>/admin-credentials`, else generated and written there.
pub struct AdminCredentials {
    pub email: String,
    pub password: String,
    /// Where the credentials were written, when they were not given by environment.
    pub file: Option<PathBuf>,
    /// True when this run generated the password (so it is printed once).
    pub generated: bool,
}

impl AdminCredentials {
    pub fn resolve(data_dir: &Path) -> anyhow::Result<Self> {
        if let (Ok(email), Ok(password)) = (
            std::env::var("AGORA_ADMIN_EMAIL"),
            std::env::var("AGORA_ADMIN_PASSWORD"),
        ) {
            return Ok(Self {
                email,
                password,
                file: None,
                generated: false,
            });
        }
        let file = data_dir.join("admin-credentials");
        if let Ok(text) = std::fs::read_to_string(&file) {
            let field = |name: &str| {
                text.lines()
                    .find_map(|line| line.strip_prefix(name).map(|v| v.trim().to_owned()))
            };
            if let (Some(email), Some(password)) = (field("email:"), field("password:")) {
                return Ok(Self {
                    email,
                    password,
                    file: Some(file),
                    generated: false,
                });
            }
        }
        let password = random_secret(24);
        let text = format!(
            "# The first Agora admin, created by `agora up`. Keep this file private.\nusername: {ADMIN_USERNAME}\nemail: {DEFAULT_ADMIN_EMAIL}\npassword: {password}\n"
        );
        write_private(&file, &text)?;
        Ok(Self {
            email: DEFAULT_ADMIN_EMAIL.into(),
            password,
            file: Some(file),
            generated: true,
        })
    }
}

/// A service's own OAuth2 client id and secret.
pub struct ServiceClient {
    pub service: ServiceName,
    pub secret: String,
}

/// The payment gateway's API key and webhook secret, shared by payments and the simulator, the
/// way a Stripe account's keys are configured into payments. From `AGORA_PSP_API_KEY` and
/// `AGORA_PSP_WEBHOOK_SECRET` when set, new on every start otherwise.
pub struct Psp {
    pub api_key: String,
    pub webhook_secret: String,
    /// Where payments finds the gateway (the simulator).
    pub url: String,
    /// Where the gateway posts its webhooks (through Agora's API gateway, as Stripe would).
    pub webhook_url: String,
}

impl Psp {
    pub fn resolve(url: String, webhook_url: String) -> Self {
        let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            api_key: from_env("AGORA_PSP_API_KEY")
                .unwrap_or_else(|| format!("sk_test_{}", random_secret(32))),
            webhook_secret: from_env("AGORA_PSP_WEBHOOK_SECRET")
                .unwrap_or_else(|| format!("whsec_{}", random_secret(32))),
            url,
            webhook_url,
        }
    }
}

/// Writes one config file per service into `<data-dir>/config/` (mode 0600): the users service
/// learns every service client (it stores only hashes), each other service its own id and secret,
/// the gateway the replicas of each service (`upstreams`: service name → base URLs), payments and
/// the gateway simulator the PSP keys. Secrets are new on every start; users replaces the stored
/// hashes at start.
pub fn write_service_configs(
    data_dir: &Path,
    upstreams: &[(ServiceName, Vec<String>)],
    psp: &Psp,
) -> anyhow::Result<Vec<(ServiceName, PathBuf)>> {
    let dir = data_dir.join("config");
    std::fs::create_dir_all(&dir)?;
    let clients: Vec<ServiceClient> = ServiceName::ALL
        .iter()
        .filter(|s| {
            !matches!(
                s,
                ServiceName::Users | ServiceName::Gateway | ServiceName::PaymentGatewaySim
            )
        })
        .map(|&service| ServiceClient {
            service,
            secret: random_secret(40),
        })
        .collect();
    let mut files = Vec::new();
    for service in ServiceName::ALL {
        let mut text =
            String::from("# Written by `agora up` at every start. Holds secrets: keep private.\n");
        if service == ServiceName::Users {
            for client in &clients {
                let scopes: Vec<String> = client
                    .service
                    .client_scopes()
                    .iter()
                    .map(|s| format!("\"{s}\""))
                    .collect();
                let _ = write!(
                    text,
                    "\n[[service_clients]]\nid = \"{}\"\nsecret = \"{}\"\nscopes = [{}]\n",
                    client.service.as_str(),
                    client.secret,
                    scopes.join(", ")
                );
            }
        } else if service == ServiceName::Gateway {
            text.push_str("\n[upstreams]\n");
            for (upstream, urls) in upstreams {
                let urls: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
                let _ = writeln!(text, "{} = [{}]", upstream.as_str(), urls.join(", "));
            }
        } else if let Some(client) = clients.iter().find(|c| c.service == service) {
            let _ = write!(
                text,
                "client_id = \"{}\"\nclient_secret = \"{}\"\n",
                service.as_str(),
                client.secret
            );
        }
        let psp_keys = format!(
            "psp_api_key = \"{}\"\npsp_webhook_secret = \"{}\"\n",
            psp.api_key, psp.webhook_secret
        );
        if service == ServiceName::Payments {
            let _ = writeln!(text, "{psp_keys}psp_url = \"{}\"", psp.url);
        } else if service == ServiceName::PaymentGatewaySim {
            let _ = writeln!(text, "{psp_keys}webhook_url = \"{}\"", psp.webhook_url);
        }
        let path = dir.join(format!("{}.toml", service.as_str()));
        write_private(&path, &text)?;
        files.push((service, path));
    }
    Ok(files)
}

fn random_secret(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Creates or replaces `path` readable by its owner only.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_admin_credentials_are_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        std::env::remove_var("AGORA_ADMIN_EMAIL");
        let first = AdminCredentials::resolve(dir.path()).unwrap();
        assert!(first.generated);
        let file = first.file.clone().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = AdminCredentials::resolve(dir.path()).unwrap();
        assert!(!again.generated);
        assert_eq!(again.password, first.password);
    }
}
