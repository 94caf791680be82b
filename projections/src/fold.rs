//! The royalty fold: one pure step per event, in seq order.
//!
//! [`Fold`] holds what is small and needed for every usage line (the catalog
//! in force and the published derivatives); the usage lines themselves live
//! in a [`LineBook`] (memory in tests, the `projection_usage_line` table of
//! the read model, [`crate::tables`]). Given the same events, a fold makes
//! the same [`Change`]s, so a rebuild from zero equals any incremental
//! catch-up.
//!
//! A derivative is accepted only as the engine publishes one: as the last
//! event of its job's stream `generation-<job>`, after the job's
//! `generation.requested` (the stream's first event) and at least one
//! `generation.step`, with nothing else between them. [`Fold::jobs`] follows
//! each job from its request to its publication. A publication that comes
//! any other way (a raw append by a writer that does not own the type, an
//! older or compromised one) changes nothing: its lines are not booked, and
//! lineage does not find it.

use crate::allocation::{AllocationError, AllocationPlan, Allocations, OwnedComponent, Share};
use crate::usage::check_line;
use ledger::Envelope;
use rust_decimal::Decimal;
use schemas::catalog::{self as catalog_events, Party, Policy, Recording, VoiceModel, Work};
use schemas::generation::{
    generation_stream, AttributionKind, CredentialsIssued, DerivativePublished, CREDENTIALS_ISSUED,
    DERIVATIVE_PUBLISHED, GENERATION_ABANDONED, GENERATION_REQUESTED, GENERATION_STEP,
};
use schemas::usage::{UsageLine, LINE_IMPORTED};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// The catalog entity kinds, as stored in `projection_catalog_entry.kind`.
pub const KIND_PARTY: &str = "party";
pub const KIND_WORK: &str = "work";
pub const KIND_RECORDING: &str = "recording";
pub const KIND_VOICE_MODEL: &str = "voice-model";
pub const KIND_POLICY: &str = "policy";

/// The catalog in force at the fold's position: the latest version of each
/// entity, and the most recent policy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogState {
    pub parties: HashMap<String, Party>,
    pub works: HashMap<String, Work>,
    pub recordings: HashMap<String, Recording>,
    pub voice_models: HashMap<String, VoiceModel>,
    pub policy: Option<Policy>,
}

impl CatalogState {
    /// Applies one catalog entity version (kind, payload); returns false when
    /// the payload is not a valid entity of that kind.
    pub fn apply_entry(&mut self, kind: &str, data: &serde_json::Value) -> bool {
        fn parse<T: DeserializeOwned>(data: &serde_json::Value) -> Option<T> {
            T::deserialize(data).ok()
        }
        match kind {
            KIND_PARTY => parse::<Party>(data)
                .map(|p| self.parties.insert(p.id.clone(), p))
                .is_some(),
            KIND_WORK => parse::<Work>(data)
                .map(|w| self.works.insert(w.iswc.clone(), w))
                .is_some(),
            KIND_RECORDING => parse::<Recording>(data)
                .map(|r| self.recordings.insert(r.isrc.clone(), r))
                .is_some(),
            KIND_VOICE_MODEL => parse::<VoiceModel>(data)
                .map(|v| self.voice_models.insert(v.id.clone(), v))
                .is_some(),
            KIND_POLICY => parse::<Policy>(data)
                .map(|p| self.policy = Some(p))
                .is_some(),
            _ => false,
        }
    }
}

/// The catalog kind and entity id of a catalog event type, if it is one.
pub fn catalog_kind(event_type: &str) -> Option<&'static str> {
    match event_type {
        catalog_events::PARTY_REGISTERED | catalog_events::PARTY_AMENDED => Some(KIND_PARTY),
        catalog_events::WORK_REGISTERED | catalog_events::WORK_AMENDED => Some(KIND_WORK),
        catalog_events::RECORDING_REGISTERED | catalog_events::RECORDING_AMENDED => {
            Some(KIND_RECORDING)
        }
        catalog_events::VOICE_MODEL_REGISTERED | catalog_events::VOICE_MODEL_AMENDED => {
            Some(KIND_VOICE_MODEL)
        }
        catalog_events::POLICY_SET | catalog_events::POLICY_AMENDED => Some(KIND_POLICY),
        _ => None,
    }
}

