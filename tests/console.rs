//! End to end: the web console in a real browser. Headless Chromium, driven
//! over WebDriver by the scripts in `tests/console/` (Selenium), opens the
//! pages of a running server.
//!
//! On the demo's data: the Dispute page traces a derivative's output, an
//! MP3 re-encode of it and an unrelated file, and shows what the CLI's
//! `lineage` answers, its cited events proven in the browser, and a label
//! only its own earnings; the Statements page shows the CLI's statements
//! and CSV, a chart, a label's own party only and a reconciliation with its
//! wrong line marked; the Generations page follows a licensed remix to the
//! file the log says was distributed and plays it, and shows a refusal and
//! a label's 403.
//!
//! The Audit page checks what a reader sees: the log's size,
//! origin and key, the checkpoint history with every signature verified in
//! the browser, an event's inclusion and a consistency proof verified there,
//! the verifier refusing tampered proofs, leaves and notes, 401 and 403 as
//! messages, the key kept in sessionStorage only, every control named and
//! reached by Tab in reading order, no request to another origin, and the
//! page readable at 390 px. Under a witness policy with two real witness
//! processes, it lists the witnesses and verifies each checkpoint's
//! cosignatures in the browser, and the verifier refuses a cosignature with
//! one byte changed. Tab reaches every control of the other pages too, in
//! reading order, each with a visible focus outline. Screenshots
//! at 1280×800 and 390 px wide go to `target/console-screenshots/`.
//!
//! The browser and Selenium come from `scripts/test` (Debian's `chromium`
//! and `chromium-driver`, Selenium in `target/browser-venv`, or
//! `LEDGERLINE_BROWSER_PYTHON`). Without them the test says it was
//! skipped; with `LEDGERLINE_REQUIRE_BROWSER=1` (which `scripts/test` sets)
//! it fails.

mod common;

use common::server::Server;
use common::witness::{append, eventually, two_witnesses};
use common::{api_token, ok, ok_json};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The Python with Selenium, when it and the browser are installed; None
/// (after saying why) when they are not and the run does not require them.
fn browser() -> Option<PathBuf> {
    let (python, selenium) =
        common::venv_python("LEDGERLINE_BROWSER_PYTHON", "browser-venv", "selenium");
    let driver = Path::new(CHROMEDRIVER).exists();
    if selenium && driver {
        return Some(python);
    }
    let why = format!(
        "the console's browser test needs Selenium at {} ({}) and {CHROMEDRIVER} ({})",
        python.display(),
        if selenium { "found" } else { "missing" },
        if driver { "found" } else { "missing" },
    );
    common::skip_unless_required("LEDGERLINE_REQUIRE_BROWSER", &why);
    None
}

/// Runs `script` (in `tests/console/`) with `args` and returns the JSON it
/// prints.
fn drive(python: &Path, script: &str, args: &[String]) -> Value {
    let output = Command::new(python)
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/console")
                .join(script),
        )
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Where the test run leaves the pages' screenshots.
fn screenshots() -> PathBuf {
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    shots
}

