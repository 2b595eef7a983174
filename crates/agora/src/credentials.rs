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

pub const DEMO_USERNAME: &str = "demo";

/// The demo shopper the demo seed leaves with a cart: from `<data-dir>/demo-credentials`, else
/// generated and written there.
pub struct DemoShopper {
    pub password: String,
    pub file: PathBuf,
}

impl DemoShopper {
    pub fn resolve(data_dir: &Path) -> anyhow::Result<Self> {
        let file = data_dir.join("demo-credentials");
        if let Ok(text) = std::fs::read_to_string(&file) {
            if let Some(password) = text
                .lines()
                .find_map(|line| line.strip_prefix("password:").map(|v| v.trim().to_owned()))
            {
                return Ok(Self { password, file });
            }
        }
        // The users service refuses a password containing the username.
        let password = std::iter::repeat_with(|| random_secret(24))
            .find(|p| !p.to_lowercase().contains(DEMO_USERNAME))
            .unwrap_or_default();
        let text = format!(
            "# The demo shopper, created by `agora up --seed demo`. Keep this file private.\nusername: {DEMO_USERNAME}\npassword: {password}\n"
        );
        write_private(&file, &text)?;
        Ok(Self { password, file })
    }
}

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

/// The users service's key-encryption key (it encrypts the token-signing key at rest): made once
/// into `<data-dir>/key-encryption-key` (mode 0600) and kept, since another key would not open
/// the stored signing key. `None` when `AGORA_KEY_ENCRYPTION_KEY` is set: users reads that itself.
fn key_encryption_key_file(data_dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    use base64::Engine;
    if std::env::var("AGORA_KEY_ENCRYPTION_KEY").is_ok_and(|v| !v.is_empty()) {
        return Ok(None);
    }
    let file = data_dir.join("key-encryption-key");
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            let whole = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .is_ok_and(|key| key.len() == 32);
            // Never replaced: that would lock users out of its own signing key.
            anyhow::ensure!(
                whole,
                "{} is not base64 of 32 bytes; restore it from a backup (or remove it together with the users database)",
                file.display()
            );
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rand::thread_rng().fill(&mut key);
            let text = base64::engine::general_purpose::STANDARD.encode(key);
            write_private(&file, &format!("{text}\n"))?;
        }
        Err(e) => anyhow::bail!("reading {}: {e}", file.display()),
    }
    Ok(Some(file))
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Writes one config file per service into `<data-dir>/config/` (mode 0600): the users service
/// learns every service client (it stores only hashes) and where its key-encryption key is, each
/// other service its own id and secret, the gateway the replicas of each service (`upstreams`:
/// service name → base URLs), payments and the gateway simulator the PSP keys. Secrets are new on
/// every start (but the key-encryption key); users replaces the stored hashes at start.
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
    let kek_file = key_encryption_key_file(data_dir)?;
    let mut files = Vec::new();
    for service in ServiceName::ALL {
        let mut text =
            String::from("# Written by `agora up` at every start. Holds secrets: keep private.\n");
        if service == ServiceName::Users {
            if let Some(file) = &kek_file {
                let _ = writeln!(
                    text,
                    "key_encryption_key_file = {}",
                    toml_string(&file.display().to_string())
                );
            }
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

    /// The value of `name = "..."` in a generated config file.
    fn setting(text: &str, name: &str) -> Option<String> {
        text.lines().find_map(|line| {
            let value = line.strip_prefix(name)?.trim().strip_prefix('=')?.trim();
            Some(value.trim_matches('"').to_owned())
        })
    }

    #[test]
    fn users_gets_a_private_key_encryption_key_that_stays_the_same_across_starts() {
        use base64::Engine;
        let dir = tempfile::tempdir().unwrap();
        let psp = Psp::resolve(String::new(), String::new());
        let mut keys = Vec::new();
        for _ in 0..2 {
            let configs = write_service_configs(dir.path(), &[], &psp).unwrap();
            let (_, users) = configs
                .iter()
                .find(|(s, _)| *s == ServiceName::Users)
                .unwrap();
            let text = std::fs::read_to_string(users).unwrap();
            assert!(
                !text.contains("key_encryption_key ="),
                "the key itself is not copied"
            );
            let file = setting(&text, "key_encryption_key_file").expect("users is told the file");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&file).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600);
            }
            let key = std::fs::read_to_string(&file).unwrap();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(key.trim())
                .unwrap();
            assert_eq!(bytes.len(), 32);
            keys.push(key);
        }
        assert_eq!(
            keys[0], keys[1],
            "a new key would not open the stored signing key"
        );
    }
}