fn entity_id(kind: &str, data: &serde_json::Value) -> Option<String> {
    let field = match kind {
        KIND_WORK => "iswc",
        KIND_RECORDING => "isrc",
        _ => "id",
    };
    data.get(field)?.as_str().map(str::to_string)
}

/// A published derivative and where it was published.
#[derive(Debug, Clone, PartialEq)]
pub struct DerivativeRecord {
    pub seq: u64,
    pub stream: String,
    pub published: DerivativePublished,
}

impl DerivativeRecord {
    /// The record as [`Fold`] keeps it in memory: without the acoustic
    /// fingerprint, kilobytes per derivative that only lineage reads (from
    /// the projection tables), so thousands of derivatives stay small.
    pub fn without_fingerprint(&self) -> DerivativeRecord {
        let mut record = self.clone();
        record.published.output_fingerprint = None;
        record
    }
}

/// Whether a usage line counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineStatus {
    Booked,
    /// Not booked, and why (a duplicate line id, an unknown derivative, ...).
    Rejected(String),
}

impl LineStatus {
    /// The text stored in `projection_usage_line.status`.
    pub fn to_text(&self) -> Cow<'static, str> {
        match self {
            LineStatus::Booked => Cow::Borrowed("booked"),
            LineStatus::Rejected(why) => Cow::Owned(format!("rejected: {why}")),
        }
    }

    pub fn from_text(text: &str) -> LineStatus {
        match text.strip_prefix("rejected: ") {
            Some(why) => LineStatus::Rejected(why.to_string()),
            None => LineStatus::Booked,
        }
    }
}

/// A usage line as the fold saw it, with the plan that allocates it when
/// booked.
#[derive(Debug, Clone, PartialEq)]
pub struct LineRecord {
    pub seq: u64,
    pub line: UsageLine,
    pub status: LineStatus,
    /// A booked line's allocation plan: the one in force at its seq, or for
    /// a reversal the original line's. `None` for a line not booked.
    pub plan: Option<Arc<AllocationPlan>>,
}

impl LineRecord {
    /// The line's exact allocations: its gross allocated by its plan. A
    /// reversal's gross is the original's negated and allocation is odd
    /// (every product and sum of -G is minus that of G, rounding half to
    /// even included), so a reversal books exactly the original's
    /// allocations negated. Empty for a line not booked.
    pub fn allocations(&self) -> Result<Allocations, AllocationError> {
        match &self.plan {
            Some(plan) => plan.allocate(self.line.gross),
            None => Ok(Allocations::default()),
        }
    }
}

/// What one event changed in the read model.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A new version of a catalog entity, in force from `seq`.
    CatalogEntry {
        kind: &'static str,
        id: String,
        seq: u64,
        data: serde_json::Value,
    },
    /// A generation job's request, or its next step, in order: the first
    /// `events` events of its stream are its request and its steps. A
    /// published derivative ends its job.
    JobProgress {
        job: Uuid,
        events: u64,
    },
    /// A job ended without a derivative (`generation.abandoned`).
    JobAbandoned {
        job: Uuid,
    },
    Derivative(DerivativeRecord),
    /// A published derivative's output, credentialed: `file` is the hash
    /// of the file as distributed (`generation.credentials-issued`).
    Credentialed {
        derivative: Uuid,
        file: String,
        seq: u64,
    },
    UsageLine(LineRecord),
}

/// Where the fold keeps usage lines and looks them up.
pub trait LineBook {
    type Error;
    /// The first line recorded with this line id, booked or not.
    fn line(&self, line_id: &str) -> Result<Option<LineRecord>, Self::Error>;
    /// The seq of a booked line that reverses `line_id`, if any.
    fn reversal_of(&self, line_id: &str) -> Result<Option<u64>, Self::Error>;
    /// Keeps a change (the fold calls this for each change it makes).
    fn record(&mut self, change: &Change) -> Result<(), Self::Error>;
}

/// The royalty fold's in-memory state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fold {
    pub catalog: CatalogState,
    pub derivatives: HashMap<Uuid, DerivativeRecord>,
    /// Generation jobs requested and not yet ended, by job id: the number of
    /// events at the start of the job's stream that are its request and its
    /// steps, in order.
    pub jobs: HashMap<Uuid, u64>,
    plans: Plans,
}

/// The job a request, step or abandonment names. The fold reads no more of
/// them: a step's content is checked by replaying it (`inference`'s replay),
/// not by the royalty fold.
#[derive(Deserialize)]
struct JobEvent {
    job: Uuid,
}

