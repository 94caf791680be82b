//! WGSL compute kernels, each in `NAME.wgsl` beside the Rust that dispatches
//! it (`NAME.rs`), with a CPU twin that tests compare it against and that runs
//! when no adapter exists.
//!
//! - [`stft`]: STFT and inverse STFT (radix-2 FFT in workgroup memory).
//! - [`hpss`]: harmonic/percussive separation by median filtering.
//! - [`phase_vocoder`] and [`resample`]: time stretch and pitch shift.
//! - [`yin`]: f0, confidence and loudness per frame.
//! - [`mix`]: mixdown, loudness normalisation and per-stem energy.
//!
//! The voice synthesizer, which reads a voice model, lives with the model
//! in [`crate::voice::ddsp`]; the kernels here know nothing of voices.

pub mod hpss;
pub mod mix;
pub mod phase_vocoder;
pub mod resample;
pub mod stft;
pub mod yin;

use crate::audio::Audio;
use crate::gpu::GpuError;
pub use crate::gpu::KernelSource;

/// Why a kernel could not run.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    #[error(transparent)]
    Gpu(#[from] GpuError),
}

/// The channels of `audio` averaged into one (as YIN analyses it).
pub fn mono_mix(audio: &Audio) -> Vec<f32> {
    let scale = 1.0 / audio.channel_count() as f32;
    let mut mono = vec![0.0f32; audio.frames()];
    for channel in &audio.channels {
        for (out, &x) in mono.iter_mut().zip(channel) {
            *out += x * scale;
        }
    }
    mono
}

/// Signal-to-noise ratio in dB of `test` against `reference`:
/// `10 log10(sum r^2 / sum (r - t)^2)`, infinite when they are identical.
/// Lengths must match. This is how GPU and CPU outputs are compared.
pub fn snr_db(reference: &[f32], test: &[f32]) -> f64 {
    assert_eq!(reference.len(), test.len(), "SNR needs equal lengths");
    let (mut signal, mut noise) = (0.0f64, 0.0f64);
    for (&r, &t) in reference.iter().zip(test) {
        signal += f64::from(r) * f64::from(r);
        noise += (f64::from(r) - f64::from(t)).powi(2);
    }
    if noise == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (signal / noise).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mono_mix_averages_the_channels() {
        let stereo = Audio::new(8_000, vec![vec![1.0, 0.5, -1.0], vec![0.0, 0.5, 1.0]]);
        assert_eq!(mono_mix(&stereo), vec![0.5, 0.5, 0.0]);
        let mono = Audio::new(8_000, vec![vec![0.25, -0.75]]);
        assert_eq!(mono_mix(&mono), vec![0.25, -0.75]);
    }

    #[test]
    fn snr_is_infinite_for_equal_signals_and_20_db_for_a_tenth_error() {
        assert_eq!(snr_db(&[1.0, -1.0], &[1.0, -1.0]), f64::INFINITY);
        assert!((snr_db(&[1.0, 1.0], &[1.1, 0.9]) - 20.0).abs() < 1e-4);
    }
}
