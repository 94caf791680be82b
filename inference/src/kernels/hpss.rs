//! Harmonic/percussive source separation (Fitzgerald 2010, "Harmonic/percussive
//! separation using median filtering"), with the parameters and edge handling
//! of `librosa.effects.hpss`: STFT, median filter of the magnitude across time
//! (harmonic) and across frequency (percussive), soft masks, inverse STFT.
//!
//! The GPU path runs in time segments so that any length fits the device's
//! buffer limits: each segment computes the frames its output samples need,
//! plus half a harmonic kernel of context on each side, so the result equals
//! the whole-signal computation. All channels of a segment go in one dispatch.

use super::stft::{istft_cpu, padded_segment, stft_cpu, StftConfig, StftGpu};
use super::{KernelError, KernelSource};
use crate::audio::Audio;
use crate::gpu::{self, Dispatch, Engine, Gpu};
use realfft::num_complex::Complex32;

pub const SOURCE: KernelSource = KernelSource {
    name: "hpss",
    wgsl: include_str!("hpss.wgsl"),
};

/// The longest median kernel `hpss.wgsl` holds in registers.
pub const KERNEL_MAX: usize = 63;

/// Frames per GPU segment when the device's limits allow it (~24 s at 44.1 kHz).
const SEGMENT_FRAMES_MAX: usize = 2048;

/// Separation parameters; `Default` is librosa's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HpssParams {
    pub stft: StftConfig,
    /// Median length across time, in frames (odd).
    pub kernel_harmonic: usize,
    /// Median length across frequency, in bins (odd).
    pub kernel_percussive: usize,
    /// Soft-mask exponent.
    pub power: f32,
    pub margin_harmonic: f32,
    pub margin_percussive: f32,
}

impl Default for HpssParams {
    fn default() -> Self {
        HpssParams {
            stft: StftConfig::LIBROSA,
            kernel_harmonic: 31,
            kernel_percussive: 31,
            power: 2.0,
            margin_harmonic: 1.0,
            margin_percussive: 1.0,
        }
    }
}

impl HpssParams {
    pub fn validate(&self) -> Result<(), KernelError> {
        self.stft.validate()?;
        for (name, k) in [
            ("kernel_harmonic", self.kernel_harmonic),
            ("kernel_percussive", self.kernel_percussive),
        ] {
            if k % 2 == 0 || !(1..=KERNEL_MAX).contains(&k) {
                return Err(KernelError::InvalidParameter(format!(
                    "{name} {k} must be odd and in 1..={KERNEL_MAX}"
                )));
            }
        }
        if !(self.power.is_finite() && self.power > 0.0) {
            return Err(KernelError::InvalidParameter(format!(
                "power {} must be finite and positive",
                self.power
            )));
        }
        if !(self.margin_harmonic >= 1.0 && self.margin_percussive >= 1.0) {
            return Err(KernelError::InvalidParameter(
                "margins must be >= 1 (librosa's constraint)".into(),
            ));
        }
        Ok(())
    }
}

/// The two parts; each has the input's rate, channels and length.
#[derive(Clone, Debug)]
pub struct Separation {
    pub harmonic: Audio,
    pub percussive: Audio,
}

/// Separates `audio` on `engine`.
pub fn separate(
    engine: &Engine,
    audio: &Audio,
    params: &HpssParams,
) -> Result<Separation, KernelError> {
    match engine {
        Engine::Gpu(gpu) => separate_gpu(gpu, audio, params),
        Engine::Cpu => separate_cpu(audio, params),
    }
}

/// CPU twin: the whole signal at once, channel by channel.
pub fn separate_cpu(audio: &Audio, params: &HpssParams) -> Result<Separation, KernelError> {
    params.validate()?;
    let config = params.stft;
    let len = audio.frames();
    let (mut harmonic, mut percussive) = (Vec::new(), Vec::new());
    for channel in &audio.channels {
        let spectrum = stft_cpu(&config, channel);
        let frames = config.frames(len);
        let (h, p) = split_cpu(&spectrum, frames, config.bins(), params);
        harmonic.push(istft_cpu(&config, &h, frames, len));
        percussive.push(istft_cpu(&config, &p, frames, len));
    }
    Ok(Separation {
        harmonic: Audio::new(audio.sample_rate, harmonic),
        percussive: Audio::new(audio.sample_rate, percussive),
    })
}