/// The job of a generation event, when the event is on that job's stream.
fn job_of(envelope: &Envelope) -> Option<Uuid> {
    let JobEvent { job } = JobEvent::deserialize(&envelope.data).ok()?;
    (envelope.stream == generation_stream(job)).then_some(job)
}

/// The plans of the derivatives whose lines were folded since the catalog
/// last changed: each derivative's attribution resolved against the catalog
/// in force, what allocating one of its lines needs, found and checked once.
/// A cache, so not part of the state: two folds with the same catalog and
/// derivatives are equal whatever they cached.
#[derive(Debug, Clone, Default)]
struct Plans(HashMap<Uuid, Arc<AllocationPlan>>);

impl PartialEq for Plans {
    fn eq(&self, _: &Plans) -> bool {
        true
    }
}

impl Fold {
    /// Folds one event: records its change in `book` and returns it. Events
    /// of other types, and payloads that are not valid for their type, change
    /// nothing (the log is immutable, so the fold must not stop on them).
    pub fn apply<B: LineBook>(
        &mut self,
        envelope: &Envelope,
        book: &mut B,
    ) -> Result<Option<Change>, B::Error> {
        let change = if let Some(kind) = catalog_kind(&envelope.event_type) {
            match entity_id(kind, &envelope.data) {
                Some(id) if self.catalog.apply_entry(kind, &envelope.data) => {
                    self.plans.0.clear();
                    Some(Change::CatalogEntry {
                        kind,
                        id,
                        seq: envelope.seq,
                        data: envelope.data.clone(),
                    })
                }
                _ => None,
            }
        } else if envelope.event_type == DERIVATIVE_PUBLISHED {
            match DerivativePublished::deserialize(&envelope.data) {
                Ok(published) if self.ends_its_job(envelope, &published) => {
                    self.jobs.remove(&published.job);
                    let record = DerivativeRecord {
                        seq: envelope.seq,
                        stream: envelope.stream.clone(),
                        published,
                    };
                    self.derivatives
                        .insert(record.published.derivative, record.without_fingerprint());
                    Some(Change::Derivative(record))
                }
                _ => None,
            }
        } else if envelope.event_type == GENERATION_REQUESTED {
            match job_of(envelope) {
                Some(job) if envelope.version == 0 && !self.derivatives.contains_key(&job) => {
                    self.jobs.insert(job, 1);
                    Some(Change::JobProgress { job, events: 1 })
                }
                _ => None,
            }
        } else if envelope.event_type == GENERATION_STEP {
            match job_of(envelope) {
                Some(job) if self.jobs.get(&job) == Some(&envelope.version) => {
                    let events = envelope.version + 1;
                    self.jobs.insert(job, events);
                    Some(Change::JobProgress { job, events })
                }
                _ => None,
            }
        } else if envelope.event_type == CREDENTIALS_ISSUED {
            match CredentialsIssued::deserialize(&envelope.data) {
                Ok(issued) if self.credentials_fit(envelope, &issued) => {
                    Some(Change::Credentialed {
                        derivative: issued.derivative,
                        file: issued.file.as_str().to_string(),
                        seq: envelope.seq,
                    })
                }
                _ => None,
            }
        } else if envelope.event_type == GENERATION_ABANDONED {
            match job_of(envelope) {
                Some(job) if self.jobs.remove(&job).is_some() => Some(Change::JobAbandoned { job }),
                _ => None,
            }
        } else if envelope.event_type == LINE_IMPORTED {
            let line = UsageLine::deserialize(&envelope.data).ok();
            return self.apply_line(envelope.seq, line, book);
        } else {
            None
        };
        if let Some(change) = &change {
            book.record(change)?;
        }
        Ok(change)
    }

    /// Whether `published` is the next event of its job: on the job's own
    /// stream, naming the job as the derivative, right after the job's
    /// request and at least one step.
    fn ends_its_job(&self, envelope: &Envelope, published: &DerivativePublished) -> bool {
        published.derivative == published.job
            && envelope.stream == generation_stream(published.job)
            && !self.derivatives.contains_key(&published.derivative)
            && self
                .jobs
                .get(&published.job)
                .is_some_and(|&events| events >= 2 && events == envelope.version)
    }

