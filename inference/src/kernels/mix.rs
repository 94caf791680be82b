//! Mixdown: gain-scaled stems summed, integrated loudness (EBU R128 / ITU-R
//! BS.1770, measured with the `ebur128` crate) normalised to a target under
//! a true-peak ceiling, and each stem's energy in the output for attribution.
//!
//! The ceiling lowers the gain rather than limiting: a mix whose peaks would
//! pass it at the target loudness is published quieter, with its dynamics
//! untouched, as the large streaming platforms do in their normal mode. The
//! true peak is BS.1770's, 4× oversampled below 96 kHz, so the peaks
//! between samples that clip a later MP3 or AAC encode are counted.
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
/// Accepted true-peak ceilings, dBTP.
pub const TRUE_PEAK_CEILING_DBTP_RANGE: std::ops::RangeInclusive<f64> = -20.0..=0.0;
/// EBU R128's maximum true peak for distributed audio, dBTP: the ceiling of
/// every published output.
pub const PUBLISHED_TRUE_PEAK_CEILING_DBTP: f64 = -1.0;
/// Headroom kept under a ceiling, dB, for the float rounding between the
/// measurement and the scaled samples.
const CEILING_MARGIN_DB: f64 = 0.01;
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
    /// Gain applied after the sum: toward the target loudness (0 without
    /// one), lowered where the true-peak ceiling requires.
    pub normalization_gain_db: f64,
    /// Whether the ceiling, not the target, set that gain.
    pub ceiling_applied: bool,
    /// True peak of the output (BS.1770, 4× oversampled), dBTP; `-inf` for
    /// a silent mix.
    pub true_peak_dbtp: f64,
    /// Each stem's energy in the mix (before normalisation), input order.
    pub stem_energy: Vec<f64>,
    /// Each stem's share of that energy, basis points summing to 10 000.
    pub attribution_bp: Vec<u32>,
    /// Largest absolute sample after normalisation.
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
    true_peak_ceiling_dbtp: Option<f64>,
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
    if let Some(ceiling) = true_peak_ceiling_dbtp {
        if !TRUE_PEAK_CEILING_DBTP_RANGE.contains(&ceiling) {
            return Err(KernelError::InvalidParameter(format!(
                "true-peak ceiling {ceiling} dBTP is outside {TRUE_PEAK_CEILING_DBTP_RANGE:?}"
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

/// Mixes `stems` on `engine`, normalising to `target_lufs` when given and
/// keeping the true peak at or below `true_peak_ceiling_dbtp` when given.
pub fn mixdown(
    engine: &Engine,
    stems: &[StemInput<'_>],
    target_lufs: Option<f64>,
    true_peak_ceiling_dbtp: Option<f64>,
) -> Result<Mixdown, KernelError> {
    let (planes, len) = layout(stems, target_lufs, true_peak_ceiling_dbtp)?;
    let gains: Vec<f32> = stems.iter().map(|s| db_to_gain(s.gain_db)).collect();
    let (channels, stem_energy) = match engine {
        Engine::Gpu(gpu) => mix_gpu(gpu, stems, &gains, planes, len)?,
        Engine::Cpu => mix_cpu(stems, &gains, planes, len),
    };
    let sample_rate = stems[0].audio.sample_rate;
    let sum = Audio::new(sample_rate, channels);
    let Measured {
        loudness_lufs,
        true_peak_dbtp: sum_true_peak_dbtp,
    } = measure(&sum)?;
    let mut channels = sum.channels;
    let target_gain_db = match target_lufs {
        Some(target) if !loudness_lufs.is_finite() => {
            return Err(KernelError::InvalidParameter(format!(
                "the mix is silent (below the -70 LUFS gate), so it cannot be normalised to {target} LUFS"
            )))
        }
        Some(target) => target - loudness_lufs,
        None => 0.0,
    };
    // A true peak scales with the gain, so the ceiling is a bound on it.
    let ceiling_gain_db = true_peak_ceiling_dbtp
        .map(|ceiling| ceiling - CEILING_MARGIN_DB - sum_true_peak_dbtp)
        .unwrap_or(f64::INFINITY);
    let ceiling_applied = ceiling_gain_db < target_gain_db;
    let normalization_gain_db = target_gain_db.min(ceiling_gain_db);
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
        ceiling_applied,
        true_peak_dbtp: sum_true_peak_dbtp + normalization_gain_db,
        stem_energy,
        attribution_bp,
        peak,
    })
}

/// What one pass of the EBU R128 meter measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured {
    /// Integrated loudness, LUFS; `-inf` when everything is gated.
    pub loudness_lufs: f64,
    /// The largest true peak of any channel, dBTP; `-inf` for silence.
    pub true_peak_dbtp: f64,
}

/// Integrated loudness and true peak (EBU R128 / BS.1770), in one pass.
pub fn measure(audio: &Audio) -> Result<Measured, KernelError> {
    let failed =
        |e: ebur128::Error| KernelError::InvalidParameter(format!("loudness measurement: {e}"));
    let channels = audio.channel_count() as u32;
    let mut meter = ebur128::EbuR128::new(
        channels,
        audio.sample_rate,
        ebur128::Mode::I | ebur128::Mode::TRUE_PEAK,
    )
    .map_err(failed)?;
    meter.add_frames_f32(&audio.interleaved()).map_err(failed)?;
    let mut true_peak = 0.0f64;
    for channel in 0..channels {
        true_peak = true_peak.max(meter.true_peak(channel).map_err(failed)?);
    }
    Ok(Measured {
        loudness_lufs: meter.loudness_global().map_err(failed)?,
        true_peak_dbtp: 20.0 * true_peak.log10(),
    })
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
        let cpu = mixdown(&Engine::Cpu, &inputs, Some(-16.0), None).expect("CPU mix");
        let on_gpu = mixdown(&Engine::Gpu(gpu), &inputs, Some(-16.0), None).expect("GPU mix");
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
        let mix = mixdown(&Engine::Cpu, &inputs, Some(-23.0), None).expect("mix");
        assert_eq!(mix.audio.channel_count(), 2);
        assert_eq!(mix.audio.frames(), 22_050);
        let measured = measure(&mix.audio).expect("measure").loudness_lufs;
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
        let bad =
            |inputs: &[StemInput<'_>], target| mixdown(&Engine::Cpu, inputs, target, None).is_err();
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
        for ceiling in [0.5, -25.0, f64::NAN] {
            let stem = StemInput {
                audio: &stereo,
                gain_db: 0.0,
            };
            assert!(mixdown(&Engine::Cpu, &[stem], Some(-14.0), Some(ceiling)).is_err());
        }
    }

    /// A sine at a quarter of the sample rate, sampled 45° off its crests:
    /// every sample is at 0.707 of the amplitude, so the sample peak is 3 dB
    /// under the true peak that a reconstruction filter (and an encoder)
    /// meets between them.
    #[test]
    fn the_true_peak_counts_the_crests_between_samples() {
        let rate = 44_100;
        let samples: Vec<f32> = (0..rate)
            .map(|i| {
                let phase = std::f64::consts::FRAC_PI_2 * i as f64 + std::f64::consts::FRAC_PI_4;
                (0.9 * phase.sin()) as f32
            })
            .collect();
        let sample_peak = samples.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!((20.0 * f64::from(sample_peak).log10() - (-3.93)).abs() < 0.01);
        let measured = measure(&Audio::new(rate, vec![samples])).expect("measure");
        let expected = 20.0 * 0.9f64.log10();
        assert!(
            (measured.true_peak_dbtp - expected).abs() < 0.2,
            "true peak {:.2} dBTP, expected {expected:.2}",
            measured.true_peak_dbtp
        );
    }

    /// Clicks: loud peaks, little energy. At -14 LUFS their true peak would
    /// be far above full scale, so the ceiling sets the gain instead.
    #[test]
    fn a_mix_too_peaky_for_its_target_is_published_quieter_under_the_ceiling() {
        let rate = 44_100;
        let clicks: Vec<f32> = (0..rate * 2)
            .map(|i| match i % 441 {
                0 => 0.5,
                1 => -0.4,
                _ => 0.0,
            })
            .collect();
        let clicks = Audio::new(rate, vec![clicks.clone(), clicks]);
        let stem = [StemInput {
            audio: &clicks,
            gain_db: 0.0,
        }];
        let unbounded = mixdown(&Engine::Cpu, &stem, Some(-14.0), None).expect("mix");
        assert!(unbounded.true_peak_dbtp > 0.0, "{unbounded:?}");
        assert!(!unbounded.ceiling_applied);

        let bounded = mixdown(
            &Engine::Cpu,
            &stem,
            Some(-14.0),
            Some(PUBLISHED_TRUE_PEAK_CEILING_DBTP),
        )
        .expect("mix");
        assert!(bounded.ceiling_applied);
        let measured = measure(&bounded.audio).expect("measure");
        assert!(
            measured.true_peak_dbtp <= PUBLISHED_TRUE_PEAK_CEILING_DBTP,
            "{measured:?}"
        );
        assert!(measured.true_peak_dbtp > PUBLISHED_TRUE_PEAK_CEILING_DBTP - 0.05);
        assert!((measured.true_peak_dbtp - bounded.true_peak_dbtp).abs() < 1e-3);
        assert!(measured.loudness_lufs < -14.5, "{measured:?}");
        // The gain is the only change: the waveform's shape is the same.
        let ratio = bounded.audio.channels[0][0] / unbounded.audio.channels[0][0];
        for (b, u) in bounded.audio.channels[0]
            .iter()
            .zip(&unbounded.audio.channels[0])
        {
            assert!((b - u * ratio).abs() <= 1e-6);
        }
    }

    /// Sines have peaks 3 dB above their mean: -14 LUFS leaves them well
    /// under the ceiling, which then changes nothing.
    #[test]
    fn the_ceiling_leaves_a_mix_that_fits_under_it_at_the_target() {
        let (stereo, mono, _) = stems();
        let inputs = [
            StemInput {
                audio: &stereo,
                gain_db: 0.0,
            },
            StemInput {
                audio: &mono,
                gain_db: 0.0,
            },
        ];
        let free = mixdown(&Engine::Cpu, &inputs, Some(-14.0), None).expect("mix");
        let bounded = mixdown(
            &Engine::Cpu,
            &inputs,
            Some(-14.0),
            Some(PUBLISHED_TRUE_PEAK_CEILING_DBTP),
        )
        .expect("mix");
        assert!(!bounded.ceiling_applied);
        assert!(bounded.true_peak_dbtp < PUBLISHED_TRUE_PEAK_CEILING_DBTP);
        assert_eq!(free.audio.channels, bounded.audio.channels);
    }
}
