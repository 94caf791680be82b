//! Short-time Fourier transform and its inverse, with librosa's conventions
//! (`center=True`, `pad_mode="constant"`, periodic Hann window, inverse by
//! windowed overlap-add divided by the window's sum of squares). The GPU path
//! is a radix-2 FFT in workgroup memory (`stft.wgsl`); the CPU twin uses
//! `realfft`. Other spectral kernels (HPSS, phase vocoder) reuse the GPU
//! dispatches here between their own.

use super::{KernelError, KernelSource};
use crate::gpu::{self, Dispatch, Gpu, PooledBuffer};
use realfft::num_complex::Complex32;
use realfft::RealFftPlanner;
use std::ops::Range;
use std::sync::Arc;

pub const SOURCE: KernelSource = KernelSource {
    name: "stft",
    wgsl: include_str!("stft.wgsl"),
};

/// The largest FFT the kernel holds in workgroup memory (2048 × `vec2<f32>` = 16 KiB,
/// WebGPU's guaranteed workgroup storage).
pub const N_FFT_MAX: usize = 2048;

/// f32's smallest normal number: librosa's `util.tiny` for the window-sum guard.
const TINY: f32 = f32::MIN_POSITIVE;

/// Frame size and hop, in samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StftConfig {
    pub n_fft: usize,
    pub hop: usize,
}

impl StftConfig {
    /// librosa's defaults: `n_fft=2048, hop_length=512`.
    pub const LIBROSA: StftConfig = StftConfig {
        n_fft: 2048,
        hop: 512,
    };

    pub fn validate(&self) -> Result<(), KernelError> {
        if !self.n_fft.is_power_of_two() || !(16..=N_FFT_MAX).contains(&self.n_fft) {
            return Err(KernelError::InvalidParameter(format!(
                "n_fft {} must be a power of two in 16..={N_FFT_MAX}",
                self.n_fft
            )));
        }
        if self.hop == 0 || self.hop > self.n_fft {
            return Err(KernelError::InvalidParameter(format!(
                "hop {} must be in 1..={}",
                self.hop, self.n_fft
            )));
        }
        Ok(())
    }

    /// Frequency bins per frame, DC to Nyquist inclusive.
    pub fn bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Zeros added on each side so frame `f` is centred on sample `f * hop`.
    pub fn pad(&self) -> usize {
        self.n_fft / 2
    }

    /// Frames in the STFT of `len` samples.
    pub fn frames(&self, len: usize) -> usize {
        1 + len / self.hop
    }

    /// Frames `librosa.istft(..., length=out_len)` uses out of `frames`.
    pub fn istft_frames(&self, frames: usize, out_len: usize) -> usize {
        frames.min((out_len + 2 * self.pad()).div_ceil(self.hop))
    }

    /// Periodic Hann window (`scipy.signal.get_window("hann", n, fftbins=True)`).
    pub fn window(&self) -> Vec<f32> {
        let n = self.n_fft as f64;
        (0..self.n_fft)
            .map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n).cos()) as f32)
            .collect()
    }

    /// The frames, out of `frames_total`, whose windows overlap `samples`
    /// (unpadded sample indices, non-empty range).
    pub fn frames_covering(&self, samples: Range<usize>, frames_total: usize) -> Range<usize> {
        debug_assert!(!samples.is_empty() && frames_total > 0);
        let first_padded = samples.start + self.pad();
        let last_padded = samples.end - 1 + self.pad();
        let first = (first_padded + 1)
            .saturating_sub(self.n_fft)
            .div_ceil(self.hop);
        let last = (last_padded / self.hop).min(frames_total - 1);
        first.min(last)..last + 1
    }

    /// `exp(-2 pi i k / n_fft)` for `k < n_fft / 2`, computed in f64.
    fn twiddles(&self) -> Vec<[f32; 2]> {
        let n = self.n_fft as f64;
        (0..self.n_fft / 2)
            .map(|k| {
                let angle = -2.0 * std::f64::consts::PI * k as f64 / n;
                [angle.cos() as f32, angle.sin() as f32]
            })
            .collect()
    }
}

/// CPU twin of the forward STFT of one channel: `frames × bins`, frame-major.
pub fn stft_cpu(config: &StftConfig, signal: &[f32]) -> Vec<Complex32> {
    let (n, hop, pad) = (config.n_fft, config.hop, config.pad());
    let window = config.window();
    let frames = config.frames(signal.len());
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n);
    let mut input = fft.make_input_vec();
    let mut output = fft.make_output_vec();
    let mut scratch = fft.make_scratch_vec();
    let mut spectrum = Vec::with_capacity(frames * config.bins());
    for frame in 0..frames {
        let start = (frame * hop) as isize - pad as isize;
        for (i, value) in input.iter_mut().enumerate() {
            let s = start + i as isize;
            *value = if s >= 0 && (s as usize) < signal.len() {
                signal[s as usize] * window[i]
            } else {
                0.0
            };
        }
        fft.process_with_scratch(&mut input, &mut output, &mut scratch)
            .expect("buffers come from the plan");
        spectrum.extend_from_slice(&output);
    }
    spectrum
}