/// scipy.ndimage's `mode="reflect"`: (d c b a | a b c d | d c b a).
fn reflect(i: isize, n: usize) -> usize {
    let period = 2 * n as isize;
    let m = i.rem_euclid(period);
    if m >= n as isize {
        (period - 1 - m) as usize
    } else {
        m as usize
    }
}

fn median(values: &mut [f32]) -> f32 {
    let mid = values.len() / 2;
    *values.select_nth_unstable_by(mid, f32::total_cmp).1
}

/// librosa's `util.softmask(x, x_ref, power, split_zeros=False)`.
fn softmask(x: f32, x_ref: f32, power: f32) -> f32 {
    let z = x.max(x_ref);
    if z < f32::MIN_POSITIVE {
        return 0.0;
    }
    let a = (x / z).powf(power);
    let b = (x_ref / z).powf(power);
    a / (a + b)
}

/// Masks one channel's spectrum (`frames × bins`) into harmonic and percussive spectra.
fn split_cpu(
    spectrum: &[Complex32],
    frames: usize,
    bins: usize,
    params: &HpssParams,
) -> (Vec<Complex32>, Vec<Complex32>) {
    let magnitude: Vec<f32> = spectrum
        .iter()
        .map(|c| (c.re * c.re + c.im * c.im).sqrt())
        .collect();
    let (half_h, half_p) = (params.kernel_harmonic / 2, params.kernel_percussive / 2);
    let mut window = [0.0f32; KERNEL_MAX];
    let mut harmonic = Vec::with_capacity(spectrum.len());
    let mut percussive = Vec::with_capacity(spectrum.len());
    for frame in 0..frames {
        for bin in 0..bins {
            for (slot, d) in window.iter_mut().zip(-(half_h as isize)..=half_h as isize) {
                *slot = magnitude[reflect(frame as isize + d, frames) * bins + bin];
            }
            let h = median(&mut window[..params.kernel_harmonic]);
            for (slot, d) in window.iter_mut().zip(-(half_p as isize)..=half_p as isize) {
                *slot = magnitude[frame * bins + reflect(bin as isize + d, bins)];
            }
            let p = median(&mut window[..params.kernel_percussive]);
            let s = spectrum[frame * bins + bin];
            harmonic.push(s * softmask(h, p * params.margin_harmonic, params.power));
            percussive.push(s * softmask(p, h * params.margin_percussive, params.power));
        }
    }
    (harmonic, percussive)
}

/// Parameter block of `hpss.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct HpssGpuParams {
    bins: u32,
    planes: u32,
    frames: u32,
    frame_base: u32,
    frames_total: u32,
    core_offset: u32,
    core_frames: u32,
    reserved: [u32; 2],
    power: f32,
    margin_harmonic: f32,
    margin_percussive: f32,
}

/// GPU path, in segments sized to the device's storage-binding limit.
pub fn separate_gpu(
    gpu: &Gpu,
    audio: &Audio,
    params: &HpssParams,
) -> Result<Separation, KernelError> {
    // The largest buffer is the inverse's time frames: 2 parts × channels × n_fft f32 per frame.
    let bytes_per_frame = (2 * audio.channel_count() * params.stft.n_fft * 4) as u64;
    let fit = (gpu.storage_binding_bytes_max() / bytes_per_frame) as usize;
    let segment_frames = fit
        .saturating_sub(params.stft.n_fft / params.stft.hop + 1)
        .min(SEGMENT_FRAMES_MAX);
    if segment_frames == 0 {
        return Err(gpu::GpuError::TooLarge {
            needed_bytes: bytes_per_frame * 2,
            limit_bytes: gpu.storage_binding_bytes_max(),
        }
        .into());
    }
    separate_gpu_in_segments(gpu, audio, params, segment_frames)
}

