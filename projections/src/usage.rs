//! Usage reports: parsing the CSV and checking each line on its own, pure
//! functions of the bytes. Checking lines against the log and appending them
//! is [`crate::usage_import`]'s; the fold checks each line it reads with
//! [`check_line`] too.
//!
//! The CSV header is `line_id,period,derivative,territory,currency,streams,gross,reverses`
//! (`schemas/json/usage-line.schema.json`). Each line's event id is derived
//! from its line id ([`line_event_id`]), so a line id is counted once.

use crate::currency::{accepted_currencies, minor_unit_exponent};
use crate::identifiers::{is_valid_line_id, is_valid_period, is_valid_territory};
use ledger::envelope::SAFE_INTEGER_MAX;
use rust_decimal::Decimal;
use schemas::usage::UsageLine;
use sha2::{Digest, Sha256};
use std::str::FromStr;
use uuid::Uuid;

/// The CSV header, in this order.
pub const USAGE_HEADER: [&str; 8] = [
    "line_id",
    "period",
    "derivative",
    "territory",
    "currency",
    "streams",
    "gross",
    "reverses",
];
/// The most decimals a gross may have.
pub const GROSS_DECIMALS_MAX: u32 = 6;
/// The largest gross magnitude of one line: 10^12 currency units keeps every
/// allocation product inside `Decimal`'s 28 digits.
pub const GROSS_ABS_MAX: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0);
/// The most lines one file may hold: a file is one atomic append.
pub const USAGE_LINES_MAX: usize = ledger::store::APPEND_EVENTS_MAX;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum UsageError {
    #[error("the usage file is not valid CSV: {0}")]
    Csv(String),
    #[error("the usage file's header is {found:?}; it must be exactly line_id,period,derivative,territory,currency,streams,gross,reverses")]
    Header { found: String },
    #[error("the usage file has {count} lines; one import takes at most {USAGE_LINES_MAX}: split it into several files")]
    TooManyLines { count: usize },
    #[error("the usage file has {} error(s), nothing was imported: {}", .0.len(), .0.join("; "))]
    Invalid(Vec<String>),
}

