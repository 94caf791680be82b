//! Harmonic-plus-noise synthesis in the manner of DDSP (Engel et al., 2020,
//! "DDSP: Differentiable Digital Signal Processing"): a bank of harmonic
//! oscillators at multiples of f0 plus filtered noise, driven frame by frame
//! by f0 and loudness, with the timbre (harmonic amplitudes and noise
//! spectrum at that pitch and loudness) looked up in a [`VoiceModel`] instead
//! of predicted by a neural decoder.
//!
//! Frame `i` of the [`Controls`] is centred on sample `i * hop` (YIN's
//! framing). The CPU plans each frame once for both backends: the f0 that
//! drives the phase (held across unvoiced frames so notes never glide from
//! 0 Hz), the phase at the frame's first sample (the exact integral of the
//! linear f0 ramp, accumulated in f64), the harmonic amplitudes (model
//! envelope × the frame's RMS, muted where a harmonic would reach Nyquist
//! within the neighbouring hops) and a 64-tap linear-phase FIR realising the
//! model's noise spectrum at the frame's power. Each output sample then
//! interpolates its two frames linearly and is computed independently: on
//! the GPU one thread per sample (`ddsp.wgsl`), on the CPU twin the same f32
//! arithmetic in the same order. Noise comes from an integer hash of the
//! sample index and sines from one polynomial, so both backends produce the
//! same noise and agree to rounding.

use crate::artifacts::{DURATION_S_MAX, SAMPLE_RATE_RANGE};
use crate::audio::Audio;
use crate::gpu::{self, Dispatch, Engine, Gpu, KernelSource};
use crate::kernels::yin::{self, YinParams};
use crate::kernels::KernelError;
use crate::voice::{self, VoiceModel, SILENCE_DB};

pub const KERNEL: KernelSource = KernelSource {
    name: "ddsp",
    wgsl: include_str!("ddsp.wgsl"),
};
/// [`KERNEL`] under the name every other kernel module uses.
pub const SOURCE: KernelSource = KERNEL;

/// Noise FIR length: 1.45 ms at 44.1 kHz. With its Blackman window it
/// resolves about 2 kHz: the noise's spectral tilt and broad peaks, not
/// single bands.
pub const FILTER_TAPS: usize = 64;
/// Longest accepted control hop, samples.
pub const HOP_MAX: usize = 8192;
/// Loudest accepted control loudness, dBFS.
pub const LOUDNESS_DB_MAX: f32 = 20.0;
/// Seed of the noise hash ("LLNS").
const NOISE_SEED: u32 = 0x4C4C_4E53;
/// Samples per GPU dispatch at most (~24 s at 44.1 kHz).
const CHUNK_LEN_MAX: usize = 1 << 20;

/// What drives synthesis, one value per frame, frame `i` centred on sample
/// `i * hop`. Past the last frame the last values hold.
#[derive(Clone, Debug, PartialEq)]
pub struct Controls {
    /// Fundamental frequency, Hz; 0 marks an unvoiced frame (noise only).
    pub f0_hz: Vec<f32>,
    /// Frame mean square in dB full scale, as [`yin::PitchFrame::loudness_db`]
    /// measures it; frames below [`SILENCE_DB`] are synthesized as silence.
    pub loudness: Vec<f32>,
    pub hop: usize,
    pub sample_rate: u32,
}

