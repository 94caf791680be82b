//! Polyphonic note transcription with Spotify's Basic Pitch (ICASSP 2022,
//! Apache-2.0), a trained network read from its published ONNX file
//! (`models/basic-pitch/`) and run by our own forward pass
//! ([`crate::onnx::cpu`]), tested against onnxruntime. The audio is
//! windowed and the outputs stitched ([`windows`]) and turned into notes
//! ([`notes`]) as the reference implementation does, so its frames and
//! notes line up with the reference's.

pub mod melody;
pub mod midi;
pub mod model;
pub mod notes;
pub mod windows;

use crate::audio::Audio;
use crate::gpu::{Engine, Gpu};
use crate::kernels::{resample, KernelError};
pub use model::{BasicPitch, ModelFileError, MODEL_ID, MODEL_NAME, MODEL_SHA256};
use model::{CONTOUR_BINS, NOTE_BINS};
pub use notes::Note;
use serde_json::{json, Value};

/// The network's sample rate.
pub const SAMPLE_RATE: u32 = 22_050;
/// Windows the CPU pass runs at a time: enough to amortise each
/// operator's setup, few enough to keep the intermediate tensors small.
const CPU_BATCH_WINDOWS: usize = 4;
/// The widest intermediate tensor of one window: 36 filters over the
/// 44,100 samples of the padded window, in f32.
const WIDEST_TENSOR_BYTES: u64 = 36 * 44_100 * 4;
/// The most windows one GPU submission takes: its intermediates (about
/// 100 MB a window) all stay on the device until it ends.
const GPU_BATCH_WINDOWS_MAX: usize = 64;

/// Windows per GPU submission: as many as the widest tensor lets one
/// storage binding hold, up to [`GPU_BATCH_WINDOWS_MAX`].
fn gpu_batch_windows(gpu: &Gpu) -> usize {
    ((gpu.storage_binding_bytes_max() / WIDEST_TENSOR_BYTES) as usize)
        .clamp(1, GPU_BATCH_WINDOWS_MAX)
}

/// Why audio could not be transcribed.
#[derive(Debug, thiserror::Error)]
pub enum TranscribeError {
    #[error("the audio is empty: there is nothing to transcribe")]
    Empty,
    #[error(
        "the audio holds a sample that is not a finite number (channel {channel}, frame {frame})"
    )]
    NotFinite { channel: usize, frame: usize },
    #[error("cannot resample the audio to 22,050 Hz: {0}")]
    Resample(#[from] KernelError),
    #[error(transparent)]
    Model(#[from] ModelFileError),
}

/// The stitched posteriorgrams (`frames × bins`, row-major) and the notes.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcription {
    pub frames: usize,
    pub note: Vec<f32>,
    pub onset: Vec<f32>,
    pub contour: Vec<f32>,
    pub notes: Vec<Note>,
}

/// `audio` as the network takes it: the mean of its channels (as
/// librosa's `mono=True`), resampled to 22,050 Hz with our band-limited
/// sinc resampler.
pub fn network_input(audio: &Audio) -> Result<Vec<f32>, TranscribeError> {
    if audio.frames() == 0 || audio.channel_count() == 0 {
        return Err(TranscribeError::Empty);
    }
    for (channel, samples) in audio.channels.iter().enumerate() {
        if let Some(frame) = samples.iter().position(|s| !s.is_finite()) {
            return Err(TranscribeError::NotFinite { channel, frame });
        }
    }
    let scale = 1.0 / audio.channel_count() as f32;
    let mono: Vec<f32> = (0..audio.frames())
        .map(|i| audio.channels.iter().map(|c| c[i]).sum::<f32>() * scale)
        .collect();
    if audio.sample_rate == SAMPLE_RATE {
        return Ok(mono);
    }
    let step = f64::from(audio.sample_rate) / f64::from(SAMPLE_RATE);
    let out_len = (audio.frames() as f64 / step).ceil() as usize;
    let resampled = resample::resample_cpu(
        &Audio::new(audio.sample_rate, vec![mono]),
        step,
        out_len,
        SAMPLE_RATE,
    )?;
    Ok(resampled.channels.into_iter().next().unwrap_or_default())
}