/// CPU twin of the inverse STFT (`librosa.istft(..., length=out_len)`) of
/// `frames × bins` spectrum values.
pub fn istft_cpu(
    config: &StftConfig,
    spectrum: &[Complex32],
    frames: usize,
    out_len: usize,
) -> Vec<f32> {
    let (n, hop, pad, bins) = (config.n_fft, config.hop, config.pad(), config.bins());
    assert_eq!(spectrum.len(), frames * bins, "spectrum is frames × bins");
    let used = config.istft_frames(frames, out_len);
    let window = config.window();
    let ifft = RealFftPlanner::<f32>::new().plan_fft_inverse(n);
    let mut input = ifft.make_input_vec();
    let mut output = ifft.make_output_vec();
    let mut scratch = ifft.make_scratch_vec();
    let padded_len = used.saturating_sub(1) * hop + n;
    let mut sum = vec![0.0f32; padded_len];
    let mut weight = vec![0.0f32; padded_len];
    let scale = 1.0 / n as f32;
    for frame in 0..used {
        input.copy_from_slice(&spectrum[frame * bins..(frame + 1) * bins]);
        // A real signal's DC and Nyquist bins are real; realfft insists.
        input[0].im = 0.0;
        input[bins - 1].im = 0.0;
        ifft.process_with_scratch(&mut input, &mut output, &mut scratch)
            .expect("buffers come from the plan");
        for i in 0..n {
            sum[frame * hop + i] += output[i] * scale * window[i];
            weight[frame * hop + i] += window[i] * window[i];
        }
    }
    (0..out_len)
        .map(|t| {
            let p = t + pad;
            match (sum.get(p), weight.get(p)) {
                (Some(&s), Some(&w)) if w > TINY => s / w,
                (Some(&s), _) => s,
                _ => 0.0,
            }
        })
        .collect()
}

/// Parameter block shared by the three entry points of `stft.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct StftParams {
    n_fft: u32,
    log2_n: u32,
    hop: u32,
    bins: u32,
    planes: u32,
    frames: u32,
    samples_per_plane: u32,
    frame_base: u32,
    frames_total: u32,
    out_start: u32,
    out_len: u32,
    pad: u32,
}

/// The STFT pipelines and constant buffers (window, twiddles) of one
/// configuration on the device, for composing with other kernels' dispatches.
pub(crate) struct StftGpu<'g> {
    gpu: &'g Gpu,
    config: StftConfig,
    window: PooledBuffer<'g>,
    twiddle: PooledBuffer<'g>,
    forward: Arc<wgpu::ComputePipeline>,
    inverse: Arc<wgpu::ComputePipeline>,
    overlap_add: Arc<wgpu::ComputePipeline>,
}

impl<'g> StftGpu<'g> {
    pub(crate) fn new(gpu: &'g Gpu, config: StftConfig) -> Result<Self, KernelError> {
        config.validate()?;
        Ok(StftGpu {
            gpu,
            config,
            window: gpu.upload(&config.window())?,
            twiddle: gpu.upload(&config.twiddles())?,
            forward: gpu.pipeline(&SOURCE, "forward"),
            inverse: gpu.pipeline(&SOURCE, "inverse"),
            overlap_add: gpu.pipeline(&SOURCE, "overlap_add"),
        })
    }

    fn params(&self) -> StftParams {
        StftParams {
            n_fft: self.config.n_fft as u32,
            log2_n: self.config.n_fft.trailing_zeros(),
            hop: self.config.hop as u32,
            bins: self.config.bins() as u32,
            pad: self.config.pad() as u32,
            ..StftParams::default()
        }
    }

