//! The ops a generation step runs, with their parameters in the integer
//! units the step event records. One function runs an op on either engine;
//! the job calls it on the engine it was given, and `replay` calls it on the
//! CPU twin with the parameters read back from the log, so both run exactly
//! the same code from exactly the same numbers.

use super::PipelineError;
use crate::audio::Audio;
use crate::gpu::Engine;
use crate::kernels::mix::{self, StemInput};
use crate::kernels::{phase_vocoder, resample, stft, KernelSource};
use crate::onnx::gpu as onnx_gpu;
use crate::transcribe::{self, melody::Melody, BasicPitch};
use schemas::generation::{KernelRef, StepOp};
use schemas::ContentHash;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Loudness target of every derivative: the -14 LUFS that the large
/// streaming platforms normalise to, so a derivative plays at their level.
pub const TARGET_CENTI_LUFS: i32 = -1400;

/// The true-peak ceiling of every published output, centi-dBTP (EBU R128's
/// -1 dBTP).
pub const PUBLISHED_CEILING_CENTI_DBTP: i32 = -100;

/// Parameters of `mix`: one gain per input, in input order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixParams {
    pub gains_mb: Vec<i32>,
    /// Integrated loudness target (EBU R128) in centi-LUFS; `None` leaves
    /// the sum as it is (a bus feeding later steps).
    pub target_centi_lufs: Option<i32>,
    /// True-peak ceiling (BS.1770) in centi-dBTP: the gain is lowered
    /// below the target's where the peaks would pass it. Absent from the
    /// events of mixes made before there was one, which replay as made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub true_peak_ceiling_centi_dbtp: Option<i32>,
}

/// Parameters of `time-stretch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StretchParams {
    /// Rate in parts per million; above 1 000 000 is faster (shorter).
    pub rate_ppm: u32,
}

/// Parameters of `pitch-shift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftParams {
    pub cents: i32,
}

/// Parameters of `voice-transfer`: the source vocal's f0 shifted by
/// `cents` and its controls stretched by `rate_ppm`, sung by the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceParams {
    pub voice_model: String,
    pub cents: i32,
    pub rate_ppm: u32,
}

/// Parameters of `transcribe`: which registered network transcribes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscribeParams {
    /// The network's id, as its `model.registered` event names it.
    pub model: String,
}

/// An op and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpParams {
    /// Decode the licensed input files; the outputs are their PCM.
    LoadStems,
    Mix(MixParams),
    TimeStretch(StretchParams),
    PitchShift(ShiftParams),
    VoiceTransfer(VoiceParams),
    Transcribe(TranscribeParams),
}

/// An input of an op: decoded audio, or the bytes of a non-audio artifact
/// (a voice model, a network, a note list).
#[derive(Debug, Clone)]
pub enum OpInput {
    Audio(Audio),
    Bytes(Vec<u8>),
}

/// What an op produced.
#[derive(Debug, Clone)]
pub struct OpOutput {
    pub audio: Vec<Audio>,
    /// Outputs that are not audio (a transcription's note list), stored
    /// and hashed as they are.
    pub files: Vec<Vec<u8>>,
    /// Measured values, in the units their names end with.
    pub measurements: BTreeMap<String, i64>,
    /// For `mix`: each input's share of the output energy, basis points
    /// summing to 10 000, input order.
    pub energy_bp: Vec<u32>,
}

fn ppm_to_rate(rate_ppm: u32) -> f64 {
    f64::from(rate_ppm) / 1e6
}

fn kernel_ref(kernel: &KernelSource) -> KernelRef {
    KernelRef {
        name: kernel.name.to_string(),
        source: ContentHash::parse(&kernel.source_hash()).expect("kernel hashes are sha256"),
    }
}

impl OpParams {
    pub fn op(&self) -> StepOp {
        match self {
            OpParams::LoadStems => StepOp::LoadStems,
            OpParams::Mix(_) => StepOp::Mix,
            OpParams::TimeStretch(_) => StepOp::TimeStretch,
            OpParams::PitchShift(_) => StepOp::PitchShift,
            OpParams::VoiceTransfer(_) => StepOp::VoiceTransfer,
            OpParams::Transcribe(_) => StepOp::Transcribe,
        }
    }

