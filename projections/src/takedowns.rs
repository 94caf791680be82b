//! The takedown list (`ledgerline takedowns`, `GET /v1/takedowns`): every
//! published derivative whose licence or consent has ended, with the reason,
//! the event that ended it and that event's inclusion proof, so a
//! distributor can check each entry against the signed log on its own.
//!
//! A derivative is listed when
//! - the artist withdrew the consent its voice was used under
//!   (`consent_withdrawn`, from the withdrawal's effective day);
//! - its recording's label ended participation, or removed the terms
//!   (`not_participating`, from the amendment);
//! - its recording's licence window has ended (`outside_window`, from the
//!   day after `until`; the cited event is the one that set `until`).
//!
//! The list is a fold over the log: same log and day in, same list out. A
//! one-shot command folds the whole log; a server keeps the fold in a
//! [`TakedownIndex`] and catches it up on each request.

use crate::cited::{checkpoint_covering, prove_all, CitedCheckpoint};
use ledger::store::{EventStore, InclusionProof, StoreError, StoredEvent};
use schemas::catalog::{self, ConsentWithdrawn, Recording};
use schemas::generation::{
    generation_stream, DerivativePublished, GenerationRequested, DERIVATIVE_PUBLISHED,
    GENERATION_REQUESTED,
};
use schemas::licence::CalendarDate;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Events read per store round trip while folding the log.
const READ_BATCH: usize = 4_096;

/// Why a derivative is to be taken down: the code a refusal of the same
/// request today would carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TakedownReason {
    ConsentWithdrawn,
    NotParticipating,
    OutsideWindow,
}

impl TakedownReason {
    /// The code, as serialized (`consent_withdrawn`).
    pub fn code(self) -> &'static str {
        match self {
            TakedownReason::ConsentWithdrawn => "consent_withdrawn",
            TakedownReason::NotParticipating => "not_participating",
            TakedownReason::OutsideWindow => "outside_window",
        }
    }
}

/// One derivative to take down, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Takedown {
    pub derivative: Uuid,
    /// Seq of the derivative's `generation.derivative-published` event.
    pub published_seq: u64,
    pub recording: String,
    /// The voice model a cover was sung by.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice_model: Option<String>,
    pub reason: TakedownReason,
    /// The first day the derivative may no longer be distributed.
    pub effective: CalendarDate,
    /// Seq of the event that ended the licence or consent.
    pub event_seq: u64,
    /// That event's inclusion proof against [`TakedownList::checkpoint`].
    pub proof: InclusionProof,
}

/// The takedown list, as of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TakedownList {
    /// The UTC day the list was made for.
    pub day: CalendarDate,
    /// Entries whose cause or publication is at or after this seq, and
    /// those that took effect on a later day than their cause.
    pub since: u64,
    pub checkpoint: CitedCheckpoint,
    pub takedowns: Vec<Takedown>,
}

/// The voice a cover was sung in: the model and the consent's reference.
#[derive(Clone)]
struct VoiceUsed {
    id: String,
    consent_reference: Option<String>,
}

/// What a job's request used.
struct Requested {
    recording: String,
    voice: Option<VoiceUsed>,
    /// The catalog event whose terms licensed it (the request's own seq in
    /// logs from before licence terms).
    licensed_seq: u64,
}

/// A published derivative, as the fold keeps it.
struct Published {
    derivative: Uuid,
    seq: u64,
    recording: String,
    voice: Option<VoiceUsed>,
    licensed_seq: u64,
}

/// What the list needs of a recording's terms, with the events that set it.
#[derive(Default)]
struct RecordingState {
    /// Where participation ended (seq, day), if it has and not resumed.
    ended: Option<(u64, CalendarDate)>,
    /// The `until` in force and the event that set it to that day.
    until: Option<(CalendarDate, u64)>,
}

/// A consent withdrawal, with its event's seq and day.
struct Withdrawal {
    seq: u64,
    day: CalendarDate,
    withdrawn: ConsentWithdrawn,
}

/// The catalog and publications the list is made from.
#[derive(Default)]
struct Folded {
    /// The log prefix folded: events `0..position`.
    position: u64,
    requests: HashMap<Uuid, Requested>,
    published: Vec<Published>,
    recordings: HashMap<String, RecordingState>,
    withdrawals: Vec<Withdrawal>,
}

/// One takedown as the fold finds it.
struct Entry<'a> {
    published: &'a Published,
    reason: TakedownReason,
    effective: CalendarDate,
    /// The seq of the event that caused it, and that event's day.
    cause: u64,
    cause_day: CalendarDate,
}

impl Entry<'_> {
    /// Whether `--since SEQ` keeps it: its cause or its publication is at or
    /// after SEQ, or it took effect on a later day than its cause (an ended
    /// window, a withdrawal dated ahead), which a poller could not have seen
    /// when the cause was logged.
    fn since(&self, since: u64) -> bool {
        self.cause >= since || self.published.seq >= since || self.effective > self.cause_day
    }
}

