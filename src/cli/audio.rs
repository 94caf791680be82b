//! `ledgerline audio ...`: runs one inference kernel by hand on files, so a
//! generation step can be reproduced and inspected. Each subcommand takes
//! `--backend gpu|cpu|auto` and prints a JSON line describing the step
//! (op, backend, adapter, kernel source hashes, input and output hashes,
//! duration); `f0` prints CSV instead. `train-voice` and `resynth` are the
//! voice-model steps of a cover; `spectrogram` draws a PNG to look at;
//! `transcribe` prints notes ([`super::transcribe`]).

use inference::artifacts::{self, ArtifactError};
use inference::gpu::{Backend, Engine};
use inference::kernels::{
    hpss, mix, phase_vocoder, resample, stft, yin, KernelError, KernelSource,
};
use inference::spectrogram::{self, SpectrogramError};
use inference::voice::{ddsp, VoiceModel, VoiceModelError};
use inference::Audio;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Subcommand)]
pub enum AudioCommand {
    /// Split into harmonic and percussive parts (librosa.effects.hpss defaults).
    Hpss {
        input: PathBuf,
        #[arg(long)]
        harmonic: PathBuf,
        #[arg(long)]
        percussive: PathBuf,
        #[command(flatten)]
        backend: BackendArg,
    },
    /// Shift pitch by semitones, keeping duration (phase vocoder + resampling).
    PitchShift {
        input: PathBuf,
        output: PathBuf,
        #[arg(long, allow_hyphen_values = true)]
        semitones: f64,
        #[command(flatten)]
        backend: BackendArg,
    },
    /// Change duration by a rate (2 = twice as fast), keeping pitch.
    TimeStretch {
        input: PathBuf,
        output: PathBuf,
        #[arg(long)]
        rate: f64,
        #[command(flatten)]
        backend: BackendArg,
    },
    /// Track the fundamental frequency (YIN); prints CSV time_s,f0_hz,confidence.
    F0 {
        input: PathBuf,
        #[command(flatten)]
        backend: BackendArg,
    },
    /// Mix stems given as IN:GAIN_DB, normalised to a target integrated loudness.
    Mix {
        output: PathBuf,
        #[arg(required = true, value_name = "IN:GAIN_DB", allow_hyphen_values = true)]
        inputs: Vec<String>,
        /// Integrated loudness target (EBU R128), LUFS.
        #[arg(long, default_value_t = -14.0, allow_hyphen_values = true)]
        target_lufs: f64,
        /// True-peak ceiling (BS.1770, 4× oversampled), dBTP: a mix whose
        /// peaks would pass it at the target is made quieter instead.
        #[arg(long, default_value_t = mix::PUBLISHED_TRUE_PEAK_CEILING_DBTP, allow_hyphen_values = true)]
        true_peak_ceiling: f64,
        /// Keep the gain-scaled sum as it is (no target, no ceiling).
        #[arg(long)]
        no_normalize: bool,
        #[command(flatten)]
        backend: BackendArg,
    },
    /// Learn a voice model from a consenting artist's licensed vocal stems.
    TrainVoice {
        /// The model file to write.
        output: PathBuf,
        #[arg(required = true, value_name = "STEM")]
        stems: Vec<PathBuf>,
        #[command(flatten)]
        backend: BackendArg,
    },
    /// Sing IN's melody and dynamics (YIN f0 and loudness) in MODEL's voice
    /// (harmonic-plus-noise synthesis); writes mono.
    Resynth {
        input: PathBuf,
        model: PathBuf,
        output: PathBuf,
        #[command(flatten)]
        backend: BackendArg,
    },
    /// Transcribe the notes (Spotify's Basic Pitch network): JSON, CSV or
    /// a MIDI file, and optionally the posteriorgrams.
    Transcribe(super::transcribe::TranscribeArgs),
    /// Draw a log-magnitude spectrogram PNG: magma colours, frequency on a
    /// log scale from 20 Hz, time and frequency axes, a dB colour scale;
    /// --width and --height size the plot inside the figure.
    Spectrogram {
        input: PathBuf,
        output: PathBuf,
        #[arg(long, default_value_t = 1200)]
        width: u32,
        #[arg(long, default_value_t = 400)]
        height: u32,
    },
}

#[derive(clap::Args)]
pub struct BackendArg {
    /// Where the kernels run: gpu, cpu, or auto (gpu when an adapter exists).
    #[arg(long, default_value = "auto")]
    backend: Backend,
}

/// Runs an audio subcommand on a blocking thread (GPU waits block).
pub async fn run(command: AudioCommand) -> anyhow::Result<ExitCode> {
    tokio::task::spawn_blocking(move || run_blocking(command)).await?
}

