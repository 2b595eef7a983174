//! The rules of a cart, apart from storage: how many lines and units, what a secret is, and what a
//! line's flags are.
use base64::Engine;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// Lines a cart holds at most.
pub const MAX_LINES: i64 = 100;
/// Units of one product a line holds at most (and at least 1).
pub const MAX_QUANTITY: i64 = 99;

/// A quantity of a line: 1 to 99.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(i64);

impl Quantity {
    pub fn parse(value: i64) -> Result<Self, String> {
        if (1..=MAX_QUANTITY).contains(&value) {
            Ok(Self(value))
        } else {
            Err(format!("must be 1 to {MAX_QUANTITY}"))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A product id: a UUID, in its canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductId(String);

impl ProductId {
    pub fn parse(text: &str) -> Result<Self, String> {
        uuid::Uuid::parse_str(text)
            .map(|id| Self(id.to_string()))
            .map_err(|_| "must be a product id (UUID)".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The secret of a guest cart: 32 random bytes, base64url. Only its hash is stored.
pub struct CartSecret(String);

impl CartSecret {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// What is stored of a secret (and compared): its SHA-256, hex.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Money in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Money {
    pub amount: i64,
    /// ISO 4217.
    pub currency: String,
}

/// Why a line cannot be bought as it stands, until the buyer acknowledges it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Flag {
    /// The catalog's price is not the one the buyer saw.
    PriceChanged { old_price: Money, new_price: Money },
    /// The product was deleted from the catalog (`discontinued`) or has no stock (`sold_out`).
    Unavailable { reason: Unavailable },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unavailable {
    Discontinued,
    SoldOut,
}

/// A line's product as the projection knows it.
#[derive(Debug, Clone)]
pub struct Product {
    pub sku: String,
    pub name: String,
    pub price: Money,
    pub deleted: bool,
    /// Units available; `None` before inventory said anything about the SKU.
    pub available: Option<i64>,
}

/// The flags of a line whose buyer saw `seen` for `quantity` units of `product`.
pub fn flags(seen: &Money, product: Option<&Product>) -> Vec<Flag> {
    let Some(product) = product.filter(|p| !p.deleted) else {
        return vec![Flag::Unavailable {
            reason: Unavailable::Discontinued,
        }];
    };
    let mut flags = Vec::new();
    if product.price != *seen {
        flags.push(Flag::PriceChanged {
            old_price: seen.clone(),
            new_price: product.price.clone(),
        });
    }
    if product.available.is_some_and(|a| a <= 0) {
        flags.push(Flag::Unavailable {
            reason: Unavailable::SoldOut,
        });
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(amount: i64) -> Money {
        Money {
            amount,
            currency: "EUR".into(),
        }
    }

    fn product(price: i64, deleted: bool, available: Option<i64>) -> Product {
        Product {
            sku: "A-1".into(),
            name: "A".into(),
            price: eur(price),
            deleted,
            available,
        }
    }

    #[test]
    fn quantities_are_one_to_ninety_nine() {
        assert!(Quantity::parse(0).is_err());
        assert!(Quantity::parse(1).is_ok());
        assert!(Quantity::parse(99).is_ok());
        assert!(Quantity::parse(100).is_err());
        assert!(Quantity::parse(-1).is_err());
    }

    #[test]
    fn a_line_as_seen_and_in_stock_has_no_flag() {
        assert!(flags(&eur(100), Some(&product(100, false, Some(3)))).is_empty());
        assert!(flags(&eur(100), Some(&product(100, false, None))).is_empty());
    }

    #[test]
    fn a_repriced_sold_out_or_deleted_product_is_flagged() {
        assert_eq!(
            flags(&eur(100), Some(&product(120, false, Some(1)))),
            vec![Flag::PriceChanged {
                old_price: eur(100),
                new_price: eur(120)
            }]
        );
        assert_eq!(
            flags(&eur(100), Some(&product(100, false, Some(0)))),
            vec![Flag::Unavailable {
                reason: Unavailable::SoldOut
            }]
        );
        assert_eq!(
            flags(&eur(100), Some(&product(100, true, Some(5)))),
            vec![Flag::Unavailable {
                reason: Unavailable::Discontinued
            }]
        );
        assert_eq!(
            flags(&eur(100), None),
            vec![Flag::Unavailable {
                reason: Unavailable::Discontinued
            }]
        );
    }

    #[test]
    fn a_secret_is_stored_only_as_its_hash() {
        let secret = CartSecret::generate();
        assert_eq!(secret.expose().len(), 43);
        assert_ne!(secret_hash(secret.expose()), secret.expose());
        assert_eq!(secret_hash("x"), secret_hash("x"));
    }
}
