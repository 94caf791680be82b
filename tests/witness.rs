//! End to end: `ledgerline witness serve` (C2SP tlog-witness) and a log
//! that asks its witnesses (`serve --witness-policy`).
//!
//! Every status code of `add-checkpoint` is exercised against a real
//! witness process, each refusal leaving its state unchanged; a witness
//! SIGKILLed and restarted keeps what it cosigned; a log with two witnesses
//! and quorum 2 serves both cosignatures, and a monitor holding the policy
//! mirrors it from its tiles into a mirror that `verify` audits; a log restarted after a witness
//! cosigned resumes; a forked log is refused and reports it.

mod common;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use common::server::Server;
use common::witness::{
    append, eventually, two_witnesses, witness_key, write_policy, WitnessProcess,
};
use common::{binary, ok, ok_json};
use ledger::cosignature::CosignatureVerifier;
use ledger::witness_policy::WitnessPolicy;
use ledger::NoteVerifier;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The signed note of the log's latest checkpoint (or of `size`).
fn note(data: &Path, size: Option<u64>) -> String {
    match size {
        Some(size) => ok(data, &["checkpoint", "--size", &size.to_string()]),
        None => ok(data, &["checkpoint"]),
    }
}

fn size_of(note: &str) -> u64 {
    note.lines().nth(1).unwrap().parse().unwrap()
}

/// An add-checkpoint body with the log's own consistency proof.
fn request(data: &Path, old: u64, note: &str) -> String {
    let size = size_of(note);
    let mut body = format!("old {old}\n");
    if old > 0 && old < size {
        let proof = ok_json(
            data,
            &[
                "proof",
                "consistency",
                "--from",
                &old.to_string(),
                "--to",
                &size.to_string(),
            ],
        );
        for hash in proof["proof"].as_array().unwrap() {
            let bytes = hex::decode(hash.as_str().unwrap()).unwrap();
            body.push_str(&STANDARD.encode(bytes));
            body.push('\n');
        }
    }
    body.push('\n');
    body.push_str(note);
    body
}

