//! The catalog document (`ledgerline catalog import FILE.json`): parsing,
//! validation with errors that name the field, and the plan of events that
//! registers new entities and amends changed ones, appended as one atomic
//! `append_all`.

use crate::identifiers::{canonical_iswc, is_valid_id, is_valid_isrc};
use ledger::store::{AppendRequest, EventStore, ExpectedVersion, StoreError};
use ledger::NewEvent;
use rust_decimal::Decimal;
use schemas::catalog::{
    self as events, Consent, Party, PartyRole, Policy, Recording, Split, Stems, VoiceModel, Work,
};
use schemas::generation::RecipeKind;
use schemas::licence::{self, CalendarDate, ConsentScope, LicenceTerms};
use schemas::ContentHash;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::str::FromStr;

/// The most decimals a share may have.
pub const SHARE_DECIMALS_MAX: u32 = 10;
/// The most entities (parties, works, recordings, voice models) one document
/// may hold: an import is one atomic append, bounded by the log's limit.
pub const CATALOG_ENTITIES_MAX: usize = ledger::store::APPEND_EVENTS_MAX - 1;
/// The longest title or name, in bytes.
pub const TEXT_BYTES_MAX: usize = 500;

/// The catalog document as a person writes it: PATHs for stems, decimal
/// strings for shares (`schemas/json/catalog.schema.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogDocument {
    #[serde(default)]
    pub parties: Vec<PartyEntry>,
    #[serde(default)]
    pub works: Vec<WorkEntry>,
    #[serde(default)]
    pub recordings: Vec<RecordingEntry>,
    #[serde(default)]
    pub voice_models: Vec<VoiceModelEntry>,
    pub policy: PolicyEntry,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyEntry {
    pub id: String,
    pub name: String,
    pub role: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitEntry {
    pub party: String,
    pub share: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkEntry {
    pub iswc: String,
    pub title: String,
    pub publishing_splits: Vec<SplitEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingEntry {
    pub isrc: String,
    pub title: String,
    pub work: String,
    pub master_splits: Vec<SplitEntry>,
    /// Stem name (`vocals`, `drums`, `bass`, `other`, `mixture`) to PATH.
    pub stems: BTreeMap<String, String>,
    /// The label's licence terms; without them the recording is not
    /// participating.
    #[serde(default)]
    pub licence: Option<LicenceTerms>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceModelEntry {
    pub id: String,
    pub artist: String,
    pub consent: Consent,
    pub training_stems: Vec<String>,
    pub likeness_splits: Vec<SplitEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyEntry {
    pub id: String,
    pub platform_share: String,
    pub creator_share: String,
    pub master_share: String,
}

/// A validated catalog: the payloads of the catalog events, stems resolved
/// to content hashes, ISWCs in canonical form.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    pub parties: Vec<Party>,
    pub works: Vec<Work>,
    pub recordings: Vec<Recording>,
    pub voice_models: Vec<VoiceModel>,
    pub policy: Policy,
}

/// One thing wrong with a catalog document, at a field path such as
/// `recordings[1].master_splits[0].party`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the catalog document is not valid JSON of the catalog format: {0}")]
    Syntax(String),
    #[error("the catalog has {} error(s), nothing was imported: {}", .0.len(), join_errors(.0))]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stream {stream:?} holds an event that is not a valid {kind}: {message}")]
    Corrupt {
        stream: String,
        kind: &'static str,
        message: String,
    },
}

fn join_errors(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl CatalogDocument {
    pub fn from_json(text: &str) -> Result<CatalogDocument, CatalogError> {
        serde_json::from_str(text).map_err(|e| CatalogError::Syntax(e.to_string()))
    }

    /// Validates the document and resolves stem PATHs to content hashes with
    /// `resolve_path`. Every error found is reported, each naming its field.
    pub fn validate(
        &self,
        resolve_path: &mut dyn FnMut(&str) -> Result<ContentHash, String>,
    ) -> Result<Catalog, CatalogError> {
        let mut errors = Vec::new();
        let mut error = |field: String, message: String| errors.push(FieldError { field, message });

        let entity_count =
            self.parties.len() + self.works.len() + self.recordings.len() + self.voice_models.len();
        if entity_count > CATALOG_ENTITIES_MAX {
            error(
                "(document)".into(),
                format!("holds {entity_count} entities; one import takes at most {CATALOG_ENTITIES_MAX}: split it into several documents"),
            );
        }

        let mut parties = Vec::with_capacity(self.parties.len());
        let mut party_ids = HashSet::new();
        for (i, entry) in self.parties.iter().enumerate() {
            let at = format!("parties[{i}]");
            if !is_valid_id(&entry.id) {
                error(
                    format!("{at}.id"),
                    format!(
                        "{:?} is not a valid id: use 1 to 64 characters from A-Z a-z 0-9 . _ : @ -",
                        entry.id
                    ),
                );
            } else if !party_ids.insert(entry.id.as_str()) {
                error(
                    format!("{at}.id"),
                    format!("duplicate party id {:?}", entry.id),
                );
            }
            check_text(&mut error, &format!("{at}.name"), &entry.name);
            let role = PartyRole::ALL
                .into_iter()
                .find(|r| r.as_str() == entry.role);
            if role.is_none() {
                let accepted: Vec<&str> = PartyRole::ALL.iter().map(|r| r.as_str()).collect();
                error(
                    format!("{at}.role"),
                    format!(
                        "unknown role {:?}; use one of {}",
                        entry.role,
                        accepted.join(", ")
                    ),
                );
            }
            parties.push(Party {
                id: entry.id.clone(),
                name: entry.name.clone(),
                role: role.unwrap_or(PartyRole::Other),
            });
        }

        let mut works = Vec::with_capacity(self.works.len());
        let mut iswcs = HashSet::new();
        for (i, entry) in self.works.iter().enumerate() {
            let at = format!("works[{i}]");
            let iswc = match canonical_iswc(&entry.iswc) {
                Some(iswc) => {
                    if !iswcs.insert(iswc.clone()) {
                        error(format!("{at}.iswc"), format!("duplicate work {iswc:?}"));
                    }
                    iswc
                }
                None => {
                    error(format!("{at}.iswc"), format!("{:?} is not a valid ISWC: use T-DDDDDDDDD-C with a correct check digit, e.g. T-034524680-1", entry.iswc));
                    entry.iswc.clone()
                }
            };
            check_text(&mut error, &format!("{at}.title"), &entry.title);
            let publishing_splits = check_splits(
                &mut error,
                &format!("{at}.publishing_splits"),
                &entry.publishing_splits,
                &party_ids,
            );
            works.push(Work {
                iswc,
                title: entry.title.clone(),
                publishing_splits,
            });
        }

        let mut recordings = Vec::with_capacity(self.recordings.len());
        let mut isrcs = HashSet::new();
        for (i, entry) in self.recordings.iter().enumerate() {
            let at = format!("recordings[{i}]");
            if !is_valid_isrc(&entry.isrc) {
                error(format!("{at}.isrc"), format!("{:?} is not a valid ISRC: use the 12-character form CCXXXYYNNNNN, e.g. GBAYE0601498", entry.isrc));
            } else if !isrcs.insert(entry.isrc.as_str()) {
                error(
                    format!("{at}.isrc"),
                    format!("duplicate recording {:?}", entry.isrc),
                );
            }
            check_text(&mut error, &format!("{at}.title"), &entry.title);
            let work = match canonical_iswc(&entry.work) {
                Some(iswc) if iswcs.contains(&iswc) => iswc,
                Some(iswc) => {
                    error(
                        format!("{at}.work"),
                        format!("unknown work {iswc:?}: list it under works"),
                    );
                    iswc
                }
                None => {
                    error(
                        format!("{at}.work"),
                        format!(
                            "{:?} is not a valid ISWC: use T-DDDDDDDDD-C, e.g. T-034524680-1",
                            entry.work
                        ),
                    );
                    entry.work.clone()
                }
            };
            let master_splits = check_splits(
                &mut error,
                &format!("{at}.master_splits"),
                &entry.master_splits,
                &party_ids,
            );
            let mut stems = Stems::default();
            if entry.stems.is_empty() {
                error(
                    format!("{at}.stems"),
                    "lists no stem: give at least one of vocals, drums, bass, other, mixture"
                        .into(),
                );
            }
            for (name, path) in &entry.stems {
                let field = format!("{at}.stems.{name}");
                let slot = match name.as_str() {
                    "vocals" => &mut stems.vocals,
                    "drums" => &mut stems.drums,
                    "bass" => &mut stems.bass,
                    "other" => &mut stems.other,
                    "mixture" => &mut stems.mixture,
                    _ => {
                        error(
                            field,
                            format!(
                                "unknown stem {name:?}; use vocals, drums, bass, other or mixture"
                            ),
                        );
                        continue;
                    }
                };
                match resolve_path(path) {
                    Ok(hash) => *slot = Some(hash),
                    Err(message) => error(field, message),
                }
            }
            if let Some(terms) = &entry.licence {
                check_licence(&mut error, &format!("{at}.licence"), terms);
            }
            recordings.push(Recording {
                isrc: entry.isrc.clone(),
                title: entry.title.clone(),
                work,
                master_splits,
                stems,
                licence: entry.licence.clone(),
            });
        }

        let mut voice_models = Vec::with_capacity(self.voice_models.len());
        let mut model_ids = HashSet::new();
        for (i, entry) in self.voice_models.iter().enumerate() {
            let at = format!("voice_models[{i}]");
            if !is_valid_id(&entry.id) {
                error(
                    format!("{at}.id"),
                    format!(
                        "{:?} is not a valid id: use 1 to 64 characters from A-Z a-z 0-9 . _ : @ -",
                        entry.id
                    ),
                );
            } else if !model_ids.insert(entry.id.as_str()) {
                error(
                    format!("{at}.id"),
                    format!("duplicate voice model id {:?}", entry.id),
                );
            }
            if !party_ids.contains(entry.artist.as_str()) {
                error(
                    format!("{at}.artist"),
                    format!("unknown party {:?}", entry.artist),
                );
            }
            if let Some(reference) = &entry.consent.reference {
                check_text(&mut error, &format!("{at}.consent.reference"), reference);
            }
            if let Some(scope) = &entry.consent.scope {
                check_consent_scope(&mut error, &format!("{at}.consent.scope"), scope);
            }
            if entry.training_stems.is_empty() {
                error(
                    format!("{at}.training_stems"),
                    "lists no stem: give the PATHs of the licensed stems the model was trained on"
                        .into(),
                );
            }
            let mut training_stems = Vec::with_capacity(entry.training_stems.len());
            for (j, path) in entry.training_stems.iter().enumerate() {
                match resolve_path(path) {
                    Ok(hash) => training_stems.push(hash),
                    Err(message) => error(format!("{at}.training_stems[{j}]"), message),
                }
            }
            let likeness_splits = check_splits(
                &mut error,
                &format!("{at}.likeness_splits"),
                &entry.likeness_splits,
                &party_ids,
            );
            voice_models.push(VoiceModel {
                id: entry.id.clone(),
                artist: entry.artist.clone(),
                consent: entry.consent.clone(),
                training_stems,
                likeness_splits,
            });
        }

        let entry = &self.policy;
        if !is_valid_id(&entry.id) {
            error(
                "policy.id".into(),
                format!(
                    "{:?} is not a valid id: use 1 to 64 characters from A-Z a-z 0-9 . _ : @ -",
                    entry.id
                ),
            );
        }
        let platform_share = check_share(
            &mut error,
            "policy.platform_share",
            &entry.platform_share,
            true,
        );
        let creator_share = check_share(
            &mut error,
            "policy.creator_share",
            &entry.creator_share,
            true,
        );
        let master_share =
            check_share(&mut error, "policy.master_share", &entry.master_share, true);
        if platform_share + creator_share > Decimal::ONE {
            error(
                "policy".into(),
                format!(
                    "platform_share + creator_share is {}; it must be at most 1",
                    platform_share + creator_share
                ),
            );
        }
        let policy = Policy {
            id: entry.id.clone(),
            platform_share,
            creator_share,
            master_share,
        };

        if errors.is_empty() {
            Ok(Catalog {
                parties,
                works,
                recordings,
                voice_models,
                policy,
            })
        } else {
            Err(CatalogError::Invalid(errors))
        }
    }
}

/// The stem names a recording's stems and its licence terms may name.
const STEM_NAMES: [&str; 5] = ["vocals", "drums", "bass", "other", "mixture"];

/// Checks a recording's licence terms: known stem names and territories,
/// bounds whose minimum is not above their maximum, a window that holds at
/// least one day, and no list naming one thing twice.
fn check_licence(error: &mut impl FnMut(String, String), at: &str, terms: &LicenceTerms) {
    if let Some(kinds) = &terms.kinds {
        check_kinds(error, &format!("{at}.kinds"), kinds);
    }
    if let Some(stems) = &terms.stems {
        let mut seen = HashSet::new();
        for (i, name) in stems.iter().enumerate() {
            if !STEM_NAMES.contains(&name.as_str()) {
                error(
                    format!("{at}.stems[{i}]"),
                    format!("unknown stem {name:?}; use vocals, drums, bass, other or mixture"),
                );
            } else if !seen.insert(name) {
                error(
                    format!("{at}.stems[{i}]"),
                    format!("{name:?} is listed twice"),
                );
            }
        }
    }
    if let Some(rate) = &terms.tempo_rate {
        if rate.min <= Decimal::ZERO {
            error(
                format!("{at}.tempo_rate.min"),
                format!(
                    "{} is not a tempo rate: a rate is above 0 (1 keeps the tempo)",
                    rate.min
                ),
            );
        }
        if rate.min > rate.max {
            error(
                format!("{at}.tempo_rate"),
                format!(
                    "min {} is above max {}: no rate is allowed",
                    rate.min, rate.max
                ),
            );
        }
    }
    if let Some(semitones) = &terms.semitones {
        if semitones.min > semitones.max {
            error(
                format!("{at}.semitones"),
                format!(
                    "min {} is above max {}: no key shift is allowed",
                    semitones.min, semitones.max
                ),
            );
        }
    }
    if let Some(territories) = &terms.territories {
        check_territories(error, &format!("{at}.territories"), territories);
    }
    check_window(error, at, terms.from, terms.until);
}

/// Checks what an artist's consent covers, as [`check_licence`] does.
fn check_consent_scope(error: &mut impl FnMut(String, String), at: &str, scope: &ConsentScope) {
    if let Some(kinds) = &scope.kinds {
        check_kinds(error, &format!("{at}.kinds"), kinds);
    }
    if let Some(territories) = &scope.territories {
        check_territories(error, &format!("{at}.territories"), territories);
    }
}

fn check_kinds(error: &mut impl FnMut(String, String), at: &str, kinds: &[RecipeKind]) {
    let mut seen = HashSet::new();
    for (i, kind) in kinds.iter().enumerate() {
        if !seen.insert(kind) {
            error(
                format!("{at}[{i}]"),
                format!("{:?} is listed twice", kind.as_str()),
            );
        }
    }
}

fn check_territories(error: &mut impl FnMut(String, String), at: &str, territories: &[String]) {
    if territories.is_empty() {
        error(
            at.to_owned(),
            "lists no territory: name ISO 3166-1 alpha-2 codes, or WW for worldwide".into(),
        );
    }
    let mut seen = HashSet::new();
    for (i, code) in territories.iter().enumerate() {
        if !licence::is_territory(code) {
            error(
                format!("{at}[{i}]"),
                format!("{code:?} is not an ISO 3166-1 alpha-2 country code (e.g. US, GB, DE) or WW for worldwide"),
            );
        } else if !seen.insert(code) {
            error(format!("{at}[{i}]"), format!("{code:?} is listed twice"));
        }
    }
}

fn check_window(
    error: &mut impl FnMut(String, String),
    at: &str,
    from: Option<CalendarDate>,
    until: Option<CalendarDate>,
) {
    if let (Some(from), Some(until)) = (from, until) {
        if from > until {
            error(
                format!("{at}.until"),
                format!("{until} is before from {from}: the window holds no day"),
            );
        }
    }
}

fn check_text(error: &mut impl FnMut(String, String), field: &str, text: &str) {
    if text.trim().is_empty() || text.len() > TEXT_BYTES_MAX {
        error(
            field.to_string(),
            format!("must hold 1 to {TEXT_BYTES_MAX} bytes of text"),
        );
    }
}

/// Parses a share: a plain decimal string (no sign, no exponent) in [0, 1]
/// with at most [`SHARE_DECIMALS_MAX`] decimals; zero only where `zero_ok`.
fn check_share(
    error: &mut impl FnMut(String, String),
    field: &str,
    text: &str,
    zero_ok: bool,
) -> Decimal {
    let plain = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && text.bytes().filter(|&b| b == b'.').count() <= 1
        && text.bytes().any(|b| b.is_ascii_digit());
    let parsed = if plain {
        Decimal::from_str(text).ok()
    } else {
        None
    };
    let lowest = if zero_ok { "0" } else { "above 0" };
    match parsed {
        Some(share) if share.scale() > SHARE_DECIMALS_MAX => {
            error(
                field.to_string(),
                format!("share {text:?} has more than {SHARE_DECIMALS_MAX} decimals"),
            );
            Decimal::ZERO
        }
        Some(share) if share > Decimal::ONE || (!zero_ok && share.is_zero()) => {
            error(
                field.to_string(),
                format!("share {text:?} is out of range: use a decimal string from {lowest} to 1"),
            );
            Decimal::ZERO
        }
        Some(share) => share.normalize(),
        None => {
            error(field.to_string(), format!("share {text:?} is not a decimal string: write it like \"0.25\" ({lowest} to 1)"));
            Decimal::ZERO
        }
    }
}

fn check_splits(
    error: &mut impl FnMut(String, String),
    field: &str,
    entries: &[SplitEntry],
    party_ids: &HashSet<&str>,
) -> Vec<Split> {
    if entries.is_empty() {
        error(
            field.to_string(),
            "is empty: list at least one party with a share".into(),
        );
        return Vec::new();
    }
    let mut splits = Vec::with_capacity(entries.len());
    let mut seen = HashSet::new();
    let mut sum = Decimal::ZERO;
    let mut shares_ok = true;
    for (i, entry) in entries.iter().enumerate() {
        if !party_ids.contains(entry.party.as_str()) {
            error(
                format!("{field}[{i}].party"),
                format!("unknown party {:?}", entry.party),
            );
        } else if !seen.insert(entry.party.as_str()) {
            error(
                format!("{field}[{i}].party"),
                format!("party {:?} is listed twice", entry.party),
            );
        }
        let before = sum;
        let share = check_share(
            &mut *error,
            &format!("{field}[{i}].share"),
            &entry.share,
            false,
        );
        shares_ok &= !share.is_zero();
        sum = before + share;
        splits.push(Split {
            party: entry.party.clone(),
            share,
        });
    }
    if shares_ok && sum != Decimal::ONE {
        error(
            field.to_string(),
            format!("shares sum to {sum}; they must sum to exactly 1"),
        );
    }
    splits
}

/// What one catalog import appended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogImport {
    pub registered: usize,
    pub amended: usize,
    pub unchanged: usize,
    /// Seqs of the appended events, in append order.
    pub seqs: Vec<u64>,
}

/// One entity of a catalog, as an event payload on its stream.
struct Entity {
    stream: String,
    registered_type: &'static str,
    amended_type: &'static str,
    data: serde_json::Value,
}

impl Catalog {
    fn entities(&self) -> Vec<Entity> {
        let mut entities = Vec::new();
        for p in &self.parties {
            entities.push(Entity {
                stream: events::party_stream(&p.id),
                registered_type: events::PARTY_REGISTERED,
                amended_type: events::PARTY_AMENDED,
                data: payload(p),
            });
        }
        for w in &self.works {
            entities.push(Entity {
                stream: events::work_stream(&w.iswc),
                registered_type: events::WORK_REGISTERED,
                amended_type: events::WORK_AMENDED,
                data: payload(w),
            });
        }
        for r in &self.recordings {
            entities.push(Entity {
                stream: events::recording_stream(&r.isrc),
                registered_type: events::RECORDING_REGISTERED,
                amended_type: events::RECORDING_AMENDED,
                data: payload(r),
            });
        }
        for v in &self.voice_models {
            entities.push(Entity {
                stream: events::voice_model_stream(&v.id),
                registered_type: events::VOICE_MODEL_REGISTERED,
                amended_type: events::VOICE_MODEL_AMENDED,
                data: payload(v),
            });
        }
        entities.push(Entity {
            stream: events::policy_stream(&self.policy.id),
            registered_type: events::POLICY_SET,
            amended_type: events::POLICY_AMENDED,
            data: payload(&self.policy),
        });
        entities
    }

    /// The append requests that bring the log to this catalog: a
    /// `*-registered` event for each new entity and an `*-amended` event for
    /// each changed one, each guarded by the stream version it was compared
    /// with. `latest` gives a stream's length and last payload, if any.
    pub fn plan(
        &self,
        latest: &dyn Fn(&str) -> Option<(u64, serde_json::Value)>,
    ) -> (Vec<AppendRequest>, CatalogImport) {
        let mut requests = Vec::new();
        let mut summary = CatalogImport::default();
        for entity in self.entities() {
            let (event_type, expected) = match latest(&entity.stream) {
                None => {
                    summary.registered += 1;
                    (entity.registered_type, 0)
                }
                Some((_, data)) if data == entity.data => {
                    summary.unchanged += 1;
                    continue;
                }
                Some((length, _)) => {
                    summary.amended += 1;
                    (entity.amended_type, length)
                }
            };
            let mut event = NewEvent::new(event_type, entity.data);
            event.schema = events::CATALOG_SCHEMA_VERSION;
            requests.push(AppendRequest::new(
                entity.stream,
                ExpectedVersion::Exact(expected),
                vec![event],
            ));
        }
        (requests, summary)
    }

    /// Appends the catalog to the log as one atomic `append_all`: new
    /// entities are registered, changed ones amended, unchanged ones skipped.
    pub async fn import(&self, store: &dyn EventStore) -> Result<CatalogImport, CatalogError> {
        let mut latest = BTreeMap::new();
        for entity in self.entities() {
            let stored = store
                .read_stream(&entity.stream, 0, ledger::store::APPEND_EVENTS_MAX)
                .await?;
            if let Some(last) = stored.last() {
                let envelope = last.envelope().map_err(StoreError::from)?;
                latest.insert(entity.stream.clone(), (last.version + 1, envelope.data));
            }
        }
        let (requests, mut summary) = self.plan(&|stream| latest.get(stream).cloned());
        if !requests.is_empty() {
            let appended = store.append_all(requests).await?;
            summary.seqs = appended.iter().flatten().map(|a| a.seq).collect();
        }
        Ok(summary)
    }
}

/// A catalog payload as event data; these types always serialize.
fn payload<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("catalog payloads serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn hash_of(path: &str) -> Result<ContentHash, String> {
        if path.starts_with("missing") {
            return Err(format!("cannot read {path:?}: no such file"));
        }
        let mut digest = [0u8; 32];
        for (i, b) in path.bytes().enumerate() {
            digest[i % 32] ^= b;
        }
        Ok(ContentHash::from_sha256(digest))
    }

    fn document() -> serde_json::Value {
        json!({
            "parties": [
                {"id": "label", "name": "Label", "role": "label"},
                {"id": "pub", "name": "Publisher", "role": "publisher"},
                {"id": "singer", "name": "Singer", "role": "artist"}
            ],
            "works": [{"iswc": "T-034.524.680-1", "title": "Song",
                       "publishing_splits": [{"party": "pub", "share": "0.5"}, {"party": "singer", "share": "0.5"}]}],
            "recordings": [{"isrc": "GBAYE0601498", "title": "Song", "work": "T0345246801",
                            "master_splits": [{"party": "label", "share": "1"}],
                            "stems": {"vocals": "v.wav", "drums": "d.wav"}}],
            "voice_models": [{"id": "vm1", "artist": "singer", "consent": {"granted": true, "reference": "C-1"},
                              "training_stems": ["v.wav"], "likeness_splits": [{"party": "singer", "share": "1"}]}],
            "policy": {"id": "v1", "platform_share": "0.3", "creator_share": "0.2", "master_share": "0.5"}
        })
    }

    fn validate(value: serde_json::Value) -> Result<Catalog, CatalogError> {
        CatalogDocument::from_json(&value.to_string())?.validate(&mut |p| hash_of(p))
    }

    fn errors_of(value: serde_json::Value) -> Vec<String> {
        match validate(value) {
            Err(CatalogError::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn valid_document_resolves_paths_and_canonicalizes_iswc() {
        let catalog = validate(document()).unwrap();
        assert_eq!(catalog.works[0].iswc, "T-034524680-1");
        assert_eq!(catalog.recordings[0].work, "T-034524680-1");
        assert_eq!(
            catalog.recordings[0].stems.vocals,
            Some(hash_of("v.wav").unwrap())
        );
        assert_eq!(
            catalog.voice_models[0].training_stems,
            vec![hash_of("v.wav").unwrap()]
        );
        assert_eq!(catalog.policy.platform_share, Decimal::new(3, 1));
    }

    #[test]
    fn errors_name_the_field() {
        let mut doc = document();
        doc["recordings"][0]["master_splits"][0]["party"] = json!("p9");
        doc["works"][0]["publishing_splits"][1]["share"] = json!("0.4");
        doc["parties"][2]["id"] = json!("label");
        doc["recordings"][0]["isrc"] = json!("GB-AYE-06");
        doc["recordings"][0]["stems"]["drums"] = json!("missing.wav");
        doc["policy"]["creator_share"] = json!("0.8");
        let errors = errors_of(doc);
        assert!(
            errors.contains(
                &"recordings[0].master_splits[0].party: unknown party \"p9\"".to_string()
            ),
            "{errors:?}"
        );
        assert!(
            errors.contains(
                &"works[0].publishing_splits: shares sum to 0.9; they must sum to exactly 1"
                    .to_string()
            ),
            "{errors:?}"
        );
        assert!(
            errors.contains(&"parties[2].id: duplicate party id \"label\"".to_string()),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("recordings[0].isrc: \"GB-AYE-06\" is not a valid ISRC")),
            "{errors:?}"
        );
        assert!(
            errors.contains(
                &"recordings[0].stems.drums: cannot read \"missing.wav\": no such file".to_string()
            ),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("policy: platform_share + creator_share is 1.1")),
            "{errors:?}"
        );
    }

    #[test]
    fn licence_terms_and_consent_scope_are_imported_as_written() {
        let terms = json!({
            "participating": true, "kinds": ["remix", "cover"],
            "stems": ["drums", "bass", "other", "vocals"],
            "tempo_rate": {"min": "0.8", "max": "1.25"}, "semitones": {"min": -3, "max": 3},
            "voice": true, "territories": ["WW"], "from": "2026-01-01", "until": "2027-12-31"
        });
        let scope = json!({"kinds": ["cover"], "territories": ["US", "GB"], "until": "2027-12-31"});
        let mut doc = document();
        doc["recordings"][0]["licence"] = terms.clone();
        doc["voice_models"][0]["consent"]["scope"] = scope.clone();
        let catalog = validate(doc).unwrap();
        assert_eq!(payload(&catalog.recordings[0])["licence"], terms);
        assert_eq!(payload(&catalog.voice_models[0])["consent"]["scope"], scope);
        // Documents without terms stay valid, and their events carry none.
        let plain = validate(document()).unwrap();
        assert!(plain.recordings[0].licence.is_none());
        assert!(payload(&plain.recordings[0]).get("licence").is_none());
    }

    #[test]
    fn bad_licence_terms_are_refused_naming_the_field() {
        for (field, value, expected) in [
            (
                "stems",
                json!(["drums", "guitar"]),
                "recordings[0].licence.stems[1]: unknown stem \"guitar\"",
            ),
            (
                "stems",
                json!(["drums", "drums"]),
                "recordings[0].licence.stems[1]: \"drums\" is listed twice",
            ),
            (
                "kinds",
                json!(["cover", "cover"]),
                "recordings[0].licence.kinds[1]: \"cover\" is listed twice",
            ),
            (
                "tempo_rate",
                json!({"min": "1.25", "max": "0.8"}),
                "recordings[0].licence.tempo_rate: min 1.25 is above max 0.8",
            ),
            (
                "tempo_rate",
                json!({"min": "0", "max": "0.8"}),
                "recordings[0].licence.tempo_rate.min: 0 is not a tempo rate",
            ),
            (
                "semitones",
                json!({"min": 3, "max": -3}),
                "recordings[0].licence.semitones: min 3 is above max -3",
            ),
            (
                "territories",
                json!(["US", "UK"]),
                "recordings[0].licence.territories[1]: \"UK\" is not an ISO 3166-1 alpha-2",
            ),
            (
                "territories",
                json!([]),
                "recordings[0].licence.territories: lists no territory",
            ),
            (
                "until",
                json!("2025-12-31"),
                "recordings[0].licence.until: 2025-12-31 is before from 2026-01-01",
            ),
        ] {
            let mut doc = document();
            doc["recordings"][0]["licence"] = json!({"participating": true, "from": "2026-01-01"});
            doc["recordings"][0]["licence"][field] = value;
            let errors = errors_of(doc);
            assert!(
                errors.iter().any(|e| e.starts_with(expected)),
                "{field}: {errors:?}"
            );
        }
        let mut doc = document();
        doc["voice_models"][0]["consent"]["scope"] = json!({"territories": ["ZZ"]});
        let errors = errors_of(doc);
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("voice_models[0].consent.scope.territories[0]: \"ZZ\"")),
            "{errors:?}"
        );
    }

    #[test]
    fn a_date_that_does_not_parse_is_a_syntax_error_naming_the_format() {
        let mut doc = document();
        doc["recordings"][0]["licence"] = json!({"participating": true, "until": "2027-02-30"});
        match validate(doc) {
            Err(CatalogError::Syntax(message)) => {
                assert!(message.contains("use YYYY-MM-DD"), "{message}")
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn bad_shares_are_rejected() {
        for (share, needle) in [
            ("1/3", "is not a decimal string"),
            ("-0.5", "is not a decimal string"),
            ("1e-1", "is not a decimal string"),
            ("1.5", "out of range"),
            ("0", "out of range"),
            ("0.12345678901", "more than 10 decimals"),
        ] {
            let mut doc = document();
            doc["recordings"][0]["master_splits"][0]["share"] = json!(share);
            let errors = errors_of(doc);
            assert!(
                errors
                    .iter()
                    .any(|e| e.starts_with("recordings[0].master_splits[0].share")
                        && e.contains(needle)),
                "{share}: {errors:?}"
            );
        }
        let mut doc = document();
        doc["recordings"][0]["master_splits"][0]["share"] = json!(0.5);
        assert!(matches!(validate(doc), Err(CatalogError::Syntax(_))));
    }

    #[test]
    fn thirds_as_decimals_sum_to_one() {
        let mut doc = document();
        doc["works"][0]["publishing_splits"] = json!([
            {"party": "pub", "share": "0.333333"}, {"party": "singer", "share": "0.333333"}, {"party": "label", "share": "0.333334"}]);
        assert!(validate(doc).is_ok());
    }

    #[test]
    fn plan_registers_new_amends_changed_skips_unchanged() {
        let catalog = validate(document()).unwrap();
        let (requests, summary) = catalog.plan(&|_| None);
        assert_eq!(
            (summary.registered, summary.amended, summary.unchanged),
            (7, 0, 0)
        );
        let first: BTreeMap<String, (u64, serde_json::Value)> = requests
            .iter()
            .map(|r| (r.stream.clone(), (1, r.events[0].data.clone())))
            .collect();
        let mut doc = document();
        doc["recordings"][0]["master_splits"] =
            json!([{"party": "label", "share": "0.9"}, {"party": "singer", "share": "0.1"}]);
        let changed = validate(doc).unwrap();
        let (requests, summary) = changed.plan(&|s| first.get(s).cloned());
        assert_eq!(
            (summary.registered, summary.amended, summary.unchanged),
            (0, 1, 6)
        );
        assert_eq!(requests[0].stream, "recording-GBAYE0601498");
        assert_eq!(requests[0].expected, ExpectedVersion::Exact(1));
        assert_eq!(requests[0].events[0].event_type, events::RECORDING_AMENDED);
    }
}
