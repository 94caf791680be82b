//! End to end: catalog and usage imports, statements citing a checkpoint,
//! reconciliation exit codes, lineage of a file, rebuild, bad input.

mod common;

use common::{ok, ok_json, publish_derivative, run};
use serde_json::json;
use std::path::Path;

const D1: &str = "6f1c1c1e-1111-4a4a-8b8b-000000000001";

fn write(dir: &Path, name: &str, contents: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

fn catalog(master_label: &str) -> serde_json::Value {
    json!({
        "parties": [
            {"id": "label", "name": "Blue Label Records", "role": "label"},
            {"id": "singer", "name": "Ana Singer", "role": "artist"},
            {"id": "pub", "name": "Pub, Inc.", "role": "publisher"}
        ],
        "works": [{"iswc": "T-034524680-1", "title": "Song", "publishing_splits": [{"party": "pub", "share": "1"}]}],
        "recordings": [{"isrc": "GBAYE0601498", "title": "Song", "work": "T-034524680-1",
                        "master_splits": [{"party": "label", "share": master_label}, {"party": "singer", "share": "0.5"}],
                        "stems": {"vocals": "stems/vocals.wav"}}],
        "voice_models": [{"id": "vm1", "artist": "singer", "consent": {"granted": true},
                          "training_stems": ["stems/vocals.wav"], "likeness_splits": [{"party": "singer", "share": "1"}]}],
        "policy": {"id": "v1", "platform_share": "0.3", "creator_share": "0.2", "master_share": "0.5"}
    })
}

#[test]
fn statements_reconcile_and_lineage_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = &dir.path().join("data");
    let work = dir.path();
    std::fs::create_dir_all(work.join("stems")).unwrap();
    write(work, "stems/vocals.wav", &common::stem_wav());

    // A bad catalog is rejected naming the field, with nothing written.
    let mut bad = catalog("0.5");
    bad["recordings"][0]["master_splits"][0]["party"] = json!("p9");
    let bad_file = write(work, "bad.json", bad.to_string().as_bytes());
    let output = run(data, &["catalog", "import", &bad_file]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("recordings[0].master_splits[0].party: unknown party \"p9\""),
        "{stderr}"
    );
    let events = run(data, &["events"]);
    assert!(
        !events.status.success() || events.stdout.is_empty(),
        "nothing was written"
    );

    let catalog_file = write(work, "catalog.json", catalog("0.5").to_string().as_bytes());
    let imported = ok_json(data, &["catalog", "import", &catalog_file]);
    assert_eq!(imported["registered"], 7);
    let again = ok_json(data, &["catalog", "import", &catalog_file]);
    assert_eq!(
        (again["registered"].clone(), again["unchanged"].clone()),
        (json!(0), json!(7))
    );

    // The inference engine would publish this; the test appends it directly.
    let audio = write(work, "cover.mp3", b"ID3 fake cover bytes");
    let output_hash = projections::lineage::hash_file(Path::new(&audio))
        .unwrap()
        .to_string();
    let published = json!({
        "job": D1, "derivative": D1, "recording": "GBAYE0601498", "requested_by": "u1", "recipe": {"op": "cover"},
        "output": output_hash, "output_pcm": format!("sha256:{}", "0".repeat(64)), "duration_ms": 1000,
        "attribution": [{"kind": "recording", "ref": "GBAYE0601498", "weight_bp": 5000}, {"kind": "voice", "ref": "vm1", "weight_bp": 5000}]
    });
    publish_derivative(data, &published);

    let usage = write(
        work,
        "usage.csv",
        format!("line_id,period,derivative,territory,currency,streams,gross,reverses\nL1,2026-03,{D1},US,USD,100,10.00,\nL2,2026-03,{D1},JP,JPY,100,999,\n").as_bytes(),
    );
    let imported = ok_json(data, &["usage", "import", &usage]);
    assert_eq!(imported["imported"], 2);
    let again = run(data, &["usage", "import", &usage]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr)
        .contains("line_id \"L1\" was already imported; skipped"));

    // G 10.00: platform 3, u1 2, recording 2.50 (label 0.625, singer 0.625,
    // pub 1.25), voice 2.50 to singer. Label (.5) and singer (3.125, .5) tie
    // for the one leftover cent: the lower id, label, gets it.
    let statement = ok_json(
        data,
        &["statements", "--period", "2026-03", "--currency", "USD"],
    );
    assert_eq!(statement["total"], "10.00");
    assert!(statement["checkpoint"]["size"].as_u64().unwrap() >= 10);
    let lines: Vec<(String, String)> = statement["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["party"].as_str().unwrap().to_string(),
                l["amount"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("label", "0.63"),
        ("platform", "3.00"),
        ("pub", "1.25"),
        ("singer", "3.12"),
        ("u1", "2.00"),
    ];
    assert_eq!(lines, expected.map(|(p, a)| (p.to_string(), a.to_string())));
    let csv = ok(
        data,
        &["statements", "--period", "2026-03", "--format", "csv"],
    );
    assert!(csv.starts_with(
        "period,currency,checkpoint_size,checkpoint_root_hash,total,party,name,amount,exact\n"
    ));
    assert!(csv.contains(",pub,\"Pub, Inc.\",1.25,1.25\n"), "{csv}");
    assert!(csv.contains("2026-03,JPY,"));

    // Reconcile: exit 0 when every party matches, 1 otherwise.
    let matching = write(work, "label-ok.csv", b"party,currency,amount\nlabel,USD,0.63\nplatform,USD,3.00\npub,USD,1.25\nsinger,USD,3.12\nu1,USD,2.00\n");
    let output = run(
        data,
        &[
            "reconcile",
            "--statement",
            &matching,
            "--period",
            "2026-03",
            "--currency",
            "USD",
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let off = write(
        work,
        "label-off.csv",
        b"party,currency,amount\nlabel,USD,0.63\nsinger,USD,3.13\n",
    );
    let output = run(
        data,
        &[
            "reconcile",
            "--statement",
            &off,
            "--period",
            "2026-03",
            "--currency",
            "USD",
            "--format",
            "json",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["counts"]["mismatched"], 1);
    assert_eq!(report["counts"]["missing_there"], 3);

    // Derivative detail rows meet our exact per-derivative amounts rounded
    // half-even: label 0.625 is 0.62, singer 3.125 is 3.12 (not 3.13).
    let detailed = write(
        work,
        "label-detail.csv",
        format!("party,currency,amount,derivative\nlabel,USD,0.63,\nlabel,USD,0.62,{D1}\nsinger,USD,3.13,{D1}\n").as_bytes(),
    );
    let output = run(
        data,
        &[
            "reconcile",
            "--statement",
            &detailed,
            "--period",
            "2026-03",
            "--currency",
            "USD",
            "--format",
            "json",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let details: Vec<(String, String, String, String)> = report["derivatives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or("-").to_string();
            (
                text("party"),
                text("derivative"),
                text("status"),
                text("ours"),
            )
        })
        .collect();
    assert_eq!(
        details,
        [
            ("label".into(), D1.into(), "matched".into(), "0.62".into()),
            (
                "singer".into(),
                D1.into(),
                "mismatched".into(),
                "3.12".into()
            ),
        ],
        "{report}"
    );

    // Lineage of the file itself, and of a file never generated here.
    let lineage = ok_json(data, &["lineage", &audio]);
    assert_eq!(lineage["found"], true);
    assert_eq!(lineage["matched_by"], "file-hash");
    assert_eq!(lineage["derivative"]["derivative"], D1);
    assert!(lineage["checkpoint"]["note"]
        .as_str()
        .unwrap()
        .contains("\n\n"));
    let stranger = write(work, "stranger.wav", b"never generated");
    let text = ok(data, &["lineage", &stranger, "--format", "text"]);
    assert!(text.starts_with("no lineage:"), "{text}");

    // Rebuild from zero: byte-identical statements.
    let before = ok(
        data,
        &["statements", "--period", "2026-03", "--format", "csv"],
    );
    ok(data, &["projections", "rebuild"]);
    assert_eq!(
        ok(
            data,
            &["statements", "--period", "2026-03", "--format", "csv"]
        ),
        before
    );

    let output = run(data, &["statements", "--period", "2026-3"]);
    assert_eq!(output.status.code(), Some(2));
    let output = run(
        data,
        &["statements", "--period", "2026-03", "--currency", "XYZ"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("accepted: "));
}

#[test]
fn a_rewrapped_copy_is_traced_by_its_decoded_pcm() {
    let dir = tempfile::tempdir().unwrap();
    let data = &dir.path().join("data");
    let work = dir.path();
    std::fs::create_dir_all(work.join("stems")).unwrap();
    write(work, "stems/vocals.wav", &common::stem_wav());
    let catalog_file = write(work, "catalog.json", catalog("0.5").to_string().as_bytes());
    ok(data, &["catalog", "import", &catalog_file]);

    let samples: Vec<i16> = (0..4410).map(|i| ((i * 37) % 2000 - 1000) as i16).collect();
    let published_file = write(work, "published.wav", &common::wav(&samples, false));
    let copy = write(work, "copy.wav", &common::wav(&samples, true));
    let audio = inference::artifacts::decode_file(Path::new(&published_file)).unwrap();
    let event = json!({
        "job": D1, "derivative": D1, "recording": "GBAYE0601498", "requested_by": "u1", "recipe": {},
        "output": projections::lineage::hash_file(Path::new(&published_file)).unwrap().to_string(),
        "output_pcm": inference::artifacts::pcm_hash(&audio), "duration_ms": 100,
        "attribution": [{"kind": "recording", "ref": "GBAYE0601498", "weight_bp": 10000}]
    });
    publish_derivative(data, &event);

    assert_eq!(
        ok_json(data, &["lineage", &published_file])["matched_by"],
        "file-hash"
    );
    let traced = ok_json(data, &["lineage", &copy]);
    assert_eq!(traced["matched_by"], "pcm-hash");
    assert_eq!(traced["derivative"]["derivative"], D1);
    let by_id = ok_json(data, &["lineage", D1, "--as-of", "7"]);
    assert_eq!(
        by_id["found"], false,
        "the derivative was published after seq 7"
    );
}
