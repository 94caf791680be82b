//! Usage events: one `usage.line-imported` event per line of a usage report.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const LINE_IMPORTED: &str = "usage.line-imported";
/// Schema version of [`UsageLine`].
pub const USAGE_SCHEMA_VERSION: u32 = 1;

/// One usage line: revenue earned by one derivative in one period, territory
/// and currency. A line with `reverses` set refunds an earlier line in full:
/// its gross is exactly the negated original's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageLine {
    /// The reporter's unique id of this line; a line id is counted once, ever.
    pub line_id: String,
    /// `YYYY-MM`.
    pub period: String,
    /// The derivative's id (the generation job's id).
    pub derivative: Uuid,
    /// ISO 3166-1 alpha-2 territory code.
    pub territory: String,
    /// ISO 4217 alphabetic currency code.
    pub currency: String,
    pub streams: u64,
    /// Decimal string with at most 6 decimals; negative for a reversal.
    #[serde(with = "rust_decimal::serde::str")]
    pub gross: Decimal,
    /// The `line_id` this line refunds, if it is a reversal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverses: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_line_round_trips() {
        let value = json!({
            "line_id": "L1", "period": "2026-03",
            "derivative": "6f1c1c1e-1111-4a4a-8b8b-000000000001",
            "territory": "US", "currency": "USD", "streams": 1000, "gross": "-12.345678",
            "reverses": "L0"
        });
        let line: UsageLine = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(line.gross, Decimal::new(-12_345_678, 6));
        assert_eq!(serde_json::to_value(&line).unwrap(), value);
    }
}