impl Controls {
    fn validate(&self, len_samples: usize) -> Result<(), KernelError> {
        let invalid = |message: String| Err(KernelError::InvalidParameter(message));
        if self.f0_hz.is_empty() || self.f0_hz.len() != self.loudness.len() {
            return invalid(format!(
                "controls need one f0 and one loudness per frame, at least one frame (got {} f0, {} loudness)",
                self.f0_hz.len(),
                self.loudness.len()
            ));
        }
        if !(1..=HOP_MAX).contains(&self.hop) {
            return invalid(format!("hop {} is outside 1..={HOP_MAX}", self.hop));
        }
        if !SAMPLE_RATE_RANGE.contains(&self.sample_rate) {
            return invalid(format!(
                "sample rate {} Hz is outside {SAMPLE_RATE_RANGE:?} Hz",
                self.sample_rate
            ));
        }
        let len_max = DURATION_S_MAX as usize * self.sample_rate as usize;
        if len_samples > len_max {
            return invalid(format!(
                "{len_samples} samples exceed {DURATION_S_MAX} s at {} Hz",
                self.sample_rate
            ));
        }
        if let Some(i) = self.f0_hz.iter().position(|f| !f.is_finite() || *f < 0.0) {
            return invalid(format!(
                "f0 of frame {i} is {}: need a finite frequency >= 0 (0 = unvoiced)",
                self.f0_hz[i]
            ));
        }
        if let Some(i) = self
            .loudness
            .iter()
            .position(|l| !l.is_finite() || *l > LOUDNESS_DB_MAX)
        {
            return invalid(format!(
                "loudness of frame {i} is {} dBFS: need a finite value <= {LOUDNESS_DB_MAX}",
                self.loudness[i]
            ));
        }
        Ok(())
    }
}

/// Tracks a source vocal's controls with YIN on `engine` (channels mixed to
/// mono): f0 where the frame is voiced ([`voice::is_voiced`]), else 0, and
/// the frame loudness.
pub fn controls_from(engine: &Engine, vocal: &Audio) -> Result<Controls, KernelError> {
    let params = YinParams::default();
    let frames = yin::track(engine, vocal, &params)?;
    Ok(Controls {
        f0_hz: frames
            .iter()
            .map(|f| if voice::is_voiced(f) { f.f0_hz } else { 0.0 })
            .collect(),
        loudness: frames.iter().map(|f| f.loudness_db).collect(),
        hop: params.hop,
        sample_rate: vocal.sample_rate,
    })
}

/// `len_samples` of mono audio at `controls.sample_rate`: the voice of
/// `model` singing the controls' f0 at their loudness.
pub fn synthesize(
    engine: &Engine,
    model: &VoiceModel,
    controls: &Controls,
    len_samples: usize,
) -> Result<Vec<f32>, KernelError> {
    let parts = render(engine, model, controls, len_samples)?;
    Ok(parts
        .harmonic
        .iter()
        .zip(&parts.noise)
        .map(|(h, z)| h + z)
        .collect())
}

/// The two parts of a synthesis; [`synthesize`] returns their sum.
#[derive(Clone, Debug, PartialEq)]
pub struct Parts {
    pub harmonic: Vec<f32>,
    pub noise: Vec<f32>,
}

/// Synthesizes the harmonic and noise parts separately on `engine`.
pub fn render(
    engine: &Engine,
    model: &VoiceModel,
    controls: &Controls,
    len_samples: usize,
) -> Result<Parts, KernelError> {
    controls.validate(len_samples)?;
    if len_samples == 0 {
        return Ok(Parts {
            harmonic: Vec::new(),
            noise: Vec::new(),
        });
    }
    let plan = FramePlan::new(model, controls, len_samples);
    match engine {
        Engine::Gpu(gpu) => render_gpu(gpu, &plan, len_samples, CHUNK_LEN_MAX),
        Engine::Cpu => Ok(render_cpu(&plan, len_samples)),
    }
}

/// Per-frame inputs of the per-sample synthesis, shared by both backends.
struct FramePlan {
    hop: usize,
    sample_rate: f32,
    harmonics: usize,
    /// Per frame: phase-driving f0 (Hz), phase at the frame's first sample
    /// (cycles), harmonics on (0/1), noise on (0/1).
    frames: Vec<[f32; 4]>,
    /// frames × harmonics.
    amplitudes: Vec<f32>,
    /// frames × FILTER_TAPS.
    filters: Vec<f32>,
}

