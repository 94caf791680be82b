//! Power loss on the embedded store. Writers append concurrently to the
//! SQLite store, opened by its normal `SqliteStore::open` with the
//! power-cut VFS registered as SQLite's default (so the store's code is the
//! production code); the power goes off at a seeded point of the I/O
//! stream, and only what was synced survives (every other round, a random
//! part of the rest too). The store is then reopened through the plain
//! unix VFS (now and then only after a further round over the shim, whose
//! cut may fall in the recovery): every append acknowledged in any round
//! must be there with its leaf, the log must pass the full audit, and the
//! checkpoint signed on reopening must prove each stream's newest append.
//!
//! The binary's SIGKILL test (`tests/crash.rs`) leaves unsynced writes in
//! the kernel's page cache, so it proves process crashes only; this test is
//! the one that loses them.

mod power_cut_vfs;

use ledger::merkle;
use ledger::store::sqlite::{SqliteConfig, SqliteStore};
use ledger::verify::audit;
use ledger::{AppendRequest, EventStore, ExpectedVersion, Hash, NewEvent};
use power_cut_vfs::{PowerCut, SplitMix64, Survivors};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ORIGIN: &str = "power-cut.test/log";
/// Replays the same cuts; `POWER_CUT_SEED` picks others.
const SEED_DEFAULT: u64 = 6962;
const ROUNDS: u64 = 10;
const WRITERS: u64 = 8;
/// The cut falls at a change (write, sync, truncation, creation, deletion)
/// drawn from `1..=CUT_CHANGES_MAX` after the store starts opening: inside
/// group commits and background WAL checkpoints, and now and then in the
/// open itself. About a second of appending on a small machine.
const CUT_CHANGES_MAX: u64 = 3_000;
/// The early cuts of a round that opens a crashed log: the open signs
/// the unsigned tail in a few dozen changes.
const RECOVERY_CUT_CHANGES_MAX: u64 = 60;
/// A round whose cut has not come by then is cut by the test, so that a
/// stalled store cannot hang it.
const ROUND_DURATION_MAX: Duration = Duration::from_secs(10);

/// One append the store acknowledged.
#[derive(Debug, Clone)]
struct Acknowledged {
    stream: String,
    version: u64,
    seq: u64,
    leaf_hash: Hash,
}

