//! `ledgerline audio transcribe`: the notes of an audio file, by Spotify's
//! Basic Pitch network ([`inference::transcribe`]), as JSON, CSV or a
//! Standard MIDI File, and optionally the network's stitched
//! posteriorgrams, for comparison with another runtime.

use inference::artifacts::{self, ArtifactError};
use inference::gpu::{Backend, Engine};
use inference::transcribe::{self, midi, BasicPitch, ModelFileError, TranscribeError};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct TranscribeArgs {
    /// The audio file (WAV, FLAC, MP3 or Ogg Vorbis).
    input: PathBuf,
    /// json: {"model", "notes": [{start_s, end_s, pitch_midi, amplitude,
    /// bends}]}; csv: the reference's columns; midi: a Standard MIDI File.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Write the notes here instead of to standard output (required for midi).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the stitched note, onset and contour posteriorgrams as
    /// JSON: {"frame_rate_hz", "note": [[88]], "onset": [[88]], "contour": [[264]]}.
    #[arg(long, value_name = "FILE.json")]
    posteriorgrams: Option<PathBuf>,
    /// The network file; refused unless it is the published nmp.onnx.
    #[arg(long, default_value = transcribe::model::VENDORED_PATH)]
    model: PathBuf,
    /// Where the network runs: gpu, cpu, or auto (gpu when an adapter exists).
    #[arg(long, default_value = "auto")]
    backend: Backend,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Json,
    Csv,
    Midi,
}

pub fn run(args: TranscribeArgs) -> anyhow::Result<()> {
    if matches!(args.format, Format::Midi) && args.out.is_none() {
        return Err(super::bad_input(
            "--format midi writes a binary file: give it --out FILE.mid",
        ));
    }
    let model = BasicPitch::load(&args.model).map_err(|e| match e {
        ModelFileError::Read { .. } => anyhow::Error::new(e),
        other => super::bad_input(other.to_string()),
    })?;
    let audio = artifacts::decode_file(&args.input).map_err(|e| match e {
        ArtifactError::Io { .. } => anyhow::Error::new(e),
        other => super::bad_input(format!("{}: {other}", args.input.display())),
    })?;
    let engine = Engine::select(args.backend)?;
    eprintln!(
        "transcribing {} ({:.1} s) with {} on {}",
        args.input.display(),
        audio.duration_s(),
        transcribe::MODEL_NAME,
        engine
            .adapter()
            .map_or_else(|| "the CPU".to_string(), |a| format!("the GPU ({a})"))
    );
    let transcription = transcribe::transcribe(&model, &engine, &audio, |done, windows| {
        eprint!("\r  window {done} of {windows}");
        if done == windows {
            eprintln!();
        }
    })
    .map_err(|e| match e {
        TranscribeError::Model(_) => anyhow::Error::new(e),
        other => super::bad_input(format!("{}: {other}", args.input.display())),
    })?;
    if let Some(path) = &args.posteriorgrams {
        write(
            path,
            serde_json::to_vec(&transcription.posteriorgrams_json())?,
        )?;
    }
    let notes = match args.format {
        Format::Json => {
            let mut text = serde_json::to_vec_pretty(&transcription.notes_json())?;
            text.push(b'\n');
            text
        }
        Format::Csv => transcription.notes_csv().into_bytes(),
        Format::Midi => midi::midi_file(&transcription.notes),
    };
    match &args.out {
        Some(path) => write(path, notes)?,
        None => std::io::stdout().write_all(&notes)?,
    }
    eprintln!("{} notes", transcription.notes.len());
    Ok(())
}

fn write(path: &Path, bytes: Vec<u8>) -> anyhow::Result<()> {
    std::fs::write(path, bytes).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}
