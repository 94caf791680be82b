//! `ledgerline migrate --from sqlite:DIR --to postgres://...`: the copy holds
//! the same leaves byte for byte and the same signed checkpoints, verifies,
//! takes new appends on the same chains, resumes idempotently, and refuses a
//! tampered source.

mod postgres_support;

use postgres_support::{required_env, TestDatabase};
use std::path::Path;
use std::process::{Command, Output};

fn ledgerline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ledgerline"))
        .args(args)
        .env_remove("LEDGERLINE_DATA")
        .env_remove("LEDGERLINE_STORE")
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let output = ledgerline(args);
    assert!(
        output.status.success(),
        "ledgerline {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// An embedded log of several CLI runs (so several checkpoints).
fn source_log(data: &str) {
    for n in 0..12 {
        let stream = format!("s{}", n % 3);
        ok(&[
            "--data",
            data,
            "append",
            "--stream",
            &stream,
            "--type",
            "test.tick",
            "--data",
            &format!("{{\"n\":{n}}}"),
        ]);
    }
}

#[test]
fn migrate_copies_leaves_and_checkpoints_exactly() {
    let Some(admin_url) = required_env("LEDGERLINE_TEST_POSTGRES_URL") else {
        return;
    };
    let database = TestDatabase::create(&admin_url);
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    let source = source.to_str().unwrap();
    source_log(source);
    let from = format!("sqlite:{source}");
    let copied = ok(&["migrate", "--from", &from, "--to", &database.url]);
    assert!(
        copied.starts_with("ok copied 12 events (0 were there already)"),
        "{copied}"
    );

    // The target node signs with the source's key.
    let key = Path::new(source).join("checkpoint.key");
    let node = dir.path().join("node");
    let target = |args: &[&str]| -> String {
        let mut all = vec![
            "--data",
            node.to_str().unwrap(),
            "--store",
            &database.url,
            "--signing-key",
            key.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        ok(&all)
    };
    assert_eq!(target(&["events"]), ok(&["--data", source, "events"]));
    let source_checkpoints: Vec<u64> = (0..=12)
        .filter(|size| {
            ledgerline(&["--data", source, "checkpoint", "--size", &size.to_string()])
                .status
                .success()
        })
        .collect();
    assert!(source_checkpoints.len() > 1);
    for size in &source_checkpoints {
        let size = size.to_string();
        assert_eq!(
            target(&["checkpoint", "--size", &size]),
            ok(&["--data", source, "checkpoint", "--size", &size]),
            "the checkpoint of size {size} is copied verbatim"
        );
    }
    assert_eq!(target(&["key"]), ok(&["--data", source, "key"]));
    assert!(target(&["verify"]).starts_with("ok 12 events"));

    // Running it again copies nothing and changes nothing.
    let again = ok(&["migrate", "--from", &from, "--to", &database.url]);
    assert!(
        again.starts_with("ok copied 0 events (12 were there already)"),
        "{again}"
    );

    // The chains continue on PostgreSQL.
    let appended: serde_json::Value = serde_json::from_str(&target(&[
        "append",
        "--stream",
        "s0",
        "--type",
        "test.tick",
        "--data",
        "{\"n\":12}",
        "--expected-version",
        "4",
    ]))
    .unwrap();
    assert_eq!(
        (appended["seq"].as_u64(), appended["version"].as_u64()),
        (Some(12), Some(4))
    );
    assert!(target(&["verify"]).starts_with("ok 13 events"));
}

#[test]
fn migrate_refuses_a_tampered_source() {
    let Some(admin_url) = required_env("LEDGERLINE_TEST_POSTGRES_URL") else {
        return;
    };
    let database = TestDatabase::create(&admin_url);
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    source_log(source.to_str().unwrap());
    // Rewrite one payload byte of seq 7 in place: the leaf no longer hashes
    // to what the checkpoints signed.
    let conn = rusqlite::Connection::open(source.join("ledger.db")).unwrap();
    conn.execute(
        "UPDATE events SET leaf = CAST(replace(CAST(leaf AS TEXT), '\"n\":7', '\"n\":8') AS BLOB) WHERE seq = 7",
        [],
    )
    .unwrap();
    drop(conn);
    let output = ledgerline(&[
        "migrate",
        "--from",
        &format!("sqlite:{}", source.display()),
        "--to",
        &database.url,
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("checkpoint of size"), "{stderr}");
    // Whatever was copied before the bad checkpoint is a verified prefix;
    // nothing past it was written.
    let size = postgres_support::psql(&database.url, "SELECT size FROM log_head");
    assert!(size.trim().parse::<u64>().unwrap() < 8, "{size}");
}
