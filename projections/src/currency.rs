//! ISO 4217 currencies ledgerline accepts, with their minor units.

/// (code, minor-unit exponent) from the ISO 4217 list. Usage in any other
/// currency is rejected: a statement cannot be rounded without the exponent.
const MINOR_UNITS: &[(&str, u32)] = &[
    ("AED", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("BHD", 3),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EGP", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("MXN", 2),
    ("MYR", 2),
    ("NGN", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PHP", 2),
    ("PLN", 2),
    ("RON", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TND", 3),
    ("TRY", 2),
    ("TWD", 2),
    ("UAH", 2),
    ("USD", 2),
    ("VND", 0),
    ("ZAR", 2),
];

/// The ISO 4217 exponent of `code` (2 for USD, 0 for JPY, 3 for KWD), or
/// `None` for a currency ledgerline does not accept.
pub fn minor_unit_exponent(code: &str) -> Option<u32> {
    // The table is sorted by code (a test checks it).
    MINOR_UNITS
        .binary_search_by_key(&code, |&(c, _)| c)
        .ok()
        .map(|i| MINOR_UNITS[i].1)
}

/// The accepted codes, comma separated, for error messages.
pub fn accepted_currencies() -> String {
    MINOR_UNITS
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents() {
        assert_eq!(minor_unit_exponent("USD"), Some(2));
        assert_eq!(minor_unit_exponent("JPY"), Some(0));
        assert_eq!(minor_unit_exponent("KWD"), Some(3));
        assert_eq!(minor_unit_exponent("XYZ"), None);
        assert_eq!(minor_unit_exponent("usd"), None);
        for &(code, exponent) in MINOR_UNITS {
            assert_eq!(minor_unit_exponent(code), Some(exponent), "{code}");
        }
        assert!(
            MINOR_UNITS.windows(2).all(|w| w[0].0 < w[1].0),
            "table sorted, no duplicates"
        );
    }
}
