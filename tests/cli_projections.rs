//! End to end: catalog and usage imports, statements citing a checkpoint,
//! reconciliation exit codes, lineage of a file, rebuild, bad input.

mod common;

use common::{ok, ok_json, publish_derivative, run};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const D1: &str = "6f1c1c1e-1111-4a4a-8b8b-000000000001";

fn write(dir: &Path, name: &str, contents: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

fn catalog(master_label: &str) -> Value {
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

/// A work folder with the catalog's stem, and the data directory in it.
struct Ledger {
    dir: tempfile::TempDir,
    data: PathBuf,
}

impl Ledger {
    fn work(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, name: &str, contents: &[u8]) -> String {
        write(self.work(), name, contents)
    }

    /// A bare ledger: the stem is on disk, nothing is imported.
    fn empty() -> Ledger {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(dir.path().join("stems")).unwrap();
        write(dir.path(), "stems/vocals.wav", &common::stem_wav());
        Ledger { dir, data }
    }

    /// The catalog imported; returns the catalog file.
    fn with_catalog() -> (Ledger, String) {
        let ledger = Ledger::empty();
        let catalog_file = ledger.write("catalog.json", catalog("0.5").to_string().as_bytes());
        ok(&ledger.data, &["catalog", "import", &catalog_file]);
        (ledger, catalog_file)
    }

    /// The catalog, a cover published as `cover.mp3`, and not yet imported
    /// usage for March in USD and JPY; returns the usage file.
    fn with_cover() -> (Ledger, String) {
        let (ledger, _) = Ledger::with_catalog();
        // The inference engine would publish this; the test appends it directly.
        let audio = ledger.write("cover.mp3", b"ID3 fake cover bytes");
        let output_hash = projections::lineage::hash_file(Path::new(&audio))
            .unwrap()
            .to_string();
        let published = json!({
            "job": D1, "derivative": D1, "recording": "GBAYE0601498", "requested_by": "u1", "recipe": {"op": "cover"},
            "output": output_hash, "output_pcm": format!("sha256:{}", "0".repeat(64)), "duration_ms": 1000,
            "attribution": [{"kind": "recording", "ref": "GBAYE0601498", "weight_bp": 5000}, {"kind": "voice", "ref": "vm1", "weight_bp": 5000}]
        });
        publish_derivative(&ledger.data, &published);
        let usage = ledger.write(
            "usage.csv",
            format!("line_id,period,derivative,territory,currency,streams,gross,reverses\nL1,2026-03,{D1},US,USD,100,10.00,\nL2,2026-03,{D1},JP,JPY,100,999,\n").as_bytes(),
        );
        (ledger, usage)
    }

    /// March's usage imported too.
    fn with_month() -> Ledger {
        let (ledger, usage) = Ledger::with_cover();
        ok(&ledger.data, &["usage", "import", &usage]);
        ledger
    }

    fn cover(&self) -> String {
        self.work().join("cover.mp3").display().to_string()
    }

    /// `ledgerline reconcile` of this label statement for March in USD, as JSON.
    fn reconcile(&self, statement: &[u8]) -> std::process::Output {
        let file = self.write("label-statement.csv", statement);
        let args = [
            "reconcile",
            "--statement",
            &file,
            "--period",
            "2026-03",
            "--currency",
            "USD",
            "--format",
            "json",
        ];
        run(&self.data, &args)
    }
}

#[test]
fn a_catalog_naming_an_unknown_party_is_rejected_naming_the_field_and_writes_nothing() {
    let ledger = Ledger::empty();
    let mut bad = catalog("0.5");
    bad["recordings"][0]["master_splits"][0]["party"] = json!("p9");
    let bad_file = ledger.write("bad.json", bad.to_string().as_bytes());
    let output = run(&ledger.data, &["catalog", "import", &bad_file]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("recordings[0].master_splits[0].party: unknown party \"p9\""),
        "{stderr}"
    );
    let events = run(&ledger.data, &["events"]);
    assert!(
        !events.status.success() || events.stdout.is_empty(),
        "nothing was written"
    );
}

#[test]
fn a_catalog_imported_twice_registers_each_entry_once() {
    let ledger = Ledger::empty();
    let catalog_file = ledger.write("catalog.json", catalog("0.5").to_string().as_bytes());
    let imported = ok_json(&ledger.data, &["catalog", "import", &catalog_file]);
    assert_eq!(imported["registered"], 7);
    let again = ok_json(&ledger.data, &["catalog", "import", &catalog_file]);
    assert_eq!(
        (again["registered"].clone(), again["unchanged"].clone()),
        (json!(0), json!(7))
    );
}

#[test]
fn usage_imported_twice_skips_the_lines_already_imported() {
    let (ledger, usage) = Ledger::with_cover();
    let imported = ok_json(&ledger.data, &["usage", "import", &usage]);
    assert_eq!(imported["imported"], 2);
    let again = run(&ledger.data, &["usage", "import", &usage]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr)
        .contains("line_id \"L1\" was already imported; skipped"));
}

/// (party, amount) of each line of a statement.
fn lines(statement: &Value) -> Vec<(String, String)> {
    statement["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let text = |k: &str| l[k].as_str().unwrap().to_string();
            (text("party"), text("amount"))
        })
        .collect()
}

