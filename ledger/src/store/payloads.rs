//! Typed reads of one stream: the events of chosen types, their payloads
//! decoded, read page by page however long the stream is. What the catalog
//! readers (licensing, consent, licence history) share.

use super::{EventStore, StoreError, APPEND_EVENTS_MAX};
use serde::de::DeserializeOwned;

/// One event's payload, decoded, with where and when the log took it.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload<T> {
    pub seq: u64,
    pub event_type: String,
    /// RFC 3339 time at which the sequencer accepted the event.
    pub time: String,
    pub data: T,
}

/// The events of `types` on `stream` with a seq below `before`, oldest
/// first, their payloads decoded as `T`; a payload that is not a `T` is a
/// corrupt log.
pub async fn read_payloads<T: DeserializeOwned>(
    store: &dyn EventStore,
    stream: &str,
    types: &[&str],
    before: u64,
) -> Result<Vec<Payload<T>>, StoreError> {
    let mut payloads = Vec::new();
    let mut version = 0;
    loop {
        let page = store
            .read_stream(stream, version, APPEND_EVENTS_MAX)
            .await?;
        let full = page.len() == APPEND_EVENTS_MAX;
        for event in page {
            version = event.version + 1;
            // A stream's events are in seq order: the rest are later still.
            if event.seq >= before {
                return Ok(payloads);
            }
            if !types.contains(&event.event_type.as_str()) {
                continue;
            }
            let envelope = event.envelope().map_err(StoreError::from)?;
            let data = serde_json::from_value(envelope.data).map_err(|e| {
                StoreError::Corrupt(format!(
                    "{stream} seq {} ({}) does not hold its schema: {e}",
                    event.seq, event.event_type
                ))
            })?;
            payloads.push(Payload {
                seq: event.seq,
                event_type: event.event_type,
                time: envelope.time,
                data,
            });
        }
        if !full {
            return Ok(payloads);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{SqliteConfig, SqliteStore};
    use crate::store::{AppendRequest, ExpectedVersion};
    use crate::NewEvent;
    use serde_json::json;

    #[tokio::test]
    async fn a_long_stream_is_read_whole_with_only_the_types_and_seqs_asked() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(SqliteConfig::new(dir.path(), "example.com/log")).unwrap();
        // More than one page: APPEND_EVENTS_MAX counters, then a note, then one more.
        let counters = |from: usize, count: usize| {
            (from..from + count)
                .map(|n| NewEvent::new("counter", json!({"n": n})))
                .collect::<Vec<_>>()
        };
        let append = |events| store.append(AppendRequest::new("s", ExpectedVersion::Any, events));
        append(counters(0, APPEND_EVENTS_MAX)).await.unwrap();
        append(vec![NewEvent::new("note", json!({"text": "x"}))])
            .await
            .unwrap();
        let last = append(counters(APPEND_EVENTS_MAX, 1)).await.unwrap()[0].seq;

        #[derive(Debug, serde::Deserialize)]
        struct Counter {
            n: usize,
        }
        let all: Vec<Payload<Counter>> = read_payloads(&store, "s", &["counter"], u64::MAX)
            .await
            .unwrap();
        assert_eq!(all.len(), APPEND_EVENTS_MAX + 1);
        assert_eq!(all.last().unwrap().data.n, APPEND_EVENTS_MAX);
        assert_eq!(all.last().unwrap().seq, last);
        assert!(all.iter().enumerate().all(|(i, p)| p.data.n == i));
        // Only the events before a seq.
        let before: Vec<Payload<Counter>> = read_payloads(&store, "s", &["counter"], last)
            .await
            .unwrap();
        assert_eq!(before.len(), APPEND_EVENTS_MAX);
        // A payload of another shape under an asked type is a corrupt log.
        let wrong = read_payloads::<Counter>(&store, "s", &["note"], u64::MAX).await;
        assert!(matches!(wrong, Err(StoreError::Corrupt(_))), "{wrong:?}");
    }
}
