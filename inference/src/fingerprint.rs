//! Acoustic fingerprints of decoded audio: Chromaprint (the algorithm behind
//! AcoustID) through its pure-Rust port `rusty-chromaprint`, with
//! Chromaprint's default configuration.
//!
//! A derivative's fingerprint is recorded in `generation.derivative-published`
//! so that a copy found in the wild that was re-encoded, resampled, changed
//! in gain or trimmed, and so no longer matches by file or PCM hash, can
//! still be traced to it; the matching itself lives in
//! `projections::fingerprint`, next to the index it searches.

use crate::artifacts::{decode_stream, ArtifactError, PcmHasher, StreamSpec, DECODED_SAMPLES_MAX};
use crate::audio::Audio;
use base64::Engine as _;
use rusty_chromaprint::{Configuration, Fingerprinter};
use schemas::generation::{AcousticFingerprint, FINGERPRINT_CHROMAPRINT_TEST2};
use std::path::Path;

/// Frames of the mono downmix handed to the fingerprinter at a time, so a
/// 20-minute track is never copied whole into 16-bit samples.
const CHUNK_FRAMES: usize = 1 << 16;

/// Why a fingerprint could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    #[error("cannot fingerprint audio at {sample_rate} Hz with {channels} channels: Chromaprint needs at least one channel above 1000 Hz ({reason})")]
    Unsupported {
        sample_rate: u32,
        channels: usize,
        reason: String,
    },
    #[error(transparent)]
    Decode(#[from] ArtifactError),
}

/// The Chromaprint configuration every recorded fingerprint uses
/// ([`FINGERPRINT_CHROMAPRINT_TEST2`]); a query must be computed with the same.
pub fn configuration() -> Configuration {
    Configuration::preset_test2()
}

/// The Chromaprint items of `audio`: its channels averaged to mono, as
/// 16-bit samples at the track's own rate (the fingerprinter resamples to
/// 11025 Hz itself), one item per 4096/3 resampled samples (about 124 ms).
pub fn fingerprint(audio: &Audio) -> Result<Vec<u32>, FingerprintError> {
    let channels = audio.channel_count();
    let unsupported = |reason: String| FingerprintError::Unsupported {
        sample_rate: audio.sample_rate,
        channels,
        reason,
    };
    if channels == 0 {
        return Err(unsupported("the audio has no channels".into()));
    }
    let mut printer = Fingerprinter::new(&configuration());
    printer
        .start(audio.sample_rate, 1)
        .map_err(|e| unsupported(e.to_string().trim_end().to_string()))?;
    let scale = 1.0 / channels as f32;
    let mut chunk = Vec::with_capacity(CHUNK_FRAMES.min(audio.frames()));
    for start in (0..audio.frames()).step_by(CHUNK_FRAMES) {
        let end = (start + CHUNK_FRAMES).min(audio.frames());
        chunk.clear();
        chunk.extend((start..end).map(|i| {
            let sum: f32 = audio.channels.iter().map(|channel| channel[i]).sum();
            to_i16(sum * scale)
        }));
        printer.consume(&chunk);
    }
    printer.finish();
    Ok(printer.fingerprint().to_vec())
}

/// The Chromaprint items of the audio file at `path`, computed as it is
/// decoded ([`decode_stream`], within [`DECODED_SAMPLES_MAX`]), so the
/// decoded audio is never held whole: the same items as
/// [`fingerprint`] of the decoded file.
pub fn fingerprint_file(path: &Path) -> Result<Vec<u32>, FingerprintError> {
    let mut printer = StreamFingerprinter::new();
    decode_stream(path, DECODED_SAMPLES_MAX, &mut |spec, samples| {
        printer.feed(spec, samples)
    })?;
    printer.finish()
}

/// What one decode of an audio file yields for tracing it: its
/// [`crate::artifacts::pcm_hash`], and its fingerprint or why it has none.
#[derive(Debug)]
pub struct DecodedIdentity {
    pub pcm_hash: String,
    pub fingerprint: Result<Vec<u32>, FingerprintError>,
}

/// [`pcm_hash_of_file`](crate::artifacts::pcm_hash_of_file) and
/// [`fingerprint_file`] in one decode of the file: the decode costs as much
/// as either, so a caller that needs both pays for it once. `Err` when the
/// file does not decode (within [`DECODED_SAMPLES_MAX`]).
pub fn pcm_hash_and_fingerprint_of_file(path: &Path) -> Result<DecodedIdentity, ArtifactError> {
    let mut hasher = PcmHasher::default();
    let mut printer = StreamFingerprinter::new();
    decode_stream(path, DECODED_SAMPLES_MAX, &mut |spec, samples| {
        hasher.feed(spec, samples);
        printer.feed(spec, samples);
    })?;
    Ok(DecodedIdentity {
        pcm_hash: hasher.finish(),
        fingerprint: printer.finish(),
    })
}

/// A fingerprint computed run by run as a [`decode_stream`] sink: each run
/// is averaged to mono 16-bit samples at the stream's own rate, as
/// [`fingerprint`] does for decoded audio.
struct StreamFingerprinter {
    printer: Fingerprinter,
    started: Result<(), FingerprintError>,
    mono: Vec<i16>,
}

