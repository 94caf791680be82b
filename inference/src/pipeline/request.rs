//! The generation request a subscriber sends (`ledgerline generate --request
//! REQ.json`, `schemas/json/generation-request.schema.json`), and its
//! validation into the integer [`Recipe`] the job runs with and records.

use schemas::generation::{Recipe, RecipeKind, StemSetting};
use schemas::licence::{is_territory, WORLDWIDE};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Stem names a recipe may set: the catalog's stem slots.
pub const STEM_NAMES: [&str; 5] = ["vocals", "drums", "bass", "other", "mixture"];
/// Accepted per-stem gain, dB. Wider cuts are what `mute` is for; more boost
/// than +12 dB only clips.
pub const GAIN_DB_RANGE: std::ops::RangeInclusive<f64> = -60.0..=12.0;
/// Accepted tempo rates (2.0 = twice as fast): the phase vocoder keeps
/// transients recognisable within an octave of time scaling.
pub const TEMPO_RATE_RANGE: std::ops::RangeInclusive<f64> = 0.5..=2.0;
/// Accepted key shift, semitones either way.
pub const SEMITONES_MAX: f64 = 12.0;
/// The longest party or voice model id, as the catalog accepts them.
const ID_BYTES_MAX: usize = 64;

/// A generation request as a person writes it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationRequest {
    /// ISRC of a licensed recording.
    pub recording: String,
    /// Party id of the subscriber asking for the derivative.
    pub requested_by: String,
    /// ISO 3166-1 alpha-2 code of the requester's territory. Required: a
    /// request without one is refused with `territory_missing`.
    #[serde(default)]
    pub territory: Option<String>,
    pub recipe: RecipeRequest,
}

/// The recipe part of a request: floats as a person writes them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipeRequest {
    pub kind: RecipeKind,
    #[serde(default)]
    pub stems: BTreeMap<String, StemEdit>,
    #[serde(default = "unit_rate")]
    pub tempo_rate: f64,
    #[serde(default)]
    pub semitones: f64,
    #[serde(default)]
    pub voice_model: Option<String>,
}

fn unit_rate() -> f64 {
    1.0
}

/// One stem's edit: a gain, a mute, or both.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StemEdit {
    #[serde(default)]
    pub gain_db: Option<f64>,
    #[serde(default)]
    pub mute: Option<bool>,
}

/// What is wrong with a request; nothing is written for any of these.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    #[error("the request is not valid JSON of the expected shape: {0}")]
    Syntax(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("territory: territory_missing: a request names the requester's territory as an ISO 3166-1 alpha-2 code, e.g. \"territory\": \"US\"")]
    TerritoryMissing,
}

impl RequestError {
    /// The stable code of an error a client handles specially; `None` for
    /// the rest (a malformed request).
    pub fn code(&self) -> Option<&'static str> {
        match self {
            RequestError::TerritoryMissing => Some("territory_missing"),
            _ => None,
        }
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> RequestError {
    RequestError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// ISRC (ISO 3901) in compact form: `CCXXXYYNNNNN`.
fn is_isrc(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 12
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..5]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && b[5..].iter().all(u8::is_ascii_digit)
}

/// Party and voice model ids, as the catalog schema defines them.
fn is_id(text: &str) -> bool {
    (1..=ID_BYTES_MAX).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:@-".contains(&b))
}

/// A request that passed validation: who asked, for what, in integer units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidRequest {
    pub recording: String,
    pub requested_by: String,
    /// ISO 3166-1 alpha-2 code of the requester's territory.
    pub territory: String,
    pub recipe: Recipe,
}

impl GenerationRequest {
    /// Parses a request document (unknown fields are refused).
    pub fn from_json(text: &str) -> Result<GenerationRequest, RequestError> {
        serde_json::from_str(text).map_err(|e| RequestError::Syntax(e.to_string()))
    }