#[test]
fn on_the_demo_data_the_pages_show_what_the_cli_does() {
    let Some(python) = browser() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = &dir.path().join("data");
    let demo = ok(data, &["demo"]);
    assert!(demo.contains("Audit the whole log"), "{demo}");

    // The demo's cover: a derivative with stems, a voice model and earnings.
    let mut outputs: Vec<PathBuf> = std::fs::read_dir(data.join("demo"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    outputs.sort();
    let (cover, lineage) = outputs
        .iter()
        .map(|p| {
            (
                p.clone(),
                ok_json(data, &["lineage", &p.display().to_string()]),
            )
        })
        .find(|(_, l)| l["voice_models"].as_object().is_some_and(|m| !m.is_empty()))
        .expect("the demo makes a cover");
    let mp3 = dir.path().join("cover.mp3");
    let lame = Command::new("lame")
        .args(["--quiet", "-b", "128"])
        .arg(&cover)
        .arg(&mp3)
        .status();
    assert!(lame.is_ok_and(|s| s.success()), "lame re-encodes the cover");
    let unrelated = dir.path().join("unrelated.wav");
    let tone: Vec<i16> = (0..44_100 * 6)
        .map(|i| ((i as f32 * 0.031).sin() * 9000.0 + (i as f32 * 0.0007).cos() * 4000.0) as i16)
        .collect();
    std::fs::write(&unrelated, common::wav(&tone, false)).unwrap();

    let revenue = &lineage["revenue"][0];
    let label = revenue["parties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["party"].as_str().unwrap().to_string())
        .find(|p| p.starts_with("label-"))
        .expect("a label earns from the cover");
    let label_key = ok_json(
        data,
        &["keys", "create", "--role", "label", "--party", &label],
    )["token"]
        .as_str()
        .unwrap()
        .to_string();
    let auditor = api_token(data, "auditor");
    let period = demo
        .split("Royalty statements for ")
        .nth(1)
        .and_then(|rest| rest.get(..7))
        .expect("the demo names its statements' period")
        .to_string();
    // The label's own statement, with one amount off by one minor unit.
    let ours = ok_json(
        data,
        &["statements", "--period", &period, "--party", &label],
    );
    let mut label_csv = String::from("party,currency,amount\n");
    for (i, statement) in ours.as_array().unwrap().iter().enumerate() {
        let amount = statement["lines"][0]["amount"].as_str().unwrap();
        let amount = if i == 0 {
            bump(amount)
        } else {
            amount.to_string()
        };
        label_csv += &format!(
            "{label},{},{amount}\n",
            statement["currency"].as_str().unwrap()
        );
    }
    let label_csv_path = dir.path().join("label.csv");
    std::fs::write(&label_csv_path, &label_csv).unwrap();
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();

    // What the Statements page must show, before the Generations page
    // appends to the log.
    let cli_statements = ok_json(data, &["statements", "--period", &period]);
    let cli_csv = ok(
        data,
        &["statements", "--period", &period, "--format", "csv"],
    );
    let server = Server::start(data);
    let address = format!("http://{}/", server.address());
    let shots = screenshots();
    let seen = drive(
        &python,
        "dispute.py",
        &[
            address.clone(),
            auditor.clone(),
            label_key.clone(),
            shots.display().to_string(),
            cover.display().to_string(),
            mp3.display().to_string(),
            unrelated.display().to_string(),
        ],
    );
    let statements_seen = drive(
        &python,
        "statements.py",
        &[
            address.clone(),
            auditor,
            label_key.clone(),
            period.clone(),
            shots.display().to_string(),
            downloads.display().to_string(),
            label_csv_path.display().to_string(),
        ],
    );
    let generations_seen = drive(
        &python,
        "generations.py",
        &[
            address,
            api_token(data, "generator"),
            label_key,
            lineage["derivative"]["recording"]
                .as_str()
                .unwrap()
                .to_string(),
            lineage["derivative"]["requested_by"]
                .as_str()
                .unwrap()
                .to_string(),
            shots.display().to_string(),
        ],
    );
    server.stop();
    check_statements(
        (&cli_statements, &cli_csv),
        &period,
        &label,
        &statements_seen,
        &shots,
    );
    check_generations(data, &lineage, &generations_seen, &shots);

    let derivative = lineage["derivative"]["derivative"].as_str().unwrap();
    let uploads = seen["uploads"].as_array().unwrap();
    // The output as distributed: answered by its credentials, as the CLI.
    let first = &uploads[0];
    assert!(
        first["status"]
            .as_str()
            .unwrap()
            .ends_with(&format!("is derivative {derivative}")),
        "{first}"
    );
    assert_eq!(lineage["matched_by"], "credentials");
    assert!(first["derivative"]["Matched by"]
        .as_str()
        .unwrap()
        .contains("Content Credentials"));
    assert_eq!(first["derivative"]["Derivative"], derivative);
    assert_eq!(
        first["derivative"]["Requested by"],
        lineage["derivative"]["requested_by"]
    );
    // Every cited event and the checkpoint, verified in the browser.
    let verified = first["verified"].as_array().unwrap();
    let cited = lineage["cited"].as_array().unwrap();
    assert_eq!(verified.len(), cited.len() + 1, "{verified:?}");
    assert!(
        verified[0]
            .as_str()
            .unwrap()
            .starts_with("checkpoint of size "),
        "{verified:?}"
    );
    for (line, event) in verified[1..].iter().zip(cited) {
        assert_eq!(
            line.as_str().unwrap(),
            format!(
                "seq {} {}: included",
                event["seq"],
                event["type"].as_str().unwrap()
            )
        );
    }
    // The licensed inputs: the recording, every stem with its hash, the
    // voice model with its consent reference.
    let requested = &lineage["generation_steps"][0]["data"];
    let inputs = first["inputs"].to_string();
    for (stem, hash) in requested["stems"].as_object().unwrap() {
        assert!(inputs.contains(&format!("Stem: {stem}")), "{inputs}");
        assert!(inputs.contains(hash.as_str().unwrap()), "{inputs}");
    }
    for (id, model) in lineage["voice_models"].as_object().unwrap() {
        assert!(inputs.contains(id.as_str()), "{inputs}");
        let reference = model["data"]["consent"]["reference"].as_str().unwrap();
        assert!(inputs.contains(reference), "{inputs}");
    }
    let steps: Vec<&Value> = lineage["generation_steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "generation.step")
        .collect();
    assert_eq!(first["steps"].as_array().unwrap().len(), steps.len());
    // Earnings, party by party, the CLI's amounts.
    let earnings: Vec<(String, String)> = first["earnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().to_string(),
                r[2].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = revenue["parties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                format!(
                    "{} ({})",
                    p["name"].as_str().unwrap(),
                    p["party"].as_str().unwrap()
                ),
                p["amount"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(earnings, expected);

    // A re-encoded MP3: the same derivative, by fingerprint.
    let mp3_seen = &uploads[1];
    assert!(
        mp3_seen["status"].as_str().unwrap().ends_with(derivative),
        "{mp3_seen}"
    );
    assert!(mp3_seen["derivative"]["Matched by"]
        .as_str()
        .unwrap()
        .starts_with("acoustic fingerprint: score"));
    // Unrelated audio: no lineage, said plainly.
    let none = uploads[2]["status"].as_str().unwrap();
    assert!(none.starts_with("No lineage."), "{none}");

    // A label sees only its own party.
    let as_label = &seen["as_label"];
    let rows = as_label["earnings"].as_array().unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        assert!(
            row[0].as_str().unwrap().ends_with(&format!("({label})")),
            "{row}"
        );
    }
    check_page(&seen, &shots, "dispute");
}

/// What every page holds to: each control named, no request to another
/// origin, no console error, nothing wider than 390 px, and its screenshots
/// saved.
fn check_page(seen: &Value, shots: &Path, page: &str) {
    assert_eq!(seen["unnamed_controls"], json!([]), "{page}");
    assert_eq!(seen["other_origins"], json!([]), "{page}: {seen}");
    assert_eq!(seen["console_errors"], json!([]), "{page}: {seen}");
    assert_eq!(seen["narrow_overflow"], false, "{page}");
    for width in [1280, 390] {
        let shot = shots.join(format!("{page}-{width}.png"));
        assert!(
            shot.metadata().unwrap().len() > 10_000,
            "{}",
            shot.display()
        );
    }
}

/// `amount` (a decimal string) one minor unit higher.
fn bump(amount: &str) -> String {
    let decimals = amount.split_once('.').map_or(0, |(_, d)| d.len());
    let units: i64 = amount.replace('.', "").parse().unwrap();
    let text = format!("{:0width$}", units + 1, width = decimals + 1);
    if decimals == 0 {
        text
    } else {
        format!(
            "{}.{}",
            &text[..text.len() - decimals],
            &text[text.len() - decimals..]
        )
    }
}

/// The Statements page showed the CLI's statements (`ours`), downloaded the
/// CLI's CSV, charted, showed a label its own party only, and highlighted the
/// label's one wrong line.
fn check_statements(
    (ours, csv): (&Value, &str),
    period: &str,
    label: &str,
    seen: &Value,
    shots: &Path,
) {
    let shown = seen["statements"].as_array().unwrap();
    assert_eq!(shown.len(), ours.as_array().unwrap().len(), "{seen}");
    for (page, cli) in shown.iter().zip(ours.as_array().unwrap()) {
        let currency = cli["currency"].as_str().unwrap();
        assert_eq!(
            page["heading"],
            format!("{currency} statement for {period}")
        );
        let lines: Vec<Value> = cli["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| json!([l["party"], l["name"], l["amount"], l["exact"]]))
            .collect();
        assert_eq!(page["lines"], json!(lines), "{currency}");
        assert_eq!(page["total"], cli["total"]);
        let cited = page["cited"].as_str().unwrap();
        assert!(
            cited.contains(cli["checkpoint"]["root_hash"].as_str().unwrap()),
            "{cited}"
        );
        assert!(
            cited.ends_with("signed by the log, verified in this browser"),
            "{cited}"
        );
    }
    assert_eq!(seen["download"]["text"], csv);
    assert_eq!(seen["download"]["name"], format!("statement-{period}.csv"));
    assert_eq!(seen["chart"]["bars"], 6);
    // A label key: its own party only, and no totals.
    for statement in seen["as_label"].as_array().unwrap() {
        let lines = statement["lines"].as_array().unwrap();
        assert_eq!(lines.len(), 1, "{statement}");
        assert_eq!(lines[0][0], label);
        assert_eq!(statement["total"], Value::Null);
    }
    assert!(seen["label_chart"]["caption"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{label}'s ")));
    // The label's CSV, one line off: that line marked, the other matched.
    let reconciliation = &seen["reconciliation"];
    let status = reconciliation["status"].as_str().unwrap();
    assert!(status.starts_with("1 mismatched,"), "{status}");
    let classes: Vec<&str> = reconciliation["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["class"].as_str().unwrap())
        .collect();
    let mut sorted = classes.clone();
    sorted.sort();
    assert_eq!(sorted, ["matched", "mismatched"], "{reconciliation}");
    check_page(seen, shots, "statements");
}

/// The Generations page followed a licensed remix to its output, played
/// it, and showed a refusal and a label key's 403 as messages.
fn check_generations(data: &Path, cover: &Value, seen: &Value, shots: &Path) {
    let licensed = &seen["licensed"];
    let status = licensed["status"].as_str().unwrap();
    assert!(
        status.starts_with("job ") && status.ends_with(" done"),
        "{licensed}"
    );
    let progress: Vec<&str> = licensed["progress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let recording = cover["derivative"]["recording"].as_str().unwrap();
    assert!(
        progress[0].ends_with(&format!("requested (remix of {recording})")),
        "{progress:?}"
    );
    assert!(
        progress
            .iter()
            .any(|p| p.contains(": step 1 load-stems on ")),
        "{progress:?}"
    );
    assert!(
        progress[progress.len() - 2].contains("published derivative"),
        "{progress:?}"
    );
    assert!(progress[progress.len() - 1].ends_with("Content Credentials issued"));
    // The file played is the one the log says was distributed.
    let derivative = seen["output"]["Derivative"].as_str().unwrap();
    let lineage = ok_json(data, &["lineage", derivative]);
    let issued = lineage["generation_steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "generation.credentials-issued")
        .unwrap();
    assert_eq!(
        seen["output"]["File as distributed"],
        issued["data"]["file"]
    );
    assert_eq!(seen["player"][0], "blob:");
    assert!(seen["player"][1].as_f64().unwrap() > 1.0, "{seen}");
    // Refused by the licence, and refused to a label: said on the page.
    let refused = &seen["refused"];
    assert!(
        refused["status"].as_str().unwrap().ends_with(" refused"),
        "{refused}"
    );
    assert!(
        refused["progress"][0]
            .as_str()
            .unwrap()
            .contains("tempo_out_of_bounds"),
        "{refused}"
    );
    assert!(
        seen["as_label"]["status"]
            .as_str()
            .unwrap()
            .contains("(403)"),
        "{seen}"
    );
    check_page(seen, shots, "generations");
}

#[test]
fn bump_adds_one_minor_unit() {
    assert_eq!(bump("144.95"), "144.96");
    assert_eq!(bump("5040"), "5041");
    assert_eq!(bump("0.09"), "0.10");
}

#[test]
fn the_audit_page_verifies_the_log_in_the_browser() {
    let Some(python) = browser() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    for n in 0..5 {
        ok(
            data,
            &[
                "append",
                "--stream",
                &format!("audit-{}", n % 2),
                "--type",
                "test.noted",
                "--data",
                &json!({ "n": n }).to_string(),
            ],
        );
    }
    let auditor = api_token(data, "auditor");
    let generator = api_token(data, "generator");
    let key = ok(data, &["key"]).trim().to_string();
    let server = Server::start(data);
    let shots = screenshots();
    let seen = drive(
        &python,
        "audit.py",
        &[
            format!("http://{}/", server.address()),
            auditor.clone(),
            generator,
            "3".into(),
            shots.display().to_string(),
        ],
    );
    server.stop();

    // The log as the CLI knows it, every checkpoint's signature verified.
    let latest = ok(data, &["checkpoint"]);
    let size: u64 = latest.lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(seen["size"], size.to_string(), "{seen}");
    assert_eq!(seen["origin"], latest.lines().next().unwrap());
    assert_eq!(seen["verifier_key"], key);
    assert!(
        seen["policy"]
            .as_str()
            .unwrap()
            .starts_with("This log runs without a witness policy"),
        "{seen}"
    );
    let history = seen["history"].as_array().unwrap();
    assert_eq!(history.len() as u64, size + 1, "{seen}");
    for (row, expected_size) in history.iter().zip((0..=size).rev()) {
        assert_eq!(row[0], expected_size.to_string());
        assert_eq!(row[2], "verified", "{row}");
    }
    let proof = ok_json(data, &["proof", "inclusion", "--seq", "3"]);
    assert_eq!(history[0][1], proof["root_hash"]);

    // Errors are messages on the page.
    let without_key = seen["without_key"].as_str().unwrap();
    assert!(
        without_key.starts_with("Not signed in (401)"),
        "{without_key}"
    );
    let forbidden = seen["forbidden_key"].as_str().unwrap();
    assert!(forbidden.contains("(403)"), "{forbidden}");
    assert!(seen["unknown_key"].as_str().unwrap().contains("(401)"));
    assert!(seen["missing_event"].as_str().unwrap().contains("(404)"));

    // Verified in the browser, and refused when anything is changed.
    let event = seen["event"].as_str().unwrap();
    assert!(event.starts_with("event 1 verified"), "{event}");
    let events = ok(data, &["events"]);
    let leaf_hash = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["seq"] == 1)
        .unwrap()["leaf_hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(event.contains(&leaf_hash), "{event}");
    let consistency = seen["consistency"].as_str().unwrap();
    assert!(consistency.starts_with("consistent: "), "{consistency}");
    let tampered = &seen["tampered"];
    assert_eq!(tampered["honest"], "accepted", "{tampered}");
    assert_eq!(tampered["consistent"], "accepted", "{tampered}");
    for case in ["proof_hash", "leaf_byte", "consistency_hash", "signature"] {
        let outcome = tampered[case].as_str().unwrap();
        assert!(outcome.starts_with("rejected: "), "{case}: {outcome}");
    }

    // The key in sessionStorage only; every control named; same origin only.
    assert_eq!(seen["key_storage"], json!([auditor, 0]));
    assert_eq!(seen["key_field_name"], "API key");
    // Every control is reached by Tab, in reading order, with a visible
    // focus outline.
    let tabbed: Vec<&str> = seen["tab_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tabbed,
        [
            "Skip to the page",
            "API key",
            "Use key",
            "Forget key",
            "Dispute",
            "Statements",
            "Generations",
            "Audit",
            "Event seq",
            "Verify event",
            "Older tree size",
            "Newer tree size",
            "Verify consistency",
        ]
    );
    for stop in seen["tab_order"].as_array().unwrap() {
        assert_eq!(stop["outlined"], true, "{stop}");
    }
    check_page(&seen, &shots, "audit");
}

#[test]
fn the_audit_page_checks_witness_cosignatures_in_the_browser() {
    let Some(python) = browser() else { return };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    append(&log, 0);
    let log_key = ok(&log, &["key"]).trim().to_owned();
    let (w1, w2, policy) = two_witnesses(dir.path(), &log_key);
    let server = Server::start_with_env(&log, &[("LEDGERLINE_WITNESS_POLICY", &policy)]);
    for n in 1..3 {
        append(&log, n);
    }
    let latest = ok(&log, &["checkpoint"]);
    eventually("the latest checkpoint to be witnessed", || {
        let reply = server.get("/v1/checkpoint?witnessed=true", None);
        (reply.status == 200 && reply.body.lines().nth(1) == latest.lines().nth(1)).then_some(())
    });
    let latest: u64 = latest.lines().nth(1).unwrap().parse().unwrap();
    let shots = screenshots();
    let seen = drive(
        &python,
        "audit_witnesses.py",
        &[
            format!("http://{}/", server.address()),
            shots.display().to_string(),
        ],
    );
    server.stop();

    // The policy as the file names it; the latest checkpoint witnessed.
    assert_eq!(
        seen["witnesses"],
        json!([["w1", w1.key()], ["w2", w2.key()]]),
        "{seen}"
    );
    assert!(
        seen["policy"]
            .as_str()
            .unwrap()
            .starts_with("A checkpoint is witnessed once 2 of these 2 witnesses"),
        "{seen}"
    );
    assert_eq!(
        seen["latest_witnessed"],
        format!("size {latest}, its cosignatures verified")
    );
    // The newest row's cosignatures, each verified in the browser.
    let newest = &seen["history"][0];
    assert_eq!(newest[0], latest.to_string(), "{seen}");
    let cosignatures: Vec<&str> = newest[3].as_str().unwrap().lines().collect();
    assert_eq!(cosignatures.len(), 3, "{newest}");
    assert!(cosignatures[0].starts_with("w1: cosignature verified ("));
    assert!(cosignatures[1].starts_with("w2: cosignature verified ("));
    assert_eq!(
        cosignatures[2],
        "witnessed: 2 of 2 required cosignatures verified"
    );

    // The verifier accepts what the witnesses signed and nothing changed.
    let tampered = &seen["tampered"];
    assert_eq!(
        tampered["honest"],
        json!(["w1: verified", "w2: verified"]),
        "{tampered}"
    );
    for case in ["signature_byte", "timestamp_byte"] {
        assert_eq!(
            tampered[case],
            json!([
                "w1: the cosignature does not verify over the checkpoint",
                "w2: verified"
            ]),
            "{case}: {tampered}"
        );
    }
    let body_edited = tampered["body_edited"][0].as_str().unwrap();
    assert!(body_edited.starts_with("rejected: "), "{tampered}");
    for case in ["wrong_key_id", "log_key_as_witness_key"] {
        let outcome = tampered[case].as_str().unwrap();
        assert!(outcome.starts_with("rejected: "), "{case}: {outcome}");
    }
    check_page(&seen, &shots, "audit-witnessed");
}

#[test]
fn tab_reaches_every_control_of_every_page_in_reading_order() {
    let Some(python) = browser() else { return };
    let dir = tempfile::tempdir().unwrap();
    ok(
        dir.path(),
        &[
            "append",
            "--stream",
            "s",
            "--type",
            "test.noted",
            "--data",
            "{}",
        ],
    );
    let server = Server::start(dir.path());
    let seen = drive(
        &python,
        "tab_walk.py",
        &[format!("http://{}/", server.address())],
    );
    server.stop();
    let header = [
        "Skip to the page",
        "API key",
        "Use key",
        "Forget key",
        "Dispute",
        "Statements",
        "Generations",
        "Audit",
    ];
    let pages: [(&str, &[&str]); 3] = [
        ("dispute", &["Audio file"]),
        ("statements", &["Period", "Currency", "Show statements"]),
        (
            "generations",
            &[
                "Recording (ISRC)",
                "Requested by (party)",
                "Territory",
                "Recipe",
                "Tempo rate",
                "Semitones",
                "Voice model (a cover's)",
                "Request generation",
            ],
        ),
    ];
    for (page, controls) in pages {
        let stops = seen[page].as_array().unwrap();
        for stop in stops {
            assert_eq!(stop["outlined"], true, "{page}: {stop}");
        }
        // A month input's fields are Tab stops of one control: one name.
        let mut names: Vec<&str> = stops.iter().map(|s| s["name"].as_str().unwrap()).collect();
        names.dedup();
        let expected: Vec<&str> = header.iter().chain(controls).copied().collect();
        assert_eq!(names, expected, "{page}");
    }
}