impl StreamFingerprinter {
    fn new() -> StreamFingerprinter {
        StreamFingerprinter {
            printer: Fingerprinter::new(&configuration()),
            started: Ok(()),
            mono: Vec::new(),
        }
    }

    fn feed(&mut self, spec: StreamSpec, samples: &[f32]) {
        if spec.first {
            self.started = self.printer.start(spec.sample_rate, 1).map_err(|e| {
                FingerprintError::Unsupported {
                    sample_rate: spec.sample_rate,
                    channels: spec.channels,
                    reason: e.to_string().trim_end().to_string(),
                }
            });
        }
        if self.started.is_err() {
            return;
        }
        let scale = 1.0 / spec.channels as f32;
        self.mono.clear();
        self.mono.extend(
            samples
                .chunks_exact(spec.channels)
                .map(|frame| to_i16(frame.iter().sum::<f32>() * scale)),
        );
        self.printer.consume(&self.mono);
    }

    fn finish(mut self) -> Result<Vec<u32>, FingerprintError> {
        self.started?;
        self.printer.finish();
        Ok(self.printer.fingerprint().to_vec())
    }
}

/// `items` as recorded in an event: each item little-endian, base64.
pub fn to_record(items: &[u32]) -> AcousticFingerprint {
    let bytes: Vec<u8> = items.iter().flat_map(|item| item.to_le_bytes()).collect();
    AcousticFingerprint {
        algorithm: FINGERPRINT_CHROMAPRINT_TEST2.to_string(),
        items: base64::engine::general_purpose::STANDARD.encode(bytes),
    }
}

/// A sample nominally in [-1, 1] as 16-bit PCM, clipped at full scale.
fn to_i16(sample: f32) -> i16 {
    (sample.clamp(-1.0, 1.0) * f32::from(i16::MAX)).round() as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::TAU;

    /// A few seconds of a chord whose notes change every half second, so
    /// the chroma features (and hence the items) vary over time.
    fn melody(sample_rate: u32, seconds: f32, channels: usize) -> Audio {
        let notes = [220.0, 261.63, 329.63, 392.0, 293.66, 349.23, 246.94, 440.0];
        let frames = (seconds * sample_rate as f32) as usize;
        let mono: Vec<f32> = (0..frames)
            .map(|i| {
                let t = i as f32 / sample_rate as f32;
                let note = notes[(t * 2.0) as usize % notes.len()];
                0.3 * (TAU * note * t).sin() + 0.2 * (TAU * note * 1.5 * t).sin()
            })
            .collect();
        Audio::new(sample_rate, vec![mono; channels])
    }

    #[test]
    fn a_fingerprint_has_one_item_per_124_ms_and_ignores_channel_count() {
        let ten = fingerprint(&melody(44_100, 10.0, 1)).unwrap();
        let twenty = fingerprint(&melody(44_100, 20.0, 1)).unwrap();
        // 10 s more at 11025 Hz in steps of 1365 samples is 80.8 items more;
        // both lose the same warm-up of the classifiers and chroma filter.
        let more = twenty.len() - ten.len();
        assert!((80..=82).contains(&more), "{more} items more");
        // The analysis is causal: the longer track starts with the same items.
        assert_eq!(ten[..ten.len() - 1], twenty[..ten.len() - 1]);
        let stereo = fingerprint(&melody(44_100, 10.0, 2)).unwrap();
        assert_eq!(ten, stereo);
        // Another rate of the same music gives nearly the same items.
        let resampled = fingerprint(&melody(32_000, 10.0, 1)).unwrap();
        let differing: u32 = ten
            .iter()
            .zip(&resampled)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert!(
            differing < ten.len() as u32 * 4,
            "{differing} bits differ in {} items",
            ten.len()
        );
    }

    #[test]
    fn the_record_is_little_endian_base64_of_the_items() {
        let record = to_record(&[1, 0x0403_0201]);
        assert_eq!(record.algorithm, "chromaprint-test2");
        assert_eq!(record.items, "AQAAAAECAwQ=");
    }

    #[test]
    fn samples_clip_at_full_scale() {
        assert_eq!(to_i16(2.0), i16::MAX);
        assert_eq!(to_i16(-2.0), -i16::MAX);
        assert_eq!(to_i16(0.0), 0);
    }

    #[test]
    fn one_decode_gives_the_pcm_hash_and_the_fingerprint_of_two() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("melody.wav");
        let audio = melody(44_100, 6.0, 2);
        crate::artifacts::write_wav_file(&path, &audio).unwrap();
        let both = pcm_hash_and_fingerprint_of_file(&path).unwrap();
        assert_eq!(
            both.pcm_hash,
            crate::artifacts::pcm_hash_of_file(&path).unwrap()
        );
        assert_eq!(both.fingerprint.unwrap(), fingerprint_file(&path).unwrap());
    }

    #[test]
    fn audio_too_slow_for_chromaprint_is_refused() {
        let error = fingerprint(&Audio::new(800, vec![vec![0.0; 800]])).unwrap_err();
        assert!(error.to_string().contains("800 Hz"), "{error}");
    }
}
