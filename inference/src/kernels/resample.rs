//! Band-limited resampling (Hann-windowed sinc, 16 zero crossings, cutoff
//! 0.945 of the lower Nyquist frequency) and pitch shift built on it, as
//! `librosa.effects.pitch_shift` builds it: stretch by `2^(-semitones/12)`
//! with the phase vocoder, then resample back to the original length.

use super::phase_vocoder::{time_stretch, time_stretch_cpu};
use super::{KernelError, KernelSource};
use crate::audio::Audio;
use crate::gpu::{self, Dispatch, Engine, Gpu};

pub const SOURCE: KernelSource = KernelSource {
    name: "resample",
    wgsl: include_str!("resample.wgsl"),
};

/// Zero crossings of the sinc on each side of the centre.
const ZERO_CROSSINGS: f64 = 16.0;
/// Passband edge as a fraction of the lower Nyquist frequency, leaving the
/// window's transition band room below it (resampy's kaiser_best uses 0.9475).
const ROLLOFF: f64 = 0.945;
/// Output samples per position block; the kernel adds at most
/// `BLOCK * step` in f32 to a block's exact start.
const BLOCK: usize = 256;

/// Accepted pitch shifts, in semitones.
pub const SEMITONES_MAX: f64 = 24.0;

/// The filter for a step (input samples per output sample).
#[derive(Clone, Copy, Debug)]
struct Shape {
    cutoff: f64,
    radius: f64,
}

impl Shape {
    fn new(step: f64) -> Shape {
        let cutoff = ROLLOFF * (1.0 / step).min(1.0);
        Shape {
            cutoff,
            radius: ZERO_CROSSINGS / cutoff,
        }
    }

    /// The filter tap at distance `x` input samples from the output position,
    /// in direct form; [`TapWalk`] must equal it (tested).
    #[cfg(test)]
    fn tap(&self, x: f64) -> f64 {
        if x.abs() >= self.radius {
            return 0.0;
        }
        let y = self.cutoff * x;
        let sinc = if y.abs() > 1e-6 {
            (std::f64::consts::PI * y).sin() / (std::f64::consts::PI * y)
        } else {
            1.0
        };
        let window = 0.5 + 0.5 * (std::f64::consts::PI * x / self.radius).cos();
        self.cutoff * sinc * window
    }
}

/// [`Shape::tap`] at `x0, x0 - 1, x0 - 2, ...`, with the sinc's sine and the
/// window's cosine advanced by angle-difference rotations instead of a
/// `sin`/`cos` call per tap (same values to ~1e-14; the CPU twin's hot loop).
struct TapWalk {
    shape: Shape,
    x: f64,
    sine: (f64, f64),
    window: (f64, f64),
    sine_step: (f64, f64),
    window_step: (f64, f64),
}

impl TapWalk {
    fn new(shape: &Shape, x0: f64) -> TapWalk {
        let sine_angle = std::f64::consts::PI * shape.cutoff;
        let window_angle = std::f64::consts::PI / shape.radius;
        TapWalk {
            shape: *shape,
            x: x0,
            sine: (sine_angle * x0).sin_cos(),
            window: (window_angle * x0).sin_cos(),
            sine_step: sine_angle.sin_cos(),
            window_step: window_angle.sin_cos(),
        }
    }

    /// The tap at the current `x`, then steps `x` down by one.
    fn next_tap(&mut self) -> f64 {
        let x = self.x;
        let tap = if x.abs() >= self.shape.radius {
            0.0
        } else {
            let y = self.shape.cutoff * x;
            let sinc = if y.abs() > 1e-6 {
                self.sine.0 / (std::f64::consts::PI * y)
            } else {
                1.0
            };
            self.shape.cutoff * sinc * (0.5 + 0.5 * self.window.1)
        };
        let rotate = |(s, c): (f64, f64), (ss, cs): (f64, f64)| (s * cs - c * ss, c * cs + s * ss);
        self.sine = rotate(self.sine, self.sine_step);
        self.window = rotate(self.window, self.window_step);
        self.x -= 1.0;
        tap
    }
}

fn validate(step: f64) -> Result<(), KernelError> {
    if !(step.is_finite() && (1.0 / 16.0..=16.0).contains(&step)) {
        return Err(KernelError::InvalidParameter(format!(
            "resampling step {step} must be in 1/16..=16 input samples per output sample"
        )));
    }
    Ok(())
}

