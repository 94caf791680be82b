//! Basic Pitch's network, as shipped (`models/basic-pitch/nmp.onnx`), run by
//! the CPU forward pass (`inference::onnx::cpu`) and by onnxruntime, the
//! reference runtime, on the same two windows of synthesised audio (a chord
//! with onsets, and a glide over noise): every output, frame and bin agrees
//! within 2e-3. The stitched posteriorgrams of four seconds of notes, run
//! through our windowing and stitching, match the reference's windowing
//! and stitching around onnxruntime within 2e-3, and fewer than 0.5% of
//! the frame decisions at 0.3 differ.
//!
//! onnxruntime comes from PyPI, pinned, in `target/onnx-venv`, which
//! `scripts/test` makes (or `$LEDGERLINE_ONNX_PYTHON`). Without it the test
//! says it was skipped; with `LEDGERLINE_REQUIRE_ONNXRUNTIME=1` (which
//! `scripts/test` sets) it fails.

use inference::gpu::{Engine, Gpu};
use inference::onnx::{cpu, Model, Tensor};
use inference::transcribe::{self, BasicPitch};
use inference::Audio;
use std::f32::consts::TAU;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Samples per window of the network's input, at 22,050 Hz.
const WINDOW: usize = 43_844;
const SAMPLE_RATE: f32 = 22_050.0;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn model_path() -> PathBuf {
    manifest_dir().join("models/basic-pitch/nmp.onnx")
}

