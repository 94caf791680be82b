//! The `EventStore` conformance suite. Every backend runs the same checks
//! from the same code: add a backend by implementing `Backend` and adding a
//! `backend_tests!` line.
//!
//! PostgreSQL runs when `LEDGERLINE_TEST_POSTGRES_URL` names a server where
//! the suite may create databases (`scripts/test` starts one); each test gets
//! a fresh database. Without it those tests say they were skipped, unless
//! `LEDGERLINE_REQUIRE_POSTGRES=1`, which makes them fail instead.
//!
//! KurrentDB runs when the crate is built with `--features kurrentdb` and
//! `LEDGERLINE_KURRENTDB_URL` names a server (`esdb://localhost:2113?tls=false`);
//! each test gets a fresh namespace of streams. Without it those tests say
//! they were skipped.

use async_trait::async_trait;
use ledger::checkpoint::NoteVerifier;
use ledger::envelope::{EnvelopeError, DATA_DEPTH_MAX, LEAF_SIZE_BYTES_MAX};
use ledger::merkle::{self, verify_consistency, verify_inclusion};
use ledger::store::postgres::{PostgresConfig, PostgresStore};
use ledger::store::sqlite::{SqliteConfig, SqliteStore};
use ledger::{
    AppendRequest, EventStore, ExpectedVersion, NewEvent, NoteSigner, StoreError, StoredEvent,
};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

/// A backend under test: `open` returns a store over the same log each time,
/// so reopening simulates a restart.
#[async_trait]
trait Backend: Send + Sync {
    async fn open(&self) -> Arc<dyn EventStore>;
    fn verifier(&self) -> NoteVerifier;
}

const ORIGIN: &str = "conformance.test/log";

struct Sqlite {
    dir: tempfile::TempDir,
}

impl Sqlite {
    async fn create() -> Option<Self> {
        Some(Sqlite {
            dir: tempfile::tempdir().expect("a temporary directory"),
        })
    }
    fn config(&self) -> SqliteConfig {
        SqliteConfig::new(self.dir.path(), ORIGIN)
    }
}

#[async_trait]
impl Backend for Sqlite {
    async fn open(&self) -> Arc<dyn EventStore> {
        Arc::new(SqliteStore::open(self.config()).expect("the store opens"))
    }
    fn verifier(&self) -> NoteVerifier {
        let key = self.dir.path().join(ledger::store::sqlite::KEY_FILE);
        NoteSigner::load_or_create(&key, ORIGIN).unwrap().verifier()
    }
}

/// A fresh database on the test server, dropped when the test ends.
struct Postgres {
    admin_url: String,
    database: String,
    signer: NoteSigner,
}

impl Postgres {
    /// None (after saying so) when no test server is configured.
    async fn create() -> Option<Self> {
        let admin_url = match std::env::var("LEDGERLINE_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                assert!(
                    std::env::var("LEDGERLINE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                    "LEDGERLINE_REQUIRE_POSTGRES=1 but LEDGERLINE_TEST_POSTGRES_URL is unset: the PostgreSQL tests cannot run"
                );
                eprintln!("skipped: set LEDGERLINE_TEST_POSTGRES_URL (scripts/test does)");
                return None;
            }
        };
        let database = format!("ledgerline_test_{}", Uuid::new_v4().simple());
        admin_execute(&admin_url, &format!("CREATE DATABASE {database}")).await;
        Some(Postgres {
            admin_url,
            database,
            signer: NoteSigner::generate(ORIGIN).unwrap(),
        })
    }

    fn url(&self) -> String {
        url_with_database(&self.admin_url, &self.database)
    }
}

/// The admin URL with its database replaced.
fn url_with_database(admin_url: &str, database: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin_url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{base}/{database}{query}")
}

async fn admin_execute(admin_url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to LEDGERLINE_TEST_POSTGRES_URL: {e}"));
    let driver = tokio::spawn(connection);
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    drop(client);
    let _ = driver.await;
}

impl Drop for Postgres {
    /// Drops the test's database (forcing off any connection a store left).
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database);
        // Drop runs inside the test's runtime, which cannot block on itself.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(admin_execute(&admin_url, &sql))
        })
        .join();
    }
}

#[async_trait]
impl Backend for Postgres {
    async fn open(&self) -> Arc<dyn EventStore> {
        let config = PostgresConfig::new(self.url(), self.signer.clone());
        Arc::new(PostgresStore::open(config).await.expect("the store opens"))
    }
    fn verifier(&self) -> NoteVerifier {
        self.signer.verifier()
    }
}

/// A fresh namespace of streams on the KurrentDB server, so tests do not
/// see each other's logs (KurrentDB has no databases to drop; a test
/// server is meant to be thrown away).
#[cfg(feature = "kurrentdb")]
struct KurrentDb {
    url: String,
    namespace: String,
    signer: NoteSigner,
}

#[cfg(feature = "kurrentdb")]
impl KurrentDb {
    /// None (after saying so) when no server is configured.
    async fn create() -> Option<Self> {
        match std::env::var("LEDGERLINE_KURRENTDB_URL") {
            Ok(url) if !url.is_empty() => Some(KurrentDb {
                url,
                namespace: format!("ledgerline-test-{}", Uuid::new_v4().simple()),
                signer: NoteSigner::generate(ORIGIN).unwrap(),
            }),
            _ => {
                eprintln!(
                    "skipped: set LEDGERLINE_KURRENTDB_URL (esdb://localhost:2113?tls=false) to run the KurrentDB tests"
                );
                None
            }
        }
    }
}