/// Resamples each channel to `out_len` samples, output sample `j` taken at
/// input position `j * step`; the result is labelled `out_rate`.
pub fn resample(
    engine: &Engine,
    audio: &Audio,
    step: f64,
    out_len: usize,
    out_rate: u32,
) -> Result<Audio, KernelError> {
    match engine {
        Engine::Gpu(gpu) => resample_gpu(gpu, audio, step, out_len, out_rate),
        Engine::Cpu => resample_cpu(audio, step, out_len, out_rate),
    }
}

/// CPU twin, f64 positions and taps.
pub fn resample_cpu(
    audio: &Audio,
    step: f64,
    out_len: usize,
    out_rate: u32,
) -> Result<Audio, KernelError> {
    validate(step)?;
    let shape = Shape::new(step);
    let reach = shape.radius.ceil() as isize;
    let channels = audio
        .channels
        .iter()
        .map(|x| {
            (0..out_len)
                .map(|j| {
                    let position = j as f64 * step;
                    let base = position.floor() as isize;
                    let frac = position - base as f64;
                    let mut taps = TapWalk::new(&shape, frac + reach as f64);
                    let mut sum = 0.0f64;
                    for d in -reach..=reach + 1 {
                        let tap = taps.next_tap();
                        let i = base + d;
                        if i >= 0 && (i as usize) < x.len() {
                            sum += f64::from(x[i as usize]) * tap;
                        }
                    }
                    sum as f32
                })
                .collect()
        })
        .collect();
    Ok(Audio::new(out_rate, channels))
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ResampleParams {
    planes: u32,
    in_len: u32,
    out_len: u32,
    block: u32,
    step: f32,
    cutoff: f32,
    radius: f32,
    pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct BlockStart {
    base: i32,
    fraction: f32,
}

/// GPU path: all channels in one dispatch.
pub fn resample_gpu(
    gpu: &Gpu,
    audio: &Audio,
    step: f64,
    out_len: usize,
    out_rate: u32,
) -> Result<Audio, KernelError> {
    validate(step)?;
    let planes = audio.channel_count();
    if out_len == 0 {
        return Ok(Audio::new(out_rate, vec![Vec::new(); planes]));
    }
    let shape = Shape::new(step);
    let in_len = audio.frames();
    let blocks: Vec<BlockStart> = (0..out_len.div_ceil(BLOCK))
        .map(|b| {
            let position = (b * BLOCK) as f64 * step;
            let base = position.floor();
            BlockStart {
                base: base as i32,
                fraction: (position - base) as f32,
            }
        })
        .collect();
    let input: Vec<f32> = audio.channels.concat();
    let input = gpu.upload(if input.is_empty() {
        &[0.0f32][..]
    } else {
        &input
    })?;
    let blocks = gpu.upload(&blocks)?;
    let output = gpu.storage((planes * out_len * 4) as u64)?;
    let params = ResampleParams {
        planes: planes as u32,
        in_len: in_len as u32,
        out_len: out_len as u32,
        block: BLOCK as u32,
        step: step as f32,
        cutoff: shape.cutoff as f32,
        radius: shape.radius as f32,
        pad: 0,
    };
    let dispatch = Dispatch {
        pipeline: gpu.pipeline(&SOURCE, "resample"),
        params: gpu.uniform(&params),
        bindings: vec![(1, &input), (2, &blocks), (3, &output)],
        workgroups: gpu::thread_grid((planes * out_len) as u32),
    };
    let result = gpu
        .run::<f32>(&[dispatch], &[(&output, planes * out_len)])?
        .remove(0);
    let channels = result.chunks_exact(out_len).map(<[f32]>::to_vec).collect();
    Ok(Audio::new(out_rate, channels))
}

fn validate_semitones(semitones: f64) -> Result<(), KernelError> {
    if !(semitones.is_finite() && semitones.abs() <= SEMITONES_MAX) {
        return Err(KernelError::InvalidParameter(format!(
            "semitones {semitones} must be within ±{SEMITONES_MAX}"
        )));
    }
    Ok(())
}

/// Shifts pitch by `semitones`, keeping duration, on `engine`.
pub fn pitch_shift(engine: &Engine, audio: &Audio, semitones: f64) -> Result<Audio, KernelError> {
    validate_semitones(semitones)?;
    let rate = 2f64.powf(-semitones / 12.0);
    let stretched = time_stretch(engine, audio, rate)?;
    resample(
        engine,
        &stretched,
        1.0 / rate,
        audio.frames(),
        audio.sample_rate,
    )
}

/// CPU twin of [`pitch_shift`].
pub fn pitch_shift_cpu(audio: &Audio, semitones: f64) -> Result<Audio, KernelError> {
    validate_semitones(semitones)?;
    let rate = 2f64.powf(-semitones / 12.0);
    let stretched = time_stretch_cpu(audio, rate)?;
    resample_cpu(&stretched, 1.0 / rate, audio.frames(), audio.sample_rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::test_gpu;
    use crate::kernels::phase_vocoder::tests::{tone, zero_crossing_hz};
    use crate::kernels::snr_db;

    /// Tolerance: GPU (f32 taps, block-relative f32 positions) vs CPU twin
    /// (f64 throughout) above 70 dB SNR, down- and up-sampling, two channels.
    #[test]
    fn gpu_resample_matches_cpu_twin() {
        let gpu = test_gpu();
        let left = crate::kernels::stft::tests::test_signal(12_000, 22_050.0);
        let right = tone(1000.0, 12_000, 22_050);
        let audio = Audio::new(22_050, vec![left, right]);
        for step in [2f64.powf(7.0 / 12.0), 0.75] {
            let out_len = (12_000.0 / step) as usize;
            let cpu = resample_cpu(&audio, step, out_len, 22_050).expect("CPU resample");
            let on_gpu = resample_gpu(gpu, &audio, step, out_len, 22_050).expect("GPU resample");
            let snr = snr_db(&cpu.interleaved(), &on_gpu.interleaved());
            assert!(
                snr > 70.0,
                "step {step}: GPU vs CPU SNR {snr:.1} dB, want > 70 dB"
            );
        }
    }

    #[test]
    fn walked_taps_equal_direct_taps() {
        let shape = Shape::new(1.37);
        let mut walk = TapWalk::new(&shape, 0.3 + 25.0);
        for d in 0..52 {
            let x = 0.3 + 25.0 - d as f64;
            assert!((walk.next_tap() - shape.tap(x)).abs() < 1e-12, "x = {x}");
        }
    }

    #[test]
    fn resampling_keeps_a_tone_in_band_at_its_frequency() {
        let audio = Audio::new(22_050, vec![tone(500.0, 22_050, 22_050)]);
        // 22.05 kHz -> 16 kHz: a 500 Hz tone must stay 500 Hz at the new rate.
        let step = 22_050.0 / 16_000.0;
        let out = resample_cpu(&audio, step, 16_000, 16_000).expect("resample");
        let hz = zero_crossing_hz(&out.channels[0], 16_000);
        assert!((hz - 500.0).abs() < 2.0, "tone at {hz:.2} Hz, want 500");
    }

    /// Tolerance: GPU pitch shift vs CPU twin above 50 dB SNR; an octave up
    /// doubles a tone's frequency within 1% and keeps the length.
    #[test]
    fn pitch_shift_by_an_octave_doubles_frequency_on_both_backends() {
        let gpu = test_gpu();
        let audio = Audio::new(22_050, vec![tone(300.0, 22_050, 22_050)]);
        let cpu = pitch_shift_cpu(&audio, 12.0).expect("CPU pitch shift");
        let on_gpu = pitch_shift(&Engine::Gpu(gpu), &audio, 12.0).expect("GPU pitch shift");
        assert_eq!(cpu.frames(), audio.frames());
        let hz = zero_crossing_hz(&cpu.channels[0], 22_050);
        assert!(
            (hz - 600.0).abs() < 6.0,
            "shifted tone at {hz:.1} Hz, want 600"
        );
        let snr = snr_db(&cpu.interleaved(), &on_gpu.interleaved());
        assert!(
            snr > 50.0,
            "GPU vs CPU pitch shift SNR {snr:.1} dB, want > 50 dB"
        );
    }

    #[test]
    fn out_of_range_shifts_are_rejected() {
        let audio = Audio::new(22_050, vec![vec![0.0; 4096]]);
        assert!(pitch_shift_cpu(&audio, 25.0).is_err());
        assert!(pitch_shift_cpu(&audio, f64::NAN).is_err());
        assert!(resample_cpu(&audio, 0.0, 10, 22_050).is_err());
    }
}
