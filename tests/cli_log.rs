//! End to end: the log commands' output contract, as an outside verifier
//! would use it, and bad input rejected with nothing written.

mod common;

use base64::Engine as _;
use common::{ok, ok_json, run, run_with_stdin};
use ledger::merkle::{leaf_hash, verify_consistency, verify_inclusion, Hash};
use ledger::NoteVerifier;
use serde_json::Value;

fn hash(value: &Value) -> Hash {
    hex::decode(value.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn event_count(data: &std::path::Path) -> usize {
    ok(data, &["events"]).lines().count()
}

#[test]
fn appended_events_are_provable_with_public_formats() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let first = ok_json(
        data,
        &[
            "append",
            "--stream",
            "notes-GBAYE0601498",
            "--type",
            "note.test",
            "--data",
            r#"{"title":"Yesterday"}"#,
        ],
    );
    assert_eq!(first["seq"], 0);
    assert_eq!(first["version"], 0);
    let checkpoint_one = ok(data, &["checkpoint"]);
    let file = data.join("payload.json");
    std::fs::write(&file, r#"{"b": 2, "a": [1, "x"]}"#).unwrap();
    let second = ok_json(
        data,
        &[
            "append",
            "--stream",
            "notes-GBAYE0601498",
            "--type",
            "note.test",
            "--data",
            &format!("@{}", file.display()),
            "--expected-version",
            "1",
        ],
    );
    assert_eq!(second["version"], 1);
    let stdin = run_with_stdin(
        data,
        &["append", "--stream", "other", "--type", "t", "--data", "-"],
        br#"{"from":"stdin"}"#,
    );
    assert!(stdin.status.success());

    // Events carry their exact leaf bytes; the leaf hash is recomputable.
    let events: Vec<Value> = ok(data, &["events"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 3);
    for event in &events {
        let leaf = base64::engine::general_purpose::STANDARD
            .decode(event["leaf"].as_str().unwrap())
            .unwrap();
        assert_eq!(leaf_hash(&leaf), hash(&event["leaf_hash"]));
        let envelope: Value = serde_json::from_slice(&leaf).unwrap();
        assert_eq!(envelope["seq"], event["seq"]);
        assert_eq!(envelope["stream"], event["stream"]);
    }
    let leaf1: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(events[1]["leaf"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(leaf1["prev"], events[0]["leaf_hash"], "stream hash chain");
    assert_eq!(leaf1["data"], serde_json::json!({"a": [1, "x"], "b": 2}));
    let page = ok(data, &["events", "--from", "1", "--limit", "1"]);
    assert_eq!(page.lines().count(), 1);
    assert_eq!(serde_json::from_str::<Value>(&page).unwrap()["seq"], 1);

    // The checkpoint verifies with the published key, and proofs check out against it.
    let key = ok(data, &["key"]);
    let verifier = NoteVerifier::from_verifier_key(key.trim()).unwrap();
    let note = ok(data, &["checkpoint"]);
    let checkpoint = verifier.verify_checkpoint(&note).unwrap();
    assert_eq!(checkpoint.size, 3);
    assert_eq!(checkpoint.origin, "ledgerline.local/log");
    assert!(key.starts_with("ledgerline.local/log+"));
    for (seq, event) in events.iter().enumerate() {
        let proof = ok_json(data, &["proof", "inclusion", "--seq", &seq.to_string()]);
        assert_eq!(proof["tree_size"], 3);
        assert_eq!(proof["leaf_hash"], event["leaf_hash"]);
        assert_eq!(hash(&proof["root_hash"]), checkpoint.root);
        let path: Vec<Hash> = proof["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(hash)
            .collect();
        verify_inclusion(
            seq as u64,
            3,
            &hash(&event["leaf_hash"]),
            &path,
            &checkpoint.root,
        )
        .unwrap();
    }
    let old = verifier.verify_checkpoint(&checkpoint_one).unwrap();
    assert_eq!(ok(data, &["checkpoint", "--size", "1"]), checkpoint_one);
    let consistency = ok_json(data, &["proof", "consistency", "--from", "1"]);
    assert_eq!(
        (
            consistency["from_size"].as_u64(),
            consistency["to_size"].as_u64()
        ),
        (Some(1), Some(3))
    );
    let path: Vec<Hash> = consistency["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash)
        .collect();
    verify_consistency(1, 3, &path, &old.root, &checkpoint.root).unwrap();

    let verified = ok(data, &["verify"]);
    assert_eq!(
        verified.trim(),
        format!(
            "ok 3 events, {} checkpoints, root {}",
            verified.split(' ').nth(3).unwrap(),
            hex::encode(checkpoint.root)
        )
    );
    assert!(ok(data, &["verify", "--key", key.trim()]).starts_with("ok 3 events"));
}

#[test]
fn retries_with_the_same_id_append_once() {
    let dir = tempfile::tempdir().unwrap();
    let id = "5b0a5c36-7a43-4c8e-9d6e-2f1f3f1d8a10";
    let args = [
        "append",
        "--stream",
        "s",
        "--type",
        "t",
        "--data",
        r#"{"n":1}"#,
        "--id",
        id,
    ];
    let first = ok(dir.path(), &args);
    assert_eq!(ok(dir.path(), &args), first);
    assert_eq!(event_count(dir.path()), 1);
    let reused = run(
        dir.path(),
        &[
            "append",
            "--stream",
            "s",
            "--type",
            "t",
            "--data",
            r#"{"n":2}"#,
            "--id",
            id,
        ],
    );
    assert_eq!(reused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&reused.stderr).contains("already appended"));
}

/// JSON text of objects `depth` deep: `{"a":{"a":{}}}` is 3 deep.
fn nested(depth: usize) -> String {
    format!(
        "{}{{}}{}",
        r#"{"a":"#.repeat(depth - 1),
        "}".repeat(depth - 1)
    )
}

#[test]
fn append_refuses_data_nested_deeper_than_readers_accept() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let append = |payload: &str| {
        run(
            data,
            &["append", "--stream", "s", "--type", "t", "--data", payload],
        )
    };
    ok(
        data,
        &["append", "--stream", "s", "--type", "t", "--data", "{}"],
    );
    // 127 levels of data parse, but the envelope would take the leaf to 128,
    // which no reader accepts.
    let refused = append(&nested(127));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("more than 126 deep"), "{stderr}");
    assert_eq!(event_count(data), 1);
    // The log stays writable, and the deepest data accepted reads back.
    assert!(append(&nested(126)).status.success());
    assert!(append("{}").status.success());
    assert_eq!(event_count(data), 3);
    assert!(ok(data, &["verify"]).starts_with("ok 3 events"));
}

#[test]
fn bad_input_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    ok(
        data,
        &["append", "--stream", "s", "--type", "t", "--data", "{}"],
    );
    let big = data.join("big.json");
    std::fs::write(&big, format!(r#"{{"x":"{}"}}"#, "y".repeat(1 << 20))).unwrap();
    let latin1 = data.join("latin1.json");
    std::fs::write(&latin1, b"{\"name\":\"caf\xe9\"}").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--data".into(), "{not json".into()], "not valid JSON"),
        (
            vec!["--data".into(), "[1,2]".into()],
            "must be a JSON object",
        ),
        (
            vec![
                "--data".into(),
                "{}".into(),
                "--expected-version".into(),
                "7".into(),
            ],
            "holds 1 events",
        ),
        (
            vec!["--data".into(), format!("@{}", big.display())],
            "at most 65535 bytes",
        ),
        (
            vec!["--data".into(), format!("@{}", latin1.display())],
            "not UTF-8",
        ),
        (
            vec!["--data".into(), "{}".into(), "--id".into(), "nope".into()],
            "not a UUID",
        ),
        (
            vec!["--data".into(), "@/no/such/file".into()],
            "cannot read",
        ),
    ];
    for (extra, message) in cases {
        let mut args = vec!["append", "--stream", "s", "--type", "t"];
        args.extend(extra.iter().map(String::as_str));
        let output = run(data, &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one sentence: {stderr}");
    }
    let bad_stream = run(
        data,
        &[
            "append",
            "--stream",
            "has space",
            "--type",
            "t",
            "--data",
            "{}",
        ],
    );
    assert_eq!(bad_stream.status.code(), Some(2));
    let usage = run(data, &["append", "--stream", "s"]);
    assert_eq!(usage.status.code(), Some(2));
    let no_checkpoint = run(data, &["checkpoint", "--size", "99"]);
    assert_eq!(no_checkpoint.status.code(), Some(2));
    let out_of_range = run(data, &["proof", "inclusion", "--seq", "5"]);
    assert_eq!(out_of_range.status.code(), Some(2));
    assert_eq!(event_count(data), 1);
    assert!(ok(data, &["verify"]).starts_with("ok 1 events"));
}

#[test]
fn append_refuses_engine_and_importer_events_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    ok(
        data,
        &["append", "--stream", "s", "--type", "t", "--data", "{}"],
    );
    let job = "6f1c1c1e-1111-4a4a-8b8b-000000000001";
    let generation_stream = format!("generation-{job}");
    let attempts: [(&str, &str, &str); 4] = [
        (
            &generation_stream,
            "generation.derivative-published",
            "--data",
        ),
        ("s", "catalog.party-registered", "--data"),
        ("recording-GBAYE0601498", "t", "--data"),
        ("s", "usage.line-imported", "--jsonl"),
    ];
    for (stream, event_type, mode) in attempts {
        let payload: &[u8] = if mode == "--data" { b"" } else { b"{}\n" };
        let mut args = vec!["append", "--stream", stream, "--type", event_type, mode];
        args.push(if mode == "--data" { "{}" } else { "-" });
        let refused = run_with_stdin(data, &args, payload);
        assert_eq!(refused.status.code(), Some(2), "{stream} {event_type}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains("is reserved"), "{stderr}");
    }
    assert_eq!(event_count(data), 1);
}

#[test]
fn verify_names_the_first_bad_seq_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let lines: String = (0..20).map(|n| format!("{{\"n\":{n}}}\n")).collect();
    let bulk = run_with_stdin(
        data,
        &["append", "--stream", "s", "--type", "t", "--jsonl", "-"],
        lines.as_bytes(),
    );
    assert!(bulk.status.success());
    assert_eq!(String::from_utf8_lossy(&bulk.stdout).lines().count(), 20);
    assert!(ok(data, &["verify"]).starts_with("ok 20 events"));
    let conn = rusqlite::Connection::open(data.join("ledger.db")).unwrap();
    conn.execute("UPDATE events SET leaf = CAST(replace(leaf, '\"n\":13', '\"n\":31') AS BLOB) WHERE seq = 13", [])
        .unwrap();
    drop(conn);
    let output = run(data, &["verify"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("seq 13"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn an_operator_supplied_signing_key_signs_the_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let signer = ledger::NoteSigner::generate("audit.example/log").unwrap();
    let key_file = dir.path().join("operator.key");
    std::fs::write(&key_file, signer.private_key()).unwrap();
    let data = dir.path().join("data");
    let with_key = |args: &[&str]| {
        let mut all = vec![
            "--origin",
            "audit.example/log",
            "--signing-key",
            key_file.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        ok(&data, &all)
    };
    with_key(&["append", "--stream", "s", "--type", "t", "--data", "{}"]);
    assert_eq!(with_key(&["key"]).trim(), signer.verifier_key());
    assert!(
        !data.join("checkpoint.key").exists(),
        "no key of its own is made"
    );
    let note = with_key(&["checkpoint"]);
    assert_eq!(signer.verifier().verify_checkpoint(&note).unwrap().size, 1);
    assert!(with_key(&["verify"]).starts_with("ok 1 events"));
}

#[test]
fn store_errors_name_the_flag_or_command_that_fixes_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stderr =
        |output: &std::process::Output| String::from_utf8_lossy(&output.stderr).into_owned();
    let empty = run(&data, &["events"]);
    assert!(
        stderr(&empty).contains("no log exists in")
            && stderr(&empty).contains("run `ledgerline demo` first"),
        "{}",
        stderr(&empty)
    );
    ok(
        &data,
        &["append", "--stream", "s", "--type", "t", "--data", "{}"],
    );
    let other_key = dir.path().join("other.key");
    let signer = ledger::NoteSigner::generate("other.example/log").unwrap();
    std::fs::write(&other_key, signer.private_key()).unwrap();
    let other = run(
        &data,
        &[
            "--origin",
            "other.example/log",
            "--signing-key",
            other_key.to_str().unwrap(),
            "events",
        ],
    );
    assert!(
        stderr(&other).contains("pass --origin \"ledgerline.local/log\""),
        "{}",
        stderr(&other)
    );
}
