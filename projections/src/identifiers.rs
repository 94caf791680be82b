//! Syntax checks of the identifiers that enter the log: ISRC, ISWC, party
//! and model ids, periods, territories, line ids.

/// The longest party, voice model or policy id, in bytes.
pub const ID_BYTES_MAX: usize = 64;
/// The longest usage line id, in bytes.
pub const LINE_ID_BYTES_MAX: usize = 128;

/// Party, voice model and policy ids become part of stream names, so they use
/// the stream-name alphabet: 1 to 64 of `A-Z a-z 0-9 . _ : @ -`.
pub fn is_valid_id(id: &str) -> bool {
    is_id_of_length(id, ID_BYTES_MAX)
}

/// Usage line ids: 1 to 128 of `A-Z a-z 0-9 . _ : @ -`.
pub fn is_valid_line_id(id: &str) -> bool {
    is_id_of_length(id, LINE_ID_BYTES_MAX)
}

fn is_id_of_length(id: &str, bytes_max: usize) -> bool {
    !id.is_empty()
        && id.len() <= bytes_max
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:@-".contains(&b))
}

/// ISRC (ISO 3901) in its compact 12-character form: country code (2
/// letters), registrant (3 alphanumerics), year (2 digits), designation
/// (5 digits), e.g. `GBAYE0601498`.
pub fn is_valid_isrc(isrc: &str) -> bool {
    let b = isrc.as_bytes();
    b.len() == 12
        && b[0..2].iter().all(u8::is_ascii_uppercase)
        && b[2..5]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && b[5..12].iter().all(u8::is_ascii_digit)
}

/// Parses an ISWC (ISO 15707) written `T-034524680-1`, `T-034.524.680-1` or
/// `T0345246801`, checks its check digit, and returns the canonical form
/// `T-034524680-1`. The check digit makes `1 + sum(i * d_i) + check` a
/// multiple of 10, for the nine digits d_1..d_9.
pub fn canonical_iswc(iswc: &str) -> Option<String> {
    let rest = iswc.strip_prefix('T')?;
    let digits: String = match rest.len() {
        10 => rest.to_string(),
        12 if rest.as_bytes()[0] == b'-' && rest.as_bytes()[10] == b'-' => {
            format!("{}{}", &rest[1..10], &rest[11..])
        }
        14 if rest.as_bytes()[0] == b'-'
            && rest.as_bytes()[4] == b'.'
            && rest.as_bytes()[8] == b'.'
            && rest.as_bytes()[12] == b'-' =>
        {
            format!(
                "{}{}{}{}",
                &rest[1..4],
                &rest[5..8],
                &rest[9..12],
                &rest[13..]
            )
        }
        _ => return None,
    };
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let d: Vec<u32> = digits.bytes().map(|b| u32::from(b - b'0')).collect();
    let weighted: u32 = 1 + (1..=9).map(|i| i as u32 * d[i - 1]).sum::<u32>();
    let check = (10 - weighted % 10) % 10;
    (check == d[9]).then(|| format!("T-{}-{}", &digits[..9], d[9]))
}

/// `YYYY-MM` with a month 01 to 12.
pub fn is_valid_period(period: &str) -> bool {
    let b = period.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[5..].iter().all(u8::is_ascii_digit)
        && matches!(
            &period[5..],
            "01" | "02" | "03" | "04" | "05" | "06" | "07" | "08" | "09" | "10" | "11" | "12"
        )
}

/// The last day of a `YYYY-MM` period, or `None` for a malformed period.
pub fn period_last_day(period: &str) -> Option<schemas::licence::CalendarDate> {
    if !is_valid_period(period) {
        return None;
    }
    let year: u32 = period[..4].parse().ok()?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match &period[5..] {
        "02" if leap => 29,
        "02" => 28,
        "04" | "06" | "09" | "11" => 30,
        _ => 31,
    };
    format!("{period}-{days}").parse().ok()
}

/// ISO 3166-1 alpha-2 country codes (officially assigned), plus `XK`
/// (Kosovo, user-assigned but used by the industry) and `ZZ` (worldwide /
/// unknown territory, as in DDEX reports).
const TERRITORIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XK ZZ";

