//! A checkpoint the embedded store fails to sign is tried again an interval
//! later, not at once in a loop: a database that refuses checkpoints costs
//! one failed try (and one log line) per interval.

use ledger::store::sqlite::{SqliteConfig, SqliteStore, DATABASE_FILE};
use ledger::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
use rusqlite::Connection;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata};

const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(1500);
/// How long the test watches the writer fail: two intervals and a bit.
const WATCH: Duration = Duration::from_millis(3500);

/// Counts the log lines that say a checkpoint signing failed.
struct SigningFailures(Arc<AtomicUsize>);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for SigningFailures {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        if message.0.starts_with("checkpoint signing failed") {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[tokio::test]
async fn a_failed_checkpoint_signing_waits_an_interval_before_the_next_try() {
    let failures = Arc::new(AtomicUsize::new(0));
    tracing::subscriber::set_global_default(SigningFailures(failures.clone())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = SqliteConfig::new(dir.path(), "retry.test/log");
    config.checkpoint_interval = CHECKPOINT_INTERVAL;
    let store = SqliteStore::open(config).unwrap();
    // From now on the database refuses every checkpoint; appends still commit.
    Connection::open(dir.path().join(DATABASE_FILE))
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse_checkpoints BEFORE INSERT ON checkpoints
             BEGIN SELECT RAISE(ABORT, 'checkpoints refused'); END;",
        )
        .unwrap();
    // Appended within the interval of the checkpoint signed at open, so the
    // append commits without one and the writer's next checkpoint is due.
    let request = AppendRequest::new(
        "stream-1",
        ExpectedVersion::Any,
        vec![NewEvent::new("test.tick", json!({}))],
    );
    store.append(request).await.unwrap();

    tokio::time::sleep(WATCH).await;
    let tries = failures.load(Ordering::Relaxed);
    assert!(
        (1..=3).contains(&tries),
        "{tries} failed tries in {WATCH:?} with a {CHECKPOINT_INTERVAL:?} interval"
    );
}