#[cfg(feature = "kurrentdb")]
#[async_trait]
impl Backend for KurrentDb {
    async fn open(&self) -> Arc<dyn EventStore> {
        use ledger::store::kurrentdb::{KurrentDbConfig, KurrentDbStore};
        let mut config = KurrentDbConfig::new(&self.url, self.signer.clone());
        config.namespace = Some(self.namespace.clone());
        Arc::new(KurrentDbStore::open(config).await.expect("the store opens"))
    }
    fn verifier(&self) -> NoteVerifier {
        self.signer.verifier()
    }
}

fn event(n: u64) -> NewEvent {
    NewEvent::new("test.tick", json!({"n": n, "note": "ünïcode ✓"}))
}

fn one(stream: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> AppendRequest {
    AppendRequest::new(stream, expected, events)
}

async fn appends_assign_seq_version_and_prev(backend: &dyn Backend) {
    let store = backend.open().await;
    let a = store
        .append(one(
            "a",
            ExpectedVersion::Exact(0),
            vec![event(0), event(1), event(2)],
        ))
        .await
        .unwrap();
    let b = store
        .append(one("b", ExpectedVersion::Any, vec![event(3)]))
        .await
        .unwrap();
    let a2 = store
        .append(one("a", ExpectedVersion::Exact(3), vec![event(4)]))
        .await
        .unwrap();
    let seqs: Vec<u64> = a.iter().chain(&b).chain(&a2).map(|x| x.seq).collect();
    assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
    assert_eq!(a2[0].version, 3);
    assert_eq!(b[0].version, 0);
    let events = store.read_stream("a", 0, 100).await.unwrap();
    assert_eq!(events.len(), 4);
    for pair in events.windows(2) {
        let later = pair[1].envelope().unwrap();
        assert_eq!(later.prev, Some(hex::encode(pair[0].leaf_hash)));
        assert_eq!(later.version, pair[0].version + 1);
    }
    let first = events[0].envelope().unwrap();
    assert_eq!(first.prev, None);
    assert_eq!(first.data, json!({"n": 0, "note": "ünïcode ✓"}));
    assert_eq!(events[0].leaf_hash, merkle::leaf_hash(&events[0].leaf));
    assert_eq!(store.size().await.unwrap(), 5);
    // Times are RFC 3339 UTC and never go backwards along the log.
    let all = store.read_range(0, 10).await.unwrap();
    let times: Vec<String> = all.iter().map(|e| e.envelope().unwrap().time).collect();
    assert!(times.windows(2).all(|t| t[0] <= t[1]));
    assert!(times[0].ends_with('Z'));
    // A fold reads the same leaves without their hashes.
    let leaves: Vec<Vec<u8>> = all.iter().map(|e| e.leaf.clone()).collect();
    assert_eq!(store.read_leaves(0, 10).await.unwrap(), leaves);
    assert_eq!(store.read_leaves(3, 1).await.unwrap(), leaves[3..4]);
    assert!(store.read_leaves(5, 10).await.unwrap().is_empty());
    // Scattered seqs come back in one read, in order; a seq beyond the log is named.
    let scattered = store.read_seqs(vec![0, 3, 4]).await.unwrap();
    assert_eq!(
        scattered,
        vec![all[0].clone(), all[3].clone(), all[4].clone()]
    );
    assert!(store.read_seqs(Vec::new()).await.unwrap().is_empty());
    match store.read_seqs(vec![1, 7]).await {
        Err(StoreError::OutOfRange { what, size: 5 }) => assert_eq!(what, "event 7"),
        other => panic!("expected event 7 to be out of range, got {other:?}"),
    }
}

async fn version_conflicts_write_nothing(backend: &dyn Backend) {
    let store = backend.open().await;
    store
        .append(one("s", ExpectedVersion::Exact(0), vec![event(0)]))
        .await
        .unwrap();
    for expected in [0, 2, 99] {
        let error = store
            .append(one("s", ExpectedVersion::Exact(expected), vec![event(1)]))
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::VersionConflict { expected: e, actual: 1, .. } if e == expected),
            "{error}"
        );
        assert!(error.is_client_error());
    }
    assert_eq!(store.size().await.unwrap(), 1);
}

async fn batches_are_atomic_across_streams(backend: &dyn Backend) {
    let store = backend.open().await;
    store
        .append(one("x", ExpectedVersion::Any, vec![event(0)]))
        .await
        .unwrap();
    let error = store
        .append_all(vec![
            one("y", ExpectedVersion::Exact(0), vec![event(1), event(2)]),
            one("x", ExpectedVersion::Exact(0), vec![event(3)]),
        ])
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::VersionConflict { .. }));
    assert_eq!(store.size().await.unwrap(), 1);
    assert!(store.read_stream("y", 0, 10).await.unwrap().is_empty());
    let results = store
        .append_all(vec![
            one("y", ExpectedVersion::Exact(0), vec![event(1), event(2)]),
            one("x", ExpectedVersion::Exact(1), vec![event(3)]),
        ])
        .await
        .unwrap();
    assert_eq!(
        results[0].iter().map(|a| a.seq).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(results[1][0].seq, 3);
}

