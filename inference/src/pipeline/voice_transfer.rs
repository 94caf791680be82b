//! Voice timbre transfer, DDSP style: the source vocal's f0 and loudness
//! (YIN), shifted in key and stretched in time to follow the remixed
//! instrumental, drive harmonic-plus-noise synthesis with a voice model
//! learned from the consenting artist's licensed stems.
//!
//! With the melody's notes (transcribed by the network), the notes decide
//! where the voice sings and at what pitch: inside a note YIN's f0 is kept
//! where it is within a semitone of the note (its vibrato and glides),
//! and the note's own pitch stands in where YIN lost the tone or jumped
//! an octave; outside every note the voice breathes but does not sing.

use super::PipelineError;
use crate::audio::Audio;
use crate::gpu::Engine;
use crate::kernels::{phase_vocoder, yin, KernelSource};
use crate::transcribe::melody::Melody;
use crate::voice::ddsp::{self, Controls};
use crate::voice::VoiceModel;

/// SNR above which a CPU replay of a voice transfer matches: f0 tracking
/// picks the same trough on both backends for clean frames, so the
/// synthesized voice agrees closely but, unlike the linear kernels, a
/// borderline voiced/unvoiced frame may flip.
pub const TOLERANCE_DB: f64 = 25.0;

/// The kernels a voice transfer dispatches: YIN for the controls, DDSP for
/// the synthesis.
pub fn kernels() -> Vec<&'static KernelSource> {
    vec![&yin::SOURCE, &ddsp::KERNEL]
}

/// How far YIN's f0 may stray from the note it sings, cents, and still be
/// kept: beyond it YIN has most likely locked onto an overtone or a
/// subharmonic.
const NOTE_TRUST_CENTS: f64 = 100.0;

/// `controls` with f0 set by `melody`: each frame inside a note keeps YIN's
/// f0 within [`NOTE_TRUST_CENTS`] of the note, else takes the note's pitch;
/// frames outside every note are unvoiced (0 Hz). Loudness is unchanged.
pub fn follow_melody(controls: &Controls, melody: &Melody) -> Controls {
    let hop_s = controls.hop as f64 / f64::from(controls.sample_rate);
    let f0_hz = controls
        .f0_hz
        .iter()
        .enumerate()
        .map(|(i, &tracked)| match melody.note_at(i as f64 * hop_s) {
            None => 0.0,
            Some(note) => {
                let target = note.pitch_hz();
                let off_cents = 1200.0 * (f64::from(tracked) / target).log2().abs();
                if tracked > 0.0 && off_cents <= NOTE_TRUST_CENTS {
                    tracked
                } else {
                    target as f32
                }
            }
        })
        .collect();
    Controls {
        f0_hz,
        ..controls.clone()
    }
}

/// Controls `controls` stretched by `rate` (2.0 = half as many frames) and
/// transposed by `cents`. Frame `j` of the result reads the source at
/// `j * rate`, loudness interpolated linearly; f0 is interpolated only
/// between two voiced frames (0 Hz marks an unvoiced frame, which must not
/// be glided into), otherwise the nearer frame's value is kept.
pub fn retime_controls(controls: &Controls, rate: f64, cents: f64) -> Controls {
    let frames = controls.f0_hz.len();
    let out_frames = if frames == 0 {
        0
    } else {
        ((frames as f64 / rate).round() as usize).max(1)
    };
    let ratio = 2f64.powf(cents / 1200.0) as f32;
    let mut f0_hz = Vec::with_capacity(out_frames);
    let mut loudness = Vec::with_capacity(out_frames);
    for j in 0..out_frames {
        let position = j as f64 * rate;
        let i = (position.floor() as usize).min(frames - 1);
        let next = (i + 1).min(frames - 1);
        let alpha = (position - i as f64).clamp(0.0, 1.0) as f32;
        let (a, b) = (controls.f0_hz[i], controls.f0_hz[next]);
        let f0 = if a > 0.0 && b > 0.0 {
            a + alpha * (b - a)
        } else if alpha < 0.5 {
            a
        } else {
            b
        };
        f0_hz.push(f0 * ratio);
        let (la, lb) = (controls.loudness[i], controls.loudness[next]);
        loudness.push(la + alpha * (lb - la));
    }
    Controls {
        f0_hz,
        loudness,
        hop: controls.hop,
        sample_rate: controls.sample_rate,
    }
}

/// Sings `vocal`'s melody with the voice model in `model_bytes`, `cents`
/// higher and `rate` times faster, following `melody`'s notes when given;
/// the result is mono and as long as the phase vocoder makes the
/// instrumental at that rate.
pub fn run(
    engine: &Engine,
    vocal: &Audio,
    model_bytes: &[u8],
    melody: Option<&Melody>,
    cents: f64,
    rate: f64,
) -> Result<Audio, PipelineError> {
    let model = VoiceModel::from_bytes(model_bytes)
        .map_err(|e| PipelineError::Step(format!("the voice model artifact: {e}")))?;
    let mut controls = ddsp::controls_from(engine, vocal)?;
    if let Some(melody) = melody {
        controls = follow_melody(&controls, melody);
    }
    let controls = retime_controls(&controls, rate, cents);
    let len_samples = phase_vocoder::stretched_len(vocal.frames(), rate);
    let samples = ddsp::synthesize(engine, &model, &controls, len_samples)?;
    Ok(Audio::new(controls.sample_rate, vec![samples]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_stretched_and_transposed_without_gliding_into_silence() {
        let controls = Controls {
            f0_hz: vec![220.0, 220.0, 0.0, 0.0, 440.0, 440.0],
            loudness: vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
            hop: 512,
            sample_rate: 44_100,
        };
        let octave_up_half_speed = retime_controls(&controls, 0.5, 1200.0);
        assert_eq!(octave_up_half_speed.f0_hz.len(), 12);
        assert_eq!(octave_up_half_speed.f0_hz[0], 440.0);
        assert_eq!(octave_up_half_speed.f0_hz[1], 440.0);
        // Between 220 Hz and an unvoiced frame: no glide, nearest value.
        assert_eq!(octave_up_half_speed.f0_hz[3], 0.0);
        assert_eq!(octave_up_half_speed.loudness[1], 0.5);
        let double = retime_controls(&controls, 2.0, 0.0);
        assert_eq!(double.f0_hz, vec![220.0, 0.0, 440.0]);
    }

    #[test]
    fn notes_keep_yins_f0_near_them_correct_it_far_off_and_silence_the_rest() {
        use crate::transcribe::melody::MelodyNote;
        // Frames every 100 ms.
        let controls = Controls {
            f0_hz: vec![300.0, 442.0, 880.0, 0.0, 430.0, 500.0],
            loudness: vec![-20.0; 6],
            hop: 4_410,
            sample_rate: 44_100,
        };
        let melody = Melody {
            notes: vec![MelodyNote {
                start_ms: 100,
                end_ms: 450,
                pitch_midi: 69,
            }],
        };
        let followed = follow_melody(&controls, &melody);
        // Before the note: unvoiced. 442 Hz is within a semitone of A4 and
        // kept; an octave up and an unvoiced frame take the note's 440 Hz;
        // 430 Hz is kept; after the note: unvoiced.
        assert_eq!(followed.f0_hz, vec![0.0, 442.0, 440.0, 440.0, 430.0, 0.0]);
        assert_eq!(followed.loudness, controls.loudness);
    }
}
