//! Dispute lineage: given a derivative id or an audio file, everything the
//! log says about where it came from and who was paid for it, each cited
//! event with an RFC 6962 inclusion proof against one signed checkpoint, so
//! the answer can be handed to a third party and checked without us.
//!
//! A file is matched by the SHA-256 of its bytes, then by the SHA-256 of its
//! decoded PCM, then by its acoustic fingerprint ([`crate::fingerprint`]),
//! so a re-encoded, resampled or trimmed copy is still traced; the answer's
//! `match` says which, and for a fingerprint how well and where. A file that
//! matches none gets a "no lineage" answer naming what was tried.
//!
//! [`lineage_for_party`] answers as one party may see it: only derivatives
//! that paid that party exist for the search, and an answer keeps the
//! provenance (the derivative, its generation events, the catalog entries in
//! force) with that party's own revenue and splits, but no other party's
//! share, no gross and no usage or catalog event (their leaves carry every
//! party's splits and the amounts).

use crate::amount::{format_minor_units, largest_remainder, round_half_even_minor_units, ExactSum};
pub use crate::cited::CitedCheckpoint;
use crate::cited::{checkpoint_covering, prove_all};
use crate::currency::minor_unit_exponent;
use crate::fingerprint::{self, FingerprintMatch};
use crate::fold::{
    DerivativeRecord, LineStatus, KIND_PARTY, KIND_RECORDING, KIND_VOICE_MODEL, KIND_WORK,
};
use crate::runner::{ProjectionError, Projections};
use ledger::store::{EventStore, InclusionProof, StoreError, StoredEvent};
use rust_decimal::Decimal;
use schemas::generation::{
    generation_stream, model_stream, AttributionKind, DerivativePublished, GenerationRequested,
    GenerationStep, ModelRegistered, StepOp, GENERATION_REQUESTED, GENERATION_STEP,
};
use schemas::ContentHash;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io::Read;
use std::path::Path;
use uuid::Uuid;

/// The most generation steps cited for one derivative.
pub const GENERATION_STEPS_MAX: usize = 1_000;

/// The fields of catalog entries that list parties' shares.
pub(crate) const SPLIT_FIELDS: [&str; 3] =
    ["master_splits", "publishing_splits", "likeness_splits"];

/// What is known about an audio file found in the wild.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AudioIdentity {
    /// `sha256:` of the file's bytes.
    pub file_hash: String,
    /// `sha256:` of its decoded PCM, when it could be decoded.
    pub pcm_hash: Option<String>,
    /// The items of its Chromaprint fingerprint (the configuration
    /// `inference::fingerprint` records), when computed. Callers compute it
    /// only after both hashes missed, since it costs a full analysis.
    pub fingerprint: Option<Vec<u32>>,
}

/// The SHA-256 content hash of a file's bytes, streamed.
pub fn hash_file(path: &Path) -> std::io::Result<ContentHash> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(ContentHash::from_sha256(hasher.finalize().into()))
}

/// What a lineage query asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineageQuery {
    Derivative(Uuid),
    Audio(AudioIdentity),
}

/// One event cited by an answer: its exact leaf bytes and their inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CitedEvent {
    pub seq: u64,
    pub stream: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The canonical envelope, exactly as hashed (RFC 8785 JSON).
    pub leaf: String,
    pub proof: InclusionProof,
}

/// A catalog entity version in force, and the event it comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CatalogVersion {
    pub seq: u64,
    pub data: serde_json::Value,
}

/// What allowed a derivative when it was requested: the requester's
/// territory and day, the recording's terms and the voice's consent, each
/// with the catalog event that stated it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LicensedWhenMade {
    pub territory: Option<String>,
    pub licensed_on: Option<String>,
    /// `data` is the recording's `licence`.
    pub terms: Option<CatalogVersion>,
    /// `data` is the voice model's `consent`, for a cover.
    pub consent: Option<CatalogVersion>,
}