/// An ISO 3166-1 alpha-2 territory code (see `TERRITORIES`).
pub fn is_valid_territory(territory: &str) -> bool {
    // A fold checks every usage line's territory, so this is a lookup, not
    // a scan of the table.
    territory_slot(territory.as_bytes()).is_some_and(|slot| KNOWN_TERRITORIES[slot])
}

/// Where a code of two capital letters sits in a 26 x 26 table.
fn territory_slot(code: &[u8]) -> Option<usize> {
    match code {
        [first @ b'A'..=b'Z', second @ b'A'..=b'Z'] => {
            Some(usize::from(first - b'A') * 26 + usize::from(second - b'A'))
        }
        _ => None,
    }
}

/// [`TERRITORIES`] as a 26 x 26 table of every two-letter code.
static KNOWN_TERRITORIES: std::sync::LazyLock<[bool; 26 * 26]> = std::sync::LazyLock::new(|| {
    let mut known = [false; 26 * 26];
    // The table is fixed-width: two letters and a space per code.
    for code in TERRITORIES.as_bytes().chunks(3) {
        known[territory_slot(&code[..2]).expect("TERRITORIES holds capital letters")] = true;
    }
    known
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn territories_are_the_table_s_codes() {
        let listed: Vec<&str> = TERRITORIES.split(' ').collect();
        for first in b'A'..=b'Z' {
            for second in b'A'..=b'Z' {
                let code = String::from_utf8(vec![first, second]).unwrap();
                assert_eq!(
                    is_valid_territory(&code),
                    listed.contains(&code.as_str()),
                    "{code}"
                );
            }
        }
        for code in ["", "U", "us", "USA", "U1", "ÜS"] {
            assert!(!is_valid_territory(code), "{code:?}");
        }
    }

    #[test]
    fn isrc_syntax() {
        assert!(is_valid_isrc("GBAYE0601498"));
        assert!(is_valid_isrc("USRC17607839"));
        assert!(!is_valid_isrc("GB-AYE-06-01498"));
        assert!(!is_valid_isrc("gbaye0601498"));
        assert!(!is_valid_isrc("GBAYE060149"));
        assert!(!is_valid_isrc("GBAYE06014X8"));
    }

    #[test]
    fn iswc_syntax_and_check_digit() {
        assert_eq!(
            canonical_iswc("T-034524680-1").as_deref(),
            Some("T-034524680-1")
        );
        assert_eq!(
            canonical_iswc("T-034.524.680-1").as_deref(),
            Some("T-034524680-1")
        );
        assert_eq!(
            canonical_iswc("T0345246801").as_deref(),
            Some("T-034524680-1")
        );
        assert_eq!(canonical_iswc("T-034524680-2"), None);
        assert_eq!(canonical_iswc("T-03452468-01"), None);
        assert_eq!(canonical_iswc("X-034524680-1"), None);
        assert_eq!(
            canonical_iswc("T-000000001-0").as_deref(),
            Some("T-000000001-0")
        );
    }

    #[test]
    fn periods_territories_ids() {
        assert!(is_valid_period("2026-03"));
        assert!(!is_valid_period("2026-13"));
        assert!(!is_valid_period("2026-3"));
        assert!(is_valid_territory("JP") && is_valid_territory("US"));
        assert!(!is_valid_territory("XX") && !is_valid_territory("usa"));
        assert!(is_valid_territory("AD") && is_valid_territory("ZZ"));
        assert!(TERRITORIES.as_bytes().chunks(3).all(|code| {
            code[..2].iter().all(u8::is_ascii_uppercase) && (code.len() == 2 || code[2] == b' ')
        }));
        assert!(is_valid_id("label:ume@1"));
        assert!(!is_valid_id("a b") && !is_valid_id("") && !is_valid_id(&"x".repeat(65)));
    }

    #[test]
    fn a_period_ends_on_its_months_last_day() {
        for (period, last) in [
            ("2026-01", "2026-01-31"),
            ("2026-02", "2026-02-28"),
            ("2028-02", "2028-02-29"),
            ("2100-02", "2100-02-28"),
            ("2000-02", "2000-02-29"),
            ("2026-04", "2026-04-30"),
            ("2026-12", "2026-12-31"),
        ] {
            assert_eq!(period_last_day(period).unwrap().to_string(), last);
        }
        assert!(period_last_day("2026-13").is_none());
    }
}