    /// The parameters as the step event's `params` object.
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            OpParams::LoadStems => Ok(serde_json::json!({})),
            OpParams::Mix(p) => serde_json::to_value(p),
            OpParams::TimeStretch(p) => serde_json::to_value(p),
            OpParams::PitchShift(p) => serde_json::to_value(p),
            OpParams::VoiceTransfer(p) => serde_json::to_value(p),
            OpParams::Transcribe(p) => serde_json::to_value(p),
        };
        value.expect("op parameters serialize")
    }

    /// Reads the parameters back from a step event.
    pub fn from_event(op: StepOp, params: &serde_json::Value) -> Result<OpParams, String> {
        fn parse<T: for<'de> Deserialize<'de>>(params: &serde_json::Value) -> Result<T, String> {
            T::deserialize(params).map_err(|e| e.to_string())
        }
        Ok(match op {
            StepOp::LoadStems => match params.as_object() {
                Some(map) if map.is_empty() => OpParams::LoadStems,
                _ => return Err("load-stems takes no parameters".into()),
            },
            StepOp::Mix => OpParams::Mix(parse(params)?),
            StepOp::TimeStretch => OpParams::TimeStretch(parse(params)?),
            StepOp::PitchShift => OpParams::PitchShift(parse(params)?),
            StepOp::VoiceTransfer => OpParams::VoiceTransfer(parse(params)?),
            StepOp::Transcribe => OpParams::Transcribe(parse(params)?),
        })
    }

    /// The WGSL kernels the op dispatches (none for decoding).
    pub fn kernels(&self) -> Vec<KernelRef> {
        let sources: Vec<&KernelSource> = match self {
            OpParams::LoadStems => vec![],
            OpParams::Mix(_) => vec![&mix::SOURCE],
            OpParams::TimeStretch(_) => vec![&stft::SOURCE, &phase_vocoder::SOURCE],
            OpParams::PitchShift(_) => {
                vec![&stft::SOURCE, &phase_vocoder::SOURCE, &resample::SOURCE]
            }
            OpParams::VoiceTransfer(_) => super::voice_transfer::kernels(),
            OpParams::Transcribe(_) => vec![&onnx_gpu::SOURCE],
        };
        sources.into_iter().map(kernel_ref).collect()
    }

    /// Whether a replay compares the output's bytes, not its samples: a
    /// note list holds only decisions, so the CPU twin must give the same.
    pub fn output_is_bytes(&self) -> bool {
        matches!(self, OpParams::Transcribe(_))
    }

    /// The SNR above which a CPU replay matches the recorded output: the
    /// tolerance each kernel's GPU-vs-CPU test states, less a margin for
    /// other signals than the tests'. Decoding is exact; a note list is
    /// compared byte for byte ([`OpParams::output_is_bytes`]).
    pub fn tolerance_db(&self) -> f64 {
        match self {
            OpParams::LoadStems | OpParams::Transcribe(_) => 120.0,
            OpParams::Mix(_) => 90.0,
            OpParams::TimeStretch(_) | OpParams::PitchShift(_) => 40.0,
            OpParams::VoiceTransfer(_) => super::voice_transfer::TOLERANCE_DB,
        }
    }

    /// Runs the op on `engine`.
    pub fn execute(&self, engine: &Engine, inputs: &[OpInput]) -> Result<OpOutput, PipelineError> {
        let audio_inputs = || -> Result<Vec<&Audio>, PipelineError> {
            inputs
                .iter()
                .map(|input| match input {
                    OpInput::Audio(audio) => Ok(audio),
                    OpInput::Bytes(_) => Err(PipelineError::Step(format!(
                        "{} takes audio inputs only",
                        self.op().as_str()
                    ))),
                })
                .collect()
        };
        let single = || -> Result<&Audio, PipelineError> {
            match audio_inputs()?.as_slice() {
                [audio] => Ok(*audio),
                other => Err(PipelineError::Step(format!(
                    "{} takes one input, got {}",
                    self.op().as_str(),
                    other.len()
                ))),
            }
        };
        let plain = |audio: Audio| OpOutput {
            audio: vec![audio],
            files: Vec::new(),
            measurements: BTreeMap::new(),
            energy_bp: Vec::new(),
        };
        match self {
            OpParams::LoadStems => Ok(OpOutput {
                audio: audio_inputs()?.into_iter().cloned().collect(),
                files: Vec::new(),
                measurements: BTreeMap::new(),
                energy_bp: Vec::new(),
            }),
            OpParams::Mix(params) => mix_op(engine, params, &audio_inputs()?),
            OpParams::TimeStretch(params) => Ok(plain(phase_vocoder::time_stretch(
                engine,
                single()?,
                ppm_to_rate(params.rate_ppm),
            )?)),
            OpParams::PitchShift(params) => Ok(plain(resample::pitch_shift(
                engine,
                single()?,
                f64::from(params.cents) / 100.0,
            )?)),
            OpParams::VoiceTransfer(params) => {
                let (vocal, model, notes) = match inputs {
                    [OpInput::Audio(vocal), OpInput::Bytes(model)] => (vocal, model, None),
                    [OpInput::Audio(vocal), OpInput::Bytes(model), OpInput::Bytes(notes)] => {
                        (vocal, model, Some(notes))
                    }
                    _ => {
                        return Err(PipelineError::Step(
                            "voice-transfer takes a source vocal, a voice model and optionally the melody's notes".into(),
                        ))
                    }
                };
                let melody = notes
                    .map(|bytes| Melody::from_bytes(bytes))
                    .transpose()
                    .map_err(|e| PipelineError::Step(format!("the melody's notes: {e}")))?;
                Ok(plain(super::voice_transfer::run(
                    engine,
                    vocal,
                    model,
                    melody.as_ref(),
                    f64::from(params.cents),
                    ppm_to_rate(params.rate_ppm),
                )?))
            }
            OpParams::Transcribe(params) => transcribe_op(engine, params, inputs),
        }
    }
}