    /// Forward STFT of `planes × frames` frames into `spectrum`
    /// (`planes × frames × bins` complex). Plane `p`'s frame `f` starts at
    /// `samples[p * samples_per_plane + f * hop]`: the caller lays out the
    /// (already padded) samples.
    pub(crate) fn forward<'a>(
        &'a self,
        samples: &'a PooledBuffer<'g>,
        samples_per_plane: usize,
        spectrum: &'a PooledBuffer<'g>,
        planes: usize,
        frames: usize,
    ) -> Dispatch<'a> {
        let params = StftParams {
            planes: planes as u32,
            frames: frames as u32,
            samples_per_plane: samples_per_plane as u32,
            ..self.params()
        };
        Dispatch {
            pipeline: self.forward.clone(),
            params: self.gpu.uniform(&params),
            bindings: vec![
                (1, &self.window),
                (2, &self.twiddle),
                (3, samples),
                (4, spectrum),
            ],
            workgroups: gpu::workgroup_grid((planes * frames).div_ceil(2) as u32),
        }
    }

    /// Inverse FFT and synthesis window of `planes × frames` spectra into
    /// `time_frames` (`planes × frames × n_fft`).
    pub(crate) fn inverse<'a>(
        &'a self,
        spectrum: &'a PooledBuffer<'g>,
        time_frames: &'a PooledBuffer<'g>,
        planes: usize,
        frames: usize,
    ) -> Dispatch<'a> {
        let params = StftParams {
            planes: planes as u32,
            frames: frames as u32,
            ..self.params()
        };
        Dispatch {
            pipeline: self.inverse.clone(),
            params: self.gpu.uniform(&params),
            bindings: vec![
                (1, &self.window),
                (2, &self.twiddle),
                (5, spectrum),
                (6, time_frames),
            ],
            workgroups: gpu::workgroup_grid((planes * frames).div_ceil(2) as u32),
        }
    }

    /// Overlap-add of windowed time frames into output samples
    /// `out_start..out_start + out_len` of each plane. `time_frames` holds
    /// global frames `frame_base..frame_base + frames`, which must include
    /// every frame (of `frames_total`) that covers the output range.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn overlap_add<'a>(
        &'a self,
        time_frames: &'a PooledBuffer<'g>,
        signal: &'a PooledBuffer<'g>,
        planes: usize,
        frames: Range<usize>,
        frames_total: usize,
        out_start: usize,
        out_len: usize,
    ) -> Dispatch<'a> {
        let params = StftParams {
            planes: planes as u32,
            frames: frames.len() as u32,
            frame_base: frames.start as u32,
            frames_total: frames_total as u32,
            out_start: out_start as u32,
            out_len: out_len as u32,
            ..self.params()
        };
        Dispatch {
            pipeline: self.overlap_add.clone(),
            params: self.gpu.uniform(&params),
            bindings: vec![(1, &self.window), (7, time_frames), (8, signal)],
            workgroups: gpu::thread_grid((planes * out_len) as u32),
        }
    }
}

/// `len` samples per plane starting at (possibly negative) sample `start` of
/// each channel, zeros outside the signal; planes laid end to end.
pub(crate) fn padded_segment(channels: &[&[f32]], start: isize, len: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; channels.len() * len];
    for (plane, channel) in channels.iter().enumerate() {
        let from = start.max(0) as usize;
        let to = ((start + len as isize).max(0) as usize).min(channel.len());
        if from < to {
            let offset = plane * len + (from as isize - start) as usize;
            out[offset..offset + (to - from)].copy_from_slice(&channel[from..to]);
        }
    }
    out
}

pub(crate) fn to_pairs(values: &[Complex32]) -> Vec<[f32; 2]> {
    values.iter().map(|c| [c.re, c.im]).collect()
}

pub(crate) fn from_pairs(values: &[[f32; 2]]) -> Vec<Complex32> {
    values
        .iter()
        .map(|&[re, im]| Complex32::new(re, im))
        .collect()
}

/// GPU forward STFT of one channel, same layout as [`stft_cpu`].
pub fn stft_gpu(
    gpu: &Gpu,
    config: &StftConfig,
    signal: &[f32],
) -> Result<Vec<Complex32>, KernelError> {
    let stft = StftGpu::new(gpu, *config)?;
    let frames = config.frames(signal.len());
    let samples_per_plane = (frames - 1) * config.hop + config.n_fft;
    let samples = gpu.upload(&padded_segment(
        &[signal],
        -(config.pad() as isize),
        samples_per_plane,
    ))?;
    let values = frames * config.bins();
    let spectrum = gpu.storage(values as u64 * 8)?;
    let dispatch = stft.forward(&samples, samples_per_plane, &spectrum, 1, frames);
    let mut read = gpu.run::<[f32; 2]>(&[dispatch], &[(&spectrum, values)])?;
    Ok(from_pairs(&read.remove(0)))
}