async fn retries_are_idempotent(backend: &dyn Backend) {
    let store = backend.open().await;
    let (id1, id2) = (Uuid::new_v4(), Uuid::new_v4());
    let request = || {
        one(
            "r",
            ExpectedVersion::Exact(0),
            vec![event(1).with_id(id1), event(2).with_id(id2)],
        )
    };
    let first = store.append(request()).await.unwrap();
    // The retry's expected version is stale, yet it returns the original result.
    let again = store.append(request()).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(store.size().await.unwrap(), 2);
    // Same id, different content: refused.
    let error = store
        .append(one("r", ExpectedVersion::Any, vec![event(9).with_id(id1)]))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::IdReused { seq: 0, .. }),
        "{error}"
    );
    // A retry that adds a new event is not a retry: refused.
    let error = store
        .append(one(
            "r",
            ExpectedVersion::Any,
            vec![event(1).with_id(id1), event(3)],
        ))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::IdReused { .. }));
    assert_eq!(store.size().await.unwrap(), 2);
    assert_eq!(store.read_event(id2).await.unwrap().unwrap().seq, 1);
    assert!(store.read_event(Uuid::new_v4()).await.unwrap().is_none());
}

async fn bad_events_are_refused_with_nothing_written(backend: &dyn Backend) {
    let store = backend.open().await;
    let cases = vec![
        one("bad stream", ExpectedVersion::Any, vec![event(0)]),
        one(
            "s",
            ExpectedVersion::Any,
            vec![NewEvent::new("9type", json!({}))],
        ),
        one(
            "s",
            ExpectedVersion::Any,
            vec![NewEvent::new("t", json!([1, 2]))],
        ),
        one(
            "s",
            ExpectedVersion::Any,
            vec![NewEvent::new("t", json!({"n": 1u64 << 60}))],
        ),
        one(
            "s",
            ExpectedVersion::Any,
            vec![NewEvent::new("t", json!({"x": "y".repeat(1 << 20)}))],
        ),
        one("s", ExpectedVersion::Any, vec![]),
    ];
    for request in cases {
        let error = store.append(request).await.unwrap_err();
        assert!(error.is_client_error(), "{error}");
    }
    assert_eq!(store.size().await.unwrap(), 0);
}

/// Data `depth` objects deep: `{"a":{"a":{}}}` is 3 deep.
fn nested(depth: usize) -> serde_json::Value {
    (1..depth).fold(json!({}), |inner, _| json!({ "a": inner }))
}

async fn data_deeper_than_readers_accept_is_refused_and_the_deepest_reads_back(
    backend: &dyn Backend,
) {
    let deepest = NewEvent::new("test.deep", nested(DATA_DEPTH_MAX));
    {
        let store = backend.open().await;
        let too_deep = NewEvent::new("test.deep", nested(DATA_DEPTH_MAX + 1));
        let error = store
            .append(one("d", ExpectedVersion::Any, vec![too_deep]))
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::BadEvent(EnvelopeError::TooDeep)),
            "{error}"
        );
        assert_eq!(store.size().await.unwrap(), 0);
        store
            .append(one("d", ExpectedVersion::Any, vec![deepest.clone()]))
            .await
            .unwrap();
    }
    // A writer reopened over the accepted event goes on, and it reads back.
    let store = backend.open().await;
    store
        .append(one("d", ExpectedVersion::Exact(1), vec![event(1)]))
        .await
        .unwrap();
    let events = store.read_range(0, 10).await.unwrap();
    assert_eq!(events[0].envelope().unwrap().data, deepest.data);
    ledger::verify::audit(store.as_ref(), &backend.verifier(), &mut |_, _| {})
        .await
        .unwrap();
}

async fn pages_end_at_the_event_that_reaches_their_byte_budget(backend: &dyn Backend) {
    let store = backend.open().await;
    let big = |n: u64| NewEvent::new("test.big", json!({"n": n, "pad": "x".repeat(10_000)}));
    store
        .append(one("p", ExpectedVersion::Any, (0..5).map(big).collect()))
        .await
        .unwrap();
    let lens: Vec<usize> = store
        .read_range(0, 5)
        .await
        .unwrap()
        .iter()
        .map(|e| e.leaf.len())
        .collect();
    let seqs = |events: Vec<StoredEvent>| events.iter().map(|e| e.seq).collect::<Vec<_>>();
    let page = |from, limit, bytes| store.read_range_bytes(from, limit, bytes);
    let two = lens[0] + lens[1];
    assert_eq!(seqs(page(0, 10, two).await.unwrap()), [0, 1]);
    assert_eq!(seqs(page(0, 10, two + 1).await.unwrap()), [0, 1, 2]);
    assert_eq!(seqs(page(0, 2, usize::MAX).await.unwrap()), [0, 1]);
    // A budget smaller than one leaf still moves a reader on by one event.
    assert_eq!(seqs(page(3, 10, 1).await.unwrap()), [3]);
    assert!(page(5, 10, usize::MAX).await.unwrap().is_empty());
    // A stream's pages end the same way (its versions are these seqs).
    let stream_page = |from, limit, bytes| store.read_stream_bytes("p", from, limit, bytes);
    assert_eq!(seqs(stream_page(0, 10, two).await.unwrap()), [0, 1]);
    assert_eq!(seqs(stream_page(0, 10, two + 1).await.unwrap()), [0, 1, 2]);
    assert_eq!(seqs(stream_page(3, 10, 1).await.unwrap()), [3]);
    assert!(stream_page(5, 10, usize::MAX).await.unwrap().is_empty());
}