/// Transcribes `audio` on `engine`, calling `progress(done, windows)` after
/// each batch of windows.
pub fn transcribe(
    model: &BasicPitch,
    engine: &Engine,
    audio: &Audio,
    mut progress: impl FnMut(usize, usize),
) -> Result<Transcription, TranscribeError> {
    let input = network_input(audio)?;
    let count = windows::window_count(input.len());
    let batch_windows = match engine {
        Engine::Cpu => CPU_BATCH_WINDOWS,
        Engine::Gpu(gpu) => gpu_batch_windows(gpu),
    };
    let (mut note, mut onset, mut contour) = (Vec::new(), Vec::new(), Vec::new());
    for first in (0..count).step_by(batch_windows) {
        let batch = batch_windows.min(count - first);
        let samples: Vec<f32> = (first..first + batch)
            .flat_map(|w| windows::window(&input, w))
            .collect();
        let out = model.run(engine, &samples, batch)?;
        for w in 0..batch {
            // Window w's frames of an output with `bins` bins a frame.
            let frames_of = |bins: usize| {
                let size = model::WINDOW_FRAMES * bins;
                w * size..(w + 1) * size
            };
            windows::append_window(&mut note, &out.note[frames_of(NOTE_BINS)], NOTE_BINS);
            windows::append_window(&mut onset, &out.onset[frames_of(NOTE_BINS)], NOTE_BINS);
            windows::append_window(
                &mut contour,
                &out.contour[frames_of(CONTOUR_BINS)],
                CONTOUR_BINS,
            );
        }
        progress(first + batch, count);
    }
    let frames = windows::frame_count(input.len()).min(note.len() / NOTE_BINS);
    note.truncate(frames * NOTE_BINS);
    onset.truncate(frames * NOTE_BINS);
    contour.truncate(frames * CONTOUR_BINS);
    let notes = notes::notes(&note, &onset, &contour);
    Ok(Transcription {
        frames,
        note,
        onset,
        contour,
        notes,
    })
}

impl Transcription {
    /// The notes as `ledgerline audio transcribe` prints them: the model's
    /// name and hash, then each note's start and end (s), MIDI pitch, mean
    /// note posterior and pitch bends (thirds of a semitone, one a frame).
    pub fn notes_json(&self) -> Value {
        json!({
            "model": {"name": MODEL_NAME, "sha256": MODEL_SHA256},
            "notes": self.notes.iter().map(|n| json!({
                "start_s": n.start_s(),
                "end_s": n.end_s(),
                "pitch_midi": n.pitch_midi,
                "amplitude": f64::from(n.amplitude),
                "bends": n.bends,
            })).collect::<Vec<_>>(),
        })
    }

    /// The notes as CSV, with the reference's columns: start and end (s),
    /// MIDI pitch, velocity (`round(127 × amplitude)`), then the bends.
    pub fn notes_csv(&self) -> String {
        let mut csv = String::from("start_time_s,end_time_s,pitch_midi,velocity,pitch_bend\r\n");
        for n in &self.notes {
            let velocity = (127.0 * n.amplitude).round() as i32;
            csv.push_str(&format!(
                "{},{},{},{velocity}",
                n.start_s(),
                n.end_s(),
                n.pitch_midi
            ));
            for bend in &n.bends {
                csv.push_str(&format!(",{bend}"));
            }
            csv.push_str("\r\n");
        }
        csv
    }

    /// The stitched posteriorgrams, frame by frame, for comparison with
    /// another runtime.
    pub fn posteriorgrams_json(&self) -> Value {
        let rows = |values: &[f32], bins: usize| -> Vec<Vec<f64>> {
            values
                .chunks_exact(bins)
                .map(|row| row.iter().map(|&v| f64::from(v)).collect())
                .collect()
        };
        json!({
            "frame_rate_hz": f64::from(SAMPLE_RATE) / windows::HOP_SAMPLES as f64,
            "note": rows(&self.note, NOTE_BINS),
            "onset": rows(&self.onset, NOTE_BINS),
            "contour": rows(&self.contour, CONTOUR_BINS),
        })
    }
}