/// GPU path with output segments of `segment_frames * hop` samples.
pub(crate) fn separate_gpu_in_segments(
    gpu: &Gpu,
    audio: &Audio,
    params: &HpssParams,
    segment_frames: usize,
) -> Result<Separation, KernelError> {
    params.validate()?;
    let config = params.stft;
    let (n, hop, bins) = (config.n_fft, config.hop, config.bins());
    let planes = audio.channel_count();
    let len = audio.frames();
    let frames_total = config.frames(len);
    let channels: Vec<&[f32]> = audio.channels.iter().map(Vec::as_slice).collect();
    let stft = StftGpu::new(gpu, config)?;
    let separate = gpu.pipeline_with_constants(
        &SOURCE,
        "separate",
        &[
            ("KERNEL_HARMONIC", params.kernel_harmonic as f64),
            ("KERNEL_PERCUSSIVE", params.kernel_percussive as f64),
        ],
    );
    let magnitudes = gpu.pipeline(&SOURCE, "magnitudes");
    let mut harmonic = (0..planes)
        .map(|_| Vec::with_capacity(len))
        .collect::<Vec<Vec<f32>>>();
    let mut percussive = (0..planes)
        .map(|_| Vec::with_capacity(len))
        .collect::<Vec<Vec<f32>>>();
    let half_h = params.kernel_harmonic / 2;
    let mut start = 0;
    while start < len {
        let end = (start + segment_frames * hop).min(len);
        // Frames the overlap-add of start..end reads, and the context their medians read.
        let core = config.frames_covering(start..end, frames_total);
        let context = core.start.saturating_sub(half_h)..(core.end + half_h).min(frames_total);
        let samples_per_plane = (context.len() - 1) * hop + n;
        let first_sample = (context.start * hop) as isize - config.pad() as isize;
        let samples = gpu.upload(&padded_segment(&channels, first_sample, samples_per_plane))?;
        let spectrum = gpu.storage((planes * context.len() * bins * 8) as u64)?;
        let magnitude = gpu.storage((planes * context.len() * bins * 4) as u64)?;
        let parts = gpu.storage((2 * planes * core.len() * bins * 8) as u64)?;
        let time_frames = gpu.storage((2 * planes * core.len() * n * 4) as u64)?;
        let out_len = end - start;
        let out = gpu.storage((2 * planes * out_len * 4) as u64)?;
        let block = HpssGpuParams {
            bins: bins as u32,
            planes: planes as u32,
            frames: context.len() as u32,
            frame_base: context.start as u32,
            frames_total: frames_total as u32,
            core_offset: (core.start - context.start) as u32,
            core_frames: core.len() as u32,
            reserved: [0; 2],
            power: params.power,
            margin_harmonic: params.margin_harmonic,
            margin_percussive: params.margin_percussive,
        };
        let dispatches = [
            stft.forward(
                &samples,
                samples_per_plane,
                &spectrum,
                planes,
                context.len(),
            ),
            Dispatch {
                pipeline: magnitudes.clone(),
                params: gpu.uniform(&block),
                bindings: vec![(1, &spectrum), (4, &magnitude)],
                workgroups: gpu::thread_grid((planes * context.len() * bins) as u32),
            },
            Dispatch {
                pipeline: separate.clone(),
                params: gpu.uniform(&block),
                bindings: vec![(1, &spectrum), (2, &parts), (3, &magnitude)],
                workgroups: gpu::thread_grid((planes * core.len() * bins) as u32),
            },
            stft.inverse(&parts, &time_frames, 2 * planes, core.len()),
            stft.overlap_add(
                &time_frames,
                &out,
                2 * planes,
                core.clone(),
                frames_total,
                start,
                out_len,
            ),
        ];
        let result = gpu
            .run::<f32>(&dispatches, &[(&out, 2 * planes * out_len)])?
            .remove(0);
        for (plane, part) in result.chunks_exact(out_len).enumerate() {
            if plane < planes {
                harmonic[plane].extend_from_slice(part);
            } else {
                percussive[plane - planes].extend_from_slice(part);
            }
        }
        start = end;
    }
    Ok(Separation {
        harmonic: Audio::new(audio.sample_rate, harmonic),
        percussive: Audio::new(audio.sample_rate, percussive),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::test_gpu;
    use crate::kernels::snr_db;

    /// A known harmonic part (sustained partials) and a known percussive part
    /// (decaying noise bursts), one second at 22.05 kHz, stereo with
    /// different channels.
    fn known_parts() -> (Audio, Audio) {
        let rate = 22_050u32;
        let len = rate as usize;
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut noise = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        };
        let mut harmonic = (0..2)
            .map(|_| Vec::with_capacity(len))
            .collect::<Vec<Vec<f32>>>();
        let mut percussive = (0..2)
            .map(|_| Vec::with_capacity(len))
            .collect::<Vec<Vec<f32>>>();
        for i in 0..len {
            let t = i as f32 / rate as f32;
            for (c, base) in [220.0f32, 330.0].into_iter().enumerate() {
                let tone: f32 = (1..=6)
                    .map(|h| (2.0 * std::f32::consts::PI * base * h as f32 * t).sin() / h as f32)
                    .sum();
                harmonic[c].push(0.25 * tone);
                let since_hit = (i % (rate as usize / 4)) as f32 / rate as f32;
                percussive[c].push(0.6 * noise() * (-since_hit * 60.0).exp());
            }
        }
        (Audio::new(rate, harmonic), Audio::new(rate, percussive))
    }

    fn mixture(a: &Audio, b: &Audio) -> Audio {
        let channels = a
            .channels
            .iter()
            .zip(&b.channels)
            .map(|(x, y)| x.iter().zip(y).map(|(p, q)| p + q).collect())
            .collect();
        Audio::new(a.sample_rate, channels)
    }

    fn channel_snr(reference: &Audio, test: &Audio) -> f64 {
        snr_db(&reference.interleaved(), &test.interleaved())
    }

    /// Tolerance: each GPU part matches the CPU twin's to an SNR above 70 dB
    /// (medians of f32 magnitudes can swap near-equal values; masks are smooth).
    #[test]
    fn gpu_hpss_matches_cpu_twin_in_one_segment_and_in_many() {
        let gpu = test_gpu();
        let (h, p) = known_parts();
        let mix = mixture(&h, &p);
        let params = HpssParams::default();
        let cpu = separate_cpu(&mix, &params).expect("CPU HPSS");
        // 16-frame segments exercise the segment seams; the default is one segment here.
        let mut runs = vec![
            (
                cpu.clone(),
                separate_gpu(gpu, &mix, &params).expect("GPU HPSS"),
            ),
            (
                cpu,
                separate_gpu_in_segments(gpu, &mix, &params, 16).expect("segmented GPU HPSS"),
            ),
        ];
        // Other median lengths compile their own pipeline constants; short
        // windows pad the sorting network.
        let other = HpssParams {
            kernel_harmonic: 17,
            kernel_percussive: 9,
            ..HpssParams::default()
        };
        // Windows longer than the 32-wide sorting network take the ranking path.
        let long = HpssParams {
            kernel_harmonic: 41,
            kernel_percussive: 33,
            ..HpssParams::default()
        };
        for params in [other, long] {
            runs.push((
                separate_cpu(&mix, &params).expect("CPU HPSS"),
                separate_gpu(gpu, &mix, &params).expect("GPU HPSS"),
            ));
        }
        for (cpu, separated) in runs {
            let snr_h = channel_snr(&cpu.harmonic, &separated.harmonic);
            let snr_p = channel_snr(&cpu.percussive, &separated.percussive);
            assert!(
                snr_h > 70.0 && snr_p > 70.0,
                "GPU vs CPU SNR: harmonic {snr_h:.1} dB, percussive {snr_p:.1} dB"
            );
        }
    }

    /// With power-2 soft masks and margin 1 the masks sum to one, so the parts
    /// add back to the mixture; and each part is closer to its known source.
    #[test]
    fn cpu_hpss_parts_sum_to_the_mixture_and_recover_the_sources() {
        let (h, p) = known_parts();
        let mix = mixture(&h, &p);
        let separated = separate_cpu(&mix, &HpssParams::default()).expect("CPU HPSS");
        let sum = mixture(&separated.harmonic, &separated.percussive);
        let snr = channel_snr(&mix, &sum);
        assert!(snr > 90.0, "parts sum back to the mixture at {snr:.1} dB");
        let sdr_h = channel_snr(&h, &separated.harmonic);
        let sdr_p = channel_snr(&p, &separated.percussive);
        assert!(
            sdr_h > 20.0 && sdr_p > 10.0,
            "SDR harmonic {sdr_h:.1} dB, percussive {sdr_p:.1} dB"
        );
    }

    #[test]
    fn even_or_oversized_kernels_are_rejected() {
        let (h, _) = known_parts();
        for params in [
            HpssParams {
                kernel_harmonic: 30,
                ..HpssParams::default()
            },
            HpssParams {
                kernel_percussive: 65,
                ..HpssParams::default()
            },
            HpssParams {
                margin_harmonic: 0.5,
                ..HpssParams::default()
            },
        ] {
            assert!(matches!(
                separate_cpu(&h, &params),
                Err(KernelError::InvalidParameter(_))
            ));
        }
    }

    #[test]
    fn reflect_matches_scipy() {
        // n = 4: index -2..6 -> 1 0 | 0 1 2 3 | 3 2
        let got: Vec<usize> = (-2..6).map(|i| reflect(i, 4)).collect();
        assert_eq!(got, vec![1, 0, 0, 1, 2, 3, 3, 2]);
        assert_eq!(reflect(-3, 1), 0);
    }
}
