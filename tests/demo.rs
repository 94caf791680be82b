//! End to end: the main job runs as the README's quick start runs it (from a
//! fresh working directory, with the default data directory and no flags),
//! again on the same data, and leaves a log that verifies: the voice model is
//! trained, remixes and a cover are generated through the pipeline, an
//! unlicensed request is refused, a step replays, and the outputs have
//! spectrograms and true peaks under the ceiling.

mod common;

use common::binary;
use std::path::Path;
use std::process::{Command, Output};

/// `ledgerline ARGS` as a new user runs it: in `cwd`, with nothing set in the
/// environment that the README does not mention, on a headless machine (no
/// `XDG_RUNTIME_DIR`, no display).
fn as_a_new_user(cwd: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .current_dir(cwd)
        .args(args)
        .env_remove("LEDGERLINE_DATA")
        .env_remove("LEDGERLINE_STORE")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DISPLAY")
        .output()
        .expect("ledgerline runs")
}

#[test]
fn the_quick_start_demo_runs_twice_from_a_fresh_directory_and_the_log_verifies() {
    let cwd = tempfile::tempdir().unwrap();
    for round in 0..2 {
        let output = as_a_new_user(cwd.path(), &["demo"]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "demo round {round} failed:\n{stdout}\n{stderr}"
        );
        // A user reads any "error" on the terminal as a failure: a headless
        // machine's missing window system must not print one.
        assert!(
            !stderr.to_lowercase().contains("error"),
            "round {round}: the demo printed an error on stderr:\n{stderr}"
        );
        for expected in [
            "ledgerline demo in ./ledgerline-data",
            "\"registered\"",
            "timbre cells learned",
            "generation.step voice-transfer",
            "generation.step transcribe",
            "\"op\":\"transcribe\",\"compared\":\"bytes\"",
            "generation.step time-stretch",
            "published at seq",
            "{\"kind\":\"voice\",\"ref\":\"voice-mara-v1\"",
            "recorded as generation.rejected",
            "refused: tempo_out_of_bounds: tempo rate 1.2",
            "refused: consent_withdrawn: ",
            "refused: not_participating: ",
            "to take down on",
            ": consent_withdrawn effective",
            ": not_participating effective",
            ": not participating (terms of seq",
            "\"op\":\"voice-transfer\"",
            "\"matches\":true",
            "period,currency,checkpoint_size",
            "Content Credentials valid",
            "matched by credentials",
            "C2PA state Trusted",
            "source type   compositeWithTrainedAlgorithmicMedia",
            "(inputTo, sha256:",
            "): verified",
            "ok ",
        ] {
            assert!(
                stdout.contains(expected),
                "round {round}: no {expected:?} in\n{stdout}"
            );
        }
    }
    let demo_dir = cwd.path().join("ledgerline-data").join("demo");
    let count = |extension: &str| {
        std::fs::read_dir(&demo_dir)
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
    // Every published file, as distributed (Content Credentials embedded),
    // keeps its true peak at or below EBU R128's -1 dBTP.
    for entry in std::fs::read_dir(&demo_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "wav") {
            continue;
        }
        let audio = inference::artifacts::decode_file(&path).unwrap();
        let measured = inference::kernels::mix::measure(&audio).unwrap();
        assert!(
            measured.true_peak_dbtp <= inference::kernels::mix::PUBLISHED_TRUE_PEAK_CEILING_DBTP,
            "{}: true peak {:.3} dBTP",
            path.display(),
            measured.true_peak_dbtp
        );
    }
    // A spectrogram per output, and one per input recording (the same
    // files each run).
    assert_eq!(count("png"), 8);
    let verify = as_a_new_user(cwd.path(), &["verify"]);
    assert!(
        String::from_utf8_lossy(&verify.stdout).starts_with("ok "),
        "{verify:?}"
    );
}
