//! Order values, the order state machine and the checkout saga's steps.
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Confirmed,
    /// Out of stock (or the stock could not be held in time).
    Rejected,
    PaymentFailed,
    Shipped,
    Delivered,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Pending,
        Status::Confirmed,
        Status::Rejected,
        Status::PaymentFailed,
        Status::Shipped,
        Status::Delivered,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Confirmed => "confirmed",
            Status::Rejected => "rejected",
            Status::PaymentFailed => "payment_failed",
            Status::Shipped => "shipped",
            Status::Delivered => "delivered",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The transitions an order may take; anything else is a 409.
    pub fn can_become(self, next: Status) -> bool {
        use Status::*;
        matches!(
            (self, next),
            (Pending, Confirmed | Rejected | PaymentFailed | Cancelled)
                | (Confirmed, Shipped | Cancelled)
                | (Shipped, Delivered)
        )
    }
}

/// What the saga still has to do for an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Hold the stock (inventory reservation keyed by the order id).
    Reserve,
    /// Authorize the payment (payments, keyed by the order id).
    Authorize,
    /// Turn the held stock into sold stock; then the order is confirmed.
    Commit,
    /// Undo what was done (void the authorization, release the stock), then end in the saga's
    /// outcome (rejected or payment_failed).
    Compensate,
    /// Cancel a confirmed order: void or refund the payment, give the stock back.
    Cancel,
}

impl Step {
    pub const ALL: [Step; 5] = [
        Step::Reserve,
        Step::Authorize,
        Step::Commit,
        Step::Compensate,
        Step::Cancel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Reserve => "reserve",
            Step::Authorize => "authorize",
            Step::Commit => "commit",
            Step::Compensate => "compensate",
            Step::Cancel => "cancel",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The status an order is in while at this step: a cancellation undoes a confirmed order,
    /// every other step belongs to an order being placed. A step is entered only from it, so an
    /// order that moved on meanwhile (shipped, say) is never undone.
    pub fn status(self) -> Status {
        match self {
            Step::Cancel => Status::Confirmed,
            Step::Reserve | Step::Authorize | Step::Commit | Step::Compensate => Status::Pending,
        }
    }
}

pub const MAX_LINES: usize = 50;
pub const MAX_QUANTITY: i64 = 100;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub name: String,
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, e.g. `DE`.
    pub country: String,
}

/// Checks every field of an address; errors are (field, message).
pub fn check_address(a: &Address) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let mut text = |field: &str, value: &str, max: usize| {
        let n = value.trim().chars().count();
        if n == 0 || n > max || value.chars().any(char::is_control) {
            errors.push((
                format!("shipping_address.{field}"),
                format!("must be 1 to {max} characters"),
            ));
        }
    };
    text("name", &a.name, 100);
    text("line1", &a.line1, 200);
    if let Some(line2) = &a.line2 {
        text("line2", line2, 200);
    }
    text("city", &a.city, 100);
    text("postal_code", &a.postal_code, 20);
    if !COUNTRIES.contains(&a.country.as_str()) {
        errors.push((
            "shipping_address.country".into(),
            "must be an ISO 3166-1 alpha-2 code such as DE".into(),
        ));
    }
    errors
}

/// ISO 3166-1 alpha-2 codes.
const COUNTRIES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// A payment method token (`pm_...`): card details never pass through Agora.
pub fn check_payment_method(text: &str) -> Result<(), String> {
    let ok = text.len() > 3
        && text.len() <= 100
        && text.starts_with("pm_")
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err("must be a payment method token such as pm_card_visa".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_documented_transitions_are_allowed() {
        use Status::*;
        assert!(Pending.can_become(Confirmed));
        assert!(Confirmed.can_become(Cancelled));
        assert!(Shipped.can_become(Delivered));
        assert!(!Shipped.can_become(Cancelled));
        assert!(!Delivered.can_become(Shipped));
        assert!(!Rejected.can_become(Confirmed));
        assert!(!Pending.can_become(Shipped));
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        for s in Step::ALL {
            assert_eq!(Step::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn addresses_are_checked_field_by_field() {
        let good = Address {
            name: "Ada".into(),
            line1: "1 Main St".into(),
            line2: None,
            city: "Berlin".into(),
            postal_code: "10115".into(),
            country: "DE".into(),
        };
        assert!(check_address(&good).is_empty());
        let bad = Address {
            country: "Germany".into(),
            city: " ".into(),
            ..good
        };
        let fields: Vec<_> = check_address(&bad).into_iter().map(|e| e.0).collect();
        assert_eq!(
            fields,
            ["shipping_address.city", "shipping_address.country"]
        );
    }
}
