//! The monitor against a real embedded log read in-process: it mirrors the
//! log from tiles alone, the mirror audits like the log, a second round
//! downloads only what is new, and a fork or a tampered bundle ends a round
//! with both checkpoints named.

use ledger::monitor::{Monitor, MonitorError, Round, SourceError, StoreSource, TileSource};
use ledger::store::sqlite::{SqliteConfig, SqliteStore};
use ledger::tile::{new_entry_bundles, new_hash_tiles, Tile, TileKind};
use ledger::{AppendRequest, EventStore, ExpectedVersion, NewEvent, NoteSigner};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

const ORIGIN: &str = "monitor.test/log";

fn open_log(dir: &Path, key: &NoteSigner) -> Arc<dyn EventStore> {
    let mut config = SqliteConfig::new(dir, ORIGIN);
    config.signing_key = Some(key.private_key());
    Arc::new(SqliteStore::open(config).unwrap())
}

async fn append(store: &dyn EventStore, stream: &str, from: u64, count: u64) {
    let events: Vec<NewEvent> = (from..from + count)
        .map(|n| NewEvent::new("test.tick", json!({ "n": n })))
        .collect();
    for chunk in events.chunks(1000) {
        store
            .append(AppendRequest::new(
                stream,
                ExpectedVersion::Any,
                chunk.to_vec(),
            ))
            .await
            .unwrap();
    }
    store.checkpoint_now().await.unwrap();
}

/// Runs one monitor round on a blocking thread, as the CLI does.
async fn round(
    mirror: &Path,
    key: &NoteSigner,
    source: impl TileSource + Send + 'static,
) -> Result<Round, MonitorError> {
    let mirror = mirror.to_path_buf();
    let verifier = key.verifier();
    tokio::task::spawn_blocking(move || {
        let mut monitor = Monitor::open(&mirror, verifier).unwrap();
        monitor.round(&source, &mut |_| {}, &mut |_, _| {})
    })
    .await
    .unwrap()
}

fn source(store: &Arc<dyn EventStore>) -> StoreSource {
    StoreSource {
        store: store.clone(),
        runtime: tokio::runtime::Handle::current(),
    }
}