/// A copy of the log in `from`, same origin and key, that diverges from it.
fn fork(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn every_status_code_and_no_refusal_changes_the_witness() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    append(&log, 0);
    append(&log, 1);
    let log_key = ok(&log, &["key"]).trim().to_owned();
    let witness = WitnessProcess::start(&dir.path().join("w"), "w.example", &[log_key]);
    let first = note(&log, None);
    let first_size = size_of(&first);

    // 200: the first checkpoint of a log is cosigned, with a line that
    // verifies with the witness's key.
    let (status, _, body) = witness.add(&request(&log, 0, &first));
    assert_eq!(status, 200, "{body}");
    let cosigner = CosignatureVerifier::from_verifier_key(&witness.key()).unwrap();
    cosigner
        .verify_note(&format!("{first}{body}"))
        .expect("the cosignature verifies");

    append(&log, 2);
    append(&log, 3);
    let second = note(&log, None);
    let second_size = size_of(&second);
    let good = request(&log, first_size, &second);

    // Every refusal, then proof that the state is as it was: the witness
    // still says it holds `first_size`.
    let other_origin = dir.path().join("other");
    common::ledgerline(&other_origin)
        .args(["--origin", "other.example/log"])
        .args([
            "append", "--stream", "x", "--type", "test.x", "--data", "{}",
        ])
        .output()
        .unwrap();
    let foreign = ok(
        &other_origin,
        &["--origin", "other.example/log", "checkpoint"],
    );
    let impostor = dir.path().join("impostor");
    append(&impostor, 0); // same origin, another key
    let unsigned = note(&impostor, None);
    let hash = STANDARD.encode([7u8; 32]);
    let cases: Vec<(&str, String, u16)> = vec![
        ("malformed body", "old one\n\nnot a note".to_owned(), 400),
        ("no blank line", format!("old {first_size}\n{hash}\n"), 400),
        (
            "64 proof lines",
            format!(
                "old {first_size}\n{}\n{second}",
                format!("{hash}\n").repeat(64)
            ),
            400,
        ),
        ("unknown origin", request(&other_origin, 0, &foreign), 404),
        (
            "signature by another key",
            request(&impostor, 0, &unsigned),
            403,
        ),
        (
            "old size above the checkpoint's",
            format!("old {}\n\n{second}", second_size + 1),
            400,
        ),
        ("stale old size", request(&log, 0, &second), 409),
        (
            "a proof that does not verify",
            format!(
                "old {first_size}\n{}\n{second}",
                format!("{hash}\n").repeat(2)
            ),
            422,
        ),
    ];
    for (what, body, expected) in cases {
        let (status, content_type, answer) = witness.add(&body);
        assert_eq!(status, expected, "{what}: {answer}");
        if status == 409 {
            assert_eq!(content_type, "text/x.tlog.size", "{what}");
            assert_eq!(answer, format!("{first_size}\n"), "{what}");
        }
        let (status, _, answer) = witness.add(&format!("old 0\n\n{first}"));
        assert_eq!(
            (status, answer),
            (409, format!("{first_size}\n")),
            "after {what}"
        );
    }
    // The same checkpoint again, from its own size: cosigned again.
    let (status, _, _) = witness.add(&request(&log, first_size, &first));
    assert_eq!(status, 200);
    // And the good request still succeeds.
    let (status, _, body) = witness.add(&good);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_killed_witness_keeps_what_it_cosigned_and_never_cosigns_two_trees_of_one_size() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    append(&log, 0);
    let log_key = ok(&log, &["key"]).trim().to_owned();
    let shared = note(&log, None);
    let shared_size = size_of(&shared);
    // A fork: same origin and key, same first entries, then other ones.
    let forked = dir.path().join("forked");
    fork(&log, &forked);
    append(&log, 1);
    append(&forked, 100);
    let (ours, theirs) = (note(&log, None), note(&forked, None));
    assert_eq!(size_of(&ours), size_of(&theirs));
    assert_ne!(ours, theirs);

    let witness = WitnessProcess::start(&dir.path().join("w"), "w.example", &[log_key]);
    assert_eq!(witness.add(&request(&log, 0, &shared)).0, 200);
    let witness = witness.kill_and_restart("w.example");
    let (status, _, body) = witness.add(&format!("old 0\n\n{shared}"));
    assert_eq!((status, body), (409, format!("{shared_size}\n")));

    // Both branches at once, each with a valid proof from the shared size:
    // exactly one is cosigned, whatever the interleaving.
    let bodies = [
        request(&log, shared_size, &ours),
        request(&forked, shared_size, &theirs),
    ];
    let witness = std::sync::Arc::new(witness);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (witness, body) = (witness.clone(), bodies[i % 2].clone());
                scope.spawn(move || witness.add(&body).0)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );

    // Killed again: the branch it cosigned is the one it holds, and the
    // other branch's checkpoint of that size is refused.
    let witness = std::sync::Arc::into_inner(witness)
        .unwrap()
        .kill_and_restart("w.example");
    let size = size_of(&ours);
    let (ours_again, theirs_again) = (
        witness.add(&format!("old {size}\n\n{ours}")).0,
        witness.add(&format!("old {size}\n\n{theirs}")).0,
    );
    let mut outcomes = [ours_again, theirs_again];
    outcomes.sort();
    assert_eq!(outcomes, [200, 409]);
}