/// One usage line of the derivative.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageSummary {
    pub seq: u64,
    pub line_id: String,
    pub period: String,
    pub currency: String,
    /// Absent from a party's view: with the splits it gives every share.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gross: Option<String>,
    pub status: String,
}

/// One party's revenue from the derivative in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartyRevenue {
    pub party: String,
    pub name: String,
    /// Exact total; `amount` is it rounded by the largest-remainder method
    /// among the derivative's parties in that currency.
    pub exact: String,
    pub amount: String,
    /// Exact total per component (`master GBAYE0601498`, `likeness vm1`, ...).
    pub components: BTreeMap<String, String>,
}

/// Revenue to date in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revenue {
    pub currency: String,
    /// Absent from a party's view, as from its statement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gross: Option<String>,
    pub parties: Vec<PartyRevenue>,
}

/// How a query found its derivative.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineageMatch {
    /// `derivative-id`, `file-hash`, `pcm-hash` or `fingerprint`.
    pub method: String,
    /// For `fingerprint`: the score and the matched segment.
    #[serde(flatten)]
    pub fingerprint: Option<FingerprintMatch>,
}

/// A found lineage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lineage {
    pub found: bool,
    /// `derivative-id`, `file-hash`, `pcm-hash` or `fingerprint`.
    pub matched_by: String,
    /// How the derivative was found; for a fingerprint match, how well
    /// (`score_bp`) and where (`query_start_ms`, `derivative_start_ms`,
    /// `duration_ms`).
    #[serde(rename = "match")]
    pub matched: LineageMatch,
    /// Other derivatives with the same content, if any (identical outputs,
    /// or for a fingerprint match other outputs that match as well).
    pub also_matched: Vec<Uuid>,
    pub as_of: u64,
    pub derivative: DerivativePublished,
    pub derivative_seq: u64,
    /// Every event of the generation job's stream, in order.
    pub generation_steps: Vec<serde_json::Value>,
    pub recordings: BTreeMap<String, CatalogVersion>,
    pub works: BTreeMap<String, CatalogVersion>,
    pub voice_models: BTreeMap<String, CatalogVersion>,
    /// The trained networks that shaped it (a cover's melody
    /// transcription), by id: each one's `model.registered` event, with
    /// the file's hash, licence and source.
    pub models: BTreeMap<String, CatalogVersion>,
    /// The licence terms and consent in force when the derivative was
    /// requested; `None` for a job logged before licence terms.
    pub licensed: Option<LicensedWhenMade>,
    pub usage: Vec<UsageSummary>,
    pub revenue: Vec<Revenue>,
    pub checkpoint: CitedCheckpoint,
    pub cited: Vec<CitedEvent>,
}