/// Transcribes the source vocal with the network in the model artifact and
/// keeps its melody ([`Melody::from_notes`]).
fn transcribe_op(
    engine: &Engine,
    params: &TranscribeParams,
    inputs: &[OpInput],
) -> Result<OpOutput, PipelineError> {
    let [OpInput::Audio(vocal), OpInput::Bytes(model_bytes)] = inputs else {
        return Err(PipelineError::Step(
            "transcribe takes a source vocal and the network's model file".into(),
        ));
    };
    if params.model != transcribe::MODEL_ID {
        return Err(PipelineError::Step(format!(
            "transcribe runs {}, not {}",
            transcribe::MODEL_ID,
            params.model
        )));
    }
    let failed = |e: &dyn std::fmt::Display| PipelineError::Step(format!("transcribe: {e}"));
    let model = BasicPitch::from_bytes(model_bytes).map_err(|e| failed(&e))?;
    let transcription =
        transcribe::transcribe(&model, engine, vocal, |_, _| {}).map_err(|e| failed(&e))?;
    let melody = Melody::from_notes(&transcription.notes);
    let mut measurements = BTreeMap::new();
    measurements.insert(
        "notes_detected".to_string(),
        transcription.notes.len() as i64,
    );
    measurements.insert("melody_notes".to_string(), melody.notes.len() as i64);
    Ok(OpOutput {
        audio: Vec::new(),
        files: vec![melody.to_bytes()],
        measurements,
        energy_bp: Vec::new(),
    })
}