async fn audit_mirror(mirror: &Path, key: &NoteSigner) -> ledger::verify::AuditReport {
    let store = SqliteStore::open_read_only(SqliteConfig::new(mirror, ORIGIN)).unwrap();
    ledger::verify::audit(&store, &key.verifier(), &mut |_, _| {})
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_from_tiles_audits_and_grows_by_the_new_tiles_only() {
    let dir = tempfile::tempdir().unwrap();
    let key = NoteSigner::generate(ORIGIN).unwrap();
    let log = open_log(&dir.path().join("log"), &key);
    append(log.as_ref(), "a", 0, 700).await;
    let mirror = dir.path().join("mirror");

    let first = round(&mirror, &key, source(&log)).await.unwrap();
    assert_eq!((first.from, first.to), (0, 700));
    let report = audit_mirror(&mirror, &key).await;
    assert_eq!(report.events, 700);
    assert_eq!(
        report.root,
        log.latest_checkpoint().await.unwrap().unwrap().root
    );

    append(log.as_ref(), "b", 700, 100).await;
    let second = round(&mirror, &key, source(&log)).await.unwrap();
    assert_eq!((second.from, second.to), (700, 800));
    // Level 0: tile 2 (now full, held in part) and 3 (partial); level 1:
    // the partial tile of width 3.
    assert_eq!(second.tiles_fetched, new_hash_tiles(700, 800).len());
    assert_eq!(second.tiles_fetched, 3);
    assert_eq!(second.bundles_fetched, new_entry_bundles(700, 800).len());
    assert_eq!(audit_mirror(&mirror, &key).await.events, 800);

    // Nothing new: nothing fetched.
    let third = round(&mirror, &key, source(&log)).await.unwrap();
    assert_eq!((third.from, third.to, third.tiles_fetched), (800, 800, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_with_the_same_key_ends_the_round_naming_both_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let key = NoteSigner::generate(ORIGIN).unwrap();
    let honest = open_log(&dir.path().join("honest"), &key);
    let forked = open_log(&dir.path().join("forked"), &key);
    append(honest.as_ref(), "a", 0, 300).await;
    append(forked.as_ref(), "a", 0, 200).await;
    append(forked.as_ref(), "evil", 0, 150).await;
    let mirror = dir.path().join("mirror");
    round(&mirror, &key, source(&honest)).await.unwrap();

    let error = round(&mirror, &key, source(&forked)).await.unwrap_err();
    let MonitorError::Inconsistent {
        held_note,
        served_note,
        ..
    } = &error
    else {
        panic!("not reported as a fork: {error}");
    };
    let honest_note = honest.latest_checkpoint().await.unwrap().unwrap().note;
    let forked_note = forked.latest_checkpoint().await.unwrap().unwrap().note;
    assert_eq!((held_note, served_note), (&honest_note, &forked_note));
    let message = error.to_string();
    assert!(message.contains(&honest_note) && message.contains(&forked_note));
    // The mirror is as it was, and still audits.
    assert_eq!(audit_mirror(&mirror, &key).await.events, 300);

    // A fork smaller than the mirror is caught by its root alone.
    let small = open_log(&dir.path().join("small"), &key);
    append(small.as_ref(), "b", 0, 10).await;
    let error = round(&mirror, &key, source(&small)).await.unwrap_err();
    assert!(
        matches!(
            error,
            MonitorError::Inconsistent {
                served_size: 10,
                ..
            }
        ),
        "{error}"
    );
}

/// Serves a log with one leaf of one bundle changed.
struct Tampered(StoreSource);

impl TileSource for Tampered {
    fn checkpoint(&self) -> Result<String, SourceError> {
        self.0.checkpoint()
    }
    fn tile(&self, tile: &Tile) -> Result<Vec<u8>, SourceError> {
        let mut data = self.0.tile(tile)?;
        if tile.kind == TileKind::Entries && tile.index == 1 {
            let last = data.len() - 2;
            data[last] ^= 1;
        }
        Ok(data)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_that_does_not_match_its_tile_is_refused_and_nothing_kept() {
    let dir = tempfile::tempdir().unwrap();
    let key = NoteSigner::generate(ORIGIN).unwrap();
    let log = open_log(&dir.path().join("log"), &key);
    append(log.as_ref(), "a", 0, 300).await;
    let mirror = dir.path().join("mirror");
    let error = round(&mirror, &key, Tampered(source(&log)))
        .await
        .unwrap_err();
    assert!(matches!(error, MonitorError::BadTiles { .. }), "{error}");
    assert!(error.to_string().contains("leaf 299"), "{error}");
    let monitor = Monitor::open(&mirror, key.verifier()).unwrap();
    assert_eq!(monitor.size(), 0, "the round's events were dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_cannot_be_appended_to_nor_reused_for_another_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = NoteSigner::generate(ORIGIN).unwrap();
    let log = open_log(&dir.path().join("log"), &key);
    append(log.as_ref(), "a", 0, 5).await;
    let mirror = dir.path().join("mirror");
    round(&mirror, &key, source(&log)).await.unwrap();
    let refused = SqliteStore::open(SqliteConfig::new(&mirror, ORIGIN))
        .err()
        .unwrap();
    assert!(refused.to_string().contains("mirror"), "{refused}");
    let other = NoteSigner::generate(ORIGIN).unwrap();
    assert!(Monitor::open(&mirror, other.verifier()).is_err());
    assert!(Monitor::open(&dir.path().join("log"), key.verifier()).is_err());
}

/// Serves the log's checkpoint with the cosignatures of `cosigners`.
struct Cosigned(StoreSource, Vec<ledger::cosignature::Cosigner>);

impl TileSource for Cosigned {
    fn checkpoint(&self) -> Result<String, SourceError> {
        let note = self.0.checkpoint()?;
        let body = &note[..note.find("\n\n").unwrap() + 1];
        let lines: String = self.1.iter().map(|c| c.sign(body).line()).collect();
        Ok(format!("{note}{lines}"))
    }
    fn tile(&self, tile: &Tile) -> Result<Vec<u8>, SourceError> {
        self.0.tile(tile)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_witness_policy_only_a_checkpoint_with_a_quorum_is_trusted() {
    use ledger::cosignature::Cosigner;
    use ledger::witness_policy::WitnessPolicy;
    let dir = tempfile::tempdir().unwrap();
    let key = NoteSigner::generate(ORIGIN).unwrap();
    let log = open_log(&dir.path().join("log"), &key);
    append(log.as_ref(), "a", 0, 10).await;
    let (a, b) = (
        Cosigner::generate("witness.a.example").unwrap(),
        Cosigner::generate("witness.b.example").unwrap(),
    );
    let policy = WitnessPolicy::parse(&format!(
        "witness a {} http://127.0.0.1:1\nwitness b {} http://127.0.0.1:2\nquorum 2\n",
        a.verifier_key(),
        b.verifier_key()
    ))
    .unwrap();
    let mirror = dir.path().join("mirror");
    let run = |cosigners: Vec<Cosigner>| {
        let (mirror, verifier, policy) = (mirror.clone(), key.verifier(), policy.clone());
        let source = Cosigned(source(&log), cosigners);
        tokio::task::spawn_blocking(move || {
            let mut monitor = Monitor::open(&mirror, verifier)
                .unwrap()
                .with_witness_policy(policy);
            monitor.round(&source, &mut |_| {}, &mut |_, _| {})
        })
    };
    let refused = run(vec![a.clone()]).await.unwrap().unwrap_err();
    assert!(
        matches!(refused, MonitorError::NotWitnessed { .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("1 of 2"), "{refused}");
    let round = run(vec![a, b]).await.unwrap().unwrap();
    assert_eq!(round.to, 10);
    assert!(audit_mirror(&mirror, &key).await.events == 10);
}