/// The answer to a lineage query.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum LineageAnswer {
    Found(Box<Lineage>),
    NotFound {
        found: bool,
        as_of: u64,
        message: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum LineageError {
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LineageError {
    /// True for errors caused by the request rather than the ledger (an
    /// `as_of` beyond the log, a store error the request caused): the CLI
    /// maps these to exit code 2 and the API to 4xx.
    pub fn is_client_error(&self) -> bool {
        match self {
            LineageError::Projection(ProjectionError::AsOfBeyondLog { .. }) => true,
            LineageError::Projection(ProjectionError::Store(store))
            | LineageError::Store(store) => store.is_client_error(),
            LineageError::Projection(_) => false,
        }
    }
}

/// Answers a lineage query from the log prefix `0..as_of` (the whole log
/// when `as_of` is `None`), catching the projection up first.
pub async fn lineage(
    store: &dyn EventStore,
    projections: &mut Projections,
    query: &LineageQuery,
    as_of: Option<u64>,
) -> Result<LineageAnswer, LineageError> {
    answer(store, projections, query, as_of, None).await
}

/// Answers a lineage query as `party` may see it (see the module
/// documentation): a derivative that paid `party` nothing as of `as_of` is
/// not found, with the same answer as one never published.
pub async fn lineage_for_party(
    store: &dyn EventStore,
    projections: &mut Projections,
    query: &LineageQuery,
    as_of: Option<u64>,
    party: &str,
) -> Result<LineageAnswer, LineageError> {
    answer(store, projections, query, as_of, Some(party)).await
}

/// The lineage of an audio file, matched in order of cost: by the hash of
/// its bytes and of its decoded PCM (`identity`, whose `pcm_hash` is `None`
/// for a file that does not decode), and only when both miss and the file
/// decodes, by its acoustic fingerprint, which costs a full analysis and is
/// computed only then: `fingerprint` is a future, and a future does nothing
/// until awaited.
///
/// `look_up` answers one query as the caller may see it ([`lineage`] or
/// [`lineage_for_party`]); decoding belongs to the caller (the `inference`
/// crate), which runs it where its budget allows.
pub async fn lineage_of_audio<E, Found>(
    identity: AudioIdentity,
    fingerprint: impl Future<Output = Result<Vec<u32>, E>>,
    mut look_up: impl FnMut(LineageQuery) -> Found,
) -> Result<LineageAnswer, E>
where
    Found: Future<Output = Result<LineageAnswer, E>>,
{
    let decodes = identity.pcm_hash.is_some();
    let answer = look_up(LineageQuery::Audio(identity.clone())).await?;
    if !matches!(answer, LineageAnswer::NotFound { .. }) || !decodes {
        return Ok(answer);
    }
    let identity = AudioIdentity {
        fingerprint: Some(fingerprint.await?),
        ..identity
    };
    look_up(LineageQuery::Audio(identity)).await
}

async fn answer(
    store: &dyn EventStore,
    projections: &mut Projections,
    query: &LineageQuery,
    as_of: Option<u64>,
    party: Option<&str>,
) -> Result<LineageAnswer, LineageError> {
    let size = store.size().await?;
    let as_of = match as_of {
        Some(as_of) if as_of > size => {
            return Err(ProjectionError::AsOfBeyondLog { as_of, size }.into())
        }
        Some(as_of) => as_of,
        None => size,
    };
    if projections.position() < as_of {
        projections.catch_up_to(store, as_of).await?;
    }
    let (record, matched, also) = match find(projections, query, as_of, party)? {
        Search::Found(found) => *found,
        Search::Missed { closest } => {
            let message = match (query, party) {
                (LineageQuery::Derivative(id), None) => {
                    format!("no lineage: derivative {id} was not published in this log")
                }
                // Without the id, so that the answer is the same word for
                // word whether it was never published or paid others only.
                (LineageQuery::Derivative(_), Some(party)) => format!(
                    "no lineage: no derivative with this id that paid party {party:?} was published in this log"
                ),
                (LineageQuery::Audio(identity), party) => {
                    no_lineage_message(identity, closest, party)
                }
            };
            return Ok(LineageAnswer::NotFound {
                found: false,
                as_of,
                message,
            });
        }
    };
    let published = record.published.clone();
    let mut cited_seqs = BTreeSet::from([record.seq]);
    // A party's answer cites only the generation events: catalog and usage
    // leaves carry every party's splits and the gross.
    let cite_unscoped = |cited: &mut BTreeSet<u64>, seq: u64| {
        if party.is_none() {
            cited.insert(seq);
        }
    };

    let steps = store
        .read_stream(&generation_stream(published.job), 0, GENERATION_STEPS_MAX)
        .await?;
    let mut generation_steps = Vec::new();
    let mut licensed = None;
    // (model id, file hash) of every network a step ran.
    let mut networks: BTreeSet<(String, ContentHash)> = BTreeSet::new();
    for step in steps.iter().filter(|s| s.seq < as_of) {
        let envelope = step.envelope().map_err(StoreError::from)?;
        cited_seqs.insert(step.seq);
        if envelope.event_type == GENERATION_STEP {
            if let Ok(step) = GenerationStep::deserialize(&envelope.data) {
                if let (StepOp::Transcribe, Some(model)) =
                    (step.op, step.params.get("model").and_then(|m| m.as_str()))
                {
                    for input in step.inputs.iter().filter(|i| i.pcm.is_none()) {
                        networks.insert((model.to_string(), input.file.clone()));
                    }
                }
            }
        }
        if envelope.event_type == GENERATION_REQUESTED {
            if let Ok(requested) = GenerationRequested::deserialize(&envelope.data) {
                licensed = Some(licensed_when_made(store, &requested).await?);
                for seq in [requested.terms_seq, requested.consent_seq]
                    .into_iter()
                    .flatten()
                {
                    cite_unscoped(&mut cited_seqs, seq);
                }
            }
        }
        generation_steps.push(serde_json::json!({
            "seq": envelope.seq, "type": envelope.event_type, "time": envelope.time, "data": envelope.data
        }));
    }

    let mut recordings = BTreeMap::new();
    let mut works = BTreeMap::new();
    let mut voice_models = BTreeMap::new();
    let mut recording_refs = vec![published.recording.clone()];
    recording_refs.extend(
        published
            .attribution
            .iter()
            .filter(|c| c.kind == AttributionKind::Recording)
            .map(|c| c.reference.clone()),
    );
    for isrc in recording_refs {
        if let Some((seq, data)) = projections.catalog_entry(KIND_RECORDING, &isrc, as_of)? {
            if let Some(iswc) = data.get("work").and_then(|w| w.as_str()) {
                if let Some((work_seq, work)) = projections.catalog_entry(KIND_WORK, iswc, as_of)? {
                    cite_unscoped(&mut cited_seqs, work_seq);
                    works.insert(
                        iswc.to_string(),
                        CatalogVersion {
                            seq: work_seq,
                            data: work,
                        },
                    );
                }
            }
            cite_unscoped(&mut cited_seqs, seq);
            recordings.insert(isrc, CatalogVersion { seq, data });
        }
    }
    for component in published
        .attribution
        .iter()
        .filter(|c| c.kind == AttributionKind::Voice)
    {
        if let Some((seq, data)) =
            projections.catalog_entry(KIND_VOICE_MODEL, &component.reference, as_of)?
        {
            cite_unscoped(&mut cited_seqs, seq);
            voice_models.insert(component.reference.clone(), CatalogVersion { seq, data });
        }
    }

    let mut models = BTreeMap::new();
    for (model, file) in networks {
        let registration = store.read_stream(&model_stream(&model), 0, 1).await?;
        let Some(event) = registration.first().filter(|e| e.seq < as_of) else {
            continue;
        };
        let envelope = event.envelope().map_err(StoreError::from)?;
        if ModelRegistered::deserialize(&envelope.data).is_ok_and(|m| m.artifact == file) {
            // A network's provenance holds no party's figures: cited for all.
            cited_seqs.insert(event.seq);
            models.insert(
                model,
                CatalogVersion {
                    seq: event.seq,
                    data: envelope.data,
                },
            );
        }
    }

    let lines = projections.lines_of_derivative(published.derivative, as_of)?;
    let mut usage = Vec::with_capacity(lines.len());
    let mut by_currency: BTreeMap<String, (Decimal, BTreeMap<String, PartyTotals>)> =
        BTreeMap::new();
    for record in &lines {
        cite_unscoped(&mut cited_seqs, record.seq);
        usage.push(UsageSummary {
            seq: record.seq,
            line_id: record.line.line_id.clone(),
            period: record.line.period.clone(),
            currency: record.line.currency.clone(),
            gross: Some(record.line.gross.to_string()),
            status: record.status.to_text().into_owned(),
        });
        if record.status != LineStatus::Booked {
            continue;
        }
        let entry = by_currency.entry(record.line.currency.clone()).or_default();
        entry.0 += record.line.gross;
        for a in record.stored_allocations()?.iter() {
            let party = entry.1.entry(a.party.to_string()).or_default();
            party.0.add(a.amount);
            let key = if a.reference.is_empty() {
                a.component.as_str().to_string()
            } else {
                format!("{} {}", a.component.as_str(), a.reference)
            };
            party.1.entry(key).or_default().add(a.amount);
        }
    }
    let mut names = BTreeMap::new();
    for parties in by_currency.values().map(|(_, parties)| parties.keys()) {
        for party in parties {
            if !names.contains_key(party) {
                if let Some((_, data)) = projections.catalog_entry(KIND_PARTY, party, as_of)? {
                    if let Some(name) = data.get("name").and_then(|n| n.as_str()) {
                        names.insert(party.clone(), name.to_string());
                    }
                }
            }
        }
    }
    // Rounded like a statement (largest remainder), so that the amounts
    // of a currency sum to its gross rounded half-even.
    let mut revenue: Vec<Revenue> = by_currency
        .into_iter()
        .map(|(currency, (gross, parties))| {
            let exponent = minor_unit_exponent(&currency).expect("booked currencies are accepted");
            let totals: Vec<(&str, ExactSum)> = parties
                .iter()
                .map(|(p, (exact, _))| (p.as_str(), *exact))
                .collect();
            let target = round_half_even_minor_units(&ExactSum::of(gross), exponent);
            let units = largest_remainder(&totals, exponent, target);
            Revenue {
                gross: Some(gross.to_string()),
                parties: parties
                    .iter()
                    .zip(units)
                    .map(|((party, (exact, components)), units)| PartyRevenue {
                        party: party.clone(),
                        name: crate::statement::party_name(&names, party),
                        amount: format_minor_units(units, exponent),
                        exact: exact.to_string(),
                        components: components
                            .iter()
                            .map(|(k, v)| (k.clone(), v.to_string()))
                            .collect(),
                    })
                    .collect(),
                currency,
            }
        })
        .collect();

    if let Some(party) = party {
        for version in recordings
            .values_mut()
            .chain(works.values_mut())
            .chain(voice_models.values_mut())
        {
            keep_own_splits(&mut version.data, party);
        }
        for line in &mut usage {
            line.gross = None;
        }
        for currency in &mut revenue {
            currency.gross = None;
            currency.parties.retain(|p| p.party == party);
        }
        revenue.retain(|currency| !currency.parties.is_empty());
    }

    let (checkpoint, root) =
        checkpoint_covering(store, as_of, projections.witness_policy()).await?;
    let seqs: Vec<u64> = cited_seqs.into_iter().collect();
    let events = read_events(store, &seqs).await?;
    let proofs = prove_all(store, &events, checkpoint.size, root).await?;
    let cited = events
        .into_iter()
        .zip(proofs)
        .map(|(event, proof)| CitedEvent {
            seq: event.seq,
            stream: event.stream,
            event_type: event.event_type,
            leaf: String::from_utf8_lossy(&event.leaf).into_owned(),
            proof,
        })
        .collect();
    Ok(LineageAnswer::Found(Box::new(Lineage {
        found: true,
        matched_by: matched.method.clone(),
        matched,
        also_matched: also,
        as_of,
        derivative_seq: record.seq,
        derivative: published,
        generation_steps,
        recordings,
        works,
        voice_models,
        models,
        licensed,
        usage,
        revenue,
        checkpoint,
        cited,
    })))
}

/// Keeps in a catalog entry's split lists only `party`'s own entries.
fn keep_own_splits(data: &mut serde_json::Value, party: &str) {
    for field in SPLIT_FIELDS {
        if let Some(splits) = data.get_mut(field).and_then(|s| s.as_array_mut()) {
            splits.retain(|split| split.get("party").and_then(|p| p.as_str()) == Some(party));
        }
    }
}

/// Whether `derivative`'s booked usage as of `as_of` allocated anything to
/// `party`.
fn paid(
    projections: &Projections,
    derivative: Uuid,
    party: &str,
    as_of: u64,
) -> Result<bool, ProjectionError> {
    for line in projections.lines_of_derivative(derivative, as_of)? {
        if line.status == LineStatus::Booked
            && line.stored_allocations()?.iter().any(|a| a.party == party)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A party's exact total and its exact total per component.
type PartyTotals = (ExactSum, BTreeMap<String, ExactSum>);

type Found = (DerivativeRecord, LineageMatch, Vec<Uuid>);

/// The outcome of a search: the derivative found, or for an audio query the
/// closest fingerprint candidate that fell short of the threshold.
enum Search {
    Found(Box<Found>),
    Missed { closest: Option<FingerprintMatch> },
}

/// The derivative `query` asks about among those published as of `as_of`
/// (with `party`, among those that paid it).
fn find(
    projections: &Projections,
    query: &LineageQuery,
    as_of: u64,
    party: Option<&str>,
) -> Result<Search, ProjectionError> {
    let visible = |record: &DerivativeRecord| match party {
        None => Ok(true),
        Some(party) => paid(projections, record.published.derivative, party, as_of),
    };
    let by_hash =
        |found: Vec<DerivativeRecord>, method: &str| -> Result<Option<Found>, ProjectionError> {
            let mut shown = Vec::with_capacity(found.len());
            for record in found {
                if visible(&record)? {
                    shown.push(record);
                }
            }
            if shown.is_empty() {
                return Ok(None);
            }
            let record = shown.remove(0);
            let matched = LineageMatch {
                method: method.to_string(),
                fingerprint: None,
            };
            Ok(Some((
                record,
                matched,
                shown.into_iter().map(|r| r.published.derivative).collect(),
            )))
        };
    let identity = match query {
        LineageQuery::Derivative(id) => {
            let record = match projections.derivative(*id, as_of)? {
                Some(record) if visible(&record)? => Some(record),
                _ => None,
            };
            return Ok(match record {
                Some(record) => Search::Found(Box::new((
                    record,
                    LineageMatch {
                        method: "derivative-id".into(),
                        fingerprint: None,
                    },
                    Vec::new(),
                ))),
                None => Search::Missed { closest: None },
            });
        }
        LineageQuery::Audio(identity) => identity,
    };
    if let Some(found) = by_hash(
        projections.derivatives_by_output(&identity.file_hash, as_of)?,
        "file-hash",
    )? {
        return Ok(Search::Found(Box::new(found)));
    }
    // The output as distributed, with its Content Credentials embedded.
    if let Some(found) = by_hash(
        projections.derivatives_by_credentialed_file(&identity.file_hash, as_of)?,
        "file-hash",
    )? {
        return Ok(Search::Found(Box::new(found)));
    }
    if let Some(pcm) = &identity.pcm_hash {
        if let Some(found) = by_hash(projections.derivatives_by_pcm(pcm, as_of)?, "pcm-hash")? {
            return Ok(Search::Found(Box::new(found)));
        }
    }
    match &identity.fingerprint {
        Some(items) => find_by_fingerprint(projections, items, as_of, &visible),
        None => Ok(Search::Missed { closest: None }),
    }
}

/// The derivative whose recorded fingerprint best matches `query`: the
/// index proposes the few derivatives sharing the most keys with it, each
/// is aligned and scored, and the best accepted one wins (ties to the
/// earliest published, as for identical outputs).
fn find_by_fingerprint(
    projections: &Projections,
    query: &[u32],
    as_of: u64,
    visible: &dyn Fn(&DerivativeRecord) -> Result<bool, ProjectionError>,
) -> Result<Search, ProjectionError> {
    // Decoding bounds audio at 20 minutes, so this only guards the matcher.
    let query = &query[..query.len().min(fingerprint::ITEMS_MAX)];
    let candidates = projections.derivatives_by_fingerprint_keys(
        &fingerprint::query_keys(query),
        as_of,
        fingerprint::CANDIDATES_MAX,
    )?;
    let mut scored: Vec<(DerivativeRecord, FingerprintMatch)> = Vec::new();
    for (record, votes) in candidates {
        if votes < fingerprint::CANDIDATE_VOTES_MIN || !visible(&record)? {
            continue;
        }
        let Some(items) = record
            .published
            .output_fingerprint
            .as_ref()
            .and_then(|f| fingerprint::items_of(f).ok())
        else {
            continue;
        };
        if let Some(found) = fingerprint::compare(query, &items) {
            scored.push((record, found));
        }
    }
    scored.sort_by(|(a, a_match), (b, b_match)| {
        b_match
            .is_accepted()
            .cmp(&a_match.is_accepted())
            .then(b_match.score_bp.cmp(&a_match.score_bp))
            .then(b_match.duration_ms.cmp(&a_match.duration_ms))
            .then(a.seq.cmp(&b.seq))
    });
    let mut scored = scored.into_iter();
    match scored.next() {
        Some((record, found)) if found.is_accepted() => {
            let also = scored
                .filter(|(_, m)| m.is_accepted())
                .map(|(r, _)| r.published.derivative)
                .collect();
            let matched = LineageMatch {
                method: "fingerprint".into(),
                fingerprint: Some(found),
            };
            Ok(Search::Found(Box::new((record, matched, also))))
        }
        closest => Ok(Search::Missed {
            closest: closest.map(|(_, found)| found),
        }),
    }
}

/// Why an audio file has no lineage, naming every method tried.
fn no_lineage_message(
    identity: &AudioIdentity,
    closest: Option<FingerprintMatch>,
    party: Option<&str>,
) -> String {
    let file = &identity.file_hash;
    let prefix = match party {
        None => "no lineage: no derivative published in this log has".to_string(),
        Some(party) => {
            format!("no lineage: no derivative published in this log that paid party {party:?} has")
        }
    };
    let (pcm, items) = match (&identity.pcm_hash, &identity.fingerprint) {
        (None, _) => {
            return format!("{prefix} file hash {file} (the file does not decode as audio, so neither its PCM hash nor its acoustic fingerprint could be compared)")
        }
        (Some(pcm), None) => {
            return format!("{prefix} file hash {file} or PCM hash {pcm} (its acoustic fingerprint was not compared)")
        }
        (Some(pcm), Some(items)) => (pcm, items),
    };
    if fingerprint::items_to_ms(items.len()) < fingerprint::MATCH_DURATION_MS_MIN {
        return format!(
            "{prefix} file hash {file} or PCM hash {pcm}, and the audio is too short to match by acoustic fingerprint (a match needs {} ms)",
            fingerprint::MATCH_DURATION_MS_MIN
        );
    }
    let closest = match closest {
        // The closest derivative is not named: the score says how near the
        // file came, not which derivative it resembles.
        Some(found) => format!(
            "; the closest derivative scored {} bp over {} ms, and a match needs {} bp over {} ms",
            found.score_bp,
            found.duration_ms,
            fingerprint::SCORE_BP_MIN,
            fingerprint::MATCH_DURATION_MS_MIN
        ),
        None => String::new(),
    };
    format!("{prefix} file hash {file}, PCM hash {pcm} or a matching acoustic fingerprint{closest}")
}

/// The terms and consent a logged request names by seq, read back.
async fn licensed_when_made(
    store: &dyn EventStore,
    requested: &GenerationRequested,
) -> Result<LicensedWhenMade, StoreError> {
    let seqs: Vec<u64> = [requested.terms_seq, requested.consent_seq]
        .into_iter()
        .flatten()
        .collect();
    let events = read_events(store, &seqs).await?;
    let part = |seq: Option<u64>, pointer: &str| -> Result<Option<CatalogVersion>, StoreError> {
        let Some(seq) = seq else { return Ok(None) };
        let Some(event) = events.iter().find(|e| e.seq == seq) else {
            return Ok(None);
        };
        let envelope = event.envelope().map_err(StoreError::from)?;
        Ok(Some(CatalogVersion {
            seq,
            data: envelope
                .data
                .pointer(pointer)
                .cloned()
                .unwrap_or(serde_json::Value::Null),
        }))
    };
    Ok(LicensedWhenMade {
        territory: requested.territory.clone(),
        licensed_on: requested.licensed_on.map(|d| d.to_string()),
        terms: part(requested.terms_seq, "/licence")?,
        consent: part(requested.consent_seq, "/consent")?,
    })
}

/// The events at `seqs` (ascending), in one read: a derivative's usage
/// lines are scattered over the log.
async fn read_events(store: &dyn EventStore, seqs: &[u64]) -> Result<Vec<StoredEvent>, StoreError> {
    store.read_seqs(seqs.to_vec()).await.map_err(|e| match e {
        StoreError::OutOfRange { what, .. } => StoreError::Corrupt(format!(
            "{what}, cited by the projection, is not in the log"
        )),
        other => other,
    })
}

/// A plain-text summary of an answer.
pub fn render_text(answer: &LineageAnswer) -> String {
    let lineage = match answer {
        LineageAnswer::NotFound { message, .. } => return format!("{message}\n"),
        LineageAnswer::Found(lineage) => lineage,
    };
    let d = &lineage.derivative;
    let mut out = format!(
        "derivative {} (seq {}, matched by {}), requested by {}\n  output {}\n  pcm    {}\n  source recording {}\n",
        d.derivative, lineage.derivative_seq, lineage.matched_by, d.requested_by, d.output, d.output_pcm, d.recording
    );
    if let Some(m) = &lineage.matched.fingerprint {
        out.push_str(&format!(
            "fingerprint match: score {} bp, {} ms from {} ms in the file matching {} ms in the derivative\n",
            m.score_bp, m.duration_ms, m.query_start_ms, m.derivative_start_ms
        ));
    }
    if let Some(l) = &lineage.licensed {
        out.push_str(&format!(
            "licensed on {} in {}: recording terms of seq {}{}\n",
            l.licensed_on.as_deref().unwrap_or("?"),
            l.territory.as_deref().unwrap_or("?"),
            l.terms
                .as_ref()
                .map_or("?".to_string(), |t| format!("{} {}", t.seq, t.data)),
            l.consent
                .as_ref()
                .map(|c| format!("; voice consent of seq {} {}", c.seq, c.data))
                .unwrap_or_default()
        ));
    }
    out.push_str("attribution:\n");
    for c in &d.attribution {
        let kind = match c.kind {
            AttributionKind::Recording => "recording",
            AttributionKind::Voice => "voice",
        };
        out.push_str(&format!("  {kind} {} {} bp\n", c.reference, c.weight_bp));
    }
    out.push_str(&format!(
        "generation steps: {}\n",
        lineage.generation_steps.len()
    ));
    for step in &lineage.generation_steps {
        out.push_str(&format!(
            "  seq {} {}\n",
            step["seq"],
            step["type"].as_str().unwrap_or("")
        ));
    }
    for (isrc, v) in &lineage.recordings {
        out.push_str(&format!(
            "recording {isrc} (seq {}): master splits {}\n",
            v.seq, v.data["master_splits"]
        ));
    }
    for (iswc, v) in &lineage.works {
        out.push_str(&format!(
            "work {iswc} (seq {}): publishing splits {}\n",
            v.seq, v.data["publishing_splits"]
        ));
    }
    for (id, v) in &lineage.voice_models {
        out.push_str(&format!(
            "voice model {id} (seq {}): consent {}, training stems {}, likeness splits {}\n",
            v.seq, v.data["consent"], v.data["training_stems"], v.data["likeness_splits"]
        ));
    }
    for (id, v) in &lineage.models {
        out.push_str(&format!(
            "network {id} (seq {}): file {}, licence {}, from {} {} ({})\n",
            v.seq,
            v.data["artifact"],
            v.data["licence"],
            v.data["source_package"],
            v.data["source_version"],
            v.data["authors"]
        ));
    }
    for r in &lineage.revenue {
        match &r.gross {
            Some(gross) => out.push_str(&format!("revenue {} gross {gross}\n", r.currency)),
            None => out.push_str(&format!("revenue {}\n", r.currency)),
        }
        for p in &r.parties {
            out.push_str(&format!(
                "  {} ({}): {} (exact {})\n",
                p.party, p.name, p.amount, p.exact
            ));
        }
    }
    out.push_str(&format!(
        "{} events cited with inclusion proofs against checkpoint {} ({})\n",
        lineage.cited.len(),
        lineage.checkpoint.size,
        lineage.checkpoint.root_hash
    ));
    out
}
