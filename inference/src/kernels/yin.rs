//! Fundamental frequency by YIN (de Cheveigné & Kawahara, 2002) with
//! librosa.yin's framing (centred frames of 2048, difference window 1024,
//! hop 512, trough threshold 0.1), plus each frame's loudness. Multichannel
//! input is averaged to mono first. Both backends compute the difference
//! function directly in f32 in the same order.

use super::{KernelError, KernelSource};
use crate::audio::Audio;
use crate::gpu::{self, Dispatch, Engine, Gpu};

pub const SOURCE: KernelSource = KernelSource {
    name: "yin",
    wgsl: include_str!("yin.wgsl"),
};

/// Frames per GPU dispatch at most, bounding the difference buffer.
const CHUNK_FRAMES_MAX: usize = 8192;

/// YIN's search range and framing; `Default` is librosa's framing with a
/// C2..C7 (65.4..2093 Hz) search range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct YinParams {
    pub fmin_hz: f64,
    pub fmax_hz: f64,
    pub frame_length: usize,
    pub win_length: usize,
    pub hop: usize,
    pub threshold: f32,
}

impl Default for YinParams {
    fn default() -> Self {
        YinParams {
            fmin_hz: 65.406,
            fmax_hz: 2093.0,
            frame_length: 2048,
            win_length: 1024,
            hop: 512,
            threshold: 0.1,
        }
    }
}

impl YinParams {
    /// Lag range in samples: `floor(sr / fmax) ..= min(ceil(sr / fmin), frame - win - 1)`.
    fn periods(&self, sample_rate: u32) -> Result<(usize, usize), KernelError> {
        let sr = f64::from(sample_rate);
        if !(self.fmin_hz > 0.0 && self.fmin_hz < self.fmax_hz && self.fmax_hz < sr / 2.0) {
            return Err(KernelError::InvalidParameter(format!(
                "need 0 < fmin ({}) < fmax ({}) < Nyquist ({})",
                self.fmin_hz,
                self.fmax_hz,
                sr / 2.0
            )));
        }
        if self.win_length == 0 || self.win_length >= self.frame_length || self.hop == 0 {
            return Err(KernelError::InvalidParameter(
                "need 0 < win_length < frame_length and hop > 0".into(),
            ));
        }
        let tau_min = ((sr / self.fmax_hz).floor() as usize).max(1);
        let tau_max =
            ((sr / self.fmin_hz).ceil() as usize).min(self.frame_length - self.win_length - 1);
        if tau_max <= tau_min {
            return Err(KernelError::InvalidParameter(format!(
                "the lag range {tau_min}..={tau_max} is empty: widen fmin..fmax or the frame"
            )));
        }
        Ok((tau_min, tau_max))
    }
}

/// One analysis frame, centred at `time_s`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PitchFrame {
    pub time_s: f64,
    pub f0_hz: f32,
    /// `1 - d'(tau)` at the chosen lag, in [0, 1]; high for clean periodic frames.
    pub confidence: f32,
    /// Mean square over the frame in dB full scale, floored at -100 dB.
    pub loudness_db: f32,
}

/// Tracks f0 and loudness of `audio` on `engine`.
pub fn track(
    engine: &Engine,
    audio: &Audio,
    params: &YinParams,
) -> Result<Vec<PitchFrame>, KernelError> {
    match engine {
        Engine::Gpu(gpu) => track_gpu(gpu, audio, params),
        Engine::Cpu => track_cpu(audio, params),
    }
}

/// Mono mix, centred with `frame_length / 2` zeros before and enough after.
fn padded_mono(audio: &Audio, params: &YinParams) -> (Vec<f32>, usize) {
    let len = audio.frames();
    let frames = 1 + len / params.hop;
    let pad = params.frame_length / 2;
    let mut padded = vec![0.0f32; (frames - 1) * params.hop + params.frame_length];
    let scale = 1.0 / audio.channel_count() as f32;
    for channel in &audio.channels {
        for (i, &x) in channel.iter().enumerate() {
            if pad + i < padded.len() {
                padded[pad + i] += x * scale;
            }
        }
    }
    (padded, frames)
}

fn frame_time(frame: usize, params: &YinParams, sample_rate: u32) -> f64 {
    (frame * params.hop) as f64 / f64::from(sample_rate)
}

