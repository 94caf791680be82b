//! Time stretch by a phase vocoder, as `librosa.effects.time_stretch`: STFT,
//! `librosa.phase_vocoder(D, rate)` (magnitudes interpolated between the two
//! input frames around `t * rate`, phases advanced by the expected bin advance
//! plus the measured deviation), inverse STFT to `round(len / rate)` samples.
//!
//! The GPU path runs in output segments like HPSS; the phase accumulator is
//! the only state that crosses a seam, and it stays on the device.

use super::stft::{istft_cpu, padded_segment, stft_cpu, StftConfig, StftGpu};
use super::{KernelError, KernelSource};
use crate::audio::Audio;
use crate::gpu::{self, Dispatch, Engine, Gpu};
use realfft::num_complex::Complex32;
use std::f64::consts::{PI, TAU};

pub const SOURCE: KernelSource = KernelSource {
    name: "phase_vocoder",
    wgsl: include_str!("phase_vocoder.wgsl"),
};

/// Accepted stretch rates (> 1 is faster/shorter).
pub const RATE_MIN: f64 = 0.25;
pub const RATE_MAX: f64 = 4.0;

const SEGMENT_FRAMES_MAX: usize = 2048;

/// Output frame `t` of the vocoder reads input frames `frame` and `frame + 1`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
struct Step {
    frame: u32,
    alpha: f32,
}

/// `np.arange(0, frames, rate)` split into frame index and fraction; both
/// backends read this one table, so they make the same choices.
fn steps(frames: usize, rate: f64) -> Vec<Step> {
    let mut out = Vec::new();
    let mut t = 0usize;
    loop {
        let position = t as f64 * rate;
        if position >= frames as f64 {
            return out;
        }
        out.push(Step {
            frame: position.floor() as u32,
            alpha: position.fract() as f32,
        });
        t += 1;
    }
}

/// `int(round(len / rate))`, Python's round (ties to even).
pub fn stretched_len(len: usize, rate: f64) -> usize {
    (len as f64 / rate).round_ties_even() as usize
}

fn validate(config: &StftConfig, rate: f64) -> Result<(), KernelError> {
    config.validate()?;
    if !(RATE_MIN..=RATE_MAX).contains(&rate) {
        return Err(KernelError::InvalidParameter(format!(
            "rate {rate} must be in {RATE_MIN}..={RATE_MAX}"
        )));
    }
    Ok(())
}

/// Stretches `audio` by `rate` (2.0 = twice as fast) on `engine`, pitch kept.
pub fn time_stretch(engine: &Engine, audio: &Audio, rate: f64) -> Result<Audio, KernelError> {
    match engine {
        Engine::Gpu(gpu) => time_stretch_gpu(gpu, audio, rate),
        Engine::Cpu => time_stretch_cpu(audio, rate),
    }
}

/// CPU twin, whole signal, phases in f64.
pub fn time_stretch_cpu(audio: &Audio, rate: f64) -> Result<Audio, KernelError> {
    let config = StftConfig::LIBROSA;
    validate(&config, rate)?;
    let (n, hop, bins) = (config.n_fft, config.hop, config.bins());
    let len = audio.frames();
    let frames = config.frames(len);
    let steps = steps(frames, rate);
    let out_len = stretched_len(len, rate);
    let angle = |c: Complex32| -> f64 {
        if c.re == 0.0 && c.im == 0.0 {
            0.0
        } else {
            f64::from(c.im).atan2(f64::from(c.re))
        }
    };
    let mut channels = Vec::new();
    for channel in &audio.channels {
        let spectrum = stft_cpu(&config, channel);
        let column = |frame: usize, bin: usize| -> Complex32 {
            if frame < frames {
                spectrum[frame * bins + bin]
            } else {
                Complex32::new(0.0, 0.0)
            }
        };
        let mut stretched = vec![Complex32::new(0.0, 0.0); steps.len() * bins];
        for bin in 0..bins {
            let advance = TAU * ((hop * bin) % n) as f64 / n as f64;
            let mut phase = angle(column(0, bin));
            for (t, step) in steps.iter().enumerate() {
                let (c0, c1) = (
                    column(step.frame as usize, bin),
                    column(step.frame as usize + 1, bin),
                );
                let alpha = step.alpha;
                let magnitude = (1.0 - alpha) * c0.norm() + alpha * c1.norm();
                stretched[t * bins + bin] = Complex32::new(
                    magnitude * phase.cos() as f32,
                    magnitude * phase.sin() as f32,
                );
                let mut deviation = angle(c1) - angle(c0) - advance;
                deviation -= TAU * (deviation / TAU).round_ties_even();
                phase = (phase + advance + deviation + PI).rem_euclid(TAU) - PI;
            }
        }
        channels.push(istft_cpu(&config, &stretched, steps.len(), out_len));
    }
    Ok(Audio::new(audio.sample_rate, channels))
}