fn run_blocking(command: AudioCommand) -> anyhow::Result<ExitCode> {
    match command {
        AudioCommand::Hpss {
            input,
            harmonic,
            percussive,
            backend,
        } => {
            let (engine, audio, started) = prepare(&input, backend)?;
            let parts = hpss::separate(&engine, &audio, &hpss::HpssParams::default())
                .map_err(kernel_error)?;
            let outputs = [
                write(&harmonic, &parts.harmonic)?,
                write(&percussive, &parts.percussive)?,
            ];
            report(
                "hpss",
                &engine,
                &[stft::SOURCE, hpss::SOURCE],
                &input,
                &audio,
                &outputs,
                json!({}),
                started,
            );
        }
        AudioCommand::PitchShift {
            input,
            output,
            semitones,
            backend,
        } => {
            let (engine, audio, started) = prepare(&input, backend)?;
            let shifted =
                resample::pitch_shift(&engine, &audio, semitones).map_err(kernel_error)?;
            let outputs = [write(&output, &shifted)?];
            let kernels = [stft::SOURCE, phase_vocoder::SOURCE, resample::SOURCE];
            report(
                "pitch-shift",
                &engine,
                &kernels,
                &input,
                &audio,
                &outputs,
                json!({"semitones": semitones}),
                started,
            );
        }
        AudioCommand::TimeStretch {
            input,
            output,
            rate,
            backend,
        } => {
            let (engine, audio, started) = prepare(&input, backend)?;
            let stretched =
                phase_vocoder::time_stretch(&engine, &audio, rate).map_err(kernel_error)?;
            let outputs = [write(&output, &stretched)?];
            let kernels = [stft::SOURCE, phase_vocoder::SOURCE];
            report(
                "time-stretch",
                &engine,
                &kernels,
                &input,
                &audio,
                &outputs,
                json!({"rate": rate}),
                started,
            );
        }
        AudioCommand::F0 { input, backend } => {
            let (engine, audio, _) = prepare(&input, backend)?;
            let frames =
                yin::track(&engine, &audio, &yin::YinParams::default()).map_err(kernel_error)?;
            println!("time_s,f0_hz,confidence");
            for frame in frames {
                println!(
                    "{:.6},{:.3},{:.4}",
                    frame.time_s, frame.f0_hz, frame.confidence
                );
            }
        }
        AudioCommand::Mix {
            output,
            inputs,
            target_lufs,
            true_peak_ceiling,
            no_normalize,
            backend,
        } => {
            let engine = select(backend)?;
            let started = Instant::now();
            let mut stems = Vec::with_capacity(inputs.len());
            for spec in &inputs {
                let (path, gain) = spec.rsplit_once(':').ok_or_else(|| {
                    super::bad_input(format!(
                        "stem {spec:?}: expected IN:GAIN_DB, e.g. drums.wav:-3"
                    ))
                })?;
                let gain_db: f64 = gain.parse().map_err(|_| {
                    super::bad_input(format!(
                        "stem {spec:?}: gain {gain:?} is not a number of dB"
                    ))
                })?;
                stems.push((PathBuf::from(path), load(Path::new(path))?, gain_db));
            }
            let inputs_for_mix: Vec<mix::StemInput<'_>> = stems
                .iter()
                .map(|(_, audio, gain_db)| mix::StemInput {
                    audio,
                    gain_db: *gain_db,
                })
                .collect();
            let target = (!no_normalize).then_some(target_lufs);
            let ceiling = (!no_normalize).then_some(true_peak_ceiling);
            let mixed =
                mix::mixdown(&engine, &inputs_for_mix, target, ceiling).map_err(kernel_error)?;
            let written = write(&output, &mixed.audio)?;
            let line = json!({
                "op": "mix",
                "backend": engine.backend_name(),
                "adapter": engine.adapter().map(ToString::to_string),
                "kernels": {"mix": mix::SOURCE.source_hash()},
                "inputs": stems.iter().zip(&mixed.attribution_bp).map(|((path, audio, gain_db), bp)| json!({
                    "path": path,
                    "pcm_hash": artifacts::pcm_hash(audio),
                    "gain_db": gain_db,
                    "weight_bp": bp,
                })).collect::<Vec<_>>(),
                "outputs": [written],
                "loudness_lufs": mixed.loudness_lufs,
                "normalization_gain_db": mixed.normalization_gain_db,
                "ceiling_applied": mixed.ceiling_applied,
                "true_peak_dbtp": mixed.true_peak_dbtp.is_finite().then_some(mixed.true_peak_dbtp),
                "peak": mixed.peak,
                "duration_ms": started.elapsed().as_millis() as u64,
            });
            println!("{line}");
        }
        AudioCommand::TrainVoice {
            output,
            stems,
            backend,
        } => {
            let engine = select(backend)?;
            let audios = stems
                .iter()
                .map(|path| load(path))
                .collect::<anyhow::Result<Vec<Audio>>>()?;
            let started = Instant::now();
            let (model, training) = VoiceModel::train(&engine, &audios).map_err(voice_error)?;
            let bytes = model.to_bytes();
            std::fs::write(&output, &bytes)
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", output.display()))?;
            let line = json!({
                "op": "train-voice",
                "backend": engine.backend_name(),
                "adapter": engine.adapter().map(ToString::to_string),
                "kernels": {"yin": yin::SOURCE.source_hash()},
                "inputs": stems.iter().zip(&audios).map(|(path, audio)| json!({
                    "path": path,
                    "pcm_hash": artifacts::pcm_hash(audio),
                })).collect::<Vec<_>>(),
                "outputs": [{"path": output, "file_hash": artifacts::file_hash(&bytes)}],
                "training": {
                    "frames_total": training.frames_total,
                    "frames_voiced": training.frames_voiced,
                    "cells_filled": training.cells_filled,
                    "cells_total": training.cells_total,
                },
                "duration_ms": started.elapsed().as_millis() as u64,
            });
            println!("{line}");
        }
        AudioCommand::Resynth {
            input,
            model,
            output,
            backend,
        } => {
            let (engine, audio, started) = prepare(&input, backend)?;
            let model_bytes = std::fs::read(&model)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", model.display()))?;
            let voice = VoiceModel::from_bytes(&model_bytes)
                .map_err(|e| super::bad_input(format!("{}: {e}", model.display())))?;
            let controls = ddsp::controls_from(&engine, &audio).map_err(kernel_error)?;
            let samples = ddsp::synthesize(&engine, &voice, &controls, audio.frames())
                .map_err(kernel_error)?;
            let outputs = [write(
                &output,
                &Audio::new(audio.sample_rate, vec![samples]),
            )?];
            report(
                "resynth",
                &engine,
                &[yin::SOURCE, ddsp::KERNEL],
                &input,
                &audio,
                &outputs,
                json!({"voice_model": {"path": model, "file_hash": artifacts::file_hash(&model_bytes)}}),
                started,
            );
        }
        AudioCommand::Transcribe(args) => super::transcribe::run(args)?,
        AudioCommand::Spectrogram {
            input,
            output,
            width,
            height,
        } => {
            let audio = load(&input)?;
            let title = format!(
                "Spectrogram of {}",
                input.file_name().map_or_else(
                    || input.display().to_string(),
                    |n| n.to_string_lossy().into_owned()
                )
            );
            spectrogram::render_png(&audio, &output, width, height, &title).map_err(
                |e| match e {
                    SpectrogramError::Write { .. } => anyhow::Error::new(e),
                    other => super::bad_input(other.to_string()),
                },
            )?;
            let line = json!({
                "op": "spectrogram",
                "inputs": [{"path": input, "pcm_hash": artifacts::pcm_hash(&audio)}],
                "outputs": [{"path": output, "width_px": width, "height_px": height}],
            });
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn select(backend: BackendArg) -> anyhow::Result<Engine> {
    Ok(Engine::select(backend.backend)?)
}

fn load(path: &Path) -> anyhow::Result<Audio> {
    artifacts::decode_file(path).map_err(|e| match e {
        ArtifactError::Io { .. } => anyhow::Error::new(e),
        other => super::bad_input(format!("{}: {other}", path.display())),
    })
}

fn prepare(input: &Path, backend: BackendArg) -> anyhow::Result<(Engine, Audio, Instant)> {
    let engine = select(backend)?;
    let audio = load(input)?;
    Ok((engine, audio, Instant::now()))
}

fn kernel_error(error: KernelError) -> anyhow::Error {
    match error {
        KernelError::InvalidParameter(message) => super::bad_input(message),
        other => anyhow::Error::new(other),
    }
}

/// Bad stems are the user's to fix; a failing device is not.
fn voice_error(error: VoiceModelError) -> anyhow::Error {
    match error {
        VoiceModelError::Kernel(kernel) => kernel_error(kernel),
        other => super::bad_input(other.to_string()),
    }
}

/// Writes a 32-bit float WAV and describes it.
fn write(path: &Path, audio: &Audio) -> anyhow::Result<serde_json::Value> {
    let bytes = artifacts::encode_wav(audio);
    std::fs::write(path, &bytes).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok(json!({
        "path": path,
        "file_hash": artifacts::file_hash(&bytes),
        "pcm_hash": artifacts::pcm_hash(audio),
    }))
}

#[allow(clippy::too_many_arguments)]
fn report(
    op: &str,
    engine: &Engine,
    kernels: &[KernelSource],
    input: &Path,
    audio: &Audio,
    outputs: &[serde_json::Value],
    parameters: serde_json::Value,
    started: Instant,
) {
    let line = json!({
        "op": op,
        "parameters": parameters,
        "backend": engine.backend_name(),
        "adapter": engine.adapter().map(ToString::to_string),
        "kernels": kernels.iter().map(|k| (k.name.to_string(), json!(k.source_hash()))).collect::<serde_json::Map<_, _>>(),
        "inputs": [{"path": input, "pcm_hash": artifacts::pcm_hash(audio)}],
        "outputs": outputs,
        "duration_ms": started.elapsed().as_millis() as u64,
    });
    println!("{line}");
}
