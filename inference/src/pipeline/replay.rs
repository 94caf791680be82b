//! Replay: rerun one recorded generation step on the CPU twin, from the
//! inputs and parameters its event names, and compare with the recorded
//! output. GPU floats may differ across devices, so a step matches when the
//! SNR of the rerun against the record is above the op's tolerance
//! ([`OpParams::tolerance_db`]); a step that ran on the CPU reruns exactly.
//! A step whose output is a file of decisions (a transcription's note
//! list) matches only when the rerun writes the same bytes.

use super::job::VOICE_MODEL_INPUT;
use super::steps::{OpInput, OpParams};
use super::PipelineError;
use crate::artifacts::ArtifactStore;
use crate::audio::Audio;
use crate::gpu::Engine;
use ledger::{EventStore, StoreError};
use schemas::generation::{GenerationStep, StepArtifact, StepOp, GENERATION_STEP};
use serde::Serialize;

/// The SNR reported for a rerun identical to the record: JSON has no
/// infinity, and no f32 signal that differs at all gets near it.
pub const SNR_DB_IDENTICAL: f64 = 300.0;

/// What a replay found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayReport {
    pub seq: u64,
    pub op: StepOp,
    /// `samples` (audio, by SNR) or `bytes` (a file, by hash).
    pub compared: &'static str,
    /// SNR of the rerun against the recorded output, dB, one decimal;
    /// [`SNR_DB_IDENTICAL`] when they are the same samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snr_db: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerance_db: Option<f64>,
    /// For a file: the recorded output's hash and the rerun's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerun: Option<String>,
    pub matches: bool,
}

/// Loads a recorded artifact and checks that its bytes still have the
/// recorded hash: a replay against altered artifacts would prove nothing.
fn load_recorded(
    artifacts: &ArtifactStore,
    record: &StepArtifact,
) -> Result<OpInput, PipelineError> {
    if record.name == VOICE_MODEL_INPUT || record.pcm.is_none() {
        return Ok(OpInput::Bytes(artifacts.load_bytes(record.file.as_str())?));
    }
    let (artifact, audio) = artifacts.load(record.file.as_str())?;
    if artifact.file_hash != record.file.as_str() {
        return Err(PipelineError::Tampered(format!(
            "artifact {} ({}) no longer has its recorded hash",
            record.file.as_str(),
            record.name
        )));
    }
    if let Some(pcm) = &record.pcm {
        if artifact.pcm_hash != pcm.as_str() {
            return Err(PipelineError::Tampered(format!(
                "artifact {} ({}) decodes to PCM {}, but the step recorded {}",
                record.file.as_str(),
                record.name,
                artifact.pcm_hash,
                pcm.as_str()
            )));
        }
    }
    Ok(OpInput::Audio(audio))
}

/// SNR in dB of `test` against `reference`, samples past the shorter one
/// counting as error against silence (so a length change cannot match).
pub fn snr_db_padded(reference: &[f32], test: &[f32]) -> f64 {
    let len = reference.len().max(test.len());
    let (mut signal, mut noise) = (0.0f64, 0.0f64);
    for i in 0..len {
        let r = f64::from(reference.get(i).copied().unwrap_or(0.0));
        let t = f64::from(test.get(i).copied().unwrap_or(0.0));
        signal += r * r;
        noise += (r - t) * (r - t);
    }
    if noise == 0.0 {
        f64::INFINITY
    } else if signal == 0.0 {
        f64::NEG_INFINITY
    } else {
        10.0 * (signal / noise).log10()
    }
}

/// All channels of all outputs, one after another.
fn samples_of(outputs: &[Audio]) -> Vec<f32> {
    outputs.iter().flat_map(Audio::interleaved).collect()
}

/// Reruns the step recorded at `seq` on the CPU twin and compares.
pub async fn replay(
    store: &dyn EventStore,
    artifacts: &ArtifactStore,
    seq: u64,
) -> Result<ReplayReport, PipelineError> {
    let size = store.size().await?;
    if seq >= size {
        return Err(PipelineError::Replay(format!(
            "seq {seq} is beyond the log, which holds {size} events"
        )));
    }
    let event = store
        .read_range(seq, 1)
        .await?
        .pop()
        .ok_or_else(|| PipelineError::Replay(format!("no event at seq {seq}")))?;
    if event.event_type != GENERATION_STEP {
        return Err(PipelineError::Replay(format!(
            "seq {seq} is a {} event; only {GENERATION_STEP} events can be replayed",
            event.event_type
        )));
    }
    let envelope = event.envelope().map_err(StoreError::from)?;
    let step: GenerationStep = serde_json::from_value(envelope.data).map_err(|e| {
        PipelineError::Replay(format!("seq {seq} is not a well-formed step event: {e}"))
    })?;
    let params = OpParams::from_event(step.op, &step.params)
        .map_err(|e| PipelineError::Replay(format!("seq {seq}: {e}")))?;
    let inputs = step
        .inputs
        .iter()
        .map(|record| load_recorded(artifacts, record))
        .collect::<Result<Vec<_>, _>>()?;
    let rerun = params.execute(&Engine::Cpu, &inputs)?;
    if params.output_is_bytes() {
        let [record] = step.outputs.as_slice() else {
            return Err(PipelineError::Replay(format!(
                "seq {seq}: a {} step records one output, not {}",
                step.op.as_str(),
                step.outputs.len()
            )));
        };
        // The recorded file must still be there, under its hash.
        artifacts.load_bytes(record.file.as_str())?;
        let rerun_hash = match rerun.files.as_slice() {
            [file] => crate::artifacts::file_hash(file),
            _ => String::new(),
        };
        return Ok(ReplayReport {
            seq,
            op: step.op,
            compared: "bytes",
            snr_db: None,
            tolerance_db: None,
            matches: rerun_hash == record.file.as_str(),
            recorded: Some(record.file.as_str().to_string()),
            rerun: Some(rerun_hash),
        });
    }
    let recorded = step
        .outputs
        .iter()
        .map(|record| match load_recorded(artifacts, record)? {
            OpInput::Audio(audio) => Ok(audio),
            OpInput::Bytes(_) => Err(PipelineError::Replay(format!(
                "output {} is not audio",
                record.name
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let snr = if rerun.audio.len() == recorded.len() {
        snr_db_padded(&samples_of(&recorded), &samples_of(&rerun.audio))
    } else {
        f64::NEG_INFINITY
    };
    let tolerance_db = params.tolerance_db();
    let snr_db = if snr.is_infinite() && snr > 0.0 {
        SNR_DB_IDENTICAL
    } else if snr.is_finite() {
        (snr * 10.0).round() / 10.0
    } else {
        // Silence against a signal, or a different number of outputs.
        -SNR_DB_IDENTICAL
    };
    Ok(ReplayReport {
        seq,
        op: step.op,
        compared: "samples",
        snr_db: Some(snr_db),
        tolerance_db: Some(tolerance_db),
        recorded: None,
        rerun: None,
        matches: snr > tolerance_db,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_snr_counts_missing_samples_as_error() {
        assert_eq!(snr_db_padded(&[1.0, -1.0], &[1.0, -1.0]), f64::INFINITY);
        // Half the energy missing: 10 log10(2 / 1) = 3 dB.
        let snr = snr_db_padded(&[1.0, 1.0], &[1.0]);
        assert!((snr - 3.0103).abs() < 1e-3, "{snr}");
        assert!((snr_db_padded(&[1.0, 1.0], &[1.1, 0.9]) - 20.0).abs() < 1e-4);
    }
}
