//! Generation events, appended by the inference engine on stream
//! `generation-<job uuid>`, one event per generation step.

use crate::content_hash::ContentHash;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const DERIVATIVE_PUBLISHED: &str = "generation.derivative-published";
/// Schema version of [`DerivativePublished`].
pub const DERIVATIVE_PUBLISHED_SCHEMA_VERSION: u32 = 1;
/// Attribution weights are integer basis points summing to exactly this.
pub const WEIGHT_BP_TOTAL: u32 = 10_000;

/// The stream of one generation job.
pub fn generation_stream(job: Uuid) -> String {
    format!("generation-{job}")
}

/// What a share of a derivative is attributed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttributionKind {
    /// `ref` is an ISRC.
    Recording,
    /// `ref` is a voice model id.
    Voice,
}

/// One attribution component of a derivative, measured on the audio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributionComponent {
    pub kind: AttributionKind,
    #[serde(rename = "ref")]
    pub reference: String,
    pub weight_bp: u32,
}

/// `generation.derivative-published`: the last step of a generation job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivativePublished {
    pub job: Uuid,
    /// The derivative's id, equal to the job id.
    pub derivative: Uuid,
    /// ISRC of the source recording.
    pub recording: String,
    /// Party id of the subscriber who requested the derivative (the creator).
    pub requested_by: String,
    /// The generation parameters, as the inference engine recorded them.
    pub recipe: serde_json::Value,
    /// Content hash of the published file's bytes.
    pub output: ContentHash,
    /// Content hash of the decoded PCM.
    pub output_pcm: ContentHash,
    pub duration_ms: u64,
    /// Components with weights in basis points summing to [`WEIGHT_BP_TOTAL`].
    pub attribution: Vec<AttributionComponent>,
}

impl DerivativePublished {
    /// Sum of the attribution weights (10000 when well formed).
    pub fn weight_bp_sum(&self) -> u64 {
        self.attribution
            .iter()
            .map(|c| u64::from(c.weight_bp))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn derivative_published_round_trips() {
        let hash = format!("sha256:{}", "1".repeat(64));
        let value = json!({
            "job": "6f1c1c1e-1111-4a4a-8b8b-000000000001",
            "derivative": "6f1c1c1e-1111-4a4a-8b8b-000000000001",
            "recording": "GBAYE0601498", "requested_by": "u1", "recipe": {"op": "cover"},
            "output": hash, "output_pcm": hash, "duration_ms": 180000,
            "attribution": [{"kind": "recording", "ref": "GBAYE0601498", "weight_bp": 6000},
                            {"kind": "voice", "ref": "vm1", "weight_bp": 4000}]
        });
        let event: DerivativePublished = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(event.weight_bp_sum(), 10_000);
        assert_eq!(event.attribution[1].kind, AttributionKind::Voice);
        assert_eq!(serde_json::to_value(&event).unwrap(), value);
    }
}
