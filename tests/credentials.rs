//! End to end: a generated remix carries Content Credentials that an
//! independent reader (c2pa-python from PyPI, `tests/credentials/read_c2pa.py`)
//! trusts with our root as its anchor: AI digital source type, every stem
//! used with its logged hash, and a log proof that verifies. One changed
//! audio byte is a hash mismatch for both readers; lineage answers from the
//! credentials, by file hash when they are not trusted, and by fingerprint
//! once the manifest is stripped by re-encoding to MP3 (`lame`).
//!
//! The reader runs from the virtual environment `scripts/test` makes
//! (`target/c2pa-venv`, or `LEDGERLINE_C2PA_PYTHON`). Without it, or
//! without `lame`, the test says it was skipped; with
//! `LEDGERLINE_REQUIRE_C2PA_READER=1` (which `scripts/test` sets) it fails.

mod common;

use common::server::Server;
use common::{ok, ok_json, run};
use inference::sample_catalog;
use ledger::tlog_proof::TlogProof;
use ledger::NoteVerifier;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Long enough for a fingerprint match after re-encoding.
const SECONDS: f64 = 20.0;

/// The Python with c2pa-python installed, and `lame`; None (after saying
/// why) when either is missing and the run does not require them.
fn tools() -> Option<PathBuf> {
    let (python, reader_ok) = common::venv_python("LEDGERLINE_C2PA_PYTHON", "c2pa-venv", "c2pa");
    let lame_ok = Command::new("lame")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if reader_ok && lame_ok {
        return Some(python);
    }
    let why = format!(
        "the independent reader needs c2pa-python at {} ({}) and lame ({})",
        python.display(),
        if reader_ok { "found" } else { "missing" },
        if lame_ok { "found" } else { "missing" }
    );
    common::skip_unless_required("LEDGERLINE_REQUIRE_C2PA_READER", &why);
    None
}

/// The sample song's stems in the artifact store and a catalog naming them.
fn setup(data: &Path) -> String {
    let track = &sample_catalog::tracks()[0];
    let stems = common::stored_stems(data, track, SECONDS);
    let catalog = json!({
        "parties": [
            {"id": "label", "name": "Label", "role": "label"},
            {"id": "pub", "name": "Publisher", "role": "publisher"}
        ],
        "works": [{"iswc": "T-034524680-1", "title": "Song", "publishing_splits": [{"party": "pub", "share": "1"}]}],
        "recordings": [{"isrc": track.isrc, "title": track.title, "work": "T-034524680-1",
                        "master_splits": [{"party": "label", "share": "1"}], "stems": stems,
                        "licence": {"participating": true}}],
        "voice_models": [],
        "policy": {"id": "v1", "platform_share": "0.3", "creator_share": "0.1", "master_share": "0.5"}
    });
    let path = data.join("catalog.json");
    std::fs::write(&path, catalog.to_string()).unwrap();
    ok(data, &["catalog", "import", &path.display().to_string()]);
    track.isrc.to_string()
}

fn remix(data: &Path, isrc: &str) -> Value {
    let request = data.join("remix.json");
    let body = json!({"recording": isrc, "requested_by": "creator-1", "territory": "US",
                      "recipe": {"kind": "remix", "stems": {"drums": {"gain_db": -2.0}}}});
    std::fs::write(&request, body.to_string()).unwrap();
    let args = [
        "generate",
        "--request",
        &request.display().to_string(),
        "--backend",
        "cpu",
    ];
    ok_json(data, &args)
}