/// A leaf is what an entry bundle can carry (its length in 16 bits):
/// 65,535 bytes are appended, 65,536 refused with nothing written.
async fn leaves_are_at_most_65535_bytes(backend: &dyn Backend) {
    let store = backend.open().await;
    let padded = |length: usize| NewEvent::new("t", json!({"x": "y".repeat(length)}));
    store
        .append(one("a", ExpectedVersion::Any, vec![padded(0)]))
        .await
        .unwrap();
    // Stream "b" at seq 1 takes a leaf exactly as long as "a" at seq 0.
    let empty_leaf = store.read_range(0, 1).await.unwrap()[0].leaf.len();
    let fitting = LEAF_SIZE_BYTES_MAX - empty_leaf;
    let refused = store
        .append(one("b", ExpectedVersion::Any, vec![padded(fitting + 1)]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            StoreError::BadEvent(EnvelopeError::TooLarge { size_bytes: 65_536 })
        ),
        "{refused}"
    );
    assert_eq!(store.size().await.unwrap(), 1);
    store
        .append(one("b", ExpectedVersion::Any, vec![padded(fitting)]))
        .await
        .unwrap();
    let stored = store.read_range(1, 1).await.unwrap();
    assert_eq!(stored[0].leaf.len(), LEAF_SIZE_BYTES_MAX);
}

/// Every hash tile and entry bundle of the log, read from the store, is
/// what the tile module makes of the log's own leaves and hashes, and the
/// tiles rebuild the signed root.
async fn tiles_read_from_the_store_rebuild_the_signed_root(backend: &dyn Backend) {
    use ledger::store::tiles::{read_entry_bundle, read_hash_tile};
    use ledger::tile::{encoding, new_entry_bundles, new_hash_tiles, verify::TileHashes};
    let store = backend.open().await;
    for batch in 0..3u64 {
        let events = (0..100).map(|n| event(batch * 100 + n)).collect();
        store
            .append(one("s", ExpectedVersion::Any, events))
            .await
            .unwrap();
    }
    let checkpoint = store.checkpoint_now().await.unwrap();
    assert_eq!(checkpoint.size, 300);
    let mut tiles = TileHashes::new(300);
    for tile in new_hash_tiles(0, 300) {
        let data = read_hash_tile(store.as_ref(), &tile).await.unwrap();
        tiles
            .insert(tile, encoding::decode_hash_tile(&tile, &data).unwrap())
            .unwrap();
    }
    tiles.verify(&checkpoint.root).unwrap();
    let events = store.read_range(0, 300).await.unwrap();
    for bundle in new_entry_bundles(0, 300) {
        let data = read_entry_bundle(store.as_ref(), &bundle).await.unwrap();
        let leaves = encoding::decode_entry_bundle(&bundle, &data).unwrap();
        let first = bundle.index * 256;
        for (offset, leaf) in leaves.iter().enumerate() {
            let seq = first + offset as u64;
            assert_eq!(*leaf, events[seq as usize].leaf.as_slice());
            assert_eq!(tiles.leaf_hash(seq), Some(merkle::leaf_hash(leaf)));
        }
    }
    // A tile the log does not hold yet is refused, not made up.
    let beyond = ledger::tile::Tile::hashes(0, 1, 45);
    assert!(read_hash_tile(store.as_ref(), &beyond).await.is_err());
    assert!(
        read_entry_bundle(store.as_ref(), &ledger::tile::Tile::entries(1, 45))
            .await
            .is_err()
    );
}

async fn reads_from_past_any_log_are_refused(backend: &dyn Backend) {
    let store = backend.open().await;
    store
        .append(one("s", ExpectedVersion::Any, vec![event(0)]))
        .await
        .unwrap();
    let beyond = ledger::store::POSITION_MAX + 1;
    let refused = |result: Result<Vec<StoredEvent>, StoreError>| {
        matches!(result, Err(StoreError::OutOfRange { .. }))
    };
    assert!(refused(store.read_range(beyond, 10).await));
    assert!(refused(store.read_range(u64::MAX, 10).await));
    assert!(refused(store.read_range_bytes(beyond, 10, 1 << 20).await));
    assert!(refused(store.read_stream("s", beyond, 10).await));
    assert!(refused(
        store.read_stream_bytes("s", beyond, 10, 1 << 20).await
    ));
    assert!(matches!(
        store.read_leaves(beyond, 10).await,
        Err(StoreError::OutOfRange { .. })
    ));
}

async fn concurrent_writers_share_group_commits(backend: &dyn Backend) {
    let store = backend.open().await;
    let writers = (0..64u64).map(|w| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..20 {
                let appended = store
                    .append(one(
                        &format!("w{w}"),
                        ExpectedVersion::Exact(i),
                        vec![event(w * 100 + i)],
                    ))
                    .await
                    .unwrap();
                seqs.push(appended[0].seq);
            }
            seqs
        })
    });
    // Spawn every writer before awaiting any, so they run at once.
    let writers: Vec<_> = writers.collect();
    let mut seqs: Vec<u64> = Vec::new();
    for writer in writers {
        seqs.extend(writer.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (0..1280).collect::<Vec<_>>(),
        "gap-free, no duplicates"
    );
    let checkpoint = store.checkpoint_now().await.unwrap();
    assert_eq!(checkpoint.size, 1280);
    let report = ledger::verify::audit(store.as_ref(), &backend.verifier(), &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.events, 1280);
    assert_eq!(report.root, checkpoint.root);
}

