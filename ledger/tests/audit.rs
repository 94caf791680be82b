//! The audit detects every kind of tampering with the embedded store's file
//! and names the first bad seq.

use ledger::store::sqlite::{SqliteConfig, SqliteStore, DATABASE_FILE};
use ledger::verify::{audit, AuditFailure};
use ledger::{AppendRequest, Checkpoint, EventStore, ExpectedVersion, NewEvent, NoteSigner};
use rusqlite::{params, Connection};
use serde_json::json;

const ORIGIN: &str = "audit.test/log";

/// A log of 40 events over 4 streams with several checkpoints, closed cleanly.
async fn build_log() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path(), ORIGIN)).unwrap();
    for n in 0..40u64 {
        let request = AppendRequest::new(
            format!("stream-{}", n % 4),
            ExpectedVersion::Any,
            vec![NewEvent::new("test.tick", json!({"n": n}))],
        );
        store.append(request).await.unwrap();
        if n % 10 == 9 {
            store.checkpoint_now().await.unwrap();
        }
    }
    dir
}

/// Runs the audit on a (possibly tampered) directory.
async fn audit_dir(dir: &tempfile::TempDir) -> Result<ledger::verify::AuditReport, AuditFailure> {
    let store = SqliteStore::open_read_only(SqliteConfig::new(dir.path(), ORIGIN)).unwrap();
    let verifier = store.verifier().clone();
    audit(&store, &verifier, &mut |_, _| {}).await
}

fn tamper(dir: &tempfile::TempDir, sql: &str) {
    let conn = Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    conn.execute_batch(sql).unwrap();
}

fn leaf(dir: &tempfile::TempDir, seq: u64) -> Vec<u8> {
    let conn = Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    conn.query_row(
        "SELECT leaf FROM events WHERE seq = ?1",
        [seq as i64],
        |r| r.get(0),
    )
    .unwrap()
}

fn set_leaf(dir: &tempfile::TempDir, seq: u64, leaf: &[u8]) {
    let conn = Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    conn.execute(
        "UPDATE events SET leaf = ?1 WHERE seq = ?2",
        params![leaf, seq as i64],
    )
    .unwrap();
}

#[tokio::test]
async fn an_untouched_log_passes() {
    let dir = build_log().await;
    let report = audit_dir(&dir).await.unwrap();
    assert_eq!(report.events, 40);
    assert_eq!(report.checkpoints, 5, "the empty tree, four explicit");
    assert_eq!(report.unsigned_events, 0);
}

#[tokio::test]
async fn a_modified_event_is_named() {
    let dir = build_log().await;
    let modified = String::from_utf8(leaf(&dir, 17))
        .unwrap()
        .replace("\"n\":17", "\"n\":71");
    set_leaf(&dir, 17, modified.as_bytes());
    let failure = audit_dir(&dir).await.unwrap_err();
    assert_eq!(failure.seq(), Some(17), "{failure}");
}