#[test]
fn a_log_with_two_witnesses_and_quorum_two_serves_both_cosignatures() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    append(&log, 0);
    let log_key = ok(&log, &["key"]).trim().to_owned();
    let (w1, w2, policy_path) = two_witnesses(dir.path(), &log_key);
    let policy = WitnessPolicy::load(&policy_path).unwrap();
    let server = Server::start_with_env(&log, &[("LEDGERLINE_WITNESS_POLICY", &policy_path)]);
    for n in 1..4 {
        append(&log, n);
    }
    let latest = size_of(&note(&log, None));
    let witnessed = eventually("the latest checkpoint to be witnessed", || {
        let reply = server.get("/v1/checkpoint?witnessed=true", None);
        (reply.status == 200 && size_of(&reply.body) == latest).then_some(reply.body)
    });
    // The log's signature and both cosignatures verify; the quorum is met.
    NoteVerifier::from_verifier_key(&log_key)
        .unwrap()
        .verify_checkpoint(&witnessed)
        .unwrap();
    for witness in [&w1, &w2] {
        CosignatureVerifier::from_verifier_key(&witness.key())
            .unwrap()
            .verify_note(&witnessed)
            .unwrap();
    }
    assert!(policy.check(&witnessed).unwrap().is_met());
    // /v1/checkpoint carries them too, as does the checkpoint history, and
    // so does the CLI; /v1/witnesses names the policy's keys.
    assert_eq!(server.get("/v1/checkpoint", None).body, witnessed);
    let history = server.get("/v1/checkpoints?limit=1", None).json();
    assert_eq!(history["checkpoints"][0]["note"], witnessed);
    assert_eq!(
        server.get("/v1/witnesses", None).json(),
        serde_json::json!({
            "quorum": 2,
            "witnesses": [
                {"name": "w1", "verifier_key": w1.key()},
                {"name": "w2", "verifier_key": w2.key()},
            ],
        })
    );
    let cli = ok(
        &log,
        &[
            "checkpoint",
            "--witnessed",
            "--witness-policy",
            policy_path.to_str().unwrap(),
        ],
    );
    assert_eq!(cli, witnessed);
    assert_eq!(ok(&log, &["checkpoint"]), witnessed);
    // /metrics says every witness is up to date.
    let token = ok_json(&log, &["keys", "create", "--role", "auditor"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let metrics = server.get("/metrics", Some(&token)).body;
    assert!(
        metrics.contains(&format!("ledgerline_witnessed_size {latest}\n")),
        "{metrics}"
    );
    assert!(
        metrics.contains("ledgerline_witness_lag_entries{witness=\"w1\"} 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ledgerline_witness_cosigned_size{witness=\"w2\"}"),
        "{metrics}"
    );

    // The public tlog-tiles checkpoint is the witnessed note, and a monitor
    // holding the policy mirrors the log from the tiles alone, trusting the
    // checkpoint for its quorum; its mirror audits with `verify`.
    assert_eq!(server.get("/tlog/checkpoint", None).body, witnessed);
    let mirror = dir.path().join("mirror");
    let url = format!("{}/tlog", server.base);
    let output = common::ledgerline(&mirror)
        .args(["monitor", "--url", &url, "--key", &log_key, "--once"])
        .arg("--witness-policy")
        .arg(&policy_path)
        .arg("--data")
        .arg(&mirror)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(ok(&mirror, &["verify"]).starts_with(&format!("ok {latest} events")));
    assert_eq!(ok(&mirror, &["checkpoint"]), witnessed);
}

#[test]
fn a_restarted_log_resumes_and_a_down_witness_only_delays_witnessing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    append(&log, 0);
    append(&log, 1);
    let log_key = ok(&log, &["key"]).trim().to_owned();
    let w1 = WitnessProcess::start(&dir.path().join("w1"), "w1.example", &[log_key]);
    // The witness cosigned the latest checkpoint, but the log stopped before
    // keeping the cosignature (a log killed mid-submission).
    let latest = note(&log, None);
    assert_eq!(w1.add(&request(&log, 0, &latest)).0, 200);
    let policy_path = write_policy(dir.path(), &[("w1", &w1)], 1);
    let server = Server::start_with_env(&log, &[("LEDGERLINE_WITNESS_POLICY", &policy_path)]);
    let witnessed = eventually("the log to resync and get its cosignature", || {
        let reply = server.get("/v1/checkpoint?witnessed=true", None);
        (reply.status == 200).then_some(reply.body)
    });
    assert_eq!(size_of(&witnessed), size_of(&latest));
    drop(server);

    // The witness goes down: appends go on, witnessing waits for it.
    let w1 = {
        let port = w1.url.rsplit_once(':').unwrap().1.to_owned();
        drop(w1);
        port
    };
    let server = Server::start_with_env(&log, &[("LEDGERLINE_WITNESS_POLICY", &policy_path)]);
    append(&log, 2);
    let grown = size_of(&note(&log, None));
    std::thread::sleep(Duration::from_millis(500));
    let reply = server.get("/v1/checkpoint?witnessed=true", None);
    assert_eq!(
        size_of(&reply.body),
        size_of(&latest),
        "nothing new is witnessed"
    );
    let log_key = ok(&log, &["key"]).trim().to_owned();
    let _w1 = WitnessProcess::start_on(
        &dir.path().join("w1"),
        "w1.example",
        &[log_key],
        w1.parse().unwrap(),
    );
    eventually("witnessing to catch up once the witness is back", || {
        let reply = server.get("/v1/checkpoint?witnessed=true", None);
        (size_of(&reply.body) == grown).then_some(())
    });
}