impl FramePlan {
    fn new(model: &VoiceModel, controls: &Controls, len_samples: usize) -> FramePlan {
        let hop = controls.hop;
        // Sample n reads frames n / hop and n / hop + 1.
        let frames = (len_samples - 1) / hop + 2;
        let last = controls.f0_hz.len() - 1;
        let control = |i: usize| i.min(last);
        let sample_rate = controls.sample_rate as f32;
        let nyquist = sample_rate / 2.0;

        let mut held = controls
            .f0_hz
            .iter()
            .copied()
            .find(|&f| f > 0.0)
            .unwrap_or(0.0);
        let drive: Vec<f32> = (0..frames)
            .map(|i| {
                let f = controls.f0_hz[control(i)];
                if f > 0.0 {
                    held = f;
                }
                held
            })
            .collect();

        let harmonics = model.harmonics();
        let mut plan = FramePlan {
            hop,
            sample_rate,
            harmonics,
            frames: Vec::with_capacity(frames),
            amplitudes: vec![0.0; frames * harmonics],
            filters: vec![0.0; frames * FILTER_TAPS],
        };
        let design = FilterDesign::new(model, sample_rate);
        let mut envelope = vec![0.0f32; harmonics];
        let mut density = vec![0.0f32; model.noise_bands()];
        let mut cycles = 0.0f64;
        for i in 0..frames {
            let c = control(i);
            let (f0, loudness) = (controls.f0_hz[c], controls.loudness[c]);
            let audible = loudness >= SILENCE_DB;
            let voiced = audible && f0 > 0.0;
            if voiced {
                model.harmonic_envelope(f0, loudness, &mut envelope);
                let gain = 10f32.powf(loudness / 20.0);
                // This frame's amplitude fades in over the previous hop and
                // out over the next: mute any harmonic that reaches Nyquist
                // anywhere in them.
                let top = drive[i.saturating_sub(1)]
                    .max(drive[i])
                    .max(drive[(i + 1).min(frames - 1)]);
                let row = &mut plan.amplitudes[i * harmonics..(i + 1) * harmonics];
                for (k, (out, &relative)) in row.iter_mut().zip(&envelope).enumerate() {
                    if (k + 1) as f32 * top < nyquist {
                        *out = relative * gain;
                    }
                }
            }
            if audible {
                model.noise_profile(voiced, loudness, &mut density);
                let gain = 10f64.powf(f64::from(loudness) / 20.0);
                design.filter(
                    &density,
                    gain,
                    &mut plan.filters[i * FILTER_TAPS..(i + 1) * FILTER_TAPS],
                );
            }
            plan.frames.push([
                drive[i],
                cycles as f32,
                if voiced { 1.0 } else { 0.0 },
                if audible { 1.0 } else { 0.0 },
            ]);
            if i + 1 < frames {
                // Sum over m < hop of (fa + (fb - fa) m / hop) / sr.
                let (fa, fb) = (f64::from(drive[i]), f64::from(drive[i + 1]));
                let advance = (hop as f64 * fa + (fb - fa) * (hop as f64 - 1.0) / 2.0)
                    / f64::from(sample_rate);
                cycles = (cycles + advance).fract();
            }
        }
        plan
    }
}

/// Designs each frame's noise FIR by frequency sampling: the model's band
/// densities interpolated to the FIR's DFT bins, a zero-phase inverse DFT
/// centred on tap `FILTER_TAPS / 2`, a Blackman window (side lobes at
/// -58 dB, so a loud low band does not leak a floor into quiet high ones,
/// as Hann's -31 dB would), and a gain that makes
/// the filter's power gain (sum of squared taps) equal the mean of the
/// sampled power response, so unit-variance noise comes out with the
/// model's power.
struct FilterDesign {
    /// Per DFT bin `0..=FILTER_TAPS / 2`: the lower band index and the weight
    /// of the next, or `None` above the model's top band.
    bin_bands: Vec<Option<(usize, f32)>>,
    /// `(FILTER_TAPS / 2 + 1) × FILTER_TAPS` cosines, times the window and
    /// the one-sided bin weights.
    basis: Vec<f64>,
}

