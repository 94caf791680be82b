//! Real-time factors (audio seconds per wall second) of each op on the GPU
//! path and on its CPU twin, in the same run, on a synthesized stereo
//! 44.1 kHz track (3 minutes unless `INFERENCE_BENCH_SECONDS` says otherwise).
//! Each op first runs once on one second of audio so shader compilation is
//! not timed; `INFERENCE_BENCH_OPS=hpss,mix` runs only those rows. The
//! `c2pa` row runs a whole remix job of the track on the GPU path (an
//! SQLite log in a temporary directory) and reports the time its Content
//! Credentials take to sign and embed against the job's. Run with
//! `cargo bench -p inference --bench inference` or `scripts/bench inference`.
//! The `transcribe` row runs Basic Pitch's network over the whole track
//! (resampled to 22,050 Hz mono), its note posteriorgram compared.
//! Needs a GPU adapter (lavapipe counts).

use inference::gpu::{Engine, Gpu};
use inference::kernels::{hpss, mix, phase_vocoder, resample, snr_db, yin};
use inference::sample_catalog::{tracks, STEM_NAMES};
use inference::transcribe::{self, BasicPitch};
use inference::voice::ddsp::{self, Controls};
use inference::voice::VoiceModel;
use inference::Audio;
use std::sync::OnceLock;
use std::time::Instant;

/// One op under test: runs on an engine and returns the audio to compare
/// (f0 tracks are compared as a signal of f0 values).
type Op = fn(&Engine, &Audio, &[Audio]) -> Vec<f32>;

/// An op's output as one comparable signal: the channels one after another,
/// a plain copy, so the harness adds next to nothing to the op's time.
fn planar(audio: Audio) -> Vec<f32> {
    audio.channels.concat()
}

fn hpss_op(engine: &Engine, audio: &Audio, _: &[Audio]) -> Vec<f32> {
    let parts = hpss::separate(engine, audio, &hpss::HpssParams::default()).expect("hpss");
    let mut out = planar(parts.harmonic);
    out.extend(planar(parts.percussive));
    out
}

fn stretch_op(engine: &Engine, audio: &Audio, _: &[Audio]) -> Vec<f32> {
    planar(phase_vocoder::time_stretch(engine, audio, 1.25).expect("time stretch"))
}

fn pitch_op(engine: &Engine, audio: &Audio, _: &[Audio]) -> Vec<f32> {
    planar(resample::pitch_shift(engine, audio, 3.0).expect("pitch shift"))
}

fn f0_op(engine: &Engine, audio: &Audio, _: &[Audio]) -> Vec<f32> {
    yin::track(engine, audio, &yin::YinParams::default())
        .expect("yin")
        .iter()
        .map(|f| f.f0_hz)
        .collect()
}

/// The voice model and controls the ddsp row synthesizes from, prepared
/// before timing: the row measures synthesis, not f0 tracking or training.
static DDSP_INPUTS: OnceLock<(VoiceModel, Controls)> = OnceLock::new();

/// The track's own vocal line resynthesized (mono) from its f0 and loudness.
fn ddsp_op(engine: &Engine, audio: &Audio, _: &[Audio]) -> Vec<f32> {
    let (model, controls) = DDSP_INPUTS.get().expect("prepared before the rows");
    ddsp::synthesize(engine, model, controls, audio.frames()).expect("ddsp")
}

fn mix_op(engine: &Engine, _: &Audio, stems: &[Audio]) -> Vec<f32> {
    let inputs: Vec<mix::StemInput<'_>> = stems
        .iter()
        .zip([-2.0, 0.0, -4.0, 1.0])
        .map(|(audio, gain_db)| mix::StemInput { audio, gain_db })
        .collect();
    planar(
        mix::mixdown(engine, &inputs, Some(-14.0), Some(-1.0))
            .expect("mix")
            .audio,
    )
}

/// Basic Pitch, loaded (and its hash checked) before timing.
static BASIC_PITCH: OnceLock<BasicPitch> = OnceLock::new();

/// The mixture transcribed by the network: windows, forward pass,
/// stitching and notes; compared as its note posteriorgram.
fn transcribe_op(engine: &Engine, audio: &Audio, _: &[Audio]) -> Vec<f32> {
    let model = BASIC_PITCH.get_or_init(|| BasicPitch::load_vendored().expect("the model"));
    transcribe::transcribe(model, engine, audio, |_, _| {})
        .expect("transcribe")
        .note
}

fn time<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let started = Instant::now();
    let out = f();
    (out, started.elapsed().as_secs_f64())
}

