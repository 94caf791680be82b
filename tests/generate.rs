//! End to end: `voice train`, `generate` (a remix and a cover) and `replay`
//! of every recorded step; a refused request appends exactly one event and
//! exits 2; a malformed one writes nothing; a step whose record does not
//! reproduce fails its replay with exit 1.

mod common;

use common::{ok, ok_json, run};
use inference::artifacts::ArtifactStore;
use inference::sample_catalog;
use serde_json::{json, Value};
use std::path::Path;

const ISRC: &str = "ZZLL02600001";
const CONSENTING: &str = "vm-mara";
const UNCONSENTED: &str = "vm-oden";
/// Short clips keep the CPU twins quick in a debug test run.
const SECONDS: f64 = 1.5;

/// Renders the sample song's stems into the data directory's artifact store
/// (where generation reads licensed stems by hash) and imports a catalog
/// naming them, with one consenting and one unconsented voice model.
fn setup(data: &Path) -> Value {
    let stems = common::stored_stems(data, &sample_catalog::tracks()[0], SECONDS);
    let vocals = stems["vocals"].clone();
    let catalog = json!({
        "parties": [
            {"id": "label", "name": "Label", "role": "label"},
            {"id": "mara", "name": "Mara", "role": "artist"},
            {"id": "oden", "name": "Oden", "role": "artist"},
            {"id": "pub", "name": "Publisher", "role": "publisher"}
        ],
        "works": [{"iswc": "T-034524680-1", "title": "Song", "publishing_splits": [{"party": "pub", "share": "1"}]}],
        "recordings": [{"isrc": ISRC, "title": "Song", "work": "T-034524680-1",
                        "master_splits": [{"party": "label", "share": "1"}], "stems": stems,
                        "licence": {"participating": true}}],
        "voice_models": [
            {"id": CONSENTING, "artist": "mara", "consent": {"granted": true, "reference": "C-7"},
             "training_stems": [vocals], "likeness_splits": [{"party": "mara", "share": "1"}]},
            {"id": UNCONSENTED, "artist": "oden", "consent": {"granted": false},
             "training_stems": [vocals], "likeness_splits": [{"party": "oden", "share": "1"}]}
        ],
        "policy": {"id": "v1", "platform_share": "0.3", "creator_share": "0.1", "master_share": "0.5"}
    });
    let path = data.join("catalog.json");
    std::fs::write(&path, catalog.to_string()).unwrap();
    ok(data, &["catalog", "import", &path.display().to_string()]);
    catalog
}

fn write_request(data: &Path, name: &str, request: Value) -> String {
    let path = data.join(name);
    std::fs::write(&path, request.to_string()).unwrap();
    path.display().to_string()
}