/// The Python with onnxruntime, or None after saying why not.
fn reference_python() -> Option<PathBuf> {
    let python = std::env::var_os("LEDGERLINE_ONNX_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("../target/onnx-venv/bin/python"));
    let works = Command::new(&python)
        .args(["-c", "import onnxruntime, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Some(python);
    }
    let why = format!(
        "the ONNX reference test needs onnxruntime at {}",
        python.display()
    );
    assert!(
        std::env::var("LEDGERLINE_REQUIRE_ONNXRUNTIME").as_deref() != Ok("1"),
        "LEDGERLINE_REQUIRE_ONNXRUNTIME=1 but {why}"
    );
    eprintln!("skipped: {why} (scripts/test installs it)");
    None
}

/// Runs `script` (in `tests/`) with `args` under `python` and returns the
/// JSON it prints.
fn run_reference(python: &Path, script: &str, args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let output = Command::new(python)
        .arg(manifest_dir().join("tests").join(script))
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

/// Raw little-endian f32, as the reference scripts read and write them.
fn write_f32(path: &Path, values: &[f32]) {
    let bytes: Vec<u8> = values.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// The largest absolute difference between `a` and `b`, and where.
fn largest_difference(a: &[f32], b: &[f32]) -> (f32, usize) {
    a.iter()
        .zip(b)
        .enumerate()
        .map(|(i, (x, y))| ((x - y).abs(), i))
        .fold((0f32, 0), |m, d| if d.0 > m.0 { d } else { m })
}

/// How many frame decisions at the 0.3 threshold `a` and `b` disagree on.
fn flipped_decisions(a: &[f32], b: &[f32]) -> usize {
    a.iter()
        .zip(b)
        .filter(|(x, y)| (**x >= 0.3) != (**y >= 0.3))
        .count()
}

/// Two windows: an A major chord whose notes start one after another, and
/// a glide from 220 to 440 Hz over quiet noise.
fn two_windows() -> Vec<f32> {
    let mut samples = Vec::with_capacity(2 * WINDOW);
    for i in 0..WINDOW {
        let t = i as f32 / SAMPLE_RATE;
        let mut x = 0.0;
        for (k, f) in [220.0, 277.18, 329.63].iter().enumerate() {
            let start = 0.3 * k as f32;
            if t >= start {
                let decay = (-(t - start) * 1.5).exp();
                x += 0.2 * decay * (TAU * f * t).sin();
            }
        }
        samples.push(x);
    }
    let mut state = 0x2545_f491u32;
    let mut phase = 0.0f32;
    for i in 0..WINDOW {
        let t = i as f32 / SAMPLE_RATE;
        let f = 220.0 * 2f32.powf(t / 2.0);
        phase = (phase + TAU * f / SAMPLE_RATE) % TAU;
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let noise = (state as f32 / u32::MAX as f32 - 0.5) * 0.01;
        samples.push(0.3 * phase.sin() + noise);
    }
    samples
}

#[test]
fn the_cpu_pass_matches_onnxruntime_on_every_frame_and_bin() {
    let Some(python) = reference_python() else {
        return;
    };
    let model = Model::parse(&std::fs::read(model_path()).unwrap()).unwrap();
    let samples = two_windows();
    let shape = vec![2, WINDOW, 1];
    let ours = cpu::run(
        &model,
        vec![(
            model.inputs[0].clone(),
            Tensor::f32(shape.clone(), samples.clone()),
        )],
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.f32");
    write_f32(&input, &samples);
    let shape_json = serde_json::to_string(&shape).unwrap();
    let reference = run_reference(
        &python,
        "onnx_reference.py",
        &[
            model_path().as_os_str(),
            input.as_os_str(),
            shape_json.as_ref(),
            dir.path().as_os_str(),
        ],
    );
    assert_eq!(reference["names"].as_array().unwrap().len(), ours.len());
    for (index, tensor) in ours.iter().enumerate() {
        let expected_shape: Vec<usize> =
            serde_json::from_value(reference["shapes"][index].clone()).unwrap();
        assert_eq!(tensor.shape, expected_shape, "output {index}");
        let expected = read_f32(&dir.path().join(format!("{index}.f32")));
        let got = tensor.floats().unwrap();
        let (worst, at) = largest_difference(got, &expected);
        assert!(
            worst <= 2e-3,
            "output {index} ({}) differs by {worst} at element {at}",
            reference["names"][index]
        );
        eprintln!(
            "output {index} {:?}: largest difference {worst:e}",
            tensor.shape
        );
        // Not all zeros: the windows hold notes the network hears.
        assert!(got.iter().any(|&p| p > 0.5), "output {index} is flat");
    }
}

/// Four seconds at 22,050 Hz: two notes and a chord, so the stitched
/// posteriorgram spans window joins with notes across them.
fn four_seconds() -> Audio {
    let rate = 22_050;
    let mut samples = vec![0f32; 4 * rate as usize];
    for (start, pitches) in [(0.2f32, &[69u8][..]), (1.3, &[72]), (2.1, &[60, 64, 67])] {
        for &p in pitches {
            let f = 440.0 * 2f32.powf((f32::from(p) - 69.0) / 12.0);
            for (i, s) in samples.iter_mut().enumerate() {
                let t = i as f32 / rate as f32 - start;
                if t >= 0.0 {
                    let tone: f32 = (1..=5)
                        .map(|k| (TAU * f * k as f32 * t).sin() / k as f32)
                        .sum();
                    *s += 0.15 * (-t * 2.0).exp() * tone;
                }
            }
        }
    }
    Audio::new(rate, vec![samples])
}

#[test]
fn the_stitched_posteriorgrams_match_the_reference_pipeline() {
    let Some(python) = reference_python() else {
        return;
    };
    let model = BasicPitch::load_vendored().unwrap();
    let audio = four_seconds();
    let ours = transcribe::transcribe(&model, &Engine::Cpu, &audio, |_, _| {}).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("audio.f32");
    write_f32(&input, &audio.channels[0]);
    let shapes = run_reference(
        &python,
        "basic_pitch_reference.py",
        &[
            model_path().as_os_str(),
            input.as_os_str(),
            dir.path().as_os_str(),
        ],
    );
    let mut decisions = 0usize;
    let mut flipped = 0usize;
    for (key, got, bins) in [
        ("note", &ours.note, 88),
        ("onset", &ours.onset, 88),
        ("contour", &ours.contour, 264),
    ] {
        assert_eq!(shapes[key], serde_json::json!([ours.frames, bins]), "{key}");
        let expected = read_f32(&dir.path().join(format!("{key}.f32")));
        assert_eq!(expected.len(), got.len(), "{key}");
        let (worst, _) = largest_difference(got, &expected);
        eprintln!(
            "{key}: {} frames, largest difference {worst:e}",
            ours.frames
        );
        assert!(worst <= 2e-3, "{key} differs by {worst}");
        decisions += got.len();
        flipped += flipped_decisions(got, &expected);
    }
    assert!(
        (flipped as f64) < 0.005 * decisions as f64,
        "{flipped} of {decisions} frame decisions at 0.3 differ"
    );
}

/// The device for the GPU pass: CI installs lavapipe, so a missing adapter
/// fails the test rather than skipping it.
fn device() -> &'static Gpu {
    Gpu::shared().unwrap_or_else(|e| {
        panic!("the GPU pass's test needs a wgpu adapter (CI installs Mesa lavapipe): {e}")
    })
}

#[test]
fn the_gpu_pass_matches_the_cpu_pass_on_every_frame_and_bin() {
    let model = BasicPitch::load_vendored().unwrap();
    let samples = two_windows();
    let cpu = model.run(&Engine::Cpu, &samples, 2).unwrap();
    let gpu = model.run(&Engine::Gpu(device()), &samples, 2).unwrap();
    let mut decisions = 0usize;
    let mut flipped = 0usize;
    for (name, a, b) in [
        ("note", &cpu.note, &gpu.note),
        ("onset", &cpu.onset, &gpu.onset),
        ("contour", &cpu.contour, &gpu.contour),
    ] {
        assert_eq!(a.len(), b.len(), "{name}");
        let (worst, _) = largest_difference(a, b);
        eprintln!("{name}: largest GPU-CPU difference {worst:e}");
        assert!(worst <= 2e-3, "{name} differs by {worst}");
        decisions += a.len();
        flipped += flipped_decisions(a, b);
    }
    assert!(
        (flipped as f64) < 0.005 * decisions as f64,
        "{flipped} of {decisions} frame decisions at 0.3 differ"
    );
    // The notes of a whole transcription are the same on both.
    let audio = four_seconds();
    let on_cpu = transcribe::transcribe(&model, &Engine::Cpu, &audio, |_, _| {}).unwrap();
    let on_gpu = transcribe::transcribe(&model, &Engine::Gpu(device()), &audio, |_, _| {}).unwrap();
    let summary = |t: &transcribe::Transcription| {
        t.notes
            .iter()
            .map(|n| (n.start_frame, n.end_frame, n.pitch_midi))
            .collect::<Vec<_>>()
    };
    assert_eq!(summary(&on_cpu), summary(&on_gpu));
}
