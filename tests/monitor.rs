//! `ledgerline monitor` end to end: a log served over HTTP, mirrored by a
//! monitor from its tlog-tiles API alone; the mirror audits with
//! `ledgerline verify`; a second round downloads only the new tiles; the
//! tiles and bundles rebuild the checkpoint's root; a forked log (same
//! origin and key) served to the same mirror ends the monitor with exit 1
//! and both signed notes. And the leaf limit as the CLI refuses it.

mod common;

use common::server::Server;
use common::{append_as_owner, ledgerline, ok, run};
use ledger::tile::{encoding, new_entry_bundles, new_hash_tiles, verify::TileHashes};
use ledger::NewEvent;
use serde_json::json;
use std::path::Path;

/// Appends `count` events to `stream` with one bulk `append --jsonl`.
fn append_bulk(data: &Path, stream: &str, count: u64, tag: &str) {
    let lines: String = (0..count)
        .map(|n| format!("{{\"n\":{n},\"tag\":\"{tag}\"}}\n"))
        .collect();
    let file = data.with_extension(format!("{stream}.jsonl"));
    std::fs::write(&file, lines).unwrap();
    ok(
        data,
        &[
            "append",
            "--stream",
            stream,
            "--type",
            "test.tick",
            "--jsonl",
            file.to_str().unwrap(),
        ],
    );
}

fn party(id: &str) -> Vec<NewEvent> {
    vec![NewEvent::new(
        "catalog.party-registered",
        json!({"id": id, "name": format!("Label {id}"), "role": "label"}),
    )]
}

/// Runs `ledgerline monitor --once`; returns (exit code, stdout, stderr).
fn monitor(url: &str, key: &str, mirror: &Path, party: &str) -> (i32, String, String) {
    let output = ledgerline(mirror)
        .args(["monitor", "--url", url, "--key", key, "--data"])
        .arg(mirror)
        .args(["--party", party, "--once"])
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// The "N tiles and M entry bundles fetched" of a monitor's report.
fn fetched(stderr: &str) -> (usize, usize) {
    let line = stderr
        .lines()
        .find(|l| l.contains("entry bundles fetched"))
        .unwrap_or_else(|| panic!("no round report: {stderr}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let before = |word: &str| -> usize {
        let at = words.iter().position(|w| *w == word).unwrap();
        words[at - 1].parse().unwrap()
    };
    (before("tiles"), before("entry"))
}

/// GETs a tile's raw bytes from a server.
fn get_bytes(server: &Server, path: &str) -> Vec<u8> {
    let mut response = ureq::get(format!("{}{path}", server.base)).call().unwrap();
    response.body_mut().read_to_vec().unwrap()
}

#[test]
fn a_monitor_mirrors_the_log_from_its_tiles_and_reports_a_fork() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let mirror = dir.path().join("mirror");
    append_as_owner(&log, "party-label-1", party("label-1"));
    append_as_owner(&log, "party-label-2", party("label-2"));
    append_bulk(&log, "s", 600, "first");
    let key = ok(&log, &["key"]).trim().to_string();
    let server = Server::start(&log);
    let url = format!("{}/tlog", server.base);

    let (code, stdout, stderr) = monitor(&url, &key, &mirror, "label-1");
    assert_eq!(code, 0, "{stderr}");
    let printed: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        printed.len(),
        1,
        "only label-1's own entry concerns it: {stdout}"
    );
    assert_eq!(printed[0]["stream"], "party-label-1");
    assert_eq!(fetched(&stderr), (new_hash_tiles(0, 602).len(), 3));
    assert!(ok(&mirror, &["verify"]).starts_with("ok 602 events"));

    // The tiles and bundles alone rebuild the served checkpoint's root.
    let note = server.get("/tlog/checkpoint", None).body;
    let signed = ledger::NoteVerifier::from_verifier_key(&key)
        .unwrap()
        .verify_checkpoint(&note)
        .unwrap();
    assert_eq!(signed.size, 602);
    let mut tiles = TileHashes::new(602);
    for tile in new_hash_tiles(0, 602) {
        let data = get_bytes(&server, &format!("/tlog/{}", tile.path()));
        tiles
            .insert(tile, encoding::decode_hash_tile(&tile, &data).unwrap())
            .unwrap();
    }
    tiles.verify(&signed.root).unwrap();
    for bundle in new_entry_bundles(0, 602) {
        let data = get_bytes(&server, &format!("/tlog/{}", bundle.path()));
        for (offset, leaf) in encoding::decode_entry_bundle(&bundle, &data)
            .unwrap()
            .iter()
            .enumerate()
        {
            let seq = bundle.index * 256 + offset as u64;
            assert_eq!(tiles.leaf_hash(seq), Some(ledger::merkle::leaf_hash(leaf)));
        }
    }

    // A second round fetches only the tiles with new items.
    append_bulk(&log, "s", 300, "second");
    let (code, stdout, stderr) = monitor(&url, &key, &mirror, "label-1");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "", "nothing new concerns label-1");
    assert_eq!(
        fetched(&stderr),
        (
            new_hash_tiles(602, 902).len(),
            new_entry_bundles(602, 902).len()
        )
    );
    assert_eq!(fetched(&stderr), (3, 2));
    assert!(ok(&mirror, &["verify"]).starts_with("ok 902 events"));
    let held_note = ok(&mirror, &["checkpoint"]);

    // A log with the same origin and key and another history.
    let fork = dir.path().join("fork");
    std::fs::create_dir_all(&fork).unwrap();
    std::fs::copy(log.join("checkpoint.key"), fork.join("checkpoint.key")).unwrap();
    append_bulk(&fork, "s", 1000, "forked");
    let forked = Server::start(&fork);
    let forked_note = forked.get("/tlog/checkpoint", None).body;
    let (code, _, stderr) = monitor(&format!("{}/tlog", forked.base), &key, &mirror, "label-1");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("not consistent"), "{stderr}");
    assert!(
        stderr.contains(&held_note),
        "the verified note is quoted: {stderr}"
    );
    assert!(
        stderr.contains(&forked_note),
        "the forked note is quoted: {stderr}"
    );
    assert!(ok(&mirror, &["verify"]).starts_with("ok 902 events"));
}

