//! The catalog's values, parsed once at the edge so that everything past it can trust them.
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A stock-keeping unit: `[A-Z0-9-]{3,40}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sku(String);

impl Sku {
    pub fn parse(text: &str) -> Result<Self, String> {
        let ok = (3..=40).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err("must be 3 to 40 characters of A-Z, 0-9 and '-'".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A category's URL name: `[a-z0-9-]{1,64}`, not starting or ending with '-'.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Slug(String);

impl Slug {
    pub fn parse(text: &str) -> Result<Self, String> {
        let ok = (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !text.starts_with('-')
            && !text.ends_with('-');
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(
                "must be 1 to 64 characters of a-z, 0-9 and '-', not starting or ending with '-'"
                    .into(),
            )
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Text with a length range in characters, trimmed.
fn bounded(text: &str, min: usize, max: usize) -> Result<String, String> {
    let trimmed = text.trim();
    let len = trimmed.chars().count();
    if len < min || len > max {
        Err(if min > 0 {
            format!("must be {min} to {max} characters")
        } else {
            format!("must be at most {max} characters")
        })
    } else {
        Ok(trimmed.to_owned())
    }
}

/// A product name, 1–200 characters once trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(pub String);

impl ProductName {
    pub fn parse(text: &str) -> Result<Self, String> {
        bounded(text, 1, 200).map(Self)
    }
}

/// A category name, 1–100 characters once trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryName(pub String);

impl CategoryName {
    pub fn parse(text: &str) -> Result<Self, String> {
        bounded(text, 1, 100).map(Self)
    }
}

/// A description, at most `max` characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(pub String);

impl Description {
    pub fn parse(text: &str, max: usize) -> Result<Self, String> {
        bounded(text, 0, max).map(Self)
    }
}

/// ISO 4217 codes the catalog accepts.
const CURRENCIES: [&str; 30] = [
    "AUD", "BRL", "CAD", "CHF", "CLP", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD", "HUF", "IDR",
    "ILS", "INR", "ISK", "JPY", "KRW", "MXN", "MYR", "NOK", "NZD", "PHP", "PLN", "RON", "SEK",
    "SGD", "THB", "TRY", "USD",
];

/// Money in minor units (cents), never a float.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Money {
    /// Minor units, e.g. 1999 for 19.99.
    pub amount: i64,
    /// ISO 4217, e.g. "EUR".
    pub currency: String,
}

impl Money {
    /// A price, or every reason it is not one, by field.
    pub fn parse(amount: i64, currency: &str) -> Result<Self, Vec<(&'static str, String)>> {
        let mut errors = Vec::new();
        if amount < 0 {
            errors.push(("price.amount", "must be zero or more (minor units)".into()));
        }
        if !CURRENCIES.contains(&currency) {
            errors.push((
                "price.currency",
                "must be an ISO 4217 code this catalog accepts, e.g. EUR or USD".into(),
            ));
        }
        if errors.is_empty() {
            Ok(Self {
                amount,
                currency: currency.to_owned(),
            })
        } else {
            Err(errors)
        }
    }
}

/// Free-form string attributes: at most 20, keys 1–40 characters, values at most 200.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes(pub BTreeMap<String, String>);

impl Attributes {
    pub fn parse(map: BTreeMap<String, String>) -> Result<Self, String> {
        if map.len() > 20 {
            return Err("at most 20 attributes".into());
        }
        for (key, value) in &map {
            let key_len = key.chars().count();
            if key_len == 0 || key_len > 40 {
                return Err(format!(
                    "attribute names must be 1 to 40 characters: `{key}`"
                ));
            }
            if value.chars().count() > 200 {
                return Err(format!(
                    "the value of `{key}` is longer than 200 characters"
                ));
            }
        }
        Ok(Self(map))
    }
}

/// Turns what a shopper typed into search words: letters and digits only, lower case, at most ten.
pub fn search_words(q: &str) -> Vec<String> {
    // Lowering can add a mark that is not alphanumeric ("İ" becomes "i" and a combining dot):
    // it is dropped, so the word stays one word that matches how people type it.
    q.split(|c: char| !c.is_alphanumeric())
        .map(|w| {
            w.to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .take(10)
        .collect()
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_and_slugs_accept_only_their_alphabet() {
        assert!(Sku::parse("AB-12").is_ok());
        for bad in ["ab-12", "A", "A B C", "ÄÖÜ-1", &"A".repeat(41)] {
            assert!(Sku::parse(bad).is_err(), "{bad}");
        }
        assert!(Slug::parse("coffee-tea").is_ok());
        for bad in ["", "-x", "x-", "Coffee", "a/b", &"a".repeat(65)] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn money_is_non_negative_minor_units_in_a_known_currency() {
        assert!(Money::parse(0, "EUR").is_ok());
        assert_eq!(Money::parse(-1, "EUR").unwrap_err()[0].0, "price.amount");
        assert_eq!(Money::parse(1, "EURO").unwrap_err()[0].0, "price.currency");
        assert_eq!(Money::parse(-1, "eur").unwrap_err().len(), 2);
    }

    #[test]
    fn a_letter_whose_lower_case_has_a_combining_mark_stays_one_word() {
        // Found by the search-words property: "İ" lowers to "i" + U+0307.
        assert_eq!(search_words("İstanbul"), vec!["istanbul"]);
    }

    #[test]
    fn search_words_drop_operators_and_punctuation() {
        assert_eq!(
            search_words("Coffee* AND \"grinder\"--"),
            vec!["coffee", "and", "grinder"]
        );
        assert!(search_words("  -- !! ").is_empty());
    }
}
