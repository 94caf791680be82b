//! Licence terms of a recording and the scope of an artist's voice consent,
//! as the catalog states them (inside `catalog.recording-*` and
//! `catalog.voice-model-*` events).
//!
//! The shapes are exactly those of `schemas/json/catalog.schema.json`, so a
//! document written for one deployment works in another. Every field but
//! `participating` is optional, and an absent field restricts nothing. A
//! recording without terms is not participating: using it needs the label's
//! opt-in. This module holds the terms; deciding a request against them is
//! the generation engine's job.

pub use crate::calendar_date::CalendarDate;
use crate::generation::RecipeKind;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The territory code that means every territory.
pub const WORLDWIDE: &str = "WW";

/// A recording's licence terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenceTerms {
    /// The label has opted the recording in; `false` (or no terms at all)
    /// refuses every request.
    pub participating: bool,
    /// The kinds of derivative allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<RecipeKind>>,
    /// The stems that may be used or changed, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stems: Option<Vec<String>>,
    /// The tempo rates allowed (1 keeps the tempo), both ends included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tempo_rate: Option<RateBounds>,
    /// The key shifts allowed in semitones, both ends included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semitones: Option<SemitoneBounds>,
    /// Whether a voice model may replace the vocal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<bool>,
    /// ISO 3166-1 alpha-2 codes of the territories a requester may be in,
    /// or [`WORLDWIDE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub territories: Option<Vec<String>>,
    /// The first day requests may be made, included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<CalendarDate>,
    /// The last day requests may be made, included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<CalendarDate>,
}

impl LicenceTerms {
    /// Participating, with no other restriction.
    pub fn unrestricted() -> LicenceTerms {
        LicenceTerms {
            participating: true,
            kinds: None,
            stems: None,
            tempo_rate: None,
            semitones: None,
            voice: None,
            territories: None,
            from: None,
            until: None,
        }
    }
}

/// Tempo rate bounds as decimal strings, e.g. `{"min": "0.8", "max": "1.25"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateBounds {
    #[serde(with = "rust_decimal::serde::str")]
    pub min: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub max: Decimal,
}

/// Key shift bounds in whole semitones, e.g. `{"min": -3, "max": 3}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SemitoneBounds {
    pub min: i32,
    pub max: i32,
}

/// What an artist's consent to a voice model covers. Absent fields
/// restrict nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentScope {
    /// The kinds of derivative the voice may be used in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<RecipeKind>>,
    /// Territories, as in [`LicenceTerms::territories`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub territories: Option<Vec<String>>,
    /// The last day the consent covers, included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<CalendarDate>,
}

/// Whether `code` is an officially assigned ISO 3166-1 alpha-2 country
/// code, or [`WORLDWIDE`].
pub fn is_territory(code: &str) -> bool {
    code == WORLDWIDE || ISO_3166_ALPHA_2.binary_search(&code).is_ok()
}

/// The officially assigned ISO 3166-1 alpha-2 codes, sorted.
const ISO_3166_ALPHA_2: [&str; 249] = [
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_issue_shaped_terms_round_trip_exactly() {
        let value = json!({
            "participating": true, "kinds": ["remix", "cover"],
            "stems": ["drums", "bass", "other", "vocals"],
            "tempo_rate": {"min": "0.8", "max": "1.25"}, "semitones": {"min": -3, "max": 3},
            "voice": true, "territories": ["WW"], "from": "2026-01-01", "until": "2027-12-31"
        });
        let terms: LicenceTerms = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(terms.tempo_rate.unwrap().max, Decimal::new(125, 2));
        assert_eq!(terms.until.unwrap().to_string(), "2027-12-31");
        assert_eq!(serde_json::to_value(&terms).unwrap(), value);
        let bare: LicenceTerms = serde_json::from_value(json!({"participating": false})).unwrap();
        assert_eq!(
            serde_json::to_value(&bare).unwrap(),
            json!({"participating": false})
        );
    }

    #[test]
    fn territories_are_assigned_alpha_2_codes_or_worldwide() {
        let mut sorted = ISO_3166_ALPHA_2;
        sorted.sort_unstable();
        assert_eq!(sorted, ISO_3166_ALPHA_2, "sorted, for the binary search");
        assert!(ISO_3166_ALPHA_2.windows(2).all(|w| w[0] != w[1]));
        for code in ["WW", "US", "GB", "DE", "JP", "BR", "SS", "AX", "ZW"] {
            assert!(is_territory(code), "{code}");
        }
        for code in ["XX", "UK", "EU", "us", "USA", "", "W"] {
            assert!(!is_territory(code), "{code}");
        }
    }

    #[test]
    fn unknown_fields_and_numeric_rates_are_refused() {
        let extra = json!({"participating": true, "regions": ["US"]});
        assert!(serde_json::from_value::<LicenceTerms>(extra).is_err());
        let numeric = json!({"participating": true, "tempo_rate": {"min": 0.8, "max": 1.25}});
        assert!(serde_json::from_value::<LicenceTerms>(numeric).is_err());
        let scope = json!({"kinds": ["cover"], "territories": ["WW"], "until": "2027-12-31"});
        let parsed: ConsentScope = serde_json::from_value(scope.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), scope);
    }
}