#[test]
fn a_monitor_refuses_a_bad_key_or_url_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let mirror = dir.path().join("mirror");
    let (code, _, stderr) = monitor("http://127.0.0.1:1/tlog", "not-a-key", &mirror, "p");
    assert_eq!(code, 2, "{stderr}");
    let key = "ledgerline.local/log+01234567+AXu0sxt8ZfxeFh+ybyi9+E7rsGqwjvHnmX3rKJdoTBf0";
    let (code, _, stderr) = monitor("ftp://example/tlog", key, &mirror, "p");
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn a_leaf_over_65535_bytes_is_refused_by_the_cli_with_exit_2_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    ok(
        data,
        &[
            "append",
            "--stream",
            "a",
            "--type",
            "t",
            "--data",
            r#"{"x":""}"#,
        ],
    );
    let events = ok(data, &["events"]);
    let event: serde_json::Value = serde_json::from_str(events.lines().next().unwrap()).unwrap();
    use base64::Engine;
    let leaf = base64::engine::general_purpose::STANDARD
        .decode(event["leaf"].as_str().unwrap())
        .unwrap();
    // Stream "b" at seq 1 takes a leaf exactly as long as "a" at seq 0.
    let fitting = 65_535 - leaf.len();
    let padded = |length: usize| format!(r#"{{"x":"{}"}}"#, "y".repeat(length));
    let file = data.join("big.json");
    std::fs::write(&file, padded(fitting + 1)).unwrap();
    let argument = format!("@{}", file.display());
    let refused = run(
        data,
        &[
            "append", "--stream", "b", "--type", "t", "--data", &argument,
        ],
    );
    assert_eq!(refused.status.code(), Some(2));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("65536 bytes") && message.contains("65535"),
        "{message}"
    );
    assert_eq!(ok(data, &["events"]).lines().count(), 1);
    std::fs::write(&file, padded(fitting)).unwrap();
    ok(
        data,
        &[
            "append", "--stream", "b", "--type", "t", "--data", &argument,
        ],
    );
    assert_eq!(ok(data, &["events"]).lines().count(), 2);
}
