//! End to end: the main job runs on a fresh data directory, again on the same
//! one, and leaves a log that verifies.

mod common;

use common::{ok, run};

#[test]
fn the_demo_runs_twice_and_the_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..2 {
        let output = run(dir.path(), &["demo", "--seconds", "2"]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "demo round {round} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        for expected in [
            "\"registered\"",
            "published at seq",
            "period,currency,checkpoint_size",
            "matched by file-hash",
            "): verified",
            "ok ",
        ] {
            assert!(
                stdout.contains(expected),
                "round {round}: no {expected:?} in\n{stdout}"
            );
        }
    }
    let wavs = std::fs::read_dir(dir.path().join("demo"))
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|e| e == "wav")
        })
        .count();
    assert_eq!(wavs, 4, "two derivatives per run");
    assert!(ok(dir.path(), &["verify"]).starts_with("ok "));
}