impl Folded {
    fn apply(&mut self, event: &StoredEvent) -> Result<(), StoreError> {
        let decode = |event: &StoredEvent| {
            event.envelope().map_err(StoreError::from).and_then(|e| {
                let day = e
                    .time
                    .get(..10)
                    .and_then(|d| d.parse::<CalendarDate>().ok());
                day.map(|day| (e.data, day)).ok_or_else(|| {
                    StoreError::Corrupt(format!("event seq {} has no RFC 3339 time", event.seq))
                })
            })
        };
        let corrupt = |e: serde_json::Error| {
            StoreError::Corrupt(format!(
                "event seq {} ({}) does not hold its schema: {e}",
                event.seq, event.event_type
            ))
        };
        match event.event_type.as_str() {
            catalog::RECORDING_REGISTERED | catalog::RECORDING_AMENDED => {
                let (data, day) = decode(event)?;
                let recording: Recording = serde_json::from_value(data).map_err(corrupt)?;
                let state = self.recordings.entry(recording.isrc).or_default();
                let participating = recording.licence.as_ref().is_some_and(|l| l.participating);
                // The event that ended participation stays the cause until
                // participation resumes; a later edit does not replace it.
                state.ended = match (participating, state.ended) {
                    (true, _) => None,
                    (false, Some(ended)) => Some(ended),
                    (false, None) => Some((event.seq, day)),
                };
                let until = recording.licence.and_then(|l| l.until);
                state.until = match (until, state.until) {
                    (Some(until), Some((same, seq))) if same == until => Some((until, seq)),
                    (Some(until), _) => Some((until, event.seq)),
                    (None, _) => None,
                };
            }
            catalog::VOICE_CONSENT_WITHDRAWN => {
                let (data, day) = decode(event)?;
                let withdrawn = serde_json::from_value(data).map_err(corrupt)?;
                self.withdrawals.push(Withdrawal {
                    seq: event.seq,
                    day,
                    withdrawn,
                });
            }
            GENERATION_REQUESTED => {
                let (data, _) = decode(event)?;
                let requested: GenerationRequested =
                    serde_json::from_value(data).map_err(corrupt)?;
                if event.stream == generation_stream(requested.job) {
                    let voice = requested.voice_model.map(|v| VoiceUsed {
                        id: v.id,
                        consent_reference: v.consent_reference,
                    });
                    self.requests.insert(
                        requested.job,
                        Requested {
                            recording: requested.recording,
                            voice,
                            licensed_seq: requested.terms_seq.unwrap_or(event.seq),
                        },
                    );
                }
            }
            DERIVATIVE_PUBLISHED => {
                let (data, _) = decode(event)?;
                let published: DerivativePublished =
                    serde_json::from_value(data).map_err(corrupt)?;
                // Only a job's own publication, after its own request.
                let Some(requested) = self.requests.get(&published.job) else {
                    return Ok(());
                };
                if event.stream == generation_stream(published.job) {
                    self.published.push(Published {
                        derivative: published.derivative,
                        seq: event.seq,
                        recording: requested.recording.clone(),
                        voice: requested.voice.clone(),
                        licensed_seq: requested.licensed_seq,
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The entries in force on `day`: (derivative's publication, reason,
    /// effective day, event seq), in event then publication order.
    fn takedowns(&self, day: CalendarDate) -> Vec<Entry<'_>> {
        let mut entries = Vec::new();
        for published in &self.published {
            let entry = |reason, effective, cause, cause_day| Entry {
                published,
                reason,
                effective,
                cause,
                cause_day,
            };
            if let Some(voice) = &published.voice {
                for w in &self.withdrawals {
                    let used = voice.consent_reference.as_ref() == Some(&w.withdrawn.reference);
                    if w.withdrawn.voice_model == voice.id && used && w.withdrawn.effective <= day {
                        entries.push(entry(
                            TakedownReason::ConsentWithdrawn,
                            w.withdrawn.effective,
                            w.seq,
                            w.day,
                        ));
                    }
                }
            }
            let Some(state) = self.recordings.get(&published.recording) else {
                continue;
            };
            // Participation ended after the terms this derivative was made under.
            if let Some((seq, ended_on)) = state.ended {
                if published.licensed_seq < seq && ended_on <= day {
                    entries.push(entry(
                        TakedownReason::NotParticipating,
                        ended_on,
                        seq,
                        ended_on,
                    ));
                }
            }
            if let Some((until, seq)) = state.until {
                let ended = until.0.next_day().map(CalendarDate);
                if let Some(ended) = ended.filter(|ended| *ended <= day) {
                    // Not an event: it takes effect on a day of its own.
                    entries.push(entry(TakedownReason::OutsideWindow, ended, seq, until));
                }
            }
        }
        entries.sort_by_key(|e| (e.cause, e.published.seq, e.reason));
        entries
    }
}

/// One takedown without its proof: what the fold finds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TakedownMark {
    pub reason: TakedownReason,
    /// The first day the derivative may no longer be distributed.
    pub effective: CalendarDate,
    /// Seq of the event that ended the licence or consent.
    pub event_seq: u64,
}

/// Folds the first `size` events into the entries in force on `day`.
async fn fold(store: &dyn EventStore, size: u64) -> Result<Folded, StoreError> {
    let mut folded = Folded::default();
    fold_into(&mut folded, store, size).await?;
    Ok(folded)
}

/// Folds the events from `folded`'s position up to `size` into it.
async fn fold_into(
    folded: &mut Folded,
    store: &dyn EventStore,
    size: u64,
) -> Result<(), StoreError> {
    while folded.position < size {
        let limit = READ_BATCH.min((size - folded.position) as usize);
        let events = store.read_range(folded.position, limit).await?;
        if events.is_empty() {
            break;
        }
        for event in &events {
            folded.apply(event)?;
            folded.position = event.seq + 1;
        }
    }
    Ok(())
}

/// For each derivative taken down on or before `day` by the first `size`
/// events, its first takedown: what a statement's detail marks. It
/// depends on the log prefix and the day only, so a statement stays
/// byte-identical.
pub async fn marks(
    store: &dyn EventStore,
    size: u64,
    day: CalendarDate,
) -> Result<HashMap<Uuid, TakedownMark>, StoreError> {
    let folded = fold(store, size).await?;
    let mut marks = HashMap::new();
    for e in folded.takedowns(day) {
        marks.entry(e.published.derivative).or_insert(TakedownMark {
            reason: e.reason,
            effective: e.effective,
            event_seq: e.cause,
        });
    }
    Ok(marks)
}

/// The takedown list on `day` for the log as of its latest checkpoint
/// (signed now if events were appended since, or the latest witnessed one
/// under `policy`): entries caused by events at or after seq `since`, and
/// every ended window. One fold over the log; a server keeps a
/// [`TakedownIndex`] instead.
pub async fn takedowns(
    store: &dyn EventStore,
    since: u64,
    day: CalendarDate,
    policy: Option<&ledger::witness_policy::WitnessPolicy>,
) -> Result<TakedownList, StoreError> {
    TakedownIndex::default()
        .list(store, since, day, policy)
        .await
}

/// The takedown list's fold, kept in memory and caught up with the log on
/// each request, so a server answers from what was appended since the last
/// request rather than from the whole log.
#[derive(Default)]
pub struct TakedownIndex {
    folded: tokio::sync::Mutex<Folded>,
}

impl TakedownIndex {
    /// As [`takedowns`], from the fold kept here.
    pub async fn list(
        &self,
        store: &dyn EventStore,
        since: u64,
        day: CalendarDate,
        policy: Option<&ledger::witness_policy::WitnessPolicy>,
    ) -> Result<TakedownList, StoreError> {
        let size = store.size().await?;
        let (checkpoint, root) = checkpoint_covering(store, size, policy).await?;
        let mut kept = self.folded.lock().await;
        // A witnessed checkpoint can trail what is folded here already: the
        // list is then folded afresh, as of that checkpoint.
        let fresh;
        let folded = if kept.position <= checkpoint.size {
            fold_into(&mut kept, store, checkpoint.size).await?;
            &*kept
        } else {
            fresh = fold(store, checkpoint.size).await?;
            &fresh
        };
        let entries: Vec<_> = folded
            .takedowns(day)
            .into_iter()
            .filter(|e| e.since(since))
            .collect();
        let mut seqs: Vec<u64> = entries.iter().map(|e| e.cause).collect();
        seqs.sort_unstable();
        seqs.dedup();
        let events = store.read_seqs(seqs).await?;
        let proofs: BTreeMap<u64, InclusionProof> = events
            .iter()
            .map(|e| e.seq)
            .zip(prove_all(store, &events, checkpoint.size, root).await?)
            .collect();
        let takedowns = entries
            .into_iter()
            .map(|e| Takedown {
                derivative: e.published.derivative,
                published_seq: e.published.seq,
                recording: e.published.recording.clone(),
                voice_model: e.published.voice.as_ref().map(|v| v.id.clone()),
                reason: e.reason,
                effective: e.effective,
                event_seq: e.cause,
                proof: proofs[&e.cause].clone(),
            })
            .collect();
        Ok(TakedownList {
            day,
            since,
            checkpoint,
            takedowns,
        })
    }
}

/// The plain-text form: one line per entry.
pub fn render_text(list: &TakedownList) -> String {
    let mut out = format!(
        "{} derivative(s) to take down on {}, proven against checkpoint {} ({})\n",
        list.takedowns.len(),
        list.day,
        list.checkpoint.size,
        list.checkpoint.root_hash
    );
    for t in &list.takedowns {
        out.push_str(&format!(
            "  {} (published at seq {}, recording {}{}): {} effective {}, event seq {}\n",
            t.derivative,
            t.published_seq,
            t.recording,
            t.voice_model
                .as_ref()
                .map(|v| format!(", voice {v}"))
                .unwrap_or_default(),
            t.reason.code(),
            t.effective,
            t.event_seq
        ));
    }
    out
}
