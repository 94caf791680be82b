//! Each committed event's copy in its own KurrentDB stream.
//!
//! The copies are written after the commit, so they may lag or, after a
//! crash, miss events; the ledger stream stays the log. A copy is appended
//! with the exact expected revision and our event ids, so the server
//! deduplicates a repeated copy, and a copy that finds its stream shorter
//! than expected first writes the events missing before it. A copy failure
//! never fails an append: it is logged, and repaired by the next copy to the
//! same stream or when a writable node next opens.

use super::{CopyOutcome, Shared};
use crate::store::{StoreError, StoredEvent};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::task::JoinSet;

/// Streams copied at once.
const COPY_STREAMS_CONCURRENT_MAX: usize = 16;
/// Copy attempts per stream before giving up until the next repair.
const COPY_ATTEMPTS_MAX: usize = 4;
/// Events per copy append (KurrentDB's append size limit applies to them too).
const COPY_EVENTS_MAX: usize = 256;

/// Copies a group commit's events to their streams, several streams at once.
pub(super) async fn copy_committed(shared: &Arc<Shared>, events: Vec<StoredEvent>) {
    let mut by_stream: HashMap<String, Vec<StoredEvent>> = HashMap::new();
    for event in events {
        by_stream
            .entry(event.stream.clone())
            .or_default()
            .push(event);
    }
    let work = by_stream.into_iter().map(|(stream, events)| {
        let first = events[0].version;
        (stream, first, first + events.len() as u64)
    });
    copy_all(shared, work.collect()).await;
}

/// Finds streams whose copies lack events (a node stopped between a commit
/// and its copy) and writes what is missing. One read per stream.
pub(super) async fn repair(shared: Arc<Shared>) {
    let streams = shared.replica().stream_lengths();
    let mut lengths = JoinSet::new();
    let mut work = Vec::new();
    for (stream, len) in streams {
        if lengths.len() >= COPY_STREAMS_CONCURRENT_MAX {
            collect_gap(lengths.join_next().await, &mut work);
        }
        let shared = shared.clone();
        lengths.spawn(async move {
            let copied = shared.streams.copied_len(&stream).await;
            (stream, copied, len)
        });
    }
    while let Some(joined) = lengths.join_next().await {
        collect_gap(Some(joined), &mut work);
    }
    if !work.is_empty() {
        tracing::info!(streams = work.len(), "repairing KurrentDB stream copies");
    }
    copy_all(&shared, work).await;
}

type LengthCheck = (String, Result<u64, StoreError>, u64);

fn collect_gap(
    joined: Option<Result<LengthCheck, tokio::task::JoinError>>,
    work: &mut Vec<(String, u64, u64)>,
) {
    match joined {
        Some(Ok((stream, Ok(copied), len))) if copied < len => work.push((stream, copied, len)),
        Some(Ok((stream, Err(e), _))) => {
            tracing::warn!("cannot check the KurrentDB copy of stream {stream:?}: {e}")
        }
        _ => {}
    }
}

/// Copies versions `from..to` of each stream.
async fn copy_all(shared: &Arc<Shared>, work: Vec<(String, u64, u64)>) {
    let mut tasks = JoinSet::new();
    for (stream, from, to) in work {
        if tasks.len() >= COPY_STREAMS_CONCURRENT_MAX {
            tasks.join_next().await;
        }
        let shared = shared.clone();
        tasks.spawn(async move {
            if let Err(e) = copy_stream(&shared, &stream, from, to).await {
                tracing::warn!(
                    "copying stream {stream:?} to KurrentDB failed ({e}); the next copy or restart repairs it"
                );
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Makes the stream's copy hold versions `..to`, writing from `from`.
pub(super) async fn copy_stream(
    shared: &Shared,
    stream: &str,
    mut from: u64,
    to: u64,
) -> Result<(), StoreError> {
    let mut attempts = 0;
    while from < to {
        let count = usize::try_from(to - from)
            .unwrap_or(usize::MAX)
            .min(COPY_EVENTS_MAX);
        let events = shared.replica().read_stream(stream, from, count);
        if events.is_empty() {
            return Err(StoreError::Corrupt(format!(
                "stream {stream:?} has no version {from} to copy"
            )));
        }
        match shared.streams.copy_events(stream, &events).await? {
            CopyOutcome::Written => from += events.len() as u64,
            CopyOutcome::Conflict { copied } => {
                attempts += 1;
                if attempts >= COPY_ATTEMPTS_MAX {
                    return Err(StoreError::Backend(format!(
                        "the KurrentDB copy of stream {stream:?} kept changing under {COPY_ATTEMPTS_MAX} copies"
                    )));
                }
                if copied > from {
                    // Had these events been ours the server would have taken
                    // the copy as a repeat; something else wrote them.
                    let held = events.len() as u64;
                    if copied >= from + held {
                        return Err(StoreError::Corrupt(format!(
                            "the KurrentDB copy of stream {stream:?} holds events ledgerline did not write at versions {from}..{}; only ledgerline may write to a log's streams",
                            from + held
                        )));
                    }
                }
                // Shorter than expected: write the missing events first.
                from = copied;
            }
        }
    }
    Ok(())
}
