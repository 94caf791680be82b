//! End to end: the main job runs on a fresh data directory, again on the same
//! one, and leaves a log that verifies: the voice model is trained, remixes
//! and a cover are generated through the pipeline, an unlicensed request is
//! refused, a step replays, and the outputs have spectrograms.

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
            "timbre cells learned",
            "generation.step voice-transfer",
            "generation.step time-stretch",
            "published at seq",
            "{\"kind\":\"voice\",\"ref\":\"voice-mara-v1\"",
            "recorded as generation.rejected",
            "\"op\":\"voice-transfer\"",
            "\"matches\":true",
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
    let count = |extension: &str| {
        std::fs::read_dir(dir.path().join("demo"))
            .unwrap()
            .filter(|entry| {
                entry
                    .as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|e| e == extension)
            })
            .count()
    };
    assert_eq!(count("wav"), 6, "two remixes and a cover per run");
    // A spectrogram per output, and one per input recording (the same
    // files each run).
    assert_eq!(count("png"), 8);
    assert!(ok(dir.path(), &["verify"]).starts_with("ok "));
}