#[test]
fn a_statement_splits_the_gross_and_gives_a_tied_leftover_cent_to_the_lower_id() {
    let ledger = Ledger::with_month();
    let args = ["statements", "--period", "2026-03", "--currency", "USD"];
    let statement = ok_json(&ledger.data, &args);
    assert_eq!(statement["total"], "10.00");
    assert!(statement["checkpoint"]["size"].as_u64().unwrap() >= 10);
    // G 10.00: platform 3, u1 2, recording 2.50 (label 0.625, singer 0.625,
    // pub 1.25), voice 2.50 to singer. Label (.5) and singer (3.125, .5) tie
    // for the one leftover cent: the lower id, label, gets it.
    let expected = [
        ("label", "0.63"),
        ("platform", "3.00"),
        ("pub", "1.25"),
        ("singer", "3.12"),
        ("u1", "2.00"),
    ];
    assert_eq!(
        lines(&statement),
        expected.map(|(p, a)| (p.to_string(), a.to_string()))
    );
}

#[test]
fn statements_as_csv_quote_names_and_cover_every_currency() {
    let ledger = Ledger::with_month();
    let args = ["statements", "--period", "2026-03", "--format", "csv"];
    let csv = ok(&ledger.data, &args);
    assert!(csv.starts_with(
        "period,currency,checkpoint_size,checkpoint_root_hash,total,party,name,amount,exact\n"
    ));
    assert!(csv.contains(",pub,\"Pub, Inc.\",1.25,1.25\n"), "{csv}");
    assert!(csv.contains("2026-03,JPY,"));
}

#[test]
fn a_statement_detail_as_csv_lists_each_component_behind_a_partys_amount() {
    let ledger = Ledger::with_month();
    let args = [
        "statements",
        "--period",
        "2026-03",
        "--currency",
        "USD",
        "--party",
        "singer",
        "--detail",
    ];
    let json = ok_json(&ledger.data, &args);
    let csv = ok(&ledger.data, &[&args[..], &["--format", "csv"]].concat());
    let mut rows = csv.lines();
    assert_eq!(
        rows.next(),
        Some("period,currency,checkpoint_size,party,seq,line_id,derivative,component,reference,amount,after_takedown,takedown_seq,takedown_effective")
    );
    let details = json[0]["details"].as_array().unwrap();
    let size = &json[0]["checkpoint"]["size"];
    let expected: Vec<String> = details
        .iter()
        .map(|d| {
            let text = |k: &str| d[k].as_str().unwrap().to_string();
            let fields = [text("line_id"), text("derivative"), text("component")];
            let (reference, amount) = (text("reference"), text("amount"));
            format!(
                // Nothing was taken down: the takedown columns are empty.
                "2026-03,USD,{size},singer,{},{},{reference},{amount},,,",
                d["seq"],
                fields.join(",")
            )
        })
        .collect();
    assert!(
        expected.len() >= 2,
        "singer is paid for the recording and the voice: {json}"
    );
    assert_eq!(rows.collect::<Vec<_>>(), expected);
}

#[test]
fn reconcile_exits_0_when_every_party_matches() {
    let ledger = Ledger::with_month();
    let output = ledger.reconcile(b"party,currency,amount\nlabel,USD,0.63\nplatform,USD,3.00\npub,USD,1.25\nsinger,USD,3.12\nu1,USD,2.00\n");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn reconcile_exits_1_and_counts_each_difference() {
    let ledger = Ledger::with_month();
    let output = ledger.reconcile(b"party,currency,amount\nlabel,USD,0.63\nsinger,USD,3.13\n");
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["counts"]["mismatched"], 1);
    assert_eq!(report["counts"]["missing_there"], 3);
}

