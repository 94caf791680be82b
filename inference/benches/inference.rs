//! Real-time factors (audio seconds per wall second) of each op on the GPU
//! path and on its CPU twin, in the same run, on a synthesized stereo
//! 44.1 kHz track (3 minutes unless `INFERENCE_BENCH_SECONDS` says otherwise).
//! Each op first runs once on one second of audio so shader compilation is
//! not timed. Run with `cargo bench -p inference --bench inference` or
//! `scripts/bench inference`. Needs a GPU adapter (lavapipe counts).

use inference::gpu::{Engine, Gpu};
use inference::kernels::{hpss, mix, phase_vocoder, resample, snr_db, yin};
use inference::sample_catalog::tracks;
use inference::Audio;
use std::time::Instant;

/// One op under test: runs on an engine and returns the audio to compare
/// (f0 tracks are compared as a signal of f0 values).
type Op = fn(&Engine, &Audio, &[Audio]) -> Vec<f32>;

fn hpss_op(engine: &Engine, audio: &Audio, _: &[Audio]) -> Vec<f32> {
    let parts = hpss::separate(engine, audio, &hpss::HpssParams::default()).expect("hpss");
    let mut out = parts.harmonic.interleaved();
    out.extend(parts.percussive.interleaved());
    out
}

fn stretch_op(engine: &Engine, audio: &Audio, _: &[Audio]) -> Vec<f32> {
    phase_vocoder::time_stretch(engine, audio, 1.25)
        .expect("time stretch")
        .interleaved()
}

fn pitch_op(engine: &Engine, audio: &Audio, _: &[Audio]) -> Vec<f32> {
    resample::pitch_shift(engine, audio, 3.0)
        .expect("pitch shift")
        .interleaved()
}

fn f0_op(engine: &Engine, audio: &Audio, _: &[Audio]) -> Vec<f32> {
    yin::track(engine, audio, &yin::YinParams::default())
        .expect("yin")
        .iter()
        .map(|f| f.f0_hz)
        .collect()
}

fn mix_op(engine: &Engine, _: &Audio, stems: &[Audio]) -> Vec<f32> {
    let inputs: Vec<mix::StemInput<'_>> = stems
        .iter()
        .zip([-2.0, 0.0, -4.0, 1.0])
        .map(|(audio, gain_db)| mix::StemInput { audio, gain_db })
        .collect();
    mix::mixdown(engine, &inputs, Some(-14.0))
        .expect("mix")
        .audio
        .interleaved()
}

fn time<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let started = Instant::now();
    let out = f();
    (out, started.elapsed().as_secs_f64())
}

fn main() {
    // `cargo bench` passes `--bench`; this harness takes no options.
    let seconds: f64 = std::env::var("INFERENCE_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180.0);
    let gpu = match Gpu::shared() {
        Ok(gpu) => gpu,
        Err(e) => {
            eprintln!("inference bench: {e}");
            std::process::exit(1);
        }
    };
    println!("adapter: {}", gpu.adapter());
    let track = &tracks()[1];
    let (stems, render_s) = time(|| track.render(seconds));
    let stems: Vec<Audio> = stems.into_iter().map(|s| s.audio).collect();
    let mixture = track.render_mixture(seconds);
    println!(
        "track: {:?}, {seconds} s stereo at {} Hz (synthesized in {render_s:.1} s)",
        track.title, mixture.sample_rate
    );
    let warmup_track = track.render_mixture(1.0);
    let warmup_stems: Vec<Audio> = track.render(1.0).into_iter().map(|s| s.audio).collect();

    let ops: [(&str, Op); 5] = [
        ("hpss", hpss_op),
        ("time-stretch x1.25", stretch_op),
        ("pitch-shift +3", pitch_op),
        ("f0 (yin)", f0_op),
        ("mix 4 stems", mix_op),
    ];
    let gpu_engine = Engine::Gpu(gpu);
    println!(
        "{:<20} {:>9} {:>10} {:>10} {:>10} {:>10} {:>9} {:>10}",
        "op", "audio_s", "gpu_s", "gpu_rtf", "cpu_s", "cpu_rtf", "gpu/cpu", "snr_db"
    );
    for (name, op) in ops {
        op(&gpu_engine, &warmup_track, &warmup_stems);
        let (on_gpu, gpu_s) = time(|| op(&gpu_engine, &mixture, &stems));
        let (on_cpu, cpu_s) = time(|| op(&Engine::Cpu, &mixture, &stems));
        let snr = snr_db(&on_cpu, &on_gpu);
        println!(
            "{name:<20} {seconds:>9.1} {gpu_s:>10.3} {:>10.1} {cpu_s:>10.3} {:>10.1} {:>9.2} {snr:>10.1}",
            seconds / gpu_s,
            seconds / cpu_s,
            cpu_s / gpu_s,
        );
    }
}
