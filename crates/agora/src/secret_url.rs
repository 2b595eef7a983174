//! URLs that may carry a password (PostgreSQL, RabbitMQ) given to the command line. A command line
//! is visible to every local user (`ps`, `/proc/<pid>/cmdline`), so an argument holding a password
//! is refused, and the refusal never repeats the URL; such a URL comes from the environment or from
//! a file instead.
use std::path::Path;

/// Whether `url` carries a password, in its user part or as a `password` parameter.
fn has_password(url: &str) -> bool {
    match reqwest::Url::parse(url) {
        Ok(parsed) => {
            parsed.password().is_some_and(|p| !p.is_empty())
                || parsed.query_pairs().any(|(key, _)| key == "password")
        }
        // Not a URL (and so refused later): still never let a password through.
        Err(_) => url.to_ascii_lowercase().contains("password"),
    }
}

/// Refuses the argument `flag` when its URL holds a password; `instead` says where it goes.
pub fn refuse_password(flag: &str, url: &str, instead: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !has_password(url),
        "{flag}: the URL holds a password, which every local user could read in `ps`; \
         pass the URL in {instead}"
    );
    Ok(())
}

/// The URL in the file `path` named by `flag` (trimmed; an empty file is an error).
pub fn from_file(flag: &str, path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{flag} {}: {e}", path.display()))?;
    let url = text.trim();
    anyhow::ensure!(
        !url.is_empty(),
        "{flag} {}: the file is empty",
        path.display()
    );
    Ok(url.to_owned())
}

/// A URL setting of `agora up`: the argument (without a password), else the file, else the
/// environment's value (`from_env`, blank ignored).
pub struct Source<'a> {
    /// The argument's name and value.
    pub flag: (&'a str, Option<&'a str>),
    /// The file argument's name and value.
    pub file: (&'a str, Option<&'a Path>),
    /// The environment variable's name and value.
    pub env: (&'a str, Option<String>),
}

impl Source<'_> {
    pub fn resolve(self) -> anyhow::Result<Option<String>> {
        let (flag, file, env) = (self.flag.0, self.file.0, self.env.0);
        if let Some(url) = self.flag.1 {
            refuse_password(flag, url, &format!("{env} or in a file named by {file}"))?;
            return Ok(Some(url.to_owned()));
        }
        if let Some(path) = self.file.1 {
            return from_file(file, path).map(Some);
        }
        Ok(self
            .env
            .1
            .map(|url| url.trim().to_owned())
            .filter(|url| !url.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_seen_in_the_user_part_or_as_a_parameter() {
        assert!(has_password("amqp://guest:guest@127.0.0.1:5672/%2f"));
        assert!(has_password("postgres://agora@db/agora?password=x"));
        assert!(has_password("not a url but a password=x"));
        assert!(!has_password("amqp://guest@127.0.0.1:5672/%2f"));
        assert!(!has_password("postgres://postgres@127.0.0.1:5432/test"));
        assert!(!has_password("postgres://agora:@db/agora"));
    }
}