/// CPU twin, mirroring the kernel's arithmetic in f32.
pub fn track_cpu(audio: &Audio, params: &YinParams) -> Result<Vec<PitchFrame>, KernelError> {
    let (tau_min, tau_max) = params.periods(audio.sample_rate)?;
    let (samples, frames) = padded_mono(audio, params);
    let mut row = vec![0.0f32; tau_max + 1];
    let mut out = Vec::with_capacity(frames);
    for frame in 0..frames {
        let start = frame * params.hop;
        let x = &samples[start..start + params.frame_length];
        for (tau, value) in row.iter_mut().enumerate() {
            let mut sum = 0.0f32;
            for j in 0..params.win_length {
                let d = x[j] - x[j + tau];
                sum += d * d;
            }
            *value = sum;
        }
        let mut running = 0.0f32;
        for (tau, value) in row.iter_mut().enumerate().skip(1) {
            running += *value;
            *value /= running / tau as f32 + f32::MIN_POSITIVE;
        }
        let mut best = tau_min;
        for tau in tau_min..=tau_max {
            let v = row[tau];
            if v < row[best] {
                best = tau;
            }
            let trough = if tau == tau_min {
                v < row[tau + 1]
            } else if tau == tau_max {
                v < row[tau - 1]
            } else {
                v < row[tau - 1] && v <= row[tau + 1]
            };
            if trough && v < params.threshold {
                best = tau;
                break;
            }
        }
        let mut shift = 0.0f32;
        if best > tau_min && best < tau_max {
            let (left, mid, right) = (row[best - 1], row[best], row[best + 1]);
            let a = right + left - 2.0 * mid;
            let b = (right - left) / 2.0;
            if b.abs() < a.abs() {
                shift = -b / a;
            }
        }
        let energy: f32 = x.iter().map(|v| v * v).sum();
        let mean_square = (energy / params.frame_length as f32).max(1e-10);
        out.push(PitchFrame {
            time_s: frame_time(frame, params, audio.sample_rate),
            f0_hz: audio.sample_rate as f32 / (best as f32 + shift),
            confidence: (1.0 - row[best]).clamp(0.0, 1.0),
            loudness_db: 10.0 * mean_square.log10(),
        });
    }
    Ok(out)
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct YinGpuParams {
    frames: u32,
    frame_length: u32,
    win_length: u32,
    hop: u32,
    tau_min: u32,
    tau_max: u32,
    threshold: f32,
    sample_rate: f32,
}

/// GPU path: frames in chunks, each chunk two dispatches (difference, pick).
pub fn track_gpu(
    gpu: &Gpu,
    audio: &Audio,
    params: &YinParams,
) -> Result<Vec<PitchFrame>, KernelError> {
    let (tau_min, tau_max) = params.periods(audio.sample_rate)?;
    let (samples, frames) = padded_mono(audio, params);
    let row_bytes = ((tau_max + 1) * 4) as u64;
    let chunk_frames =
        ((gpu.storage_binding_bytes_max() / row_bytes) as usize).clamp(1, CHUNK_FRAMES_MAX);
    let difference = gpu.pipeline(&SOURCE, "difference");
    let pick = gpu.pipeline(&SOURCE, "pick");
    let mut out = Vec::with_capacity(frames);
    let mut first = 0;
    while first < frames {
        let count = chunk_frames.min(frames - first);
        let start = first * params.hop;
        let end = start + (count - 1) * params.hop + params.frame_length;
        let chunk = gpu.upload(&samples[start..end])?;
        let diff = gpu.storage(count as u64 * row_bytes)?;
        let result = gpu.storage((count * 3 * 4) as u64)?;
        let block = YinGpuParams {
            frames: count as u32,
            frame_length: params.frame_length as u32,
            win_length: params.win_length as u32,
            hop: params.hop as u32,
            tau_min: tau_min as u32,
            tau_max: tau_max as u32,
            threshold: params.threshold,
            sample_rate: audio.sample_rate as f32,
        };
        let dispatches = [
            Dispatch {
                pipeline: difference.clone(),
                params: gpu.uniform(&block),
                bindings: vec![(1, &chunk), (2, &diff)],
                workgroups: gpu::thread_grid((count * (tau_max + 1)) as u32),
            },
            Dispatch {
                pipeline: pick.clone(),
                params: gpu.uniform(&block),
                bindings: vec![(1, &chunk), (2, &diff), (3, &result)],
                workgroups: gpu::thread_grid(count as u32),
            },
        ];
        let values = gpu
            .run::<f32>(&dispatches, &[(&result, count * 3)])?
            .remove(0);
        for (i, v) in values.chunks_exact(3).enumerate() {
            out.push(PitchFrame {
                time_s: frame_time(first + i, params, audio.sample_rate),
                f0_hz: v[0],
                confidence: v[1],
                loudness_db: v[2],
            });
        }
        first += count;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::test_gpu;

    /// A sung-like tone: 6 harmonics at 196 Hz with 5 Hz vibrato, then silence.
    fn voice_then_silence(rate: u32) -> Audio {
        let len = rate as usize;
        let mut phase = 0.0f64;
        let samples = (0..len)
            .map(|i| {
                if i >= len * 3 / 4 {
                    return 0.0;
                }
                let t = i as f64 / f64::from(rate);
                let f = 196.0 * (1.0 + 0.01 * (2.0 * std::f64::consts::PI * 5.0 * t).sin());
                phase += 2.0 * std::f64::consts::PI * f / f64::from(rate);
                ((1..=6)
                    .map(|h| (phase * h as f64).sin() / h as f64)
                    .sum::<f64>()
                    * 0.3) as f32
            })
            .collect();
        Audio::new(rate, vec![samples])
    }

    #[test]
    fn a_steady_tone_is_tracked_within_half_a_percent() {
        let rate = 22_050;
        let tone = crate::kernels::phase_vocoder::tests::tone(220.0, 11_025, rate);
        let frames =
            track_cpu(&Audio::new(rate, vec![tone]), &YinParams::default()).expect("track");
        for frame in &frames[4..frames.len() - 4] {
            assert!((frame.f0_hz - 220.0).abs() < 1.1, "{frame:?}");
            assert!(frame.confidence > 0.9, "{frame:?}");
            // A 0.5-amplitude sine has mean square 0.125: -9.03 dBFS.
            assert!((frame.loudness_db + 9.03).abs() < 0.1, "{frame:?}");
        }
    }

    /// Tolerance: same frames; f0 within 0.1% and confidence within 0.01
    /// wherever the CPU twin is confident (> 0.5); loudness within 0.01 dB.
    #[test]
    fn gpu_yin_matches_cpu_twin() {
        let gpu = test_gpu();
        let audio = voice_then_silence(22_050);
        let cpu = track_cpu(&audio, &YinParams::default()).expect("CPU YIN");
        let on_gpu = track_gpu(gpu, &audio, &YinParams::default()).expect("GPU YIN");
        assert_eq!(cpu.len(), on_gpu.len());
        let mut confident = 0;
        for (c, g) in cpu.iter().zip(&on_gpu) {
            assert_eq!(c.time_s, g.time_s);
            assert!(
                (c.loudness_db - g.loudness_db).abs() < 0.01,
                "loudness {c:?} vs {g:?}"
            );
            if c.confidence > 0.5 {
                confident += 1;
                assert!(
                    (c.f0_hz - g.f0_hz).abs() < c.f0_hz * 1e-3,
                    "f0 {c:?} vs {g:?}"
                );
                assert!(
                    (c.confidence - g.confidence).abs() < 0.01,
                    "confidence {c:?} vs {g:?}"
                );
            }
        }
        assert!(
            confident > cpu.len() / 2,
            "only {confident} of {} frames voiced",
            cpu.len()
        );
        let silent = cpu.last().expect("frames");
        assert!(silent.loudness_db <= -99.0, "{silent:?}");
    }

    #[test]
    fn an_empty_lag_range_is_rejected() {
        let audio = Audio::new(8_000, vec![vec![0.0; 8_000]]);
        let params = YinParams {
            fmax_hz: 5_000.0,
            ..YinParams::default()
        };
        assert!(matches!(
            track_cpu(&audio, &params),
            Err(KernelError::InvalidParameter(_))
        ));
    }
}
