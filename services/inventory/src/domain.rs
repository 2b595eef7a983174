//! Inventory values, parsed at the edge.

/// A stock-keeping unit: `[A-Z0-9-]{3,40}`, the same rule as the catalog's.
pub fn parse_sku(text: &str) -> Result<String, String> {
    let ok = (3..=40).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(text.to_owned())
    } else {
        Err("must be 3 to 40 characters of A-Z, 0-9 and '-'".into())
    }
}

/// Why stock was adjusted.
pub const REASONS: [&str; 5] = ["received", "damaged", "correction", "returned", "lost"];

pub fn parse_reason(text: &str) -> Result<String, String> {
    if REASONS.contains(&text) {
        Ok(text.to_owned())
    } else {
        Err(format!("must be one of {}", REASONS.join(", ")))
    }
}

/// A free-text note on a stock count, 1–200 characters.
pub fn parse_note(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 200 {
        Err("must be 1 to 200 characters".into())
    } else {
        Ok(trimmed.to_owned())
    }
}

pub const MAX_LINES: usize = 100;
pub const MAX_QUANTITY: i64 = 1000;
pub const MAX_TTL_SECONDS: i64 = 3600;
pub const MAX_ON_HAND: i64 = 1_000_000_000;

/// Reservation lines: 1–100, quantities 1–1000; a SKU named twice is summed. Sorted by SKU.
pub fn parse_lines(items: &[(String, i64)]) -> Result<Vec<(String, i64)>, (String, String)> {
    if items.is_empty() || items.len() > MAX_LINES {
        return Err(("items".into(), format!("must have 1 to {MAX_LINES} lines")));
    }
    let mut lines: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    for (i, (sku, quantity)) in items.iter().enumerate() {
        let sku = parse_sku(sku).map_err(|e| (format!("items[{i}].sku"), e))?;
        if !(1..=MAX_QUANTITY).contains(quantity) {
            return Err((
                format!("items[{i}].quantity"),
                format!("must be 1 to {MAX_QUANTITY}"),
            ));
        }
        *lines.entry(sku).or_default() += quantity;
    }
    Ok(lines.into_iter().collect())
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_merged_sorted_and_bounded() {
        let lines =
            parse_lines(&[("B-1".into(), 2), ("A-1".into(), 1), ("B-1".into(), 3)]).unwrap();
        assert_eq!(lines, vec![("A-1".to_string(), 1), ("B-1".to_string(), 5)]);
        assert_eq!(parse_lines(&[]).unwrap_err().0, "items");
        assert_eq!(
            parse_lines(&[("A-1".into(), 0)]).unwrap_err().0,
            "items[0].quantity"
        );
        assert_eq!(
            parse_lines(&[("a".into(), 1)]).unwrap_err().0,
            "items[0].sku"
        );
    }
}
