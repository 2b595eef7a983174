//! Identity values, parsed at the edge: usernames, emails, passwords, roles and scopes.
use std::collections::HashSet;
use std::sync::LazyLock;

/// A username: 3–32 characters of `[a-z0-9_.-]`, compared case-insensitively (stored lower case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(text: &str) -> Result<Self, String> {
        let lower = text.to_lowercase();
        let ok = (3..=32).contains(&lower.chars().count())
            && lower.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')
            });
        if ok {
            Ok(Self(lower))
        } else {
            Err("must be 3 to 32 characters of a-z, 0-9, '_', '.' and '-'".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, normalised to lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(text: &str) -> Result<Self, String> {
        let lower = text.trim().to_lowercase();
        if lower.len() <= 254
            && email_address::EmailAddress::is_valid(&lower)
            && lower.contains('.')
        {
            Ok(Self(lower))
        } else {
            Err("is not a valid email address".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../data/common-passwords.txt")
        .lines()
        .collect()
});

/// A new password: 10–128 characters, not one of the common passwords, not containing the
/// username. Never logged, never stored: only its hash is.
pub struct NewPassword(String);

impl NewPassword {
    pub fn parse(text: &str, username: &str) -> Result<Self, String> {
        let len = text.chars().count();
        if !(10..=128).contains(&len) {
            return Err("must be 10 to 128 characters".into());
        }
        let lower = text.to_lowercase();
        if COMMON_PASSWORDS.contains(lower.as_str()) {
            return Err("is too common; choose one that is hard to guess".into());
        }
        if !username.is_empty() && lower.contains(&username.to_lowercase()) {
            return Err("must not contain the username".into());
        }
        Ok(Self(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

pub const ROLE_CUSTOMER: &str = platform::auth::ROLE_CUSTOMER;
pub const ROLE_ADMIN: &str = platform::auth::ROLE_ADMIN;

/// Roles a user can hold: a non-empty set of `customer` and `admin`.
pub fn parse_roles(roles: &[String]) -> Result<Vec<String>, String> {
    if roles.is_empty() {
        return Err("must name at least one role".into());
    }
    let mut parsed = Vec::new();
    for role in roles {
        if role != ROLE_CUSTOMER && role != ROLE_ADMIN {
            return Err(format!("unknown role `{role}`: use customer or admin"));
        }
        if !parsed.contains(role) {
            parsed.push(role.clone());
        }
    }
    parsed.sort();
    Ok(parsed)
}

/// The scopes an OAuth2 client may hold.
pub const KNOWN_SCOPES: [&str; 7] = [
    "inventory:reserve",
    "inventory:write",
    "payments:write",
    "payments:read",
    "orders:read",
    "products:read",
    "events:read",
];

pub fn parse_scopes(scopes: &[String]) -> Result<Vec<String>, String> {
    let mut parsed = Vec::new();
    for scope in scopes {
        if !KNOWN_SCOPES.contains(&scope.as_str()) {
            return Err(format!(
                "unknown scope `{scope}`; known: {}",
                KNOWN_SCOPES.join(", ")
            ));
        }
        if !parsed.contains(scope) {
            parsed.push(scope.clone());
        }
    }
    parsed.sort();
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lower_cased_and_limited_to_their_alphabet() {
        assert_eq!(Username::parse("Alice.B").unwrap().as_str(), "alice.b");
        for bad in [
            "ab",
            "a b c",
            " alice",
            "ålice",
            "x".repeat(33).as_str(),
            "bob!",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_must_be_long_uncommon_and_free_of_the_username() {
        assert!(NewPassword::parse("correct horse battery", "alice").is_ok());
        assert!(NewPassword::parse("short", "alice").is_err());
        assert!(NewPassword::parse("password1234", "alice").is_err());
        assert!(NewPassword::parse("xx-ALICE-rules-xx", "alice").is_err());
        assert!(COMMON_PASSWORDS.len() >= 10_000);
    }

    #[test]
    fn emails_are_validated_and_lower_cased() {
        assert_eq!(
            Email::parse(" Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
        for bad in ["alice", "alice@", "@example.com", "a b@example.com"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
