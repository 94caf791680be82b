//! Catalog events: parties, works, recordings, voice models and the royalty
//! policy, as appended by `ledgerline catalog import`.
//!
//! Each entity lives on its own stream ([`party_stream`], ...). Version 0 of a
//! stream is the `*-registered` event; every later version is an `*-amended`
//! event carrying the entity's complete new state (not a delta), so a reader
//! only needs the latest event at or before a seq. An amendment applies to
//! usage appended after it. Shares are decimal strings that sum to exactly 1
//! per split list; stems are content hashes of the licensed files' bytes.

use crate::calendar_date::CalendarDate;
use crate::content_hash::ContentHash;
use crate::licence::{ConsentScope, LicenceTerms};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub const PARTY_REGISTERED: &str = "catalog.party-registered";
pub const PARTY_AMENDED: &str = "catalog.party-amended";
pub const WORK_REGISTERED: &str = "catalog.work-registered";
pub const WORK_AMENDED: &str = "catalog.work-amended";
pub const RECORDING_REGISTERED: &str = "catalog.recording-registered";
pub const RECORDING_AMENDED: &str = "catalog.recording-amended";
pub const VOICE_MODEL_REGISTERED: &str = "catalog.voice-model-registered";
pub const VOICE_MODEL_AMENDED: &str = "catalog.voice-model-amended";
pub const POLICY_SET: &str = "catalog.policy-set";
pub const POLICY_AMENDED: &str = "catalog.policy-amended";
pub const VOICE_CONSENT_WITHDRAWN: &str = "catalog.voice-consent-withdrawn";

/// Schema version of every catalog payload in this module.
pub const CATALOG_SCHEMA_VERSION: u32 = 1;

/// The party id that receives the platform's share of every usage line.
/// It need not be registered; a registered party with this id names it.
pub const PLATFORM_PARTY: &str = "platform";

pub fn party_stream(id: &str) -> String {
    format!("party-{id}")
}
pub fn work_stream(iswc: &str) -> String {
    format!("work-{iswc}")
}
pub fn recording_stream(isrc: &str) -> String {
    format!("recording-{isrc}")
}
pub fn voice_model_stream(id: &str) -> String {
    format!("voice-model-{id}")
}
pub fn policy_stream(id: &str) -> String {
    format!("policy-{id}")
}
/// The stream of a voice model's consent withdrawals. It is not the
/// `voice-model-<id>` stream, whose last payload the catalog importer
/// compares with the document.
pub fn voice_consent_stream(id: &str) -> String {
    format!("voice-consent-{id}")
}

/// What a party is to the catalog. Creators (subscribers who request
/// derivatives) need not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartyRole {
    Artist,
    Label,
    Publisher,
    Songwriter,
    Producer,
    Creator,
    Platform,
    Other,
}

impl PartyRole {
    pub const ALL: [PartyRole; 8] = [
        PartyRole::Artist,
        PartyRole::Label,
        PartyRole::Publisher,
        PartyRole::Songwriter,
        PartyRole::Producer,
        PartyRole::Creator,
        PartyRole::Platform,
        PartyRole::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PartyRole::Artist => "artist",
            PartyRole::Label => "label",
            PartyRole::Publisher => "publisher",
            PartyRole::Songwriter => "songwriter",
            PartyRole::Producer => "producer",
            PartyRole::Creator => "creator",
            PartyRole::Platform => "platform",
            PartyRole::Other => "other",
        }
    }
}

/// `catalog.party-registered` / `catalog.party-amended`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    pub id: String,
    pub name: String,
    pub role: PartyRole,
}

/// One party's share of an amount; a split list's shares sum to exactly 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    pub party: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub share: Decimal,
}

/// `catalog.work-registered` / `catalog.work-amended`: a musical work
/// (composition), identified by its ISWC (ISO 15707), e.g. `T-034524680-1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Work {
    pub iswc: String,
    pub title: String,
    pub publishing_splits: Vec<Split>,
}

/// The licensed stems of a recording, as content hashes of the files' bytes.
/// `mixture` is the full mix, for recordings delivered without stems.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stems {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocals: Option<ContentHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drums: Option<ContentHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bass: Option<ContentHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other: Option<ContentHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixture: Option<ContentHash>,
}