/// GPU inverse STFT of one channel, same contract as [`istft_cpu`].
pub fn istft_gpu(
    gpu: &Gpu,
    config: &StftConfig,
    spectrum: &[Complex32],
    frames: usize,
    out_len: usize,
) -> Result<Vec<f32>, KernelError> {
    assert_eq!(
        spectrum.len(),
        frames * config.bins(),
        "spectrum is frames × bins"
    );
    let stft = StftGpu::new(gpu, *config)?;
    let input = gpu.upload(&to_pairs(spectrum))?;
    let time_frames = gpu.storage((frames * config.n_fft * 4) as u64)?;
    let signal = gpu.storage((out_len.max(1) * 4) as u64)?;
    let used = config.istft_frames(frames, out_len);
    let dispatches = [
        stft.inverse(&input, &time_frames, 1, frames),
        stft.overlap_add(&time_frames, &signal, 1, 0..frames, used, 0, out_len),
    ];
    let mut read = gpu.run::<f32>(&dispatches, &[(&signal, out_len)])?;
    Ok(read.remove(0))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::gpu::test_gpu;
    use crate::kernels::snr_db;

    /// A deterministic test signal: a chirp, two partials and a click train.
    pub(crate) fn test_signal(len: usize, sample_rate: f32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let t = i as f32 / sample_rate;
                let chirp = (2.0 * std::f32::consts::PI * (200.0 * t + 400.0 * t * t)).sin();
                let partials = 0.3 * (2.0 * std::f32::consts::PI * 1234.5 * t).sin()
                    + 0.2 * (2.0 * std::f32::consts::PI * 5000.0 * t).cos();
                let click = if i % 11_025 < 8 { 0.8 } else { 0.0 };
                0.4 * chirp + partials + click
            })
            .collect()
    }

    fn flatten(values: &[Complex32]) -> Vec<f32> {
        values.iter().flat_map(|c| [c.re, c.im]).collect()
    }

    #[test]
    fn frames_covering_matches_the_window_extent() {
        let config = StftConfig::LIBROSA;
        // Sample 0 is padded position 1024: frames 0, 1 and 2 (which starts there).
        assert_eq!(config.frames_covering(0..1, 100), 0..3);
        // Padded 5000 is in frames ceil((5000-2047)/512)=6 ..= floor(5000/512)=9.
        assert_eq!(config.frames_covering(3976..3977, 100), 6..10);
        assert_eq!(config.frames_covering(0..100_000, 10), 0..10);
    }

    #[test]
    fn cpu_stft_then_istft_reconstructs_the_signal() {
        let config = StftConfig::LIBROSA;
        let signal = test_signal(22_050, 44_100.0);
        let spectrum = stft_cpu(&config, &signal);
        let frames = config.frames(signal.len());
        let back = istft_cpu(&config, &spectrum, frames, signal.len());
        let snr = snr_db(&signal, &back);
        assert!(snr > 100.0, "reconstruction SNR {snr:.1} dB, want > 100 dB");
    }

    /// Tolerance: the GPU spectrum (f32 radix-2 with f64-computed twiddles)
    /// matches realfft's to an SNR above 100 dB over all bins (re and im).
    #[test]
    fn gpu_stft_matches_cpu_twin() {
        let gpu = test_gpu();
        for config in [
            StftConfig::LIBROSA,
            StftConfig {
                n_fft: 256,
                hop: 64,
            },
        ] {
            let signal = test_signal(30_000, 44_100.0);
            let cpu = stft_cpu(&config, &signal);
            let on_gpu = stft_gpu(gpu, &config, &signal).expect("GPU STFT runs");
            assert_eq!(cpu.len(), on_gpu.len());
            let snr = snr_db(&flatten(&cpu), &flatten(&on_gpu));
            assert!(
                snr > 100.0,
                "{config:?}: GPU STFT SNR {snr:.1} dB, want > 100 dB"
            );
        }
    }

    /// Tolerance: the GPU inverse of the CPU spectrum matches the CPU inverse
    /// to an SNR above 100 dB, and reconstructs the input above 100 dB.
    #[test]
    fn gpu_istft_matches_cpu_twin() {
        let gpu = test_gpu();
        let config = StftConfig::LIBROSA;
        let signal = test_signal(30_001, 44_100.0);
        let frames = config.frames(signal.len());
        let spectrum = stft_cpu(&config, &signal);
        let cpu = istft_cpu(&config, &spectrum, frames, signal.len());
        let on_gpu =
            istft_gpu(gpu, &config, &spectrum, frames, signal.len()).expect("GPU iSTFT runs");
        let snr = snr_db(&cpu, &on_gpu);
        assert!(
            snr > 100.0,
            "GPU iSTFT vs CPU SNR {snr:.1} dB, want > 100 dB"
        );
        let snr = snr_db(&signal, &on_gpu);
        assert!(
            snr > 100.0,
            "GPU reconstruction SNR {snr:.1} dB, want > 100 dB"
        );
    }

    #[test]
    fn invalid_configs_are_rejected() {
        assert!(StftConfig {
            n_fft: 4096,
            hop: 512
        }
        .validate()
        .is_err());
        assert!(StftConfig {
            n_fft: 1000,
            hop: 250
        }
        .validate()
        .is_err());
        assert!(StftConfig {
            n_fft: 2048,
            hop: 0
        }
        .validate()
        .is_err());
    }
}