impl FilterDesign {
    fn new(model: &VoiceModel, sample_rate: f32) -> FilterDesign {
        let taps = FILTER_TAPS;
        let bins = taps / 2 + 1;
        let bands = model.noise_bands();
        let band_hz = model.noise_top_hz() / bands as f32;
        let bin_bands = (0..bins)
            .map(|b| {
                let hz = b as f32 * sample_rate / taps as f32;
                if hz > model.noise_top_hz() {
                    return None;
                }
                let u = (hz / band_hz - 0.5).clamp(0.0, (bands - 1) as f32);
                let low = (u.floor() as usize).min(bands.saturating_sub(2));
                Some((low, u - low as f32))
            })
            .collect();
        let mut basis = Vec::with_capacity(bins * taps);
        for b in 0..bins {
            let one_sided = if b == 0 || b == bins - 1 { 1.0 } else { 2.0 };
            for t in 0..taps {
                let shift = t as f64 - (taps / 2) as f64;
                let angle = 2.0 * std::f64::consts::PI * b as f64 * shift / taps as f64;
                let x = 2.0 * std::f64::consts::PI * t as f64 / taps as f64;
                let window = 0.42 - 0.5 * x.cos() + 0.08 * (2.0 * x).cos();
                basis.push(one_sided * angle.cos() * window / taps as f64);
            }
        }
        FilterDesign { bin_bands, basis }
    }

    /// Writes the taps for band `density` (power re the frame mean square)
    /// at RMS `gain` into `out`.
    fn filter(&self, density: &[f32], gain: f64, out: &mut [f32]) {
        let taps = FILTER_TAPS;
        let bins = taps / 2 + 1;
        let mut taps_f64 = [0.0f64; FILTER_TAPS];
        let mut mean_power = 0.0f64;
        for (b, band) in self.bin_bands.iter().enumerate() {
            let Some((low, w)) = *band else { continue };
            let high = (low + 1).min(density.len() - 1);
            let power = f64::from(density[low] + w * (density[high] - density[low]));
            let one_sided = if b == 0 || b == bins - 1 { 1.0 } else { 2.0 };
            mean_power += one_sided * power / taps as f64;
            let magnitude = power.sqrt();
            for (tap, &basis) in taps_f64
                .iter_mut()
                .zip(&self.basis[b * taps..(b + 1) * taps])
            {
                *tap += magnitude * basis;
            }
        }
        let energy: f64 = taps_f64.iter().map(|h| h * h).sum();
        if energy <= 0.0 {
            out.fill(0.0);
            return;
        }
        // sqrt(3): the hashed noise is uniform on [-1, 1), variance 1/3.
        let scale = gain * 3f64.sqrt() * (mean_power / energy).sqrt();
        for (out, h) in out.iter_mut().zip(taps_f64) {
            *out = (h * scale) as f32;
        }
    }
}

/// CPU twin of `sin_cycles` in `ddsp.wgsl`: sin(2 pi p), same polynomial.
fn sin_cycles(p: f32) -> f32 {
    let mut r = p - (p + 0.5).floor();
    if r > 0.25 {
        r = 0.5 - r;
    } else if r < -0.25 {
        r = -0.5 - r;
    }
    let x = std::f32::consts::TAU * r;
    let x2 = x * x;
    x * (1.0
        + x2 * (-0.166_666_67
            + x2 * (0.008_333_333
                + x2 * (-0.000_198_412_7
                    + x2 * (0.000_002_755_731_9 + x2 * -0.000_000_025_052_108)))))
}

/// CPU twin of `white` in `ddsp.wgsl`: lowbias32 of the sample index.
fn white(index: u32) -> f32 {
    let mut v = index ^ NOISE_SEED;
    v ^= v >> 16;
    v = v.wrapping_mul(0x7feb_352d);
    v ^= v >> 15;
    v = v.wrapping_mul(0x846c_a68b);
    v ^= v >> 16;
    (v >> 8) as f32 * (1.0 / 8_388_608.0) - 1.0
}