#[test]
fn power_cut_never_loses_an_acknowledged_append() {
    // Held outside the runtime: the shim is process-wide.
    let _exclusive = PowerCut::exclusive();
    let seed = std::env::var("POWER_CUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED_DEFAULT);
    eprintln!("power-cut seed {seed} (rerun with POWER_CUT_SEED={seed})");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
        .block_on(cut_the_power_round_after_round(seed));
}

async fn cut_the_power_round_after_round(seed: u64) {
    let mut random = SplitMix64::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let config = SqliteConfig::new(dir.path(), ORIGIN);
    // Created through the plain unix VFS, so that the model's durable
    // starting point is a whole log (see the VFS's note on new databases).
    close(open(config.clone()).await.unwrap()).await;
    let power_cut = PowerCut::install();
    let mut acknowledged: Vec<Acknowledged> = Vec::new();
    let mut rounds_that_appended = 0;
    let mut recovering = false;
    for round in 0..ROUNDS {
        // A round that recovers the last one's crash is cut early half the
        // time: in the recovery itself, or in the first commits after it.
        let cut_at = if recovering && random.between(0, 1) == 0 {
            random.between(1, RECOVERY_CUT_CHANGES_MAX)
        } else {
            random.between(1, CUT_CHANGES_MAX)
        };
        let survivors = if round % 2 == 0 {
            Survivors::None
        } else {
            Survivors::Random {
                seed: random.next_u64(),
            }
        };
        power_cut.make_default();
        power_cut.arm(cut_at, survivors);
        let acks = append_until_the_power_fails(&config, round).await;
        let restored = power_cut.power_on();
        power_cut.make_unix_default();
        eprintln!(
            "round {round}: cut at change {cut_at} ({survivors:?}), {} acknowledged; {} files restored, {} volatile changes kept, {} lost",
            acks.len(),
            restored.files,
            restored.changes_kept,
            restored.changes_lost
        );
        rounds_that_appended += u64::from(!acks.is_empty());
        acknowledged.extend(acks);
        // Now and then the next round opens the crashed log over the shim
        // itself, so that a cut can also fall in the recovery: the reopened
        // store signs the unsigned tail and copies the WAL into the database.
        recovering = round + 1 < ROUNDS && random.between(0, 2) == 0;
        if recovering {
            eprintln!("round {round}: the next round recovers this one over the shim");
        } else {
            check_every_acknowledged_append(&config, &acknowledged).await;
        }
    }
    assert!(
        rounds_that_appended * 2 >= ROUNDS,
        "only {rounds_that_appended} of {ROUNDS} rounds acknowledged an append before the cut: the test proves little"
    );
}

/// Opens the store over the power-cut VFS and appends from `WRITERS` tasks,
/// each to its own stream, until the power fails; returns what was
/// acknowledged. Every connection is closed when it returns.
async fn append_until_the_power_fails(config: &SqliteConfig, round: u64) -> Vec<Acknowledged> {
    let power_cut = PowerCut::install();
    let store = match open(config.clone()).await {
        Ok(store) => Arc::new(store),
        Err(e) => {
            assert!(power_cut.is_off(), "opening failed with the power on: {e}");
            return Vec::new();
        }
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store = store.clone();
            tokio::spawn(async move {
                let stream = format!("round-{round}-writer-{writer}");
                let mut acks = Vec::new();
                for version in 0.. {
                    let request = AppendRequest::new(
                        &stream,
                        ExpectedVersion::Exact(version),
                        vec![NewEvent::new("test.tick", json!({ "version": version }))],
                    );
                    match store.append(request).await {
                        Ok(appended) => acks.push(Acknowledged {
                            stream: stream.clone(),
                            version: appended[0].version,
                            seq: appended[0].seq,
                            leaf_hash: appended[0].leaf_hash,
                        }),
                        Err(e) => {
                            assert!(
                                PowerCut::install().is_off(),
                                "an append failed with the power on: {e}"
                            );
                            break;
                        }
                    }
                }
                acks
            })
        })
        .collect();
    let started = Instant::now();
    while !power_cut.is_off() {
        if started.elapsed() > ROUND_DURATION_MAX {
            eprintln!(
                "round {round}: no cut after {} changes; cutting now",
                power_cut.changes()
            );
            power_cut.cut();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut acks = Vec::new();
    for writer in writers {
        acks.extend(writer.await.unwrap());
    }
    let store = Arc::into_inner(store).expect("the writers hold no store any more");
    close(store).await;
    acks
}

/// Reopens the store through the plain VFS and the normal open path, and
/// checks every append acknowledged so far, the audit, and the newest
/// signed checkpoint.
async fn check_every_acknowledged_append(config: &SqliteConfig, acknowledged: &[Acknowledged]) {
    let store = open(config.clone())
        .await
        .unwrap_or_else(|e| panic!("the store does not open after the power cut: {e}"));
    let size = store.size().await.unwrap();
    let mut acknowledged = acknowledged.to_vec();
    acknowledged.sort_by_key(|ack| ack.seq);
    if let Some(lost) = acknowledged.iter().find(|ack| ack.seq >= size) {
        panic!(
            "acknowledged append lost by the power cut: seq {} ({} version {}), but the log holds {size} events",
            lost.seq, lost.stream, lost.version
        );
    }
    let events = store
        .read_seqs(acknowledged.iter().map(|ack| ack.seq).collect())
        .await
        .unwrap();
    for (ack, event) in acknowledged.iter().zip(&events) {
        assert!(
            event.leaf_hash == ack.leaf_hash && event.stream == ack.stream && event.version == ack.version,
            "acknowledged append lost by the power cut: seq {} ({} version {}) now holds {} version {}",
            ack.seq,
            ack.stream,
            ack.version,
            event.stream,
            event.version
        );
    }
    let verifier = store.verifier().clone();
    let report = audit(&store, &verifier, &mut |_, _| {})
        .await
        .unwrap_or_else(|e| panic!("the log fails its audit after the power cut: {e}"));
    // Opening a log whose last commits no checkpoint covers signs one.
    assert_eq!(report.unsigned_events, 0, "the reopened log is signed");
    let checkpoint = store.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!(checkpoint.size, size);
    // The audit has checked the whole tree against the signed roots; a
    // proof for each stream's newest append checks it end to end as a
    // client would.
    let mut newest: std::collections::HashMap<&str, &Acknowledged> = Default::default();
    for ack in &acknowledged {
        newest.insert(&ack.stream, ack);
    }
    for ack in newest.values() {
        let proof = store.prove_inclusion(ack.seq, size).await.unwrap();
        merkle::verify_inclusion(
            ack.seq,
            size,
            &ack.leaf_hash,
            &proof.proof,
            &checkpoint.root,
        )
        .unwrap_or_else(|e| {
            panic!(
                "seq {} is not in the signed checkpoint of size {size}: {e}",
                ack.seq
            )
        });
    }
    close(store).await;
}

async fn open(config: SqliteConfig) -> Result<SqliteStore, ledger::StoreError> {
    tokio::task::spawn_blocking(move || SqliteStore::open(config))
        .await
        .unwrap()
}

/// Drops the store off the runtime's threads: its drop joins the writer.
async fn close(store: SqliteStore) {
    tokio::task::spawn_blocking(move || drop(store))
        .await
        .unwrap();
}