/// Parameter block of `phase_vocoder.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct VocoderParams {
    bins: u32,
    planes: u32,
    n_fft: u32,
    hop: u32,
    in_frames: u32,
    in_base: u32,
    in_frames_total: u32,
    t_begin: u32,
    t_end: u32,
    t_checkpoint: u32,
    initialize: u32,
    pad: u32,
}

/// GPU path, segments sized to the device's storage-binding limit.
pub fn time_stretch_gpu(gpu: &Gpu, audio: &Audio, rate: f64) -> Result<Audio, KernelError> {
    let config = StftConfig::LIBROSA;
    let planes = audio.channel_count() as u64;
    let limit = gpu.storage_binding_bytes_max();
    let by_time_frames = limit / (planes * config.n_fft as u64 * 4);
    let by_input_spectrum = (limit / (planes * config.bins() as u64 * 8)) as f64 / rate.max(1.0);
    let segment_frames = (by_time_frames.min(by_input_spectrum as u64) as usize)
        .saturating_sub(8)
        .clamp(1, SEGMENT_FRAMES_MAX);
    time_stretch_gpu_in_segments(gpu, audio, rate, segment_frames)
}

pub(crate) fn time_stretch_gpu_in_segments(
    gpu: &Gpu,
    audio: &Audio,
    rate: f64,
    segment_frames: usize,
) -> Result<Audio, KernelError> {
    let config = StftConfig::LIBROSA;
    validate(&config, rate)?;
    let (n, hop, bins) = (config.n_fft, config.hop, config.bins());
    let planes = audio.channel_count();
    let len = audio.frames();
    let frames_in = config.frames(len);
    let steps = steps(frames_in, rate);
    let out_len = stretched_len(len, rate);
    let frames_out = config.istft_frames(steps.len(), out_len);
    let channels: Vec<&[f32]> = audio.channels.iter().map(Vec::as_slice).collect();
    let stft = StftGpu::new(gpu, config)?;
    let pipeline = gpu.pipeline(&SOURCE, "stretch");
    let step_table = gpu.upload(&steps)?;
    let mut phase_in = gpu.storage((planes * bins * 4) as u64)?;
    let mut phase_out = gpu.storage((planes * bins * 4) as u64)?;
    let mut out = (0..planes)
        .map(|_| Vec::with_capacity(out_len))
        .collect::<Vec<Vec<f32>>>();
    let mut start = 0;
    while start < out_len {
        let end = (start + segment_frames * hop).min(out_len);
        let core = config.frames_covering(start..end, frames_out);
        let checkpoint = if end < out_len {
            config.frames_covering(end..end + 1, frames_out).start
        } else {
            core.end
        };
        let in_base = steps[core.start].frame as usize;
        let in_end = (steps[core.end - 1].frame as usize + 2).min(frames_in);
        let in_frames = in_end - in_base;
        let samples_per_plane = (in_frames - 1) * hop + n;
        let first_sample = (in_base * hop) as isize - config.pad() as isize;
        let samples = gpu.upload(&padded_segment(&channels, first_sample, samples_per_plane))?;
        let spectrum = gpu.storage((planes * in_frames * bins * 8) as u64)?;
        let stretched = gpu.storage((planes * core.len() * bins * 8) as u64)?;
        let time_frames = gpu.storage((planes * core.len() * n * 4) as u64)?;
        let segment_len = end - start;
        let signal = gpu.storage((planes * segment_len * 4) as u64)?;
        let block = VocoderParams {
            bins: bins as u32,
            planes: planes as u32,
            n_fft: n as u32,
            hop: hop as u32,
            in_frames: in_frames as u32,
            in_base: in_base as u32,
            in_frames_total: frames_in as u32,
            t_begin: core.start as u32,
            t_end: core.end as u32,
            t_checkpoint: checkpoint as u32,
            initialize: u32::from(core.start == 0),
            pad: 0,
        };
        let result = {
            let dispatches = [
                stft.forward(&samples, samples_per_plane, &spectrum, planes, in_frames),
                Dispatch {
                    pipeline: pipeline.clone(),
                    params: gpu.uniform(&block),
                    bindings: vec![
                        (1, &spectrum),
                        (2, &step_table),
                        (3, &phase_in),
                        (4, &phase_out),
                        (5, &stretched),
                    ],
                    workgroups: gpu::thread_grid((planes * bins) as u32),
                },
                stft.inverse(&stretched, &time_frames, planes, core.len()),
                stft.overlap_add(
                    &time_frames,
                    &signal,
                    planes,
                    core.clone(),
                    frames_out,
                    start,
                    segment_len,
                ),
            ];
            gpu.run::<f32>(&dispatches, &[(&signal, planes * segment_len)])?
                .remove(0)
        };
        for (plane, part) in result.chunks_exact(segment_len).enumerate() {
            out[plane].extend_from_slice(part);
        }
        std::mem::swap(&mut phase_in, &mut phase_out);
        start = end;
    }
    Ok(Audio::new(audio.sample_rate, out))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::gpu::test_gpu;
    use crate::kernels::snr_db;

    pub(crate) fn tone(frequency: f32, len: usize, rate: u32) -> Vec<f32> {
        (0..len)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * frequency * i as f32 / rate as f32).sin())
            .collect()
    }

    /// Frequency of a steady tone from its rising zero crossings (middle half only).
    pub(crate) fn zero_crossing_hz(signal: &[f32], rate: u32) -> f64 {
        let middle = &signal[signal.len() / 4..3 * signal.len() / 4];
        let rising: Vec<usize> = middle
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[0] < 0.0 && w[1] >= 0.0)
            .map(|(i, _)| i)
            .collect();
        let periods = (rising.len() - 1) as f64;
        periods * f64::from(rate) / (rising[rising.len() - 1] - rising[0]) as f64
    }

    #[test]
    fn steps_follow_numpy_arange() {
        let s = steps(5, 1.5);
        let frames: Vec<u32> = s.iter().map(|s| s.frame).collect();
        let alphas: Vec<f32> = s.iter().map(|s| s.alpha).collect();
        assert_eq!(frames, vec![0, 1, 3, 4]);
        assert_eq!(alphas, vec![0.0, 0.5, 0.0, 0.5]);
        assert_eq!(stretched_len(10, 4.0), 2); // 2.5 rounds to even
    }

    /// Tolerance: the GPU stretch (f32 phases, wrapped) matches the CPU twin
    /// (f64 phases) to an SNR above 45 dB, whole and in 3-frame segments
    /// (about 65 dB on lavapipe; the phase accumulator carries angle rounding
    /// in near-silent bins forward, so this is looser than the other kernels).
    #[test]
    fn gpu_time_stretch_matches_cpu_twin() {
        let gpu = test_gpu();
        let rate = 22_050;
        let left = crate::kernels::stft::tests::test_signal(16_000, rate as f32);
        let right = tone(330.0, 16_000, rate);
        let audio = Audio::new(rate, vec![left, right]);
        for stretch_rate in [0.8, 1.25] {
            let cpu = time_stretch_cpu(&audio, stretch_rate).expect("CPU stretch");
            assert_eq!(cpu.frames(), stretched_len(16_000, stretch_rate));
            for on_gpu in [
                time_stretch_gpu(gpu, &audio, stretch_rate).expect("GPU stretch"),
                time_stretch_gpu_in_segments(gpu, &audio, stretch_rate, 3)
                    .expect("segmented GPU stretch"),
            ] {
                let snr = snr_db(&cpu.interleaved(), &on_gpu.interleaved());
                assert!(
                    snr > 45.0,
                    "rate {stretch_rate}: GPU vs CPU SNR {snr:.1} dB, want > 45 dB"
                );
            }
        }
    }

    #[test]
    fn stretching_changes_length_but_not_pitch() {
        let rate = 22_050;
        let audio = Audio::new(rate, vec![tone(440.0, 22_050, rate)]);
        let slower = time_stretch_cpu(&audio, 0.5).expect("stretch");
        assert_eq!(slower.frames(), 44_100);
        let hz = zero_crossing_hz(&slower.channels[0], rate);
        assert!(
            (hz - 440.0).abs() < 440.0 * 0.01,
            "stretched tone at {hz:.1} Hz, want 440"
        );
    }

    #[test]
    fn rates_outside_the_range_are_rejected() {
        let audio = Audio::new(22_050, vec![vec![0.0; 4096]]);
        for rate in [0.0, -1.0, 4.5, f64::NAN] {
            assert!(matches!(
                time_stretch_cpu(&audio, rate),
                Err(KernelError::InvalidParameter(_))
            ));
        }
    }
}