    /// Checks every field and quantizes the parameters to the integers the
    /// job runs with: gains to millibels, the tempo rate to ppm, the key
    /// shift to cents. The job uses the quantized values, not the floats,
    /// so a replay from the recorded integers reruns the same computation.
    pub fn validate(&self) -> Result<ValidRequest, RequestError> {
        if !is_isrc(&self.recording) {
            return Err(invalid(
                "recording",
                format!(
                    "{:?} is not an ISRC: expected 12 characters like GBAYE0601498",
                    self.recording
                ),
            ));
        }
        if !is_id(&self.requested_by) {
            return Err(invalid(
                "requested_by",
                format!(
                    "{:?} is not a party id: use 1 to 64 characters from A-Z a-z 0-9 . _ : @ -",
                    self.requested_by
                ),
            ));
        }
        let territory = match self.territory.as_deref() {
            None => return Err(RequestError::TerritoryMissing),
            Some(code) if code != WORLDWIDE && is_territory(code) => code.to_string(),
            Some(code) => {
                return Err(invalid(
                    "territory",
                    format!(
                        "{code:?} is not an ISO 3166-1 alpha-2 country code (e.g. US, GB, DE): a requester is in one country"
                    ),
                ))
            }
        };
        let recipe = &self.recipe;
        let mut stems = BTreeMap::new();
        for (name, edit) in &recipe.stems {
            let field = format!("recipe.stems.{name}");
            if !STEM_NAMES.contains(&name.as_str()) {
                return Err(invalid(
                    field,
                    format!("unknown stem; expected one of {}", STEM_NAMES.join(", ")),
                ));
            }
            let gain_db = edit.gain_db.unwrap_or(0.0);
            if !(gain_db.is_finite() && GAIN_DB_RANGE.contains(&gain_db)) {
                return Err(invalid(
                    format!("{field}.gain_db"),
                    format!(
                        "{gain_db} dB is outside {}..={} dB (use \"mute\": true to drop a stem)",
                        GAIN_DB_RANGE.start(),
                        GAIN_DB_RANGE.end()
                    ),
                ));
            }
            let mute = edit.mute.unwrap_or(false);
            if mute && recipe.kind == RecipeKind::Cover && name == "vocals" {
                return Err(invalid(
                    format!("{field}.mute"),
                    "a cover's vocal is the voice model's; muting it would leave a remix",
                ));
            }
            stems.insert(
                name.clone(),
                StemSetting {
                    gain_mb: (gain_db * 100.0).round() as i32,
                    mute,
                },
            );
        }
        if !(recipe.tempo_rate.is_finite() && TEMPO_RATE_RANGE.contains(&recipe.tempo_rate)) {
            return Err(invalid(
                "recipe.tempo_rate",
                format!(
                    "{} is outside {}..={} (1.0 keeps the tempo)",
                    recipe.tempo_rate,
                    TEMPO_RATE_RANGE.start(),
                    TEMPO_RATE_RANGE.end()
                ),
            ));
        }
        if !(recipe.semitones.is_finite() && recipe.semitones.abs() <= SEMITONES_MAX) {
            return Err(invalid(
                "recipe.semitones",
                format!(
                    "{} is outside -{SEMITONES_MAX}..={SEMITONES_MAX}",
                    recipe.semitones
                ),
            ));
        }
        match (recipe.kind, &recipe.voice_model) {
            (RecipeKind::Cover, None) => {
                return Err(invalid(
                    "recipe.voice_model",
                    "a cover needs a voice model id",
                ))
            }
            (RecipeKind::Remix, Some(id)) => {
                return Err(invalid(
                    "recipe.voice_model",
                    format!("a remix uses no voice model, but {id:?} is named; use \"kind\": \"cover\""),
                ))
            }
            (_, Some(id)) if !is_id(id) => {
                return Err(invalid(
                    "recipe.voice_model",
                    format!("{id:?} is not a voice model id: use 1 to 64 characters from A-Z a-z 0-9 . _ : @ -"),
                ))
            }
            _ => {}
        }
        Ok(ValidRequest {
            recording: self.recording.clone(),
            requested_by: self.requested_by.clone(),
            territory,
            recipe: Recipe {
                kind: recipe.kind,
                stems,
                tempo_rate_ppm: (recipe.tempo_rate * 1e6).round() as u32,
                semitones_cents: (recipe.semitones * 100.0).round() as i32,
                voice_model: recipe.voice_model.clone(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> Result<ValidRequest, RequestError> {
        GenerationRequest::from_json(&value.to_string())?.validate()
    }

    fn remix() -> serde_json::Value {
        json!({"recording": "ZZLL02600001", "requested_by": "creator-sam", "territory": "US",
               "recipe": {"kind": "remix", "stems": {"drums": {"gain_db": -3.0}, "vocals": {"mute": true}},
                          "tempo_rate": 1.25, "semitones": -2.5, "voice_model": null}})
    }

    #[test]
    fn a_remix_is_quantized_to_integer_units() {
        let valid = parse(remix()).unwrap();
        assert_eq!(valid.recipe.kind, RecipeKind::Remix);
        assert_eq!(
            valid.recipe.stems["drums"],
            StemSetting {
                gain_mb: -300,
                mute: false
            }
        );
        assert!(valid.recipe.stems["vocals"].mute);
        assert_eq!(valid.recipe.tempo_rate_ppm, 1_250_000);
        assert_eq!(valid.recipe.semitones_cents, -250);
        // Defaults: unit rate, no shift, no stems edited.
        let minimal = json!({"recording": "ZZLL02600001", "requested_by": "u", "territory": "GB",
                             "recipe": {"kind": "remix"}});
        let valid = parse(minimal).unwrap();
        assert_eq!(
            (valid.recipe.tempo_rate_ppm, valid.recipe.semitones_cents),
            (1_000_000, 0)
        );
    }

    #[test]
    fn out_of_range_and_inconsistent_requests_name_the_field() {
        let cases = [
            ("/recording", json!("not-an-isrc"), "recording"),
            ("/requested_by", json!("a b"), "requested_by"),
            ("/territory", json!("WW"), "territory"),
            ("/territory", json!("UK"), "territory"),
            ("/territory", json!("us"), "territory"),
            ("/recipe/tempo_rate", json!(3.0), "recipe.tempo_rate"),
            ("/recipe/tempo_rate", json!(0.1), "recipe.tempo_rate"),
            ("/recipe/semitones", json!(13), "recipe.semitones"),
            (
                "/recipe/stems/drums/gain_db",
                json!(40.0),
                "recipe.stems.drums.gain_db",
            ),
            ("/recipe/stems/kazoo", json!({}), "recipe.stems.kazoo"),
            ("/recipe/voice_model", json!("vm1"), "recipe.voice_model"),
        ];
        for (pointer, value, field) in cases {
            let mut request = remix();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            request.pointer_mut(parent).unwrap()[key] = value;
            match parse(request) {
                Err(RequestError::Invalid { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{pointer}: expected an error on {field}, got {other:?}"),
            }
        }
        let cover = json!({"recording": "ZZLL02600001", "requested_by": "u", "territory": "US",
                           "recipe": {"kind": "cover", "voice_model": null}});
        assert!(
            matches!(parse(cover), Err(RequestError::Invalid { field, .. }) if field == "recipe.voice_model")
        );
    }

    #[test]
    fn unknown_fields_and_a_muted_cover_vocal_are_refused() {
        let mut extra = remix();
        extra["recipe"]["speed"] = json!(2);
        assert!(matches!(parse(extra), Err(RequestError::Syntax(_))));
        let cover = json!({"recording": "ZZLL02600001", "requested_by": "u", "territory": "US",
                           "recipe": {"kind": "cover", "voice_model": "vm1", "stems": {"vocals": {"mute": true}}}});
        assert!(
            matches!(parse(cover), Err(RequestError::Invalid { field, .. }) if field == "recipe.stems.vocals.mute")
        );
    }

    #[test]
    fn a_request_without_a_territory_is_refused_with_its_code() {
        let mut request = remix();
        request.as_object_mut().unwrap().remove("territory");
        let error = parse(request).unwrap_err();
        assert_eq!(error, RequestError::TerritoryMissing);
        assert_eq!(error.code(), Some("territory_missing"));
        assert!(error.to_string().contains("territory_missing"), "{error}");
    }
}