/// c2pa-python's view of `file`, trusting `anchor`.
fn read_independently(python: &Path, file: &Path, anchor: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/credentials/read_c2pa.py");
    let output = Command::new(python)
        .arg(script)
        .arg(file)
        .arg(anchor)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "read_c2pa.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The offset of the first sample byte of a RIFF WAVE file's `data` chunk.
fn data_offset(wav: &[u8]) -> usize {
    let mut at = 12;
    while at + 8 <= wav.len() {
        let size = u32::from_le_bytes(wav[at + 4..at + 8].try_into().unwrap()) as usize;
        if &wav[at..at + 4] == b"data" {
            return at + 8;
        }
        at += 8 + size + (size & 1);
    }
    panic!("no data chunk");
}

#[test]
fn an_independent_reader_trusts_our_credentials_and_lineage_answers_from_them() {
    let Some(python) = tools() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = &dir.path().join("data");
    std::fs::create_dir_all(data).unwrap();
    let isrc = setup(data);
    let generated = remix(data, &isrc);
    let file = PathBuf::from(generated["file_path"].as_str().unwrap());
    let distributed = dir.path().join("remix.wav");
    std::fs::copy(&file, &distributed).unwrap();
    let anchor = dir.path().join("root.pem");
    std::fs::write(&anchor, ok(data, &["credentials", "trust-anchor"])).unwrap();

    // The independent reader: trusted, AI source type, every stem with its
    // logged hash, and the log proof's inclusion.
    let seen = read_independently(&python, &distributed, &anchor);
    assert_eq!(seen["state"], "Trusted", "{seen}");
    assert_eq!(seen["failures"], json!([]), "{seen}");
    assert!(seen["source_types"].as_array().unwrap().iter().all(|t| t
        == "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"));
    let lineage = ok_json(
        data,
        &["lineage", generated["derivative"].as_str().unwrap()],
    );
    let requested = &lineage["generation_steps"][0]["data"];
    let stems = requested["stems"].as_object().unwrap();
    assert!(!stems.is_empty());
    for (stem, hash) in stems {
        let ingredient = seen["ingredients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["title"] == json!(format!("{isrc} {stem}")))
            .unwrap_or_else(|| panic!("no ingredient for stem {stem}: {seen}"));
        assert_eq!(ingredient["instance_id"], *hash);
        assert_eq!(ingredient["relationship"], "componentOf");
    }
    // Every step, with its parameters exactly as the log has them.
    let logged: Vec<Value> = lineage["generation_steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "generation.step")
        .map(|e| json!({"op": e["data"]["op"], "params": e["data"]["params"]}))
        .collect();
    assert!(!logged.is_empty(), "{lineage}");
    assert_eq!(seen["steps"], json!(logged), "{seen}");
    let provenance = &seen["provenance"];
    assert_eq!(provenance["derivative"], generated["derivative"]);
    assert_eq!(provenance["published_seq"], generated["published_seq"]);
    assert_eq!(seen["log_proof"]["inclusion_verifies"], true, "{seen}");
    // The proof's checkpoint is signed by the log's published key.
    let key = ok(data, &["key"]);
    let verifier = NoteVerifier::from_verifier_key(key.trim()).unwrap();
    let proof = TlogProof::parse(provenance["tlog_proof"].as_str().unwrap()).unwrap();
    let leaf_hash: [u8; 32] = hex::decode(provenance["published_leaf_hash"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    proof.verify(&verifier, &leaf_hash).unwrap();

    // Ours agrees, and lineage answers from the credentials.
    let path = distributed.display().to_string();
    let verified = ok_json(data, &["credentials", "verify", &path]);
    assert_eq!(verified["ok"], true, "{verified}");
    let traced = ok_json(data, &["lineage", &path]);
    assert_eq!(traced["matched_by"], "credentials", "{traced}");
    assert_eq!(traced["credentials"]["valid"], true);
    assert_eq!(traced["derivative"]["derivative"], generated["derivative"]);

    // The HTTP upload answers from the credentials too.
    let admin = common::api_token(data, "admin");
    let server = Server::start(data);
    let reply = server.post_lineage(&admin, &std::fs::read(&distributed).unwrap());
    assert_eq!(reply.status, 200, "{}", reply.body);
    let uploaded = reply.json();
    assert_eq!(uploaded["matched_by"], "credentials", "{uploaded}");
    assert_eq!(uploaded["credentials"]["valid"], true);
    server.stop();

    // One changed audio byte: a hash mismatch for both readers; lineage
    // reports the credentials invalid and traces the audio without them.
    let mut bytes = std::fs::read(&distributed).unwrap();
    let at = data_offset(&bytes) + 1_001;
    bytes[at] ^= 0x01;
    let tampered = dir.path().join("tampered.wav");
    std::fs::write(&tampered, &bytes).unwrap();
    let tampered_path = tampered.display().to_string();
    let output = run(data, &["credentials", "verify", &tampered_path]);
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        report["verification"]["hard_binding"]["ok"], false,
        "{report}"
    );
    let seen = read_independently(&python, &tampered, &anchor);
    assert!(
        seen["failures"]
            .as_array()
            .unwrap()
            .contains(&json!("assertion.dataHash.mismatch")),
        "{seen}"
    );
    let traced = ok_json(data, &["lineage", &tampered_path]);
    assert_eq!(traced["credentials"]["valid"], false, "{traced}");
    assert_ne!(traced["matched_by"], "credentials");
    assert_eq!(traced["derivative"]["derivative"], generated["derivative"]);

    // Without our root the credentials are not trusted, so lineage does
    // not answer from them; the distributed file is still found by its hash.
    let root = data.join("credentials/root-ca.pem");
    let aside = dir.path().join("root-aside.pem");
    std::fs::rename(&root, &aside).unwrap();
    let traced = ok_json(data, &["lineage", &path]);
    std::fs::rename(&aside, &root).unwrap();
    assert_eq!(traced["matched_by"], "file-hash", "{traced}");
    assert_eq!(traced["credentials"]["valid"], false);

    // Re-encoded to MP3 the manifest is gone; the fingerprint still traces it.
    let pcm16 = dir.path().join("pcm16.wav");
    let audio = inference::artifacts::decode_file(&distributed).unwrap();
    let spec = hound::WavSpec {
        channels: audio.channel_count() as u16,
        sample_rate: audio.sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&pcm16, spec).unwrap();
    for frame in 0..audio.frames() {
        for channel in 0..audio.channel_count() {
            let s = audio.channels[channel][frame].clamp(-1.0, 1.0);
            writer.write_sample((s * 32_767.0) as i16).unwrap();
        }
    }
    writer.finalize().unwrap();
    let mp3 = dir.path().join("copy.mp3");
    let lame = Command::new("lame")
        .args(["--quiet", "-b", "192"])
        .arg(&pcm16)
        .arg(&mp3)
        .status()
        .unwrap();
    assert!(lame.success());
    let mp3_path = mp3.display().to_string();
    let output = run(data, &["credentials", "verify", &mp3_path]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "no credentials is a failed check"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("no Content Credentials"));
    let traced = ok_json(data, &["lineage", &mp3_path]);
    assert_eq!(traced["matched_by"], "fingerprint", "{traced}");
    assert_eq!(traced["credentials"], Value::Null);
    assert_eq!(traced["derivative"]["derivative"], generated["derivative"]);
}

#[test]
fn bad_input_is_refused_with_nothing_appended() {
    let dir = tempfile::tempdir().unwrap();
    let data = &dir.path().join("data");
    std::fs::create_dir_all(data).unwrap();
    let isrc = setup(data);
    let events_before = ok(data, &["events"]).lines().count();
    let request = data.join("remix.json");
    std::fs::write(
        &request,
        json!({"recording": isrc, "requested_by": "c", "territory": "US", "recipe": {"kind": "remix"}}).to_string(),
    )
    .unwrap();
    let request = request.display().to_string();

    // A missing signing key: exit 2, nothing appended.
    ok(data, &["credentials", "init"]);
    let chain = data
        .join("credentials/signer-chain.pem")
        .display()
        .to_string();
    let missing = dir.path().join("missing.key").display().to_string();
    let output = run(
        data,
        &[
            "--c2pa-cert",
            &chain,
            "--c2pa-key",
            &missing,
            "generate",
            "--request",
            &request,
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.key"));
    // A chain whose first certificate is the root CA: refused, exit 2.
    let root = data.join("credentials/root-ca.pem").display().to_string();
    let root_key = data.join("credentials/root-ca.key").display().to_string();
    let output = run(
        data,
        &[
            "--c2pa-cert",
            &root,
            "--c2pa-key",
            &root_key,
            "generate",
            "--request",
            &request,
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is a CA"));
    // Only one of the pair: exit 2.
    let output = run(
        data,
        &["--c2pa-cert", &chain, "generate", "--request", &request],
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(ok(data, &["events"]).lines().count(), events_before);

    // init twice, and reading a file that is not audio or has no manifest.
    assert_eq!(run(data, &["credentials", "init"]).status.code(), Some(2));
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not audio").unwrap();
    let output = run(
        data,
        &["credentials", "verify", &text.display().to_string()],
    );
    assert_eq!(output.status.code(), Some(2));
    let bare = dir.path().join("bare.wav");
    std::fs::write(&bare, common::stem_wav()).unwrap();
    let output = run(data, &["credentials", "show", &bare.display().to_string()]);
    assert_eq!(output.status.code(), Some(1));
    // A malformed manifest: a C2PA chunk of garbage appended to the RIFF.
    let mut forged = common::stem_wav();
    forged.extend_from_slice(b"C2PA\x10\x00\x00\x00not a jumbf box!");
    let riff_size = (forged.len() - 8) as u32;
    forged[4..8].copy_from_slice(&riff_size.to_le_bytes());
    let forged_path = dir.path().join("forged.wav");
    std::fs::write(&forged_path, forged).unwrap();
    let output = run(
        data,
        &["credentials", "verify", &forged_path.display().to_string()],
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(ok(data, &["events"]).lines().count(), events_before);
}
