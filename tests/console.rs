//! End to end: the web console in a real browser. Headless Chromium, driven
//! over WebDriver by `tests/console/audit.py` (Selenium), opens the Audit
//! page of a running server and checks what a reader sees: the log's size,
//! origin and key, the checkpoint history with every signature verified in
//! the browser, an event's inclusion and a consistency proof verified there,
//! the verifier refusing tampered proofs, leaves and notes, 401 and 403 as
//! messages, the key kept in sessionStorage only, every control named, no
//! request to another origin, and the page readable at 390 px. Screenshots
//! at 1280×800 and 390 px wide go to `target/console-screenshots/`.
//!
//! The browser and Selenium come from `scripts/test` (Debian's `chromium`
//! and `chromium-driver`, Selenium in `target/browser-venv`, or
//! `LEDGERLINE_BROWSER_PYTHON`). Without them the test says it was
//! skipped; with `LEDGERLINE_REQUIRE_BROWSER=1` (which `scripts/test` sets)
//! it fails.

mod common;

use common::server::Server;
use common::{api_token, ok, ok_json};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The Python with Selenium, when it and the browser are installed; None
/// (after saying why) when they are not and the run does not require them.
fn browser() -> Option<PathBuf> {
    let python = std::env::var_os("LEDGERLINE_BROWSER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-venv/bin/python")
        });
    let selenium = Command::new(&python)
        .args(["-c", "import selenium"])
        .output()
        .is_ok_and(|o| o.status.success());
    let driver = Path::new(CHROMEDRIVER).exists();
    if selenium && driver {
        return Some(python);
    }
    let why = format!(
        "selenium at {}: {}, {CHROMEDRIVER}: {}",
        python.display(),
        if selenium { "found" } else { "missing" },
        if driver { "found" } else { "missing" },
    );
    assert!(
        std::env::var("LEDGERLINE_REQUIRE_BROWSER").as_deref() != Ok("1"),
        "LEDGERLINE_REQUIRE_BROWSER=1 but the browser tests cannot run: {why}"
    );
    eprintln!("skipped: the console's browser test needs Chromium and Selenium ({why}); scripts/test installs them");
    None
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
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let output = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console/audit.py"))
        .arg(format!("http://{}/", server.address()))
        .args([&auditor, &generator, "3"])
        .arg(&shots)
        .output()
        .unwrap();
    server.stop();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();

    // The log as the CLI knows it, every checkpoint's signature verified.
    let latest = ok(data, &["checkpoint"]);
    let size: u64 = latest.lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(seen["size"], size.to_string(), "{seen}");
    assert_eq!(seen["origin"], latest.lines().next().unwrap());
    assert_eq!(seen["verifier_key"], key);
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
    assert_eq!(seen["unnamed_controls"], json!([]));
    assert_eq!(seen["other_origins"], json!([]), "{seen}");
    assert_eq!(seen["console_errors"], json!([]), "{seen}");
    assert_eq!(seen["narrow_overflow"], false);
    for shot in ["audit-1280x800.png", "audit-390.png"] {
        assert!(
            shots.join(shot).metadata().unwrap().len() > 10_000,
            "{shot}"
        );
    }
}