    /// Credentials count for a derivative only on its own job's stream, for
    /// the derivative published at the seq and with the output they name.
    fn credentials_fit(&self, envelope: &Envelope, issued: &CredentialsIssued) -> bool {
        issued.derivative == issued.job
            && envelope.stream == generation_stream(issued.job)
            && self
                .derivatives
                .get(&issued.derivative)
                .is_some_and(|record| {
                    record.seq == issued.published_seq && record.published.output == issued.output
                })
    }

    /// Folds the usage line event at `seq` (`None`: its payload is not a
    /// valid usage line, which changes nothing).
    pub fn apply_line<B: LineBook>(
        &mut self,
        seq: u64,
        line: Option<UsageLine>,
        book: &mut B,
    ) -> Result<Option<Change>, B::Error> {
        let Some(line) = line else {
            return Ok(None);
        };
        if !self.plans.0.contains_key(&line.derivative) {
            if let Ok(plan) = self.plan(line.derivative) {
                self.plans.0.insert(line.derivative, Arc::new(plan));
            }
        }
        let (status, plan) = match self.book_line(&line, &*book)? {
            Ok(plan) => (LineStatus::Booked, Some(plan)),
            Err(why) => (LineStatus::Rejected(why), None),
        };
        let change = Change::UsageLine(LineRecord {
            seq,
            line,
            status,
            plan,
        });
        book.record(&change)?;
        Ok(Some(change))
    }

    /// The plan that allocates `line` against the state in force, or why it
    /// cannot be booked. The importer calls this to reject lines up front.
    pub fn book_line<B: LineBook + ?Sized>(
        &self,
        line: &UsageLine,
        book: &B,
    ) -> Result<Result<Arc<AllocationPlan>, String>, B::Error> {
        if let Err((field, why)) = check_line(line) {
            return Ok(Err(format!("{field}: {why}")));
        }
        if book.line(&line.line_id)?.is_some() {
            return Ok(Err(format!(
                "line_id {:?} was already imported",
                line.line_id
            )));
        }
        if let Some(original_id) = &line.reverses {
            return self.book_reversal(line, original_id, book);
        }
        Ok(self.allocate_line(line))
    }

    fn book_reversal<B: LineBook + ?Sized>(
        &self,
        line: &UsageLine,
        original_id: &str,
        book: &B,
    ) -> Result<Result<Arc<AllocationPlan>, String>, B::Error> {
        let original = match book.line(original_id)? {
            Some(original) if original.status == LineStatus::Booked => original,
            Some(_) => {
                return Ok(Err(format!(
                    "reverses line {original_id:?}, which was not booked"
                )))
            }
            None => {
                return Ok(Err(format!(
                    "reverses line {original_id:?}, which is not in the log"
                )))
            }
        };
        if original.line.reverses.is_some() {
            return Ok(Err(format!(
                "reverses line {original_id:?}, which is itself a reversal"
            )));
        }
        if original.line.derivative != line.derivative || original.line.currency != line.currency {
            return Ok(Err(format!(
                "reverses line {original_id:?} of derivative {} in {}; a reversal must name the same derivative and currency",
                original.line.derivative, original.line.currency
            )));
        }
        if line.gross != -original.line.gross {
            return Ok(Err(format!(
                "gross {} must be exactly the negated gross of line {original_id:?} ({})",
                line.gross, original.line.gross
            )));
        }
        if let Some(seq) = book.reversal_of(original_id)? {
            return Ok(Err(format!(
                "line {original_id:?} was already reversed at seq {seq}"
            )));
        }
        match original.plan {
            Some(plan) => Ok(Ok(plan)),
            None => Ok(Err(format!(
                "reverses line {original_id:?}, which has no allocation plan"
            ))),
        }
    }

    /// The plan in force for `line`'s derivative, once it is sure to
    /// allocate the line's gross.
    fn allocate_line(&self, line: &UsageLine) -> Result<Arc<AllocationPlan>, String> {
        let plan = match self.plans.0.get(&line.derivative) {
            Some(plan) => Arc::clone(plan),
            None => Arc::new(self.plan(line.derivative)?),
        };
        // check_line has passed: within proven bounds the line allocates,
        // so it is booked without making its amounts (readers make them).
        if plan.allocates_every_valid_gross() {
            debug_assert!(plan.allocate(line.gross).is_ok(), "{line:?}");
        } else {
            plan.allocate(line.gross).map_err(|e| e.to_string())?;
        }
        Ok(plan)
    }