/// The event id of a usage line: derived from its line id (SHA-256, as a
/// UUIDv8), so that the log itself refuses a second line with the same id.
pub fn line_event_id(line_id: &str) -> Uuid {
    let digest = Sha256::digest(format!("ledgerline usage line {line_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Parses a usage CSV. Every malformed field is reported as
/// `line N (line_id X), column: what is wrong`; N counts the header as line 1.
pub fn parse_usage_csv(bytes: &[u8]) -> Result<Vec<UsageLine>, UsageError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::None)
        .from_reader(bytes);
    let header = reader
        .headers()
        .map_err(|e| UsageError::Csv(e.to_string()))?
        .clone();
    if header.iter().collect::<Vec<_>>() != USAGE_HEADER {
        return Err(UsageError::Header {
            found: header.iter().collect::<Vec<_>>().join(","),
        });
    }
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(|e| UsageError::Csv(e.to_string()))?;
        if lines.len() + errors.len() >= USAGE_LINES_MAX {
            return Err(UsageError::TooManyLines { count: index + 1 });
        }
        let row = index + 2;
        match parse_row(&record) {
            Ok(line) => lines.push(line),
            Err((column, message)) => errors.push(format!(
                "line {row} (line_id {:?}), {column}: {message}",
                record.get(0).unwrap_or("")
            )),
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (index, line) in lines.iter().enumerate() {
        if !seen.insert(line.line_id.as_str()) {
            errors.push(format!(
                "line_id {:?} appears twice in the file (second time at data row {})",
                line.line_id,
                index + 1
            ));
        }
    }
    if errors.is_empty() {
        Ok(lines)
    } else {
        Err(UsageError::Invalid(errors))
    }
}

fn parse_row(record: &csv::StringRecord) -> Result<UsageLine, (&'static str, String)> {
    let field = |i: usize| record.get(i).unwrap_or("");
    let line_id = field(0);
    if !is_valid_line_id(line_id) {
        return Err((
            "line_id",
            format!("{line_id:?} is not valid: use 1 to 128 characters from A-Z a-z 0-9 . _ : @ -"),
        ));
    }
    let line = UsageLine {
        line_id: line_id.to_string(),
        period: field(1).to_string(),
        derivative: Uuid::parse_str(field(2)).map_err(|_| {
            (
                "derivative",
                format!("{:?} is not a derivative id (a UUID)", field(2)),
            )
        })?,
        territory: field(3).to_string(),
        currency: field(4).to_string(),
        streams: field(5)
            .parse::<u64>()
            .ok()
            .filter(|&n| n <= SAFE_INTEGER_MAX)
            .ok_or((
                "streams",
                format!(
                    "{:?} is not a count of streams (an integer from 0 to 2^53-1)",
                    field(5)
                ),
            ))?,
        gross: parse_gross(field(6)).map_err(|m| ("gross", m))?,
        reverses: match field(7) {
            "" => None,
            id if is_valid_line_id(id) => Some(id.to_string()),
            id => return Err(("reverses", format!("{id:?} is not a line id"))),
        },
    };
    check_line(&line)?;
    Ok(line)
}

/// Checks the fields of a usage line that need no other event: period,
/// territory, currency, gross precision and sign. The fold applies the same
/// check to every usage event, so a line appended by other means is
/// rejected the same way.
pub fn check_line(line: &UsageLine) -> Result<(), (&'static str, String)> {
    if !is_valid_period(&line.period) {
        return Err((
            "period",
            format!("{:?} is not a period: use YYYY-MM", line.period),
        ));
    }
    if !is_valid_territory(&line.territory) {
        return Err((
            "territory",
            format!(
                "{:?} is not an ISO 3166-1 alpha-2 territory code",
                line.territory
            ),
        ));
    }
    if minor_unit_exponent(&line.currency).is_none() {
        return Err((
            "currency",
            format!(
                "{:?} is not an accepted ISO 4217 currency; accepted: {}",
                line.currency,
                accepted_currencies()
            ),
        ));
    }
    if line.gross.scale() > GROSS_DECIMALS_MAX || line.gross.abs() > GROSS_ABS_MAX {
        return Err((
            "gross",
            format!(
                "{} has more than {GROSS_DECIMALS_MAX} decimals or exceeds 10^12",
                line.gross
            ),
        ));
    }
    if line.reverses.is_none() && line.gross.is_sign_negative() && !line.gross.is_zero() {
        return Err((
            "gross",
            format!(
                "{} is negative: only a reversal (with `reverses` set) may be negative",
                line.gross
            ),
        ));
    }
    if line.reverses.as_deref() == Some(line.line_id.as_str()) {
        return Err(("reverses", "a line cannot reverse itself".to_string()));
    }
    Ok(())
}

/// A gross: a plain decimal string, optionally negative, at most 6 decimals.
fn parse_gross(text: &str) -> Result<Decimal, String> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (integer, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = !integer.is_empty()
        && integer.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && (fraction.len() as u32) <= GROSS_DECIMALS_MAX
        && !(digits.contains('.') && fraction.is_empty());
    let gross = if plain && integer.len() <= 13 {
        Decimal::from_str(text).ok()
    } else {
        None
    };
    gross.filter(|g| g.abs() <= GROSS_ABS_MAX).ok_or_else(|| {
        format!("{text:?} is not a gross amount: write a decimal string with at most {GROSS_DECIMALS_MAX} decimals and at most 10^12, like \"12.345678\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "line_id,period,derivative,territory,currency,streams,gross,reverses\n";
    const D: &str = "6f1c1c1e-1111-4a4a-8b8b-000000000001";

    #[test]
    fn gross_limit_constant_is_ten_to_the_twelfth() {
        assert_eq!(GROSS_ABS_MAX, Decimal::from(1_000_000_000_000i64));
    }

    #[test]
    fn parses_lines_and_reversals() {
        let csv = format!(
            "{HEADER}L1,2026-03,{D},US,USD,1000,12.345678,\nL2,2026-04,{D},JP,JPY,5,-100,L1\n"
        );
        let lines = parse_usage_csv(csv.as_bytes()).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].gross, Decimal::new(12_345_678, 6));
        assert_eq!(lines[1].reverses.as_deref(), Some("L1"));
    }

    #[test]
    fn malformed_lines_are_all_reported() {
        let csv = format!(
            "{HEADER}L1,2026-13,{D},US,USD,1,1,\nL2,2026-03,{D},US,XYZ,1,1,\nL3,2026-03,{D},US,USD,1,1.1234567,\nL4,2026-03,{D},US,USD,1,-1,\nL5,2026-03,nope,US,USD,1,1,\nL1,2026-03,{D},QQ,USD,1,1,\n"
        );
        let UsageError::Invalid(errors) = parse_usage_csv(csv.as_bytes()).unwrap_err() else {
            panic!("expected field errors")
        };
        assert!(
            errors[0].starts_with("line 2 (line_id \"L1\"), period: \"2026-13\""),
            "{errors:?}"
        );
        assert!(
            errors[1].contains("currency: \"XYZ\" is not an accepted ISO 4217 currency"),
            "{errors:?}"
        );
        assert!(errors[2].contains("gross: \"1.1234567\""), "{errors:?}");
        assert!(errors[3].contains("only a reversal"), "{errors:?}");
        assert!(errors[4].contains("derivative: \"nope\""), "{errors:?}");
        assert!(errors[5].contains("territory"), "{errors:?}");
        assert_eq!(errors.len(), 6);
    }

    #[test]
    fn header_must_match() {
        let csv = "line_id,period\nL1,2026-03\n";
        assert!(matches!(
            parse_usage_csv(csv.as_bytes()),
            Err(UsageError::Header { .. })
        ));
    }

    #[test]
    fn line_event_ids_are_stable_and_distinct() {
        assert_eq!(line_event_id("L1"), line_event_id("L1"));
        assert_ne!(line_event_id("L1"), line_event_id("L2"));
        assert_eq!(line_event_id("L1").get_version_num(), 8);
    }
}
