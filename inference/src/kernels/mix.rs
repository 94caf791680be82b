//! Mixdown: gain-scaled stems summed, integrated loudness (EBU R128 / ITU-R
//! BS.1770, measured with the `ebur128` crate) normalised to a target, and
//! each stem's energy in the output for attribution.
//!
//! A stem's energy is that of its gain-scaled signal, `sum (g_s x_s)^2`; the
//! cross terms between correlated stems are not assigned to anyone, so the
//! shares are non-negative. Normalisation scales every stem alike and leaves
//! the shares unchanged.

use super::{KernelError, KernelSource};
use crate::attribution::basis_points;
use crate::audio::Audio;
use crate::gpu::{self, Dispatch, Engine, Gpu, WORKGROUP_SIZE};

pub const SOURCE: KernelSource = KernelSource {
    name: "mix",
    wgsl: include_str!("mix.wgsl"),
};

/// Accepted per-stem gain, dB.
pub const GAIN_DB_RANGE: std::ops::RangeInclusive<f64> = -120.0..=24.0;
/// Accepted loudness targets, LUFS.
pub const TARGET_LUFS_RANGE: std::ops::RangeInclusive<f64> = -70.0..=0.0;
/// Samples per plane per GPU chunk at most.
const CHUNK_LEN_MAX: usize = 1 << 20;
/// Workgroups per stem in the energy reduction.
const ENERGY_GROUPS_PER_STEM: usize = 64;

/// One input of a mix.
#[derive(Clone, Copy, Debug)]
pub struct StemInput<'a> {
    pub audio: &'a Audio,
    pub gain_db: f64,
}

/// The mix and what was measured on the way.
#[derive(Clone, Debug)]
pub struct Mixdown {
    pub audio: Audio,
    /// Integrated loudness of the gain-scaled sum, before normalisation.
    pub loudness_lufs: f64,
    /// Gain applied to reach the target (0 without a target).
    pub normalization_gain_db: f64,
    /// Each stem's energy in the mix (before normalisation), input order.
    pub stem_energy: Vec<f64>,
    /// Each stem's share of that energy, basis points summing to 10 000.
    pub attribution_bp: Vec<u32>,
    /// Largest absolute sample after normalisation (no limiter is applied).
    pub peak: f32,
}

fn db_to_gain(db: f64) -> f32 {
    10f64.powf(db / 20.0) as f32
}