async fn proofs_verify_against_signed_checkpoints(backend: &dyn Backend) {
    let store = backend.open().await;
    let verifier = backend.verifier();
    let mut checkpoints = vec![store.checkpoint_now().await.unwrap()];
    for n in 0..23u64 {
        store
            .append(one(
                &format!("p{}", n % 3),
                ExpectedVersion::Any,
                vec![event(n)],
            ))
            .await
            .unwrap();
        checkpoints.push(store.checkpoint_now().await.unwrap());
    }
    let events = store.read_range(0, 100).await.unwrap();
    for checkpoint in &checkpoints {
        let signed = verifier.verify_checkpoint(&checkpoint.note).unwrap();
        assert_eq!(
            (signed.size, signed.root),
            (checkpoint.size, checkpoint.root)
        );
        for event in &events[..checkpoint.size as usize] {
            let proof = store
                .prove_inclusion(event.seq, checkpoint.size)
                .await
                .unwrap();
            assert_eq!(proof.leaf_hash, merkle::leaf_hash(&event.leaf));
            assert_eq!(proof.root_hash, checkpoint.root);
            verify_inclusion(
                event.seq,
                checkpoint.size,
                &proof.leaf_hash,
                &proof.proof,
                &signed.root,
            )
            .unwrap();
        }
        for older in &checkpoints[..] {
            if older.size > 0 && older.size <= checkpoint.size {
                let proof = store
                    .prove_consistency(older.size, checkpoint.size)
                    .await
                    .unwrap();
                verify_consistency(
                    older.size,
                    checkpoint.size,
                    &proof.proof,
                    &older.root,
                    &checkpoint.root,
                )
                .unwrap();
            }
        }
    }
    let stored = store.checkpoints().await.unwrap();
    assert_eq!(stored.last(), checkpoints.last());
    // The newest first, as many as asked and no more than there are.
    let newest: Vec<ledger::SignedCheckpoint> = stored.iter().rev().take(3).cloned().collect();
    assert_eq!(store.newest_checkpoints(3).await.unwrap(), newest);
    let all = store.newest_checkpoints(stored.len() + 5).await.unwrap();
    assert_eq!(all.len(), stored.len());
    assert!(store.newest_checkpoints(0).await.unwrap().is_empty());
    assert_eq!(store.checkpoint(5).await.unwrap().unwrap().size, 5);
    assert!(store.prove_inclusion(23, 23).await.is_err());
    assert!(store
        .prove_inclusion(0, 24)
        .await
        .unwrap_err()
        .is_client_error());
    assert!(store.prove_consistency(5, 4).await.is_err());
}

async fn restart_keeps_the_log_and_its_chains(backend: &dyn Backend) {
    let root = {
        let store = backend.open().await;
        store
            .append(one("k", ExpectedVersion::Any, vec![event(0), event(1)]))
            .await
            .unwrap();
        store
            .append(one("m", ExpectedVersion::Any, vec![event(2)]))
            .await
            .unwrap();
        store.checkpoint_now().await.unwrap().root
    };
    let store = backend.open().await;
    assert_eq!(store.size().await.unwrap(), 3);
    assert_eq!(store.latest_checkpoint().await.unwrap().unwrap().root, root);
    let appended = store
        .append(one("k", ExpectedVersion::Exact(2), vec![event(3)]))
        .await
        .unwrap();
    assert_eq!((appended[0].seq, appended[0].version), (3, 2));
    let k = store.read_stream("k", 0, 10).await.unwrap();
    assert_eq!(
        k[2].envelope().unwrap().prev,
        Some(hex::encode(k[1].leaf_hash))
    );
    drop(store);
    // A clean close signs a checkpoint covering every acknowledged append.
    let store = backend.open().await;
    assert_eq!(store.latest_checkpoint().await.unwrap().unwrap().size, 4);
    let report = ledger::verify::audit(store.as_ref(), &backend.verifier(), &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.unsigned_events, 0);
}