/// CPU twin of `synthesize` in `ddsp.wgsl`.
fn render_cpu(plan: &FramePlan, len: usize) -> Parts {
    let (hop, k_count) = (plan.hop, plan.harmonics);
    let noise_source: Vec<f32> = (0..len + FILTER_TAPS).map(|m| white(m as u32)).collect();
    let mut harmonic = vec![0.0f32; len];
    let mut noise = vec![0.0f32; len];
    for n in 0..len {
        let (i, j) = (n / hop, n % hop);
        let alpha = j as f32 / hop as f32;
        let (a, b) = (plan.frames[i], plan.frames[i + 1]);
        if a[2] != 0.0 || b[2] != 0.0 {
            let jf = j as f32;
            let cycles = (jf * a[0] + (b[0] - a[0]) * jf * (jf - 1.0) / (2.0 * hop as f32))
                / plan.sample_rate;
            let row0 = &plan.amplitudes[i * k_count..(i + 1) * k_count];
            let row1 = &plan.amplitudes[(i + 1) * k_count..(i + 2) * k_count];
            let mut sum = 0.0f32;
            for (k, (&a0, &a1)) in row0.iter().zip(row1).enumerate() {
                if a0 != 0.0 || a1 != 0.0 {
                    let amp = a0 + alpha * (a1 - a0);
                    let kf = (k + 1) as f32;
                    let c = kf * a[1] + kf * cycles;
                    sum += amp * sin_cycles(c - c.floor());
                }
            }
            harmonic[n] = sum;
        }
        if a[3] != 0.0 || b[3] != 0.0 {
            let h0 = &plan.filters[i * FILTER_TAPS..(i + 1) * FILTER_TAPS];
            let h1 = &plan.filters[(i + 1) * FILTER_TAPS..(i + 2) * FILTER_TAPS];
            let mut sum = 0.0f32;
            for ((&x0, &x1), &w) in h0.iter().zip(h1).zip(&noise_source[n..n + FILTER_TAPS]) {
                sum += (x0 + alpha * (x1 - x0)) * w;
            }
            noise[n] = sum;
        }
    }
    Parts { harmonic, noise }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct DdspParams {
    len: u32,
    sample_base: u32,
    frame_base: u32,
    hop: u32,
    harmonics: u32,
    taps: u32,
    sample_rate: f32,
    seed: u32,
}

/// GPU path: chunks of at most `chunk_len` samples, each one dispatch over
/// the frames it reads.
fn render_gpu(
    gpu: &Gpu,
    plan: &FramePlan,
    len: usize,
    chunk_len: usize,
) -> Result<Parts, KernelError> {
    let pipeline = gpu.pipeline(&KERNEL, "synthesize");
    let (hop, k_count) = (plan.hop, plan.harmonics);
    let mut harmonic = Vec::with_capacity(len);
    let mut noise = Vec::with_capacity(len);
    let mut start = 0;
    while start < len {
        let count = chunk_len.min(len - start);
        let first_frame = start / hop;
        let end_frame = (start + count - 1) / hop + 2;
        let frames = gpu.upload(&plan.frames[first_frame..end_frame])?;
        let amplitudes =
            gpu.upload(&plan.amplitudes[first_frame * k_count..end_frame * k_count])?;
        let filters =
            gpu.upload(&plan.filters[first_frame * FILTER_TAPS..end_frame * FILTER_TAPS])?;
        let parts = gpu.storage((2 * count * 4) as u64)?;
        let params = DdspParams {
            len: count as u32,
            sample_base: start as u32,
            frame_base: first_frame as u32,
            hop: hop as u32,
            harmonics: k_count as u32,
            taps: FILTER_TAPS as u32,
            sample_rate: plan.sample_rate,
            seed: NOISE_SEED,
        };
        let dispatch = Dispatch {
            pipeline: pipeline.clone(),
            params: gpu.uniform(&params),
            bindings: vec![(1, &frames), (2, &amplitudes), (3, &filters), (4, &parts)],
            workgroups: gpu::thread_grid(count as u32),
        };
        let values = gpu
            .run::<f32>(&[dispatch], &[(&parts, 2 * count)])?
            .remove(0);
        harmonic.extend_from_slice(&values[..count]);
        noise.extend_from_slice(&values[count..]);
        start += count;
    }
    Ok(Parts { harmonic, noise })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::test_gpu;
    use crate::kernels::snr_db;
    use crate::kernels::stft::{stft_cpu, StftConfig};
    use crate::kernels::yin::{track_cpu, PitchFrame};
    use crate::voice::tests::{catalog_vocal, synthetic_voice};

    fn trained(audio: &Audio) -> VoiceModel {
        VoiceModel::train(&Engine::Cpu, std::slice::from_ref(audio))
            .expect("trains")
            .0
    }

    fn track(samples: Vec<f32>, rate: u32) -> Vec<PitchFrame> {
        track_cpu(&Audio::new(rate, vec![samples]), &YinParams::default()).expect("tracks")
    }

    /// Share of the controls' voiced frames where `tracked` is within one
    /// semitone of the control f0.
    fn melody_agreement(controls: &Controls, tracked: &[PitchFrame]) -> f64 {
        let voiced: Vec<(f32, f32)> = controls
            .f0_hz
            .iter()
            .zip(tracked)
            .filter(|(&f0, _)| f0 > 0.0)
            .map(|(&f0, frame)| (f0, frame.f0_hz))
            .collect();
        let close = voiced
            .iter()
            .filter(|(want, got)| (12.0 * (got / want).log2()).abs() < 1.0)
            .count();
        close as f64 / voiced.len() as f64
    }

    /// The long-term average spectrum in octave bands from 250 Hz to 16 kHz,
    /// dB relative to the power in all of them: the spectral envelope with
    /// level and fine structure (which harmonics) taken out.
    fn octave_levels_db(samples: &[f32], rate: u32) -> Vec<f64> {
        let config = StftConfig::LIBROSA;
        let spectrum = stft_cpu(&config, samples);
        let bin_hz = f64::from(rate) / config.n_fft as f64;
        let mut bands = [0.0f64; 6];
        for row in spectrum.chunks_exact(config.bins()) {
            for (bin, value) in row.iter().enumerate() {
                let octave = (bin as f64 * bin_hz / 250.0).log2().floor();
                if (0.0..6.0).contains(&octave) {
                    bands[octave as usize] += f64::from(value.norm_sqr());
                }
            }
        }
        let total: f64 = bands.iter().sum();
        bands.iter().map(|p| 10.0 * (p / total).log10()).collect()
    }

    /// RMS difference of two octave-band envelopes, dB.
    fn envelope_distance_db(a: &[f64], b: &[f64]) -> f64 {
        let sum: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
        (sum / a.len() as f64).sqrt()
    }

    /// Tolerance: both parts above 60 dB SNR against the CPU twin. The
    /// arithmetic is the same f32 sequence, but a shader compiler may fuse
    /// multiply-adds, and the top harmonic's phase runs ~370 cycles into a
    /// hop, where one f32 ulp is 3e-5 cycles (about 74 dB for that harmonic
    /// alone); the noise is bit-identical input through the same FIR.
    #[test]
    fn gpu_ddsp_matches_cpu_twin_in_one_chunk_and_in_many() {
        let gpu = test_gpu();
        let vocal = catalog_vocal(1, 3.0);
        let model = trained(&vocal);
        let controls = controls_from(&Engine::Cpu, &vocal).expect("controls");
        let len = vocal.frames();
        let plan = FramePlan::new(&model, &controls, len);
        let cpu = render_cpu(&plan, len);
        // 20 000 is no multiple of the hop: chunks start mid-frame.
        for chunk_len in [CHUNK_LEN_MAX, 20_000] {
            let on_gpu = render_gpu(gpu, &plan, len, chunk_len).expect("GPU synthesis");
            let harmonic = snr_db(&cpu.harmonic, &on_gpu.harmonic);
            let noise = snr_db(&cpu.noise, &on_gpu.noise);
            eprintln!("chunk {chunk_len}: harmonic SNR {harmonic:.1} dB, noise SNR {noise:.1} dB");
            assert!(
                harmonic > 60.0,
                "chunk {chunk_len}: harmonic part SNR {harmonic:.1} dB"
            );
            assert!(
                noise > 60.0,
                "chunk {chunk_len}: noise part SNR {noise:.1} dB"
            );
        }
        let summed = synthesize(&Engine::Gpu(gpu), &model, &controls, len).expect("synthesize");
        let parts = render(&Engine::Gpu(gpu), &model, &controls, len).expect("render");
        assert_eq!(summed.len(), len);
        assert_eq!(
            summed[len / 2],
            parts.harmonic[len / 2] + parts.noise[len / 2]
        );
    }

    #[test]
    fn resynthesis_with_the_singers_own_model_follows_the_melody_and_the_loudness() {
        let vocal = catalog_vocal(1, 8.0);
        let model = trained(&vocal);
        let controls = controls_from(&Engine::Cpu, &vocal).expect("controls");
        let out = synthesize(&Engine::Cpu, &model, &controls, vocal.frames()).expect("synthesize");
        let tracked = track(out, vocal.sample_rate);
        let agreement = melody_agreement(&controls, &tracked);
        eprintln!(
            "within a semitone on {:.1}% of voiced frames",
            100.0 * agreement
        );
        assert!(
            agreement >= 0.9,
            "only {:.1}% of voiced frames within a semitone",
            100.0 * agreement
        );
        let mut level_errors: Vec<f32> = controls
            .f0_hz
            .iter()
            .zip(&controls.loudness)
            .zip(&tracked)
            .filter(|((&f0, _), _)| f0 > 0.0)
            .map(|((_, &want), frame)| (frame.loudness_db - want).abs())
            .collect();
        level_errors.sort_by(f32::total_cmp);
        let median = level_errors[level_errors.len() / 2];
        eprintln!("median loudness error {median:.2} dB");
        assert!(median < 1.0, "median loudness error {median:.2} dB");
    }

    /// Timbre transfer: the same melody through a bright voice (harmonics
    /// falling 3 dB per doubling, so equal power per octave, no formants)
    /// moves the octave-band spectral envelope far from the source's and
    /// lifts the 4-16 kHz octaves, while the singer's own model stays close
    /// to the source; the melody survives either way.
    #[test]
    fn another_voice_model_changes_the_spectral_envelope_but_not_the_melody() {
        let vocal = catalog_vocal(1, 6.0);
        let own = trained(&vocal);
        let bright_voice = synthetic_voice(
            &[330.0, 440.0, 523.0, 659.0, 784.0],
            0.4,
            6.0,
            32,
            |k| 0.05 / (k as f64).sqrt(),
            0.0005,
        );
        let bright = trained(&bright_voice);
        let controls = controls_from(&Engine::Cpu, &vocal).expect("controls");
        let len = vocal.frames();
        let rate = vocal.sample_rate;
        let with_own = synthesize(&Engine::Cpu, &own, &controls, len).expect("own voice");
        let with_bright = synthesize(&Engine::Cpu, &bright, &controls, len).expect("bright voice");
        let source = octave_levels_db(&crate::kernels::mono_mix(&vocal), rate);
        let own_levels = octave_levels_db(&with_own, rate);
        let bright_levels = octave_levels_db(&with_bright, rate);
        let own_distance = envelope_distance_db(&own_levels, &source);
        let bright_distance = envelope_distance_db(&bright_levels, &source);
        eprintln!("octave envelopes (dB): source {source:.1?}\n  own {own_levels:.1?}\n  bright {bright_levels:.1?}");
        eprintln!("envelope distance to the source: own model {own_distance:.1} dB, bright model {bright_distance:.1} dB");
        assert!(
            own_distance < 3.0,
            "own model is {own_distance:.1} dB from the source"
        );
        assert!(
            bright_distance > own_distance + 6.0,
            "bright model {bright_distance:.1} dB vs own model {own_distance:.1} dB from the source"
        );
        for octave in [4, 5] {
            assert!(
                bright_levels[octave] > own_levels[octave] + 10.0,
                "octave {octave}: bright {:.1} dB vs own {:.1} dB",
                bright_levels[octave],
                own_levels[octave]
            );
        }
        let agreement = melody_agreement(&controls, &track(with_bright, rate));
        assert!(
            agreement >= 0.9,
            "bright voice melody agreement {agreement:.3}"
        );
    }

    #[test]
    fn harmonics_that_would_reach_nyquist_are_muted() {
        let voice = synthetic_voice(&[880.0], 1.0, 1.5, 32, |k| 0.1 / k as f64, 0.0005);
        let model = trained(&voice);
        // At 8 kHz, 900 Hz has four harmonics below Nyquist (3600 Hz); the
        // fifth (4500 Hz) would fold to 3500 Hz.
        let rate = 8_000;
        let controls = Controls {
            f0_hz: vec![900.0; 40],
            loudness: vec![-20.0; 40],
            hop: 256,
            sample_rate: rate,
        };
        let parts = render(&Engine::Cpu, &model, &controls, 8_000).expect("render");
        let config = StftConfig::LIBROSA;
        let spectrum = stft_cpu(&config, &parts.harmonic);
        let bin_hz = f32::from(rate as u16) / config.n_fft as f32;
        let level = |hz: f32| {
            let bin = (hz / bin_hz).round() as usize;
            spectrum[4 * config.bins() + bin].norm()
        };
        let fundamental = level(900.0);
        for hz in [1800.0, 2700.0, 3600.0] {
            let db = 20.0 * (level(hz) / fundamental).log10();
            assert!(db > -40.0, "harmonic at {hz} Hz is {db:.1} dB");
        }
        for alias in [3500.0, 2600.0, 1700.0, 800.0] {
            let db = 20.0 * (level(alias) / fundamental).log10();
            assert!(db < -80.0, "alias at {alias} Hz is {db:.1} dB");
        }
    }

    #[test]
    fn malformed_controls_are_rejected() {
        let model = trained(&synthetic_voice(
            &[220.0],
            1.0,
            1.0,
            16,
            |k| 0.1 / k as f64,
            0.001,
        ));
        let good = Controls {
            f0_hz: vec![220.0; 10],
            loudness: vec![-20.0; 10],
            hop: 512,
            sample_rate: 44_100,
        };
        assert_eq!(
            synthesize(&Engine::Cpu, &model, &good, 4_000)
                .expect("valid")
                .len(),
            4_000
        );
        let broken = [
            Controls {
                loudness: vec![-20.0; 9],
                ..good.clone()
            },
            Controls {
                f0_hz: Vec::new(),
                loudness: Vec::new(),
                ..good.clone()
            },
            Controls {
                hop: 0,
                ..good.clone()
            },
            Controls {
                sample_rate: 1_000,
                ..good.clone()
            },
            Controls {
                f0_hz: vec![f32::NAN; 10],
                ..good.clone()
            },
            Controls {
                f0_hz: vec![-5.0; 10],
                ..good.clone()
            },
            Controls {
                loudness: vec![f32::INFINITY; 10],
                ..good.clone()
            },
        ];
        for controls in broken {
            assert!(
                matches!(
                    synthesize(&Engine::Cpu, &model, &controls, 4_000),
                    Err(KernelError::InvalidParameter(_))
                ),
                "{controls:?} accepted"
            );
        }
        assert!(synthesize(&Engine::Cpu, &model, &good, 44_100 * 60 * 21).is_err());
    }

    #[test]
    fn the_sine_polynomial_and_the_noise_match_their_definitions() {
        for i in 0..1000 {
            let p = i as f32 / 1000.0;
            let exact = (std::f64::consts::TAU * f64::from(p)).sin();
            assert!((f64::from(sin_cycles(p)) - exact).abs() < 3e-7, "p = {p}");
        }
        let noise: Vec<f32> = (0..100_000).map(white).collect();
        let mean = noise.iter().map(|&x| f64::from(x)).sum::<f64>() / 1e5;
        let variance = noise.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / 1e5;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((variance - 1.0 / 3.0).abs() < 0.01, "variance {variance}");
        assert!(noise.iter().all(|x| (-1.0..1.0).contains(x)));
    }
}