#[test]
fn derivative_rows_are_reconciled_against_our_exact_amounts_rounded_half_even() {
    let ledger = Ledger::with_month();
    // Label 0.625 is 0.62, singer 3.125 is 3.12 (not 3.13).
    let statement = format!("party,currency,amount,derivative\nlabel,USD,0.63,\nlabel,USD,0.62,{D1}\nsinger,USD,3.13,{D1}\n");
    let output = ledger.reconcile(statement.as_bytes());
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let details: Vec<[String; 4]> = report["derivatives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            ["party", "derivative", "status", "ours"].map(|k| c[k].as_str().unwrap_or("-").into())
        })
        .collect();
    let row = |party: &str, status: &str, ours: &str| [party, D1, status, ours].map(String::from);
    assert_eq!(
        details,
        [
            row("label", "matched", "0.62"),
            row("singer", "mismatched", "3.12")
        ],
        "{report}"
    );
}

#[test]
fn lineage_of_a_published_file_is_found_by_its_hash_under_a_signed_checkpoint() {
    let ledger = Ledger::with_month();
    let lineage = ok_json(&ledger.data, &["lineage", &ledger.cover()]);
    assert_eq!(lineage["found"], true);
    assert_eq!(lineage["matched_by"], "file-hash");
    assert_eq!(lineage["derivative"]["derivative"], D1);
    // A signed note: its text, a blank line, its signatures.
    assert!(lineage["checkpoint"]["note"]
        .as_str()
        .unwrap()
        .contains("\n\n"));
}

#[test]
fn lineage_of_a_file_never_generated_here_says_no_lineage() {
    let ledger = Ledger::with_month();
    let stranger = ledger.write("stranger.wav", b"never generated");
    let text = ok(&ledger.data, &["lineage", &stranger, "--format", "text"]);
    assert!(text.starts_with("no lineage:"), "{text}");
}

#[test]
fn a_rebuild_from_zero_gives_byte_identical_statements() {
    let ledger = Ledger::with_month();
    let args = ["statements", "--period", "2026-03", "--format", "csv"];
    let before = ok(&ledger.data, &args);
    ok(&ledger.data, &["projections", "rebuild"]);
    assert_eq!(ok(&ledger.data, &args), before);
}

#[test]
fn a_malformed_period_exits_2() {
    let ledger = Ledger::with_month();
    let output = run(&ledger.data, &["statements", "--period", "2026-3"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn an_unknown_currency_exits_2_listing_those_accepted() {
    let ledger = Ledger::with_month();
    let args = ["statements", "--period", "2026-03", "--currency", "XYZ"];
    let output = run(&ledger.data, &args);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("accepted: "));
}

/// A cover published as `published.wav`, and a re-wrapped copy of it
/// (`copy.wav`: the same samples, one more RIFF chunk, other bytes).
fn rewrapped() -> (Ledger, String, String) {
    let (ledger, _) = Ledger::with_catalog();
    let samples: Vec<i16> = (0..4410).map(|i| ((i * 37) % 2000 - 1000) as i16).collect();
    let published_file = ledger.write("published.wav", &common::wav(&samples, false));
    let copy = ledger.write("copy.wav", &common::wav(&samples, true));
    let audio = inference::artifacts::decode_file(Path::new(&published_file)).unwrap();
    let event = json!({
        "job": D1, "derivative": D1, "recording": "GBAYE0601498", "requested_by": "u1", "recipe": {},
        "output": projections::lineage::hash_file(Path::new(&published_file)).unwrap().to_string(),
        "output_pcm": inference::artifacts::pcm_hash(&audio), "duration_ms": 100,
        "attribution": [{"kind": "recording", "ref": "GBAYE0601498", "weight_bp": 10000}]
    });
    publish_derivative(&ledger.data, &event);
    (ledger, published_file, copy)
}

#[test]
fn a_rewrapped_copy_is_traced_by_its_decoded_pcm() {
    let (ledger, published_file, copy) = rewrapped();
    assert_eq!(
        ok_json(&ledger.data, &["lineage", &published_file])["matched_by"],
        "file-hash"
    );
    let traced = ok_json(&ledger.data, &["lineage", &copy]);
    assert_eq!(traced["matched_by"], "pcm-hash");
    assert_eq!(traced["derivative"]["derivative"], D1);
}

#[test]
fn lineage_as_of_a_seq_before_the_publication_is_not_found() {
    let (ledger, _, _) = rewrapped();
    let by_id = ok_json(&ledger.data, &["lineage", D1, "--as-of", "7"]);
    assert_eq!(
        by_id["found"], false,
        "the derivative was published after seq 7"
    );
}