/// Two stores over one log (two processes on one SQLite file, two nodes on
/// one PostgreSQL database) appending at once still make one gap-free log:
/// each writer catches up with the other's appends under the write lock.
async fn two_nodes_share_one_gap_free_log(backend: &dyn Backend) {
    let nodes = [backend.open().await, backend.open().await];
    let writers = (0..16u64).map(|w| {
        let store = nodes[(w % 2) as usize].clone();
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..15 {
                // Both nodes append to the shared stream too, so expected
                // versions and prev links must see the other node's events.
                let appended = store
                    .append_all(vec![
                        one(&format!("n{w}"), ExpectedVersion::Exact(i), vec![event(i)]),
                        one("shared", ExpectedVersion::Any, vec![event(w)]),
                    ])
                    .await
                    .unwrap();
                seqs.extend(appended.iter().flatten().map(|a| a.seq));
            }
            seqs
        })
    });
    // Spawn every writer before awaiting any, so the nodes race.
    let writers: Vec<_> = writers.collect();
    let mut seqs = Vec::new();
    for writer in writers {
        seqs.extend(writer.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (0..480).collect::<Vec<_>>(),
        "gap-free, no duplicates"
    );
    let shared = nodes[1].read_stream("shared", 0, 1000).await.unwrap();
    assert_eq!(shared.len(), 240);
    for pair in shared.windows(2) {
        assert_eq!(
            pair[1].envelope().unwrap().prev,
            Some(hex::encode(pair[0].leaf_hash))
        );
    }
    // Either node signs a checkpoint covering both nodes' appends.
    let checkpoint = nodes[0].checkpoint_now().await.unwrap();
    assert_eq!(checkpoint.size, 480);
    assert_eq!(nodes[1].checkpoint_now().await.unwrap(), checkpoint);
    let report = ledger::verify::audit(nodes[1].as_ref(), &backend.verifier(), &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.root, checkpoint.root);
}

/// A node appends where another node left each stream, however far it
/// fell behind: a few events, or more than a node reads back under the
/// write lock (PostgreSQL nodes then look their streams up again); a retry
/// of an append the other node committed returns its original result.
async fn a_node_appends_where_the_other_node_left_the_stream(backend: &dyn Backend) {
    let (a, b) = (backend.open().await, backend.open().await);
    let mut version = 0;
    for behind in [3u64, 1_500] {
        // A knows the stream as it left it...
        a.append(one("s", ExpectedVersion::Exact(version), vec![event(0)]))
            .await
            .unwrap();
        version += 1;
        // ... then B appends `behind` events to it.
        for chunk in 0..behind.div_ceil(500) {
            let count = (behind - chunk * 500).min(500);
            let events = (0..count).map(event).collect();
            b.append(one("s", ExpectedVersion::Exact(version), events))
                .await
                .unwrap();
            version += count;
        }
        let appended = a
            .append(one("s", ExpectedVersion::Exact(version), vec![event(1)]))
            .await
            .unwrap();
        assert_eq!(appended[0].version, version);
        version += 1;
        // A stale expectation is still refused on A.
        let error = a
            .append(one(
                "s",
                ExpectedVersion::Exact(version - 1),
                vec![event(2)],
            ))
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::VersionConflict { .. }),
            "{error}"
        );
    }
    // A retry on A of an append B committed: the original result.
    let id = Uuid::new_v4();
    let request = || one("t", ExpectedVersion::Exact(0), vec![event(7).with_id(id)]);
    let first = b.append(request()).await.unwrap();
    assert_eq!(a.append(request()).await.unwrap(), first);
    let s = a.read_stream("s", 0, 10_000).await.unwrap();
    assert_eq!(s.len() as u64, version);
    for pair in s.windows(2) {
        assert_eq!(pair[1].version, pair[0].version + 1);
        assert_eq!(
            pair[1].envelope().unwrap().prev,
            Some(hex::encode(pair[0].leaf_hash))
        );
    }
    let report = ledger::verify::audit(a.as_ref(), &backend.verifier(), &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.events, version + 1);
}

/// Witness cosignatures are kept per checkpoint and witness key (the first
/// one kept), survive a restart, are served after the log's signature, and
/// answer which checkpoint a quorum of witnesses cosigned last.
async fn cosignatures_are_kept_per_checkpoint_and_witness(backend: &dyn Backend) {
    use ledger::cosignature::Cosigner;
    use ledger::StoredCosignature;
    let (w1, w2) = (
        Cosigner::generate("w1.example").unwrap(),
        Cosigner::generate("w2.example").unwrap(),
    );
    let keys = vec![
        (w1.name().to_owned(), w1.key_id()),
        (w2.name().to_owned(), w2.key_id()),
    ];
    let (small, large) = {
        let store = backend.open().await;
        store
            .append(one("c", ExpectedVersion::Any, vec![event(0)]))
            .await
            .unwrap();
        let small = store.checkpoint_now().await.unwrap();
        store
            .append(one("c", ExpectedVersion::Any, vec![event(1)]))
            .await
            .unwrap();
        let large = store.checkpoint_now().await.unwrap();
        let body =
            |c: &ledger::SignedCheckpoint| c.note.split_once("\n\n").unwrap().0.to_owned() + "\n";
        let cosign = |w: &Cosigner, c: &ledger::SignedCheckpoint, t| {
            StoredCosignature::new(c.size, &w.sign_at(&body(c), t))
        };
        store
            .add_cosignatures(vec![cosign(&w1, &small, 10), cosign(&w2, &small, 11)])
            .await
            .unwrap();
        store
            .add_cosignatures(vec![cosign(&w1, &large, 12)])
            .await
            .unwrap();
        // A second cosignature by the same key is ignored: the first stays.
        store
            .add_cosignatures(vec![cosign(&w1, &large, 99)])
            .await
            .unwrap();
        // A size with no checkpoint is refused, and nothing of the batch kept.
        let error = store
            .add_cosignatures(vec![
                cosign(&w2, &large, 13),
                StoredCosignature {
                    size: 999,
                    ..cosign(&w2, &large, 13)
                },
            ])
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::NoCheckpoint(999)), "{error}");
        (small, large)
    };
    let store = backend.open().await;
    let kept = store.cosignatures(large.size).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].name.as_str(), kept[0].timestamp),
        ("w1.example", 12)
    );
    assert_eq!(store.cosignatures(small.size).await.unwrap().len(), 2);
    assert!(store.cosignatures(5000).await.unwrap().is_empty());
    // Quorum 2: only the small checkpoint; quorum 1: the large one.
    assert_eq!(
        store.latest_cosigned_size(keys.clone(), 2).await.unwrap(),
        Some(small.size)
    );
    assert_eq!(
        store.latest_cosigned_size(keys.clone(), 1).await.unwrap(),
        Some(large.size)
    );
    assert_eq!(
        store
            .latest_cosigned_size(keys[1..].to_vec(), 1)
            .await
            .unwrap(),
        Some(small.size)
    );
    assert_eq!(
        store
            .latest_cosigned_size(vec![("w3.example".into(), 1)], 1)
            .await
            .unwrap(),
        None
    );
    // The served note carries the log's signature, then the cosignatures,
    // each verifiable with its witness's key.
    let served = ledger::witnessed::served(store.as_ref(), Some(small.size))
        .await
        .unwrap()
        .unwrap();
    assert!(served.note.starts_with(&small.note));
    assert_eq!(
        backend
            .verifier()
            .verify_checkpoint(&served.note)
            .unwrap()
            .size,
        small.size
    );
    w1.verifier().verify_note(&served.note).unwrap();
    w2.verifier().verify_note(&served.note).unwrap();
}

