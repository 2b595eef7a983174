//! Payment values and the payment state machine.
use serde_json::Value;

/// Where a payment is. `*_pending` means a gateway call was made whose outcome is not known yet;
/// the reconciliation worker settles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Authorization asked for, outcome unknown.
    Pending,
    Authorized,
    Declined,
    /// The gateway refused the request itself (for example an unknown payment method).
    Failed,
    CapturePending,
    Captured,
    VoidPending,
    Voided,
    /// Everything captured was refunded.
    Refunded,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Pending,
        Status::Authorized,
        Status::Declined,
        Status::Failed,
        Status::CapturePending,
        Status::Captured,
        Status::VoidPending,
        Status::Voided,
        Status::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Authorized => "authorized",
            Status::Declined => "declined",
            Status::Failed => "failed",
            Status::CapturePending => "capture_pending",
            Status::Captured => "captured",
            Status::VoidPending => "void_pending",
            Status::Voided => "voided",
            Status::Refunded => "refunded",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Waiting for the outcome of a gateway call.
    pub fn is_unsettled(self) -> bool {
        matches!(
            self,
            Status::Pending | Status::CapturePending | Status::VoidPending
        )
    }
}

pub const MAX_AMOUNT: i64 = 100_000_000;

/// An amount in minor units: 1 to 100,000,000.
pub fn parse_amount(amount: i64) -> Result<i64, String> {
    if (1..=MAX_AMOUNT).contains(&amount) {
        Ok(amount)
    } else {
        Err(format!("must be 1 to {MAX_AMOUNT} (minor units)"))
    }
}

/// An ISO 4217 code, upper case.
pub fn parse_currency(text: &str) -> Result<String, String> {
    if text.len() == 3 && text.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(text.to_owned())
    } else {
        Err("must be an ISO 4217 code such as EUR".into())
    }
}

/// A gateway payment method token (`pm_...`): Agora never sees card details.
pub fn parse_payment_method(text: &str) -> Result<String, String> {
    let ok = text.len() <= 100
        && text.starts_with("pm_")
        && text.len() > 3
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(text.to_owned())
    } else {
        Err("must be a payment method token such as pm_card_visa".into())
    }
}

/// An id chosen by a caller (an order id): 1 to 64 characters of letters, digits, '-' and '_'.
pub fn parse_reference(text: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(text.to_owned())
    } else {
        Err("must be 1 to 64 characters of letters, digits, '-' and '_'".into())
    }
}

/// An `Idempotency-Key`: 1 to 255 visible ASCII characters.
pub fn parse_idempotency_key(text: &str) -> Result<String, String> {
    if (1..=255).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(text.to_owned())
    } else {
        Err("must be 1 to 255 visible ASCII characters".into())
    }
}

/// Field names that would carry card data. Agora takes tokens only, so a request holding any of
/// them is refused before it is read further (and nothing of it is logged or stored).
const CARD_FIELDS: [&str; 11] = [
    "card",
    "card_number",
    "number",
    "pan",
    "cvc",
    "cvv",
    "cvv2",
    "exp_month",
    "exp_year",
    "expiry",
    "expiration",
];

/// The card-like fields anywhere in a JSON body, by their path.
pub fn card_fields(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    walk(value, "", &mut found);
    found
}

fn walk(value: &Value, path: &str, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let here = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                if CARD_FIELDS.contains(&key.to_ascii_lowercase().as_str()) {
                    found.push(here.clone());
                }
                walk(inner, &here, found);
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                walk(inner, &format!("{path}[{i}]"), found);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn card_fields_are_found_at_any_depth() {
        let body = json!({"amount": 1, "source": {"Card_Number": "4242", "cvc": "1"}, "x": [{"exp_month": 1}]});
        assert_eq!(
            card_fields(&body),
            vec!["source.Card_Number", "source.cvc", "x[0].exp_month"]
        );
        assert!(card_fields(&json!({"payment_method": "pm_card_visa"})).is_empty());
    }

    #[test]
    fn values_are_checked_at_the_edge() {
        assert!(parse_amount(0).is_err());
        assert!(parse_amount(MAX_AMOUNT + 1).is_err());
        assert_eq!(parse_currency("EUR"), Ok("EUR".into()));
        assert!(parse_currency("eur").is_err());
        assert!(parse_payment_method("pm_card_visa").is_ok());
        assert!(parse_payment_method("4242424242424242").is_err());
        assert!(parse_payment_method("pm_").is_err());
        assert!(parse_reference("0193a8c4-1d2e-7f00-8000-000000000000").is_ok());
        assert!(parse_reference("a b").is_err());
        assert!(parse_idempotency_key("").is_err());
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
    }
}