#[test]
fn a_forked_log_is_refused_by_the_witness_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    append(&log, 0);
    let forked = dir.path().join("forked");
    fork(&log, &forked);
    append(&log, 1);
    let log_key = ok(&log, &["key"]).trim().to_owned();
    let w1 = WitnessProcess::start(&dir.path().join("w1"), "w1.example", &[log_key]);
    // The witness cosigns the honest log first.
    let honest = note(&log, None);
    assert_eq!(w1.add(&request(&log, 0, &honest)).0, 200);
    // The fork (same origin and key) grows past it and asks the same witness.
    for n in 100..103 {
        append(&forked, n);
    }
    let policy_path = write_policy(dir.path(), &[("w1", &w1)], 1);
    let server = Server::start_with_env(&forked, &[("LEDGERLINE_WITNESS_POLICY", &policy_path)]);
    let token = ok_json(&forked, &["keys", "create", "--role", "auditor"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("the fork's refusal to be counted", || {
        let metrics = server.get("/metrics", Some(&token)).body;
        metrics
            .contains("ledgerline_witness_refusals_total{witness=\"w1\",status=\"422\"}")
            .then_some(())
    });
    // Nothing of the fork is witnessed.
    assert_eq!(
        server.get("/v1/checkpoint?witnessed=true", None).status,
        404
    );
    assert!(w1
        .add(&format!("old 0\n\n{honest}"))
        .2
        .starts_with(&size_of(&honest).to_string()));
}

#[test]
fn the_witness_key_is_created_once_private_and_keeps_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w");
    let key = |extra: &[&str]| {
        Command::new(binary())
            .args(["witness", "key", "--data"])
            .arg(&data)
            .args(extra)
            .output()
            .unwrap()
    };
    let first = key(&["--name", "w.example/1"]);
    assert!(first.status.success());
    let vkey = String::from_utf8(first.stdout).unwrap();
    assert!(vkey.starts_with("w.example/1+"), "{vkey}");
    CosignatureVerifier::from_verifier_key(vkey.trim()).unwrap();
    assert_eq!(String::from_utf8(key(&[]).stdout).unwrap(), vkey);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(data.join("witness.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let renamed = key(&["--name", "other.example"]);
    assert_eq!(renamed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&renamed.stderr).contains("w.example/1"));
}

#[test]
fn a_malformed_policy_or_an_oversized_request_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    append(&log, 0);
    let policy = dir.path().join("bad.policy");
    std::fs::write(
        &policy,
        "witness w1 not-a-key http://127.0.0.1:1\nquorum 1\n",
    )
    .unwrap();
    let output = common::run(
        &log,
        &["serve", "--witness-policy", policy.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 1") && stderr.contains("bad.policy"),
        "{stderr}"
    );

    let log_key = ok(&log, &["key"]).trim().to_owned();
    let witness = WitnessProcess::start(&dir.path().join("w"), "w.example", &[log_key]);
    let huge = format!("old 0\n\n{}", "x".repeat(200 * 1024));
    assert_eq!(witness.add(&huge).0, 413);
    let (status, _, body) = witness.add(&request(&log, 0, &note(&log, None)));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn witness_submit_asks_the_witnesses_once_and_reports_the_quorum() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    append(&log, 0);
    let log_key = ok(&log, &["key"]).trim().to_owned();
    let w1 = WitnessProcess::start(
        &dir.path().join("w1"),
        "w1.example",
        std::slice::from_ref(&log_key),
    );
    // w2 is down: its key exists, nothing listens at its URL.
    let w2_key = witness_key(&dir.path().join("w2"));
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let policy = dir.path().join("two.policy");
    std::fs::write(
        &policy,
        format!(
            "witness w1 {} {}\nwitness w2 {w2_key} http://{down}\nquorum 2\n",
            w1.key(),
            w1.url
        ),
    )
    .unwrap();
    let output = common::run(
        &log,
        &[
            "witness",
            "submit",
            "--witness-policy",
            policy.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let note = String::from_utf8(output.stdout).unwrap();
    CosignatureVerifier::from_verifier_key(&w1.key())
        .unwrap()
        .verify_note(&note)
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("1 of 2"));
    // The cosignature is kept: the served note carries it.
    assert_eq!(ok(&log, &["checkpoint"]), note);
    // Under quorum 1 the same checkpoint is witnessed.
    std::fs::write(
        &policy,
        format!("witness w1 {} {}\nquorum 1\n", w1.key(), w1.url),
    )
    .unwrap();
    let output = common::run(
        &log,
        &[
            "witness",
            "submit",
            "--witness-policy",
            policy.to_str().unwrap(),
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