/// Checks the stems and returns (channels, length) of the mix: the most
/// channels of any stem (mono stems are copied to every channel) and the
/// longest length (shorter stems end in silence).
fn layout(
    stems: &[StemInput<'_>],
    target_lufs: Option<f64>,
) -> Result<(usize, usize), KernelError> {
    let first = stems
        .first()
        .ok_or_else(|| KernelError::InvalidParameter("a mix needs at least one stem".into()))?;
    let planes = stems
        .iter()
        .map(|s| s.audio.channel_count())
        .max()
        .unwrap_or(1);
    for (index, stem) in stems.iter().enumerate() {
        if stem.audio.sample_rate != first.audio.sample_rate {
            return Err(KernelError::InvalidParameter(format!(
                "stem {index} is at {} Hz but stem 0 is at {} Hz: resample first",
                stem.audio.sample_rate, first.audio.sample_rate
            )));
        }
        let channels = stem.audio.channel_count();
        if channels != 1 && channels != planes {
            return Err(KernelError::InvalidParameter(format!(
                "stem {index} has {channels} channels; stems must be mono or have {planes}"
            )));
        }
        if !GAIN_DB_RANGE.contains(&stem.gain_db) {
            return Err(KernelError::InvalidParameter(format!(
                "stem {index} gain {} dB is outside {GAIN_DB_RANGE:?}",
                stem.gain_db
            )));
        }
    }
    if let Some(target) = target_lufs {
        if !TARGET_LUFS_RANGE.contains(&target) {
            return Err(KernelError::InvalidParameter(format!(
                "target loudness {target} LUFS is outside {TARGET_LUFS_RANGE:?}"
            )));
        }
    }
    let len = stems.iter().map(|s| s.audio.frames()).max().unwrap_or(0);
    Ok((planes, len))
}

/// Sample `i` of output channel `plane` of a stem (mono copied, zero past its end).
fn stem_sample(audio: &Audio, plane: usize, i: usize) -> f32 {
    let channel = &audio.channels[plane.min(audio.channel_count() - 1)];
    channel.get(i).copied().unwrap_or(0.0)
}

/// Mixes `stems`, normalising to `target_lufs` when given, on `engine`.
pub fn mixdown(
    engine: &Engine,
    stems: &[StemInput<'_>],
    target_lufs: Option<f64>,
) -> Result<Mixdown, KernelError> {
    let (planes, len) = layout(stems, target_lufs)?;
    let gains: Vec<f32> = stems.iter().map(|s| db_to_gain(s.gain_db)).collect();
    let (mut channels, stem_energy) = match engine {
        Engine::Gpu(gpu) => mix_gpu(gpu, stems, &gains, planes, len)?,
        Engine::Cpu => mix_cpu(stems, &gains, planes, len),
    };
    let sample_rate = stems[0].audio.sample_rate;
    let loudness_lufs = integrated_loudness(&Audio::new(sample_rate, channels.clone()))?;
    let normalization_gain_db = match target_lufs {
        Some(target) if !loudness_lufs.is_finite() => {
            return Err(KernelError::InvalidParameter(format!(
                "the mix is silent (below the -70 LUFS gate), so it cannot be normalised to {target} LUFS"
            )))
        }
        Some(target) => target - loudness_lufs,
        None => 0.0,
    };
    let scale = db_to_gain(normalization_gain_db);
    let mut peak = 0.0f32;
    for channel in &mut channels {
        for x in channel.iter_mut() {
            *x *= scale;
            peak = peak.max(x.abs());
        }
    }
    let attribution_bp =
        basis_points(&stem_energy).map_err(|e| KernelError::InvalidParameter(e.to_string()))?;
    Ok(Mixdown {
        audio: Audio::new(sample_rate, channels),
        loudness_lufs,
        normalization_gain_db,
        stem_energy,
        attribution_bp,
        peak,
    })
}

/// Integrated loudness (EBU R128) in LUFS; `-inf` when everything is gated.
pub fn integrated_loudness(audio: &Audio) -> Result<f64, KernelError> {
    let failed =
        |e: ebur128::Error| KernelError::InvalidParameter(format!("loudness measurement: {e}"));
    let mut meter = ebur128::EbuR128::new(
        audio.channel_count() as u32,
        audio.sample_rate,
        ebur128::Mode::I,
    )
    .map_err(failed)?;
    meter.add_frames_f32(&audio.interleaved()).map_err(failed)?;
    meter.loudness_global().map_err(failed)
}

/// CPU twin: the mix per sample, energies accumulated in f64.
fn mix_cpu(
    stems: &[StemInput<'_>],
    gains: &[f32],
    planes: usize,
    len: usize,
) -> (Vec<Vec<f32>>, Vec<f64>) {
    let mut channels = vec![vec![0.0f32; len]; planes];
    let mut energy = vec![0.0f64; stems.len()];
    for (plane, channel) in channels.iter_mut().enumerate() {
        for (i, out) in channel.iter_mut().enumerate() {
            let mut sum = 0.0f32;
            for (s, stem) in stems.iter().enumerate() {
                let x = gains[s] * stem_sample(stem.audio, plane, i);
                sum += x;
                energy[s] += f64::from(x) * f64::from(x);
            }
            *out = sum;
        }
    }
    (channels, energy)
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct MixParams {
    stems: u32,
    planes: u32,
    len: u32,
    groups_per_stem: u32,
}

/// GPU path: time chunks, each one `mix` and one `energy` dispatch over all stems.
fn mix_gpu(
    gpu: &Gpu,
    stems: &[StemInput<'_>],
    gains: &[f32],
    planes: usize,
    len: usize,
) -> Result<(Vec<Vec<f32>>, Vec<f64>), KernelError> {
    let mut channels = (0..planes)
        .map(|_| Vec::with_capacity(len))
        .collect::<Vec<Vec<f32>>>();
    let mut energy = vec![0.0f64; stems.len()];
    let per_sample_bytes = (stems.len() * planes * 4) as u64;
    let chunk_len =
        ((gpu.storage_binding_bytes_max() / per_sample_bytes) as usize).clamp(1, CHUNK_LEN_MAX);
    let gain_buffer = gpu.upload(gains)?;
    let mix = gpu.pipeline(&SOURCE, "mix");
    let reduce = gpu.pipeline(&SOURCE, "energy");
    let mut start = 0;
    while start < len {
        let count = chunk_len.min(len - start);
        let mut block = Vec::with_capacity(stems.len() * planes * count);
        for stem in stems {
            for plane in 0..planes {
                block.extend((start..start + count).map(|i| stem_sample(stem.audio, plane, i)));
            }
        }
        let input = gpu.upload(&block)?;
        let mixed = gpu.storage((planes * count * 4) as u64)?;
        let partials = gpu.storage((stems.len() * ENERGY_GROUPS_PER_STEM * 4) as u64)?;
        let params = MixParams {
            stems: stems.len() as u32,
            planes: planes as u32,
            len: count as u32,
            groups_per_stem: ENERGY_GROUPS_PER_STEM as u32,
        };
        let dispatches = [
            Dispatch {
                pipeline: mix.clone(),
                params: gpu.uniform(&params),
                bindings: vec![(1, &input), (2, &gain_buffer), (3, &mixed)],
                workgroups: gpu::thread_grid((planes * count) as u32),
            },
            Dispatch {
                pipeline: reduce.clone(),
                params: gpu.uniform(&params),
                bindings: vec![(1, &input), (2, &gain_buffer), (4, &partials)],
                workgroups: gpu::workgroup_grid((stems.len() * ENERGY_GROUPS_PER_STEM) as u32),
            },
        ];
        let mut read = gpu.run::<f32>(
            &dispatches,
            &[
                (&mixed, planes * count),
                (&partials, stems.len() * ENERGY_GROUPS_PER_STEM),
            ],
        )?;
        let partial = read.pop().expect("two reads");
        let values = read.pop().expect("two reads");
        for (plane, part) in values.chunks_exact(count).enumerate() {
            channels[plane].extend_from_slice(part);
        }
        for (s, groups) in partial.chunks_exact(ENERGY_GROUPS_PER_STEM).enumerate() {
            energy[s] += groups.iter().map(|&e| f64::from(e)).sum::<f64>();
        }
        start += count;
    }
    debug_assert_eq!(WORKGROUP_SIZE, 256, "mix.wgsl reduces over 256 threads");
    Ok((channels, energy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::test_gpu;
    use crate::kernels::phase_vocoder::tests::tone;
    use crate::kernels::snr_db;

    fn stems() -> (Audio, Audio, Audio) {
        let rate = 22_050;
        let stereo = Audio::new(
            rate,
            vec![tone(220.0, 22_050, rate), tone(330.0, 22_050, rate)],
        );
        let mono = Audio::new(rate, vec![tone(880.0, 11_000, rate)]);
        let quiet = Audio::new(rate, vec![tone(110.0, 22_050, rate)]);
        (stereo, mono, quiet)
    }

    /// Tolerance: GPU mix vs CPU twin above 120 dB SNR (the same f32 sums);
    /// stem energies within 1e-4 relative (f32 partial sums vs f64); the
    /// attribution is the same integer split.
    #[test]
    fn gpu_mix_matches_cpu_twin() {
        let gpu = test_gpu();
        let (stereo, mono, quiet) = stems();
        let inputs = [
            StemInput {
                audio: &stereo,
                gain_db: -3.0,
            },
            StemInput {
                audio: &mono,
                gain_db: 0.0,
            },
            StemInput {
                audio: &quiet,
                gain_db: -20.0,
            },
        ];
        let cpu = mixdown(&Engine::Cpu, &inputs, Some(-16.0)).expect("CPU mix");
        let on_gpu = mixdown(&Engine::Gpu(gpu), &inputs, Some(-16.0)).expect("GPU mix");
        let snr = snr_db(&cpu.audio.interleaved(), &on_gpu.audio.interleaved());
        assert!(snr > 120.0, "GPU vs CPU mix SNR {snr:.1} dB");
        for (c, g) in cpu.stem_energy.iter().zip(&on_gpu.stem_energy) {
            assert!((c - g).abs() <= c * 1e-4, "energy {c} vs {g}");
        }
        assert_eq!(cpu.attribution_bp, on_gpu.attribution_bp);
    }

    #[test]
    fn the_mix_is_normalised_to_the_target_and_attributed_by_energy() {
        let (stereo, mono, quiet) = stems();
        let inputs = [
            StemInput {
                audio: &stereo,
                gain_db: 0.0,
            },
            StemInput {
                audio: &mono,
                gain_db: 0.0,
            },
            StemInput {
                audio: &quiet,
                gain_db: -120.0,
            },
        ];
        let mix = mixdown(&Engine::Cpu, &inputs, Some(-23.0)).expect("mix");
        assert_eq!(mix.audio.channel_count(), 2);
        assert_eq!(mix.audio.frames(), 22_050);
        let measured = integrated_loudness(&mix.audio).expect("measure");
        assert!(
            (measured + 23.0).abs() < 0.1,
            "normalised to {measured:.2} LUFS"
        );
        assert_eq!(mix.attribution_bp.iter().sum::<u32>(), 10_000);
        // The stereo stem has 2 channels × 1 s of a 0.5 sine; the mono one is
        // copied to 2 channels for 11 000 samples: about 2/3 vs 1/3.
        assert!(
            (mix.attribution_bp[0] as i32 - 6671).abs() <= 2,
            "{:?}",
            mix.attribution_bp
        );
        assert_eq!(mix.attribution_bp[2], 0);
    }

    #[test]
    fn mismatched_or_silent_mixes_are_rejected() {
        let (stereo, _, _) = stems();
        let other_rate = Audio::new(44_100, vec![vec![0.1; 100]]);
        let three = Audio::new(22_050, vec![vec![0.1; 100]; 3]);
        let silent = Audio::new(22_050, vec![vec![0.0; 22_050]]);
        let bad = |inputs: &[StemInput<'_>], target| mixdown(&Engine::Cpu, inputs, target).is_err();
        assert!(bad(&[], None));
        assert!(bad(
            &[
                StemInput {
                    audio: &stereo,
                    gain_db: 0.0
                },
                StemInput {
                    audio: &other_rate,
                    gain_db: 0.0
                }
            ],
            None
        ));
        assert!(bad(
            &[
                StemInput {
                    audio: &stereo,
                    gain_db: 0.0
                },
                StemInput {
                    audio: &three,
                    gain_db: 0.0
                }
            ],
            None
        ));
        assert!(bad(
            &[StemInput {
                audio: &stereo,
                gain_db: 30.0
            }],
            None
        ));
        assert!(bad(
            &[StemInput {
                audio: &stereo,
                gain_db: 0.0
            }],
            Some(5.0)
        ));
        assert!(bad(
            &[StemInput {
                audio: &silent,
                gain_db: 0.0
            }],
            Some(-14.0)
        ));
    }
}
