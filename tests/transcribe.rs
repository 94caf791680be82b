//! End to end: `ledgerline audio transcribe` on a WAV of two known notes
//! prints them as JSON (with the model's name and hash), CSV and a MIDI
//! file, writes the posteriorgrams, and refuses a foreign model file, a
//! non-audio input and `--format midi` without `--out` with exit 2.

mod common;

use common::ledgerline;
use serde_json::Value;
use std::f64::consts::TAU;
use std::path::Path;

/// Two harmonic tones, A4 at 0.5 s and E5 at 1.5 s, in a 3-second 16-bit
/// mono WAV at the sample rate `common::wav` writes.
fn two_notes(path: &Path) {
    let rate = 44_100.0;
    let samples: Vec<i16> = (0..3 * 44_100)
        .map(|i| {
            let t = f64::from(i) / rate;
            let mut x = 0.0;
            for (start, f) in [(0.5, 440.0), (1.5, 659.26)] {
                let u: f64 = t - start;
                if (0.0..0.8).contains(&u) {
                    let envelope = (u / 0.01).min(1.0) * (-u * 1.5).exp();
                    x += envelope
                        * (1..=5)
                            .map(|h| (TAU * f * h as f64 * u).sin() / h as f64)
                            .sum::<f64>();
                }
            }
            (0.2 * x * 32767.0) as i16
        })
        .collect();
    std::fs::write(path, common::wav(&samples, false)).unwrap();
}

fn transcribe(args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    ledgerline(dir.path())
        .args(["audio", "transcribe"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn notes_come_out_as_json_csv_and_midi_with_the_posteriorgrams() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("two-notes.wav");
    two_notes(&wav);
    let wav = wav.to_str().unwrap();
    let posteriorgrams = dir.path().join("posteriorgrams.json");
    let output = transcribe(&[wav, "--posteriorgrams", posteriorgrams.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("window 2 of 2"), "{stderr}");
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["model"]["name"], "basic-pitch icassp_2022 nmp.onnx");
    assert_eq!(
        json["model"]["sha256"],
        "2c3c1d144bfa61ad236e92e169c13535c880469a12a047d4e73451f2c059a0ec"
    );
    let notes = json["notes"].as_array().unwrap();
    for (pitch, start) in [(69, 0.5), (76, 1.5)] {
        assert!(
            notes.iter().any(|n| n["pitch_midi"] == pitch
                && (n["start_s"].as_f64().unwrap() - start).abs() <= 0.05
                && n["bends"].as_array().is_some_and(|b| !b.is_empty())),
            "no {pitch} at {start} s in {json}"
        );
    }
    let grams: Value = serde_json::from_slice(&std::fs::read(&posteriorgrams).unwrap()).unwrap();
    assert_eq!(grams["frame_rate_hz"], 22_050.0 / 256.0);
    assert_eq!(grams["note"].as_array().unwrap().len(), 3 * 86);
    assert_eq!(grams["note"][0].as_array().unwrap().len(), 88);
    assert_eq!(grams["onset"][0].as_array().unwrap().len(), 88);
    assert_eq!(grams["contour"][0].as_array().unwrap().len(), 264);

    let csv = transcribe(&[wav, "--format", "csv"]);
    assert!(csv.status.success());
    let csv = String::from_utf8(csv.stdout).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("start_time_s,end_time_s,pitch_midi,velocity,pitch_bend")
    );
    assert_eq!(lines.count(), notes.len());

    let mid = dir.path().join("two-notes.mid");
    let output = transcribe(&[wav, "--format", "midi", "--out", mid.to_str().unwrap()]);
    assert!(output.status.success());
    let bytes = std::fs::read(&mid).unwrap();
    assert_eq!(&bytes[..4], b"MThd");
    assert_eq!(bytes.windows(4).filter(|w| w == b"MTrk").count(), 2);
}

#[test]
fn a_foreign_model_non_audio_or_midi_to_stdout_is_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("two-notes.wav");
    two_notes(&wav);
    let wav = wav.to_str().unwrap();
    let foreign = dir.path().join("model.onnx");
    std::fs::write(&foreign, b"not the network").unwrap();
    for (args, says) in [
        (
            vec![wav, "--model", foreign.to_str().unwrap()],
            "is not Basic Pitch's nmp.onnx",
        ),
        (vec![foreign.to_str().unwrap()], "not decodable audio"),
        (vec![wav, "--format", "midi"], "give it --out FILE.mid"),
    ] {
        let output = transcribe(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}