#[tokio::test]
async fn a_modified_event_with_rewritten_hashes_breaks_the_signed_root() {
    let dir = build_log().await;
    let modified = String::from_utf8(leaf(&dir, 38))
        .unwrap()
        .replace("\"n\":38", "\"n\":83");
    set_leaf(&dir, 38, modified.as_bytes());
    // Recompute every stored hash as a careful forger would.
    let conn = Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    let leaves: Vec<Vec<u8>> = conn
        .prepare("SELECT leaf FROM events ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut frontier = ledger::merkle::Frontier::new();
    let mut hashes = Vec::new();
    for leaf in &leaves {
        frontier.append(ledger::merkle::leaf_hash(leaf), &mut hashes);
    }
    for (index, hash) in hashes {
        conn.execute(
            "UPDATE merkle_hashes SET hash = ?1 WHERE idx = ?2",
            params![hash.as_slice(), index as i64],
        )
        .unwrap();
    }
    drop(conn);
    let failure = audit_dir(&dir).await.unwrap_err();
    assert!(
        matches!(failure, AuditFailure::Checkpoint { size: 40, .. }),
        "{failure}"
    );
    assert!(
        failure.to_string().contains("between seq 30 and 39"),
        "{failure}"
    );
}

#[tokio::test]
async fn a_deleted_event_is_named() {
    let dir = build_log().await;
    tamper(&dir, "DELETE FROM events WHERE seq = 12");
    let failure = audit_dir(&dir).await.unwrap_err();
    assert_eq!(failure.seq(), Some(12), "{failure}");
    assert!(failure.to_string().contains("missing"), "{failure}");
}

#[tokio::test]
async fn an_inserted_event_is_named() {
    let dir = build_log().await;
    // Shift events 20.. up by one and put a forged event at 20.
    tamper(
        &dir,
        "UPDATE events SET seq = seq + 1000 WHERE seq >= 20;
         UPDATE events SET seq = seq - 999 WHERE seq >= 1000;",
    );
    // A forgery consistent with its stream: same seq, version and prev as
    // the event it displaces, different payload.
    let forged = String::from_utf8(leaf(&dir, 21))
        .unwrap()
        .replace("\"n\":20", "\"n\":2000");
    let conn = Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    conn.execute(
        "INSERT INTO events (seq, id, stream, version, type, leaf) VALUES (20, x'00112233445566778899aabbccddeeff', 'stream-0', 1005, 'test.tick', ?1)",
        [forged.as_bytes()],
    )
    .unwrap();
    drop(conn);
    let failure = audit_dir(&dir).await.unwrap_err();
    assert_eq!(failure.seq(), Some(20), "{failure}");
}

#[tokio::test]
async fn reordered_events_are_named() {
    let dir = build_log().await;
    let (a, b) = (leaf(&dir, 25), leaf(&dir, 26));
    set_leaf(&dir, 25, &b);
    set_leaf(&dir, 26, &a);
    let failure = audit_dir(&dir).await.unwrap_err();
    assert_eq!(failure.seq(), Some(25), "{failure}");
}

#[tokio::test]
async fn a_truncated_log_is_detected() {
    let dir = build_log().await;
    let hashes_kept = ledger::merkle::stored_hash_count(35);
    tamper(
        &dir,
        &format!("DELETE FROM events WHERE seq >= 35; DELETE FROM merkle_hashes WHERE idx >= {hashes_kept};"),
    );
    let failure = audit_dir(&dir).await.unwrap_err();
    assert!(
        matches!(
            failure,
            AuditFailure::Truncated {
                checkpoint_size: 40,
                events: 35
            }
        ),
        "{failure}"
    );
    assert_eq!(failure.seq(), Some(35));
}

#[tokio::test]
async fn a_forged_checkpoint_is_detected() {
    let dir = build_log().await;
    // Signed by another key under the same name.
    let forger = NoteSigner::generate(ORIGIN).unwrap();
    let conn = Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    let root: Vec<u8> = conn
        .query_row("SELECT root FROM checkpoints WHERE size = 30", [], |r| {
            r.get(0)
        })
        .unwrap();
    let note = forger.sign(&Checkpoint {
        origin: ORIGIN.into(),
        size: 30,
        root: root.try_into().unwrap(),
    });
    conn.execute("UPDATE checkpoints SET note = ?1 WHERE size = 30", [note])
        .unwrap();
    drop(conn);
    let failure = audit_dir(&dir).await.unwrap_err();
    assert!(
        matches!(failure, AuditFailure::Checkpoint { size: 30, .. }),
        "{failure}"
    );
}

#[tokio::test]
async fn a_checkpoint_row_that_disagrees_with_its_note_is_detected() {
    let dir = build_log().await;
    tamper(
        &dir,
        "UPDATE checkpoints SET root = zeroblob(32) WHERE size = 20",
    );
    let failure = audit_dir(&dir).await.unwrap_err();
    assert!(
        matches!(failure, AuditFailure::Checkpoint { size: 20, .. }),
        "{failure}"
    );
}

#[tokio::test]
async fn a_verifier_key_from_elsewhere_is_honoured() {
    let dir = build_log().await;
    let store = SqliteStore::open_read_only(SqliteConfig::new(dir.path(), ORIGIN)).unwrap();
    let stranger = NoteSigner::generate(ORIGIN).unwrap().verifier();
    let failure = audit(&store, &stranger, &mut |_, _| {}).await.unwrap_err();
    assert!(
        matches!(failure, AuditFailure::Checkpoint { size: 0, .. }),
        "{failure}"
    );
}