fn main() {
    // `RUST_LOG=inference::gpu=debug` shows where each GPU run's time goes.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
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

    // `INFERENCE_BENCH_OPS=hpss,mix` runs only the ops whose names start so.
    let selected: Option<Vec<String>> = std::env::var("INFERENCE_BENCH_OPS")
        .ok()
        .map(|list| list.split(',').map(|s| s.trim().to_string()).collect());
    let wanted = |name: &str| {
        selected
            .as_ref()
            .is_none_or(|list| list.iter().any(|p| name.starts_with(p.as_str())))
    };

    let gpu_engine = Engine::Gpu(gpu);
    let vocals = &stems[STEM_NAMES
        .iter()
        .position(|&name| name == "vocals")
        .expect("the catalog renders vocals")];
    if wanted("ddsp") {
        let (ddsp_inputs, prepare_s) = time(|| {
            // A model from the first 20 s of the line, as an artist's stems would train it.
            let excerpt_len = vocals.frames().min(20 * vocals.sample_rate as usize);
            let excerpt = Audio::new(
                vocals.sample_rate,
                vocals
                    .channels
                    .iter()
                    .map(|c| c[..excerpt_len].to_vec())
                    .collect(),
            );
            let (model, _) = VoiceModel::train(&gpu_engine, &[excerpt]).expect("train voice");
            let controls = ddsp::controls_from(&gpu_engine, vocals).expect("ddsp controls");
            (model, controls)
        });
        DDSP_INPUTS
            .set(ddsp_inputs)
            .unwrap_or_else(|_| unreachable!("set once"));
        println!("ddsp: voice model and controls prepared in {prepare_s:.1} s (not timed)");
    }

    let ops: [(&str, Op); 7] = [
        ("hpss", hpss_op),
        ("time-stretch x1.25", stretch_op),
        ("pitch-shift +3", pitch_op),
        ("f0 (yin)", f0_op),
        ("mix 4 stems", mix_op),
        ("ddsp resynthesis", ddsp_op),
        ("transcribe (basic pitch)", transcribe_op),
    ];
    println!(
        "{:<26} {:>9} {:>10} {:>10} {:>10} {:>10} {:>9} {:>10}",
        "op", "audio_s", "gpu_s", "gpu_rtf", "cpu_s", "cpu_rtf", "gpu/cpu", "snr_db"
    );
    for (name, op) in ops.into_iter().filter(|(name, _)| wanted(name)) {
        op(&gpu_engine, &warmup_track, &warmup_stems);
        let (on_gpu, gpu_s) = time(|| op(&gpu_engine, &mixture, &stems));
        let (on_cpu, cpu_s) = time(|| op(&Engine::Cpu, &mixture, &stems));
        let snr = snr_db(&on_cpu, &on_gpu);
        println!(
            "{name:<26} {seconds:>9.1} {gpu_s:>10.3} {:>10.1} {cpu_s:>10.3} {:>10.1} {:>9.2} {snr:>10.1}",
            seconds / gpu_s,
            seconds / cpu_s,
            cpu_s / gpu_s,
        );
    }
    if wanted("c2pa") {
        // A remix as delivered (one mixdown) and one re-timed and re-keyed.
        c2pa_share(&gpu_engine, track, seconds, r#"{"kind": "remix"}"#);
        c2pa_share(
            &gpu_engine,
            track,
            seconds,
            r#"{"kind": "remix", "tempo_rate": 1.1, "semitones": 2}"#,
        );
    }
}

/// A remix job of `track` (all stems, plain mix) on `engine`, timed whole,
/// and its output's Content Credentials signed and embedded again on their
/// own: the share of the job that signing and embedding cost.
fn c2pa_share(
    engine: &Engine,
    track: &inference::sample_catalog::TrackSpec,
    seconds: f64,
    recipe: &str,
) {
    use inference::artifacts::ArtifactStore;
    use inference::credentials::SigningIdentity;
    use inference::pipeline::{GenerationRequest, Generator, LicensedInputs, LicensedRecording};
    use ledger::store::sqlite::{SqliteConfig, SqliteStore};

    let dir = tempfile::tempdir().expect("a temporary directory");
    let origin = ledger::checkpoint::DEFAULT_ORIGIN;
    let store = SqliteStore::open(SqliteConfig::new(dir.path(), origin)).expect("a log");
    let artifacts = ArtifactStore::open(dir.path()).expect("an artifact store");
    let identity = SigningIdentity::init(dir.path(), origin).expect("a signing identity");
    let mut stems = std::collections::BTreeMap::new();
    for stem in track.render(seconds) {
        let stored = artifacts.write_wav(&stem.audio).expect("a stem");
        stems.insert(
            stem.name.to_string(),
            schemas::ContentHash::parse(&stored.file_hash).expect("a hash"),
        );
    }
    let licensed = LicensedInputs {
        recording: Some(LicensedRecording {
            isrc: track.isrc.to_string(),
            stems,
            terms: Some(schemas::licence::LicenceTerms::unrestricted()),
            terms_seq: 0,
        }),
        voice_model: None,
    };
    let request = GenerationRequest::from_json(&format!(
        r#"{{"recording": "{}", "requested_by": "bench", "territory": "US", "recipe": {recipe}}}"#,
        track.isrc
    ))
    .and_then(|r| r.validate())
    .expect("a valid request");
    let generator = Generator {
        engine: *engine,
        artifacts: &artifacts,
        store: &store,
        identity: &identity,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (generated, job_s) = time(|| {
        runtime
            .block_on(generator.generate(uuid::Uuid::new_v4(), &request, &licensed))
            .expect("the remix job")
    });
    let sign_s = generated.credentialed.sign_embed_us as f64 / 1e6;
    let size_mb = std::fs::metadata(&generated.output.path)
        .map(|m| m.len() as f64 / 1e6)
        .unwrap_or(0.0);
    println!(
        "c2pa: remix {recipe} of {seconds} s audio: job {job_s:.3} s; of it, reading back and hashing the {size_mb:.1} MB output, signing its credentials and storing them {sign_s:.3} s = {:.2}% (goal < 5%)",
        100.0 * sign_s / job_s
    );
}