    /// Resolves derivative `id`'s attribution against the catalog in force,
    /// or says why its lines cannot be allocated.
    fn plan(&self, id: Uuid) -> Result<AllocationPlan, String> {
        let derivative = self
            .derivatives
            .get(&id)
            .ok_or_else(|| format!("derivative {id} is not published in the log"))?;
        let policy = self
            .catalog
            .policy
            .as_ref()
            .ok_or("no royalty policy is set in the catalog")?;
        let published = &derivative.published;
        let mut components = Vec::with_capacity(published.attribution.len());
        for component in &published.attribution {
            let reference = component.reference.as_str();
            let planned = match component.kind {
                AttributionKind::Recording => {
                    let recording =
                        self.catalog.recordings.get(reference).ok_or_else(|| {
                            format!("recording {reference:?} is not in the catalog")
                        })?;
                    let work = self.catalog.works.get(&recording.work).ok_or_else(|| {
                        format!("work {:?} is not in the catalog", recording.work)
                    })?;
                    OwnedComponent::Recording {
                        isrc: recording.isrc.as_str().into(),
                        master_splits: Share::all(&recording.master_splits),
                        iswc: work.iswc.as_str().into(),
                        publishing_splits: Share::all(&work.publishing_splits),
                    }
                }
                AttributionKind::Voice => {
                    let model = self.catalog.voice_models.get(reference).ok_or_else(|| {
                        format!("voice model {reference:?} is not in the catalog")
                    })?;
                    OwnedComponent::Voice {
                        id: model.id.as_str().into(),
                        likeness_splits: Share::all(&model.likeness_splits),
                    }
                }
            };
            components.push((component.weight_bp, planned));
        }
        let invalid_split = |splits: &[Share]| {
            splits.is_empty() || splits.iter().map(|s| s.share).sum::<Decimal>() != Decimal::ONE
        };
        for (_, c) in &components {
            let bad = match c {
                OwnedComponent::Recording {
                    master_splits,
                    publishing_splits,
                    ..
                } => invalid_split(master_splits) || invalid_split(publishing_splits),
                OwnedComponent::Voice {
                    likeness_splits, ..
                } => invalid_split(likeness_splits),
            };
            if bad {
                return Err("a split sheet in force does not sum to 1".into());
            }
        }
        let weighted = OwnedComponent::weighted(&components);
        let creator: Arc<str> = published.requested_by.as_str().into();
        AllocationPlan::new(policy, &creator, &weighted).map_err(|e| e.to_string())
    }
}

/// A [`LineBook`] in memory: for tests, and as the overlay an import checks
/// a file's lines against before appending them.
#[derive(Debug, Clone, Default)]
pub struct MemoryBook<'a, B: ?Sized = NoBook> {
    base: Option<&'a B>,
    lines: HashMap<String, LineRecord>,
    reversals: HashMap<String, u64>,
    pub changes: Vec<Change>,
}

/// A book with nothing in it.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBook;

impl LineBook for NoBook {
    type Error = std::convert::Infallible;
    fn line(&self, _: &str) -> Result<Option<LineRecord>, Self::Error> {
        Ok(None)
    }
    fn reversal_of(&self, _: &str) -> Result<Option<u64>, Self::Error> {
        Ok(None)
    }
    fn record(&mut self, _: &Change) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl MemoryBook<'static, NoBook> {
    pub fn new() -> Self {
        MemoryBook {
            base: None,
            lines: HashMap::new(),
            reversals: HashMap::new(),
            changes: Vec::new(),
        }
    }
}

impl<'a, B: LineBook + ?Sized> MemoryBook<'a, B> {
    /// A book that sees `base` and keeps its own additions apart from it.
    pub fn over(base: &'a B) -> Self {
        MemoryBook {
            base: Some(base),
            lines: HashMap::new(),
            reversals: HashMap::new(),
            changes: Vec::new(),
        }
    }
}