impl Stems {
    /// The stems present, by name, in a fixed order.
    pub fn present(&self) -> Vec<(&'static str, &ContentHash)> {
        [
            ("vocals", &self.vocals),
            ("drums", &self.drums),
            ("bass", &self.bass),
            ("other", &self.other),
            ("mixture", &self.mixture),
        ]
        .into_iter()
        .filter_map(|(name, hash)| hash.as_ref().map(|h| (name, h)))
        .collect()
    }
}

/// `catalog.recording-registered` / `catalog.recording-amended`: a sound
/// recording (master), identified by its ISRC (ISO 3901), e.g. `GBAYE0601498`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recording {
    pub isrc: String,
    pub title: String,
    /// ISWC of the work this recording performs.
    pub work: String,
    pub master_splits: Vec<Split>,
    pub stems: Stems,
    /// The label's licence terms; without them the recording is not
    /// participating ([`crate::licence`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<LicenceTerms>,
}

/// The artist's consent to a voice model. Inference must refuse to use a
/// model whose consent is not `granted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    pub granted: bool,
    /// Where the consent is recorded (contract number, document id), if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// What the consent covers; absent, it restricts nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ConsentScope>,
}

/// `catalog.voice-model-registered` / `catalog.voice-model-amended`: a voice
/// model learned from a consenting artist's licensed stems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceModel {
    pub id: String,
    /// Party id of the artist whose voice this is.
    pub artist: String,
    pub consent: Consent,
    /// Content hashes of the stems the model was trained on.
    pub training_stems: Vec<ContentHash>,
    pub likeness_splits: Vec<Split>,
}

/// `catalog.voice-consent-withdrawn`
/// (`schemas/json/voice-consent-withdrawn.schema.json`): the artist withdrew
/// the consent with `reference` to voice model `voice_model`. From
/// `effective` on, requests using the voice are refused and every derivative
/// made with that consent is listed for takedown. A later amendment granting
/// consent under another reference is a new consent, which this withdrawal
/// does not touch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentWithdrawn {
    pub voice_model: String,
    /// The withdrawn consent's reference, as the catalog records it.
    pub reference: String,
    /// The first day the withdrawal applies, included.
    pub effective: CalendarDate,
}

/// `catalog.policy-set` / `catalog.policy-amended`: the royalty policy. The
/// most recent policy event at a usage line's seq is the one in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub id: String,
    /// Fraction of the gross kept by the platform.
    #[serde(with = "rust_decimal::serde::str")]
    pub platform_share: Decimal,
    /// Fraction of the gross paid to the party who requested the derivative.
    #[serde(with = "rust_decimal::serde::str")]
    pub creator_share: Decimal,
    /// Fraction of a recording component paid to the master; the rest goes
    /// to publishing.
    #[serde(with = "rust_decimal::serde::str")]
    pub master_share: Decimal,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn recording_round_trips_with_string_shares() {
        let hash = format!("sha256:{}", "0".repeat(64));
        let value = json!({
            "isrc": "GBAYE0601498", "title": "Song", "work": "T-034524680-1",
            "master_splits": [{"party": "p1", "share": "0.5"}, {"party": "p2", "share": "0.5"}],
            "stems": {"vocals": hash}
        });
        let recording: Recording = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(recording.master_splits[0].share, Decimal::new(5, 1));
        assert_eq!(recording.stems.present().len(), 1);
        assert_eq!(serde_json::to_value(&recording).unwrap(), value);
    }

    #[test]
    fn numeric_shares_and_unknown_fields_are_rejected() {
        let numeric = json!({"party": "p1", "share": 0.5});
        assert!(serde_json::from_value::<Split>(numeric).is_err());
        let extra = json!({"id": "p1", "name": "A", "role": "artist", "x": 1});
        assert!(serde_json::from_value::<Party>(extra).is_err());
        let role = json!({"id": "p1", "name": "A", "role": "drummer"});
        assert!(serde_json::from_value::<Party>(role).is_err());
    }
}