/// Every event as (seq, type, stream).
fn events(data: &Path) -> Vec<(u64, String, String)> {
    ok(data, &["events"])
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap();
            (
                event["seq"].as_u64().unwrap(),
                event["type"].as_str().unwrap().to_string(),
                event["stream"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn weight_sum(generated: &Value) -> u64 {
    generated["attribution"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["weight_bp"].as_u64().unwrap())
        .sum()
}

#[test]
fn generate_and_replay_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    setup(data);

    let trained = ok_json(
        data,
        &["voice", "train", "--model", CONSENTING, "--backend", "cpu"],
    );
    assert_eq!(trained["voice_model"], CONSENTING);
    assert!(trained["frames_voiced"].as_u64().unwrap() > 0);

    let remix = write_request(
        data,
        "remix.json",
        json!({"recording": ISRC, "requested_by": "creator-1", "territory": "US",
               "recipe": {"kind": "remix", "stems": {"drums": {"gain_db": -3.0}, "vocals": {"mute": true}},
                          "tempo_rate": 1.25, "semitones": 1, "voice_model": null}}),
    );
    let generated = ok_json(data, &["generate", "--request", &remix, "--backend", "cpu"]);
    assert_eq!(
        generated["attribution"],
        json!([{"kind": "recording", "ref": ISRC, "weight_bp": 10000}])
    );
    // The printed output is the stored WAV's file hash.
    let bytes = std::fs::read(generated["output_path"].as_str().unwrap()).unwrap();
    assert_eq!(
        generated["output"].as_str().unwrap(),
        inference::artifacts::file_hash(&bytes)
    );

    // The cover runs on the default backend (the GPU where CI has lavapipe),
    // so its replays compare GPU records with the CPU twin.
    let cover = write_request(
        data,
        "cover.json",
        json!({"recording": ISRC, "requested_by": "creator-1", "territory": "US",
               "recipe": {"kind": "cover", "voice_model": CONSENTING, "semitones": -2}}),
    );
    let covered = ok_json(data, &["generate", "--request", &cover]);
    assert_eq!(weight_sum(&covered), 10_000);
    let kinds: Vec<(&str, &str)> = covered["attribution"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["kind"].as_str().unwrap(), c["ref"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("recording", ISRC), ("voice", CONSENTING)]);

    // Projections fold both derivatives: a lineage answer names the cover's
    // components.
    let lineage = ok_json(data, &["lineage", covered["derivative"].as_str().unwrap()]);
    assert_eq!(lineage["found"], true, "{lineage}");
    assert_eq!(lineage["derivative"]["attribution"], covered["attribution"]);
    assert_eq!(
        lineage["generation_steps"].as_array().unwrap().len(),
        9,
        "requested, six steps (a transcription among them), published, credentials issued"
    );
    // ... and the network that transcribed its melody, with its provenance.
    let network = &lineage["models"]["basic-pitch-icassp-2022"];
    assert_eq!(network["data"]["licence"], "Apache-2.0", "{lineage}");
    assert_eq!(
        network["data"]["artifact"],
        format!("sha256:{}", inference::transcribe::MODEL_SHA256)
    );
    let network_seq = network["seq"].as_u64().unwrap();
    assert!(lineage["cited"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["seq"] == network_seq));

    let steps: Vec<u64> = events(data)
        .into_iter()
        .filter(|(_, kind, _)| kind == "generation.step")
        .map(|(seq, _, _)| seq)
        .collect();
    assert_eq!(
        steps.len(),
        11,
        "five steps for the remix, six for the cover"
    );
    for seq in steps {
        let report = ok_json(data, &["replay", "--seq", &seq.to_string()]);
        assert_eq!(report["seq"], seq);
        assert_eq!(report["matches"], true, "{report}");
        if report["op"] == "transcribe" {
            // The note list, byte for byte.
            assert_eq!(report["compared"], "bytes");
            assert_eq!(report["recorded"], report["rerun"]);
        } else {
            assert!(
                report["snr_db"].as_f64().unwrap() > report["tolerance_db"].as_f64().unwrap(),
                "{report}"
            );
        }
    }
    // A seq that is not a step is refused as bad input.
    let output = run(data, &["replay", "--seq", "0"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("only generation.step"));
}

#[test]
fn refused_and_malformed_requests_and_a_step_that_does_not_reproduce() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let catalog = setup(data);

    // No consent: exactly one event, the rejection, and exit 2.
    let before = events(data);
    let unconsented = write_request(
        data,
        "unconsented.json",
        json!({"recording": ISRC, "requested_by": "creator-1", "territory": "US",
               "recipe": {"kind": "cover", "voice_model": UNCONSENTED}}),
    );
    let output = run(data, &["generate", "--request", &unconsented]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("consent_missing: "), "{stderr}");
    assert!(stderr.contains("has not granted consent"), "{stderr}");
    let refused: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(refused["reason"], "consent_missing");
    assert_eq!(refused["value"], UNCONSENTED);
    let after = events(data);
    assert_eq!(after.len(), before.len() + 1, "one event only");
    let (_, kind, stream) = after.last().unwrap();
    assert_eq!(kind, "generation.rejected");
    assert!(stream.starts_with("generation-"));

    // An unknown recording is refused the same way.
    let unknown = write_request(
        data,
        "unknown.json",
        json!({"recording": "ZZLL09999999", "requested_by": "creator-1", "territory": "US", "recipe": {"kind": "remix"}}),
    );
    assert_eq!(
        run(data, &["generate", "--request", &unknown])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(events(data).len(), after.len() + 1);

    // Malformed requests write nothing at all.
    let count = events(data).len();
    for (name, request) in [
        (
            "fast.json",
            json!({"recording": ISRC, "requested_by": "c", "territory": "US", "recipe": {"kind": "remix", "tempo_rate": 3.0}}),
        ),
        (
            "extra.json",
            json!({"recording": ISRC, "requested_by": "c", "territory": "US", "recipe": {"kind": "remix"}, "priority": 1}),
        ),
        (
            "voiceless.json",
            json!({"recording": ISRC, "requested_by": "c", "territory": "US", "recipe": {"kind": "cover"}}),
        ),
    ] {
        let path = write_request(data, name, request);
        let output = run(data, &["generate", "--request", &path]);
        assert_eq!(output.status.code(), Some(2), "{name}");
        assert!(!output.stderr.is_empty());
    }
    assert_eq!(events(data).len(), count);

    // A step event whose output is not what its op makes of its input (the
    // drums stem recorded as the time-stretched bass), written past the
    // engine by a writer that holds the log, fails its replay.
    let artifacts = ArtifactStore::open(data).unwrap();
    let record = |name: &str| {
        let path = catalog["recordings"][0]["stems"][name].as_str().unwrap();
        let hash = inference::artifacts::file_hash(&std::fs::read(path).unwrap());
        let (artifact, _) = artifacts.load(&hash).unwrap();
        json!({"name": name, "file": artifact.file_hash, "pcm": artifact.pcm_hash})
    };
    let forged = json!({
        "job": "6f1c1c1e-1111-4a4a-8b8b-000000000009", "step": 1, "op": "time-stretch",
        "params": {"rate_ppm": 1_000_000}, "inputs": [record("bass")], "outputs": [record("drums")],
        "kernels": [], "backend": "cpu", "adapter": null, "measurements": {}, "duration_ms": 1
    });
    let seq = common::append_as_owner(
        data,
        "generation-6f1c1c1e-1111-4a4a-8b8b-000000000009",
        vec![ledger::NewEvent::new("generation.step", forged)],
    )[0]
    .to_string();
    let output = run(data, &["replay", "--seq", &seq]);
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["matches"], false);
    assert!(report["snr_db"].as_f64().unwrap() < 10.0, "{report}");
}