impl<B: LineBook + ?Sized> LineBook for MemoryBook<'_, B> {
    type Error = B::Error;
    fn line(&self, line_id: &str) -> Result<Option<LineRecord>, Self::Error> {
        if let Some(base) = self.base {
            if let Some(record) = base.line(line_id)? {
                return Ok(Some(record));
            }
        }
        Ok(self.lines.get(line_id).cloned())
    }
    fn reversal_of(&self, line_id: &str) -> Result<Option<u64>, Self::Error> {
        if let Some(base) = self.base {
            if let Some(seq) = base.reversal_of(line_id)? {
                return Ok(Some(seq));
            }
        }
        Ok(self.reversals.get(line_id).copied())
    }
    fn record(&mut self, change: &Change) -> Result<(), Self::Error> {
        if let Change::UsageLine(record) = change {
            if record.status == LineStatus::Booked {
                if let Some(original) = &record.line.reverses {
                    self.reversals.entry(original.clone()).or_insert(record.seq);
                }
            }
            self.lines
                .entry(record.line.line_id.clone())
                .or_insert_with(|| record.clone());
        }
        self.changes.push(change.clone());
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::allocation::WeightedComponent;
    use serde_json::json;

    /// An envelope at `seq` of a stream of its own, as the fold's tests
    /// feed it.
    pub(crate) fn envelope(seq: u64, event_type: &str, data: serde_json::Value) -> Envelope {
        Envelope {
            seq,
            stream: format!("s{seq}"),
            version: 0,
            id: Uuid::from_u128(u128::from(seq) + 1),
            event_type: event_type.into(),
            schema: 1,
            time: "2026-11-27T00:00:00.000000Z".into(),
            prev: None,
            data,
        }
    }

    /// A generation job's request and one step, as the engine appends them
    /// before its publication: versions 0 and 1 of the job's stream.
    pub(crate) fn job_start(
        job: Uuid,
        requested_by: &str,
    ) -> [(&'static str, serde_json::Value); 2] {
        schemas::generation::GenerationRequested::unchanged_remix(job, "GBAYE0601498", requested_by)
            .opening_events()
    }

    /// A derivative's publication, requested by `requested_by` and
    /// attributed wholly to recording GBAYE0601498.
    pub(crate) fn published(job: Uuid, requested_by: &str) -> serde_json::Value {
        json!({"job": job, "derivative": job, "recording": "GBAYE0601498",
               "requested_by": requested_by, "recipe": {}, "output": format!("sha256:{:064x}", job.as_u128()),
               "output_pcm": format!("sha256:{:064x}", job.as_u128() + 1), "duration_ms": 1000,
               "attribution": [{"kind": "recording", "ref": "GBAYE0601498", "weight_bp": 10000}]})
    }

    /// `events` as consecutive events of `stream` from version 0, at seqs
    /// from `seq` on.
    pub(crate) fn stream_envelopes(
        seq: u64,
        stream: &str,
        events: Vec<(&str, serde_json::Value)>,
    ) -> Vec<Envelope> {
        events
            .into_iter()
            .enumerate()
            .map(|(version, (event_type, data))| Envelope {
                stream: stream.into(),
                version: version as u64,
                ..envelope(seq + version as u64, event_type, data)
            })
            .collect()
    }

    /// The events of a whole generation job, as the engine appends them.
    pub(crate) fn job_envelopes(
        seq: u64,
        job: Uuid,
        published: serde_json::Value,
    ) -> Vec<Envelope> {
        let [requested, step] = job_start(job, "u");
        stream_envelopes(
            seq,
            &generation_stream(job),
            vec![requested, step, (DERIVATIVE_PUBLISHED, published)],
        )
    }

    #[test]
    fn credentials_count_only_for_the_published_output_on_its_jobs_stream() {
        let job = Uuid::from_u128(0xc2);
        let issued = |stream: &str, published_seq: u64, output: String| {
            let data = json!({"job": job, "derivative": job, "published_seq": published_seq,
                   "output": output, "file": format!("sha256:{}", "ab".repeat(32)),
                   "manifest": format!("sha256:{}", "cd".repeat(32)), "format": "audio/wav",
                   "signer": "s"});
            Envelope {
                stream: stream.into(),
                version: 3,
                ..envelope(3, CREDENTIALS_ISSUED, data)
            }
        };
        let output = format!("sha256:{:064x}", job.as_u128());
        let mut fold = Fold::default();
        let mut book = MemoryBook::new();
        // Before the derivative is published, credentials name nothing.
        let early = issued(&generation_stream(job), 2, output.clone());
        assert_eq!(fold.apply(&early, &mut book).unwrap(), None);
        for envelope in job_envelopes(0, job, published(job, "u")) {
            fold.apply(&envelope, &mut book).unwrap();
        }
        let stream = generation_stream(job);
        for forged in [
            issued("elsewhere", 2, output.clone()),
            issued(&stream, 1, output.clone()),
            issued(&stream, 2, format!("sha256:{}", "ee".repeat(32))),
        ] {
            assert_eq!(fold.apply(&forged, &mut book).unwrap(), None);
        }
        assert_eq!(
            fold.apply(&issued(&stream, 2, output), &mut book).unwrap(),
            Some(Change::Credentialed {
                derivative: job,
                file: format!("sha256:{}", "ab".repeat(32)),
                seq: 3
            })
        );
    }

    /// Folds `envelopes` in order; returns the derivatives they published.
    fn published_by(envelopes: &[Envelope]) -> Vec<Uuid> {
        let mut fold = Fold::default();
        let mut book = MemoryBook::new();
        let mut derivatives = Vec::new();
        for envelope in envelopes {
            if let Some(Change::Derivative(record)) = fold.apply(envelope, &mut book).unwrap() {
                derivatives.push(record.published.derivative);
            }
        }
        derivatives
    }

    /// A plan that pays the platform, creator `creator`, and `parties`
    /// through one voice component: the last of them a share of 0.1 each,
    /// the first the rest.
    pub(crate) fn plan_paying(creator: &str, parties: &[&str]) -> Arc<AllocationPlan> {
        let tenth = Decimal::new(1, 1);
        let shares: Vec<Share> = parties
            .iter()
            .enumerate()
            .map(|(i, party)| Share {
                party: (*party).into(),
                share: match i {
                    0 => Decimal::ONE - tenth * Decimal::from(parties.len() - 1),
                    _ => tenth,
                },
            })
            .collect();
        let voice = OwnedComponent::Voice {
            id: "vm-1".into(),
            likeness_splits: shares,
        };
        let policy = Policy {
            id: "v1".into(),
            platform_share: Decimal::new(3, 1),
            creator_share: Decimal::new(1, 1),
            master_share: Decimal::new(5, 1),
        };
        let component = WeightedComponent {
            weight_bp: 10_000,
            component: voice.resolved(),
        };
        Arc::new(AllocationPlan::new(&policy, &creator.into(), &[component]).unwrap())
    }

    /// A booked line of `gross` USD of derivative 1 in 2026-01, as the
    /// tables' tests store it.
    pub(crate) fn booked_line(
        seq: u64,
        line_id: &str,
        reverses: Option<&str>,
        gross: Decimal,
        plan: Arc<AllocationPlan>,
    ) -> LineRecord {
        LineRecord {
            seq,
            line: UsageLine {
                line_id: line_id.into(),
                period: "2026-01".into(),
                derivative: Uuid::from_u128(1),
                territory: "US".into(),
                currency: "USD".into(),
                streams: 1,
                gross,
                reverses: reverses.map(str::to_string),
            },
            status: LineStatus::Booked,
            plan: Some(plan),
        }
    }

    fn recording(master: &[(&str, &str)]) -> serde_json::Value {
        let splits: Vec<_> = master
            .iter()
            .map(|(party, share)| json!({"party": party, "share": share}))
            .collect();
        json!({"isrc": "GBAYE0601498", "title": "R", "work": "T-034524680-1",
               "master_splits": splits, "stems": {"vocals": format!("sha256:{}", "a".repeat(64))}})
    }

    fn line(line_id: &str) -> serde_json::Value {
        json!({"line_id": line_id, "period": "2026-01", "derivative": Uuid::from_u128(7),
               "territory": "US", "currency": "USD", "streams": 1, "gross": "100"})
    }

    fn masters(change: Option<Change>) -> Vec<(String, Decimal)> {
        let Some(Change::UsageLine(record)) = change else {
            panic!("a usage line change");
        };
        assert_eq!(record.status, LineStatus::Booked);
        record
            .allocations()
            .unwrap()
            .iter()
            .filter(|a| a.component == crate::allocation::Component::Master)
            .map(|a| (a.party.to_string(), a.amount))
            .collect()
    }

    /// A derivative's plan is cached between its lines; a split amendment
    /// must reach the next line all the same.
    #[test]
    fn a_catalog_change_reaches_the_next_line() {
        let mut events = Vec::new();
        for party in ["a", "b", "w", "u"] {
            events.push((
                catalog_events::PARTY_REGISTERED,
                json!({"id": party, "name": party, "role": "other"}),
            ));
        }
        events.push((
            catalog_events::WORK_REGISTERED,
            json!({"iswc": "T-034524680-1", "title": "W", "publishing_splits": [{"party": "w", "share": "1"}]}),
        ));
        events.push((
            catalog_events::RECORDING_REGISTERED,
            recording(&[("a", "1")]),
        ));
        events.push((
            catalog_events::POLICY_SET,
            json!({"id": "v1", "platform_share": "0.3", "creator_share": "0.2", "master_share": "0.5"}),
        ));
        let mut envelopes: Vec<Envelope> = events
            .into_iter()
            .enumerate()
            .map(|(seq, (event_type, data))| envelope(seq as u64, event_type, data))
            .collect();
        let job = Uuid::from_u128(7);
        envelopes.extend(job_envelopes(7, job, published(job, "u")));
        let mut fold = Fold::default();
        let mut book = MemoryBook::new();
        for envelope in &envelopes {
            fold.apply(envelope, &mut book).unwrap();
        }
        let d = |text: &str| text.parse::<Decimal>().unwrap();
        // 100: platform 30, creator 20, pool 50, master half of it.
        let first = fold
            .apply(&envelope(10, LINE_IMPORTED, line("L1")), &mut book)
            .unwrap();
        assert_eq!(masters(first), [("a".to_string(), d("25"))]);
        let amended = recording(&[("a", "0.6"), ("b", "0.4")]);
        fold.apply(
            &envelope(11, catalog_events::RECORDING_AMENDED, amended),
            &mut book,
        )
        .unwrap();
        let second = fold
            .apply(&envelope(12, LINE_IMPORTED, line("L2")), &mut book)
            .unwrap();
        assert_eq!(
            masters(second),
            [("a".to_string(), d("15")), ("b".to_string(), d("10"))]
        );
    }

    #[test]
    fn a_derivative_after_its_request_and_a_step_is_published() {
        let job = Uuid::from_u128(7);
        assert_eq!(
            published_by(&job_envelopes(0, job, published(job, "u"))),
            [job]
        );
    }

    /// The forged provenance of a raw append: a publication alone on its
    /// job's stream, with no request or step before it.
    #[test]
    fn a_derivative_without_its_request_and_steps_is_not_published() {
        let job = Uuid::from_u128(7);
        let forged = stream_envelopes(
            0,
            &generation_stream(job),
            vec![(DERIVATIVE_PUBLISHED, published(job, "mallory"))],
        );
        assert!(published_by(&forged).is_empty());
    }

    #[test]
    fn a_derivative_after_a_request_with_no_step_is_not_published() {
        let job = Uuid::from_u128(7);
        let [requested, _] = job_start(job, "u");
        let envelopes = stream_envelopes(
            0,
            &generation_stream(job),
            vec![requested, (DERIVATIVE_PUBLISHED, published(job, "u"))],
        );
        assert!(published_by(&envelopes).is_empty());
    }

    /// Events of other types between a job's steps and its publication
    /// (appended by a writer that does not own the stream) void the job.
    #[test]
    fn a_derivative_after_a_foreign_event_on_its_stream_is_not_published() {
        let job = Uuid::from_u128(7);
        let [requested, step] = job_start(job, "u");
        let envelopes = stream_envelopes(
            0,
            &generation_stream(job),
            vec![
                requested,
                step,
                ("note.added", json!({"job": job})),
                (DERIVATIVE_PUBLISHED, published(job, "u")),
            ],
        );
        assert!(published_by(&envelopes).is_empty());
    }

    #[test]
    fn a_derivative_on_another_jobs_stream_is_not_published() {
        let (job, other) = (Uuid::from_u128(7), Uuid::from_u128(8));
        let [requested, step] = job_start(job, "u");
        let envelopes = stream_envelopes(
            0,
            &generation_stream(job),
            vec![
                requested,
                step,
                (DERIVATIVE_PUBLISHED, published(other, "u")),
            ],
        );
        assert!(published_by(&envelopes).is_empty());
    }

    #[test]
    fn an_abandoned_job_publishes_nothing_and_is_forgotten() {
        let job = Uuid::from_u128(7);
        let [requested, step] = job_start(job, "u");
        let envelopes = stream_envelopes(
            0,
            &generation_stream(job),
            vec![
                requested,
                step,
                (
                    GENERATION_ABANDONED,
                    json!({"job": job, "reason": "shutdown"}),
                ),
                (DERIVATIVE_PUBLISHED, published(job, "u")),
            ],
        );
        let mut fold = Fold::default();
        let mut book = MemoryBook::new();
        for envelope in &envelopes {
            fold.apply(envelope, &mut book).unwrap();
        }
        assert!(fold.jobs.is_empty() && fold.derivatives.is_empty());
    }
}