fn mix_op(
    engine: &Engine,
    params: &MixParams,
    inputs: &[&Audio],
) -> Result<OpOutput, PipelineError> {
    if params.gains_mb.len() != inputs.len() {
        return Err(PipelineError::Step(format!(
            "mix has {} gains for {} inputs",
            params.gains_mb.len(),
            inputs.len()
        )));
    }
    let stems: Vec<StemInput<'_>> = inputs
        .iter()
        .zip(&params.gains_mb)
        .map(|(audio, gain_mb)| StemInput {
            audio,
            gain_db: f64::from(*gain_mb) / 100.0,
        })
        .collect();
    let target = params.target_centi_lufs.map(|c| f64::from(c) / 100.0);
    let ceiling = params
        .true_peak_ceiling_centi_dbtp
        .map(|c| f64::from(c) / 100.0);
    let mixdown = mix::mixdown(engine, &stems, target, ceiling)?;
    let mut measurements = BTreeMap::new();
    if mixdown.loudness_lufs.is_finite() {
        measurements.insert(
            "loudness_centi_lufs".to_string(),
            (mixdown.loudness_lufs * 100.0).round() as i64,
        );
    }
    if target.is_some() {
        measurements.insert(
            "normalization_gain_mb".to_string(),
            (mixdown.normalization_gain_db * 100.0).round() as i64,
        );
    }
    if mixdown.true_peak_dbtp.is_finite() {
        measurements.insert(
            "true_peak_centi_dbtp".to_string(),
            (mixdown.true_peak_dbtp * 100.0).round() as i64,
        );
    }
    // Sample peak in basis points of full scale: above 10 000 the file
    // clips when written as integer PCM.
    measurements.insert(
        "peak_bp".to_string(),
        (f64::from(mixdown.peak) * 10_000.0).round() as i64,
    );
    Ok(OpOutput {
        audio: vec![mixdown.audio],
        files: Vec::new(),
        measurements,
        energy_bp: mixdown.attribution_bp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_round_trip_through_the_event_form() {
        let cases = [
            OpParams::LoadStems,
            OpParams::Mix(MixParams {
                gains_mb: vec![-300, 0],
                target_centi_lufs: Some(TARGET_CENTI_LUFS),
                true_peak_ceiling_centi_dbtp: Some(PUBLISHED_CEILING_CENTI_DBTP),
            }),
            OpParams::Mix(MixParams {
                gains_mb: vec![0],
                target_centi_lufs: None,
                true_peak_ceiling_centi_dbtp: None,
            }),
            OpParams::TimeStretch(StretchParams {
                rate_ppm: 1_250_000,
            }),
            OpParams::PitchShift(ShiftParams { cents: -200 }),
            OpParams::VoiceTransfer(VoiceParams {
                voice_model: "vm1".into(),
                cents: 300,
                rate_ppm: 900_000,
            }),
            OpParams::Transcribe(TranscribeParams {
                model: transcribe::MODEL_ID.into(),
            }),
        ];
        for params in cases {
            let back = OpParams::from_event(params.op(), &params.to_json()).unwrap();
            assert_eq!(back, params);
        }
        assert!(OpParams::from_event(
            StepOp::Mix,
            &serde_json::json!({"gains_mb": [0], "target_centi_lufs": null, "x": 1})
        )
        .is_err());
        // A mix recorded before the ceiling existed reads back without one.
        assert_eq!(
            OpParams::from_event(
                StepOp::Mix,
                &serde_json::json!({"gains_mb": [0], "target_centi_lufs": -1400})
            ),
            Ok(OpParams::Mix(MixParams {
                gains_mb: vec![0],
                target_centi_lufs: Some(-1400),
                true_peak_ceiling_centi_dbtp: None,
            }))
        );
        assert!(OpParams::from_event(StepOp::LoadStems, &serde_json::json!({"x": 1})).is_err());
    }

    #[test]
    fn mix_measures_energy_shares_and_normalises() {
        let loud = Audio::new(
            44_100,
            vec![(0..44_100).map(|i| 0.5 * (i as f32 * 0.05).sin()).collect()],
        );
        let quiet = Audio::new(
            44_100,
            vec![(0..44_100)
                .map(|i| 0.25 * (i as f32 * 0.031).sin())
                .collect()],
        );
        let params = OpParams::Mix(MixParams {
            gains_mb: vec![0, 0],
            target_centi_lufs: Some(TARGET_CENTI_LUFS),
            true_peak_ceiling_centi_dbtp: Some(PUBLISHED_CEILING_CENTI_DBTP),
        });
        let out = params
            .execute(&Engine::Cpu, &[OpInput::Audio(loud), OpInput::Audio(quiet)])
            .unwrap();
        assert_eq!(out.energy_bp.iter().sum::<u32>(), 10_000);
        // Amplitudes 2:1 give energies 4:1.
        assert!(
            (7_900..=8_100).contains(&out.energy_bp[0]),
            "{:?}",
            out.energy_bp
        );
        let measured = crate::kernels::mix::measure(&out.audio[0]).unwrap();
        assert!((measured.loudness_lufs + 14.0).abs() < 0.1, "{measured:?}");
        assert_eq!(
            out.measurements["true_peak_centi_dbtp"],
            (measured.true_peak_dbtp * 100.0).round() as i64
        );
    }
}