macro_rules! backend_tests {
    ($module:ident, $backend:expr) => {
        mod $module {
            use super::*;
            #[tokio::test]
            async fn appends_assign_seq_version_and_prev() {
                let Some(backend) = $backend else { return };
                super::appends_assign_seq_version_and_prev(&backend).await
            }
            #[tokio::test]
            async fn version_conflicts_write_nothing() {
                let Some(backend) = $backend else { return };
                super::version_conflicts_write_nothing(&backend).await
            }
            #[tokio::test]
            async fn batches_are_atomic_across_streams() {
                let Some(backend) = $backend else { return };
                super::batches_are_atomic_across_streams(&backend).await
            }
            #[tokio::test]
            async fn retries_are_idempotent() {
                let Some(backend) = $backend else { return };
                super::retries_are_idempotent(&backend).await
            }
            #[tokio::test]
            async fn bad_events_are_refused_with_nothing_written() {
                let Some(backend) = $backend else { return };
                super::bad_events_are_refused_with_nothing_written(&backend).await
            }
            #[tokio::test]
            async fn data_deeper_than_readers_accept_is_refused_and_the_deepest_reads_back() {
                let Some(backend) = $backend else { return };
                super::data_deeper_than_readers_accept_is_refused_and_the_deepest_reads_back(
                    &backend,
                )
                .await
            }
            #[tokio::test]
            async fn pages_end_at_the_event_that_reaches_their_byte_budget() {
                let Some(backend) = $backend else { return };
                super::pages_end_at_the_event_that_reaches_their_byte_budget(&backend).await
            }
            #[tokio::test]
            async fn leaves_are_at_most_65535_bytes() {
                let Some(backend) = $backend else { return };
                super::leaves_are_at_most_65535_bytes(&backend).await
            }
            #[tokio::test]
            async fn tiles_read_from_the_store_rebuild_the_signed_root() {
                let Some(backend) = $backend else { return };
                super::tiles_read_from_the_store_rebuild_the_signed_root(&backend).await
            }
            #[tokio::test]
            async fn reads_from_past_any_log_are_refused() {
                let Some(backend) = $backend else { return };
                super::reads_from_past_any_log_are_refused(&backend).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_writers_share_group_commits() {
                let Some(backend) = $backend else { return };
                super::concurrent_writers_share_group_commits(&backend).await
            }
            #[tokio::test]
            async fn proofs_verify_against_signed_checkpoints() {
                let Some(backend) = $backend else { return };
                super::proofs_verify_against_signed_checkpoints(&backend).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn two_nodes_share_one_gap_free_log() {
                let Some(backend) = $backend else { return };
                super::two_nodes_share_one_gap_free_log(&backend).await
            }
            #[tokio::test]
            async fn a_node_appends_where_the_other_node_left_the_stream() {
                let Some(backend) = $backend else { return };
                super::a_node_appends_where_the_other_node_left_the_stream(&backend).await
            }
            #[tokio::test]
            async fn cosignatures_are_kept_per_checkpoint_and_witness() {
                let Some(backend) = $backend else { return };
                super::cosignatures_are_kept_per_checkpoint_and_witness(&backend).await
            }
            #[tokio::test]
            async fn restart_keeps_the_log_and_its_chains() {
                let Some(backend) = $backend else { return };
                super::restart_keeps_the_log_and_its_chains(&backend).await
            }
        }
    };
}

backend_tests!(sqlite, Sqlite::create().await);
backend_tests!(postgres, Postgres::create().await);
#[cfg(feature = "kurrentdb")]
backend_tests!(kurrentdb, KurrentDb::create().await);

/// A PostgreSQL node whose connections the server drops (as on a restart)
/// fails the appends in flight at most, never loses an acknowledged one,
/// and works again on new connections.
#[tokio::test]
async fn postgres_recovers_when_the_server_drops_its_connections() {
    let Some(backend) = Postgres::create().await else {
        return;
    };
    let store = backend.open().await;
    let mut acknowledged = Vec::new();
    for round in 0..3u64 {
        let appended = store
            .append(one("r", ExpectedVersion::Any, vec![event(round)]))
            .await
            .unwrap();
        acknowledged.push(appended[0].seq);
        admin_execute(
            &backend.admin_url,
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
                backend.database
            ),
        )
        .await;
        // The first call after the drop may fail (its connection is gone);
        // a retry with the same id then succeeds exactly once.
        let id = Uuid::new_v4();
        let request = || {
            one(
                "r",
                ExpectedVersion::Any,
                vec![event(100 + round).with_id(id)],
            )
        };
        let appended = match store.append(request()).await {
            Ok(appended) => appended,
            Err(error) => {
                assert!(matches!(error, StoreError::Backend(_)), "{error}");
                store.append(request()).await.unwrap()
            }
        };
        acknowledged.push(appended[0].seq);
    }
    let size = store.size().await.unwrap();
    assert_eq!(size, 6);
    for seq in acknowledged {
        assert!(seq < size);
    }
    store.checkpoint_now().await.unwrap();
    ledger::verify::audit(store.as_ref(), &backend.verifier(), &mut |_, _| {})
        .await
        .unwrap();
}

/// Readers stop at the durable size: an append transaction commits without
/// waiting for its WAL flush, so its events are visible to other writers
/// before a crash could no longer take them back; readers see them only once
/// a durable transaction has published a size that covers them.
#[tokio::test]
async fn postgres_readers_stop_at_the_durable_size() {
    let Some(backend) = Postgres::create().await else {
        return;
    };
    let store = backend.open().await;
    for n in 0..3 {
        store
            .append(one("s", ExpectedVersion::Any, vec![event(n)]))
            .await
            .unwrap();
    }
    // What a node's append transaction leaves between its commit and its
    // publish: an event past the durable size (its leaf and hashes do not
    // matter here, nothing verifies it).
    let id = Uuid::new_v4();
    admin_execute(
        &backend.url(),
        &format!(
            "BEGIN;
             SET LOCAL synchronous_commit = off;
             SELECT size FROM log_head WHERE singleton FOR UPDATE;
             INSERT INTO events (seq, id, stream, version, type, leaf)
                 VALUES (3, '{id}', 'undurable', 0, 'generation.step', '\\x7b7d');
             UPDATE log_head SET size = 4 WHERE singleton;
             COMMIT;"
        ),
    )
    .await;
    assert_eq!(store.size().await.unwrap(), 3);
    assert_eq!(store.read_range(0, 10).await.unwrap().len(), 3);
    assert!(store
        .read_stream("undurable", 0, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.read_event(id).await.unwrap(), None);
    assert!(store.read_seqs(vec![3]).await.is_err());
    // A durable publish (any node's) covers it.
    admin_execute(
        &backend.url(),
        "INSERT INTO log_durable (node, size) SELECT gen_random_uuid(), size FROM log_head",
    )
    .await;
    assert_eq!(store.size().await.unwrap(), 4);
    assert_eq!(store.read_range(0, 10).await.unwrap().len(), 4);
    assert_eq!(
        store.read_stream("undurable", 0, 10).await.unwrap().len(),
        1
    );
    assert_eq!(store.read_event(id).await.unwrap().map(|e| e.seq), Some(3));
}

/// Events appended before migration `0004_event_hashes` keep their Merkle
/// hashes in `merkle_hashes`; proofs and the audit read them there, and the
/// events' own rows for everything appended since.
#[tokio::test]
async fn postgres_reads_hashes_stored_before_they_moved_into_events() {
    let Some(backend) = Postgres::create().await else {
        return;
    };
    let store = backend.open().await;
    let append = |range: std::ops::Range<u64>| {
        let store = store.clone();
        async move {
            for n in range {
                let stream = format!("s{}", n % 4);
                store
                    .append(one(&stream, ExpectedVersion::Any, vec![event(n)]))
                    .await
                    .unwrap();
            }
        }
    };
    append(0..21).await;
    // What such a log holds: the same hashes, one row each.
    admin_execute(
        &backend.url(),
        "INSERT INTO merkle_hashes (idx, hash)
             SELECT 2 * seq - bit_count(seq::bit(64)) + level,
                    substring(hashes FROM level * 32 + 1 FOR 32)
             FROM events, generate_series(0, length(hashes) / 32 - 1) AS level;
         UPDATE events SET hashes = NULL;",
    )
    .await;
    append(21..45).await;
    let checkpoint = store.checkpoint_now().await.unwrap();
    assert_eq!(checkpoint.size, 45);
    for seq in [0, 13, 20, 21, 30, 44] {
        let proof = store.prove_inclusion(seq, 45).await.unwrap();
        verify_inclusion(seq, 45, &proof.leaf_hash, &proof.proof, &checkpoint.root).unwrap();
    }
    for from in [1, 7, 21, 22, 33] {
        let proof = store.prove_consistency(from, 45).await.unwrap();
        verify_consistency(from, 45, &proof.proof, &proof.from_root, &checkpoint.root).unwrap();
    }
    let report = ledger::verify::audit(store.as_ref(), &backend.verifier(), &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.root, checkpoint.root);
}
