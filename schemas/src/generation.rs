//! Generation events, appended by the inference engine on stream
//! `generation-<job uuid>`: `generation.requested` first, then one
//! `generation.step` per op, last `generation.derivative-published`. A
//! request naming an unlicensed input gets one `generation.rejected` event
//! on that stream and nothing else. After publishing, the engine embeds
//! Content Credentials in the output and appends
//! `generation.credentials-issued` with the hashes of the file it hands out.
//! Voice model training is recorded as
//! `voice.model-trained` on [`voice_training_stream`], and a trained
//! network the engine runs (not trained here) as `model.registered` on
//! [`model_stream`].
//!
//! Numbers in these payloads are integers in named units (millibels, parts
//! per million, cents, basis points, milliseconds): the log carries no
//! floats, so every reader gets back exactly what was recorded.

use crate::calendar_date::CalendarDate;
use crate::content_hash::ContentHash;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

pub const GENERATION_REQUESTED: &str = "generation.requested";
pub const GENERATION_STEP: &str = "generation.step";
pub const GENERATION_REJECTED: &str = "generation.rejected";
pub const DERIVATIVE_PUBLISHED: &str = "generation.derivative-published";
pub const GENERATION_ABANDONED: &str = "generation.abandoned";
pub const CREDENTIALS_ISSUED: &str = "generation.credentials-issued";
pub const VOICE_MODEL_TRAINED: &str = "voice.model-trained";
pub const MODEL_REGISTERED: &str = "model.registered";
/// Schema version of [`DerivativePublished`]. Version 2 added the optional
/// `output_fingerprint`; version 1 payloads (without it) still parse.
pub const DERIVATIVE_PUBLISHED_SCHEMA_VERSION: u32 = 2;
/// Schema version of every other payload in this module.
pub const GENERATION_SCHEMA_VERSION: u32 = 1;
/// Attribution weights are integer basis points summing to exactly this.
pub const WEIGHT_BP_TOTAL: u32 = 10_000;

/// The stream of one generation job.
pub fn generation_stream(job: Uuid) -> String {
    format!("generation-{job}")
}

/// The stream of a voice model's training runs. It is not the catalog's
/// `voice-model-<id>` stream: the catalog importer compares that stream's
/// last payload with the document, so a training event there would read as
/// a change to the voice model.
pub fn voice_training_stream(voice_model: &str) -> String {
    format!("voice-training-{voice_model}")
}

/// The stream of a trained network's registration: one
/// `model.registered` event, appended before the first step that runs it.
pub fn model_stream(model: &str) -> String {
    format!("model-{model}")
}

/// What a generation job makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecipeKind {
    /// The recording's own stems, re-balanced, re-timed or re-keyed.
    Remix,
    /// The recording's melody sung by a licensed voice model over its
    /// instrumental stems.
    Cover,
}

impl RecipeKind {
    /// The kind as documents and events spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            RecipeKind::Remix => "remix",
            RecipeKind::Cover => "cover",
        }
    }
}

/// One stem's setting in a recipe; the default plays it as delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StemSetting {
    /// Gain in millibels (hundredths of a dB).
    pub gain_mb: i32,
    /// A muted stem is left out of the mix.
    pub mute: bool,
}

/// A generation recipe as recorded: the request's parameters quantized to
/// the integers the job really ran with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub kind: RecipeKind,
    /// Settings by stem name (`vocals`, `drums`, `bass`, `other`,
    /// `mixture`); a stem not named plays at 0 dB.
    pub stems: BTreeMap<String, StemSetting>,
    /// Tempo rate in parts per million (1 000 000 keeps the tempo; above is faster).
    pub tempo_rate_ppm: u32,
    /// Key shift in cents (hundredths of a semitone).
    pub semitones_cents: i32,
    /// The voice model of a cover; `None` for a remix.
    pub voice_model: Option<String>,
}

/// The licensed voice model a cover uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceModelUse {
    pub id: String,
    /// Content hash of the trained model artifact.
    pub artifact: ContentHash,
    /// The artist's consent reference, as the catalog records it.
    pub consent_reference: Option<String>,
}

/// `generation.requested`: a licensed request, accepted; the job's first event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationRequested {
    pub job: Uuid,
    /// ISRC of the source recording.
    pub recording: String,
    /// Party id of the subscriber who asked for the derivative.
    pub requested_by: String,
    pub recipe: Recipe,
    /// The recording's licensed stems the job reads, by name (file hashes).
    pub stems: BTreeMap<String, ContentHash>,
    pub voice_model: Option<VoiceModelUse>,
    /// The requester's territory (absent in logs from before licence terms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub territory: Option<String>,
    /// The UTC day the request was licensed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licensed_on: Option<CalendarDate>,
    /// Seq of the catalog event whose licence terms allowed the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_seq: Option<u64>,
    /// Seq of the catalog event whose consent allowed the voice, for a cover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_seq: Option<u64>,
}

/// Why a request was refused: the licence term or consent it broke. The
/// codes are stable; the CLI and the API return them as they are recorded.
/// Logs written before licence terms spelled the first four in kebab case,
/// which still parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionReason {
    /// The ISRC is not a recording in the catalog.
    #[serde(alias = "unknown-recording")]
    UnknownRecording,
    /// The recording has no licence terms, or its label ended participation.
    NotParticipating,
    /// The request's day is before the terms' `from` or after their `until`.
    OutsideWindow,
    /// The requester's territory is not among the terms' territories.
    TerritoryNotLicensed,
    /// The kind of derivative is not among the terms' kinds.
    KindNotLicensed,
    /// The tempo rate is outside the terms' bounds.
    TempoOutOfBounds,
    /// The key shift is outside the terms' bounds.
    SemitonesOutOfBounds,
    /// The derivative would use a stem the terms do not list.
    StemNotLicensed,
    /// A cover replaces the vocal, and the terms do not allow a voice.
    VoiceNotLicensed,
    /// The voice model is not in the catalog.
    #[serde(alias = "unknown-voice-model")]
    UnknownVoiceModel,
    /// The voice model's artist has not granted consent.
    #[serde(alias = "consent-not-granted")]
    ConsentMissing,
    /// The artist withdrew the consent, effective on or before the request's day.
    ConsentWithdrawn,
    /// The request's day is after the consent's `until`.
    ConsentExpired,
    /// The kind of derivative is not among those the consent covers.
    ConsentKindNotCovered,
    /// The requester's territory is not among those the consent covers.
    ConsentTerritoryNotCovered,
    /// The voice model has no trained artifact for its licensed training stems.
    #[serde(alias = "voice-model-not-trained")]
    VoiceModelNotTrained,
}

impl std::fmt::Display for RejectionReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl RejectionReason {
    /// Every reason, in the order the licensing decision checks them.
    pub const ALL: [RejectionReason; 16] = [
        RejectionReason::UnknownRecording,
        RejectionReason::NotParticipating,
        RejectionReason::OutsideWindow,
        RejectionReason::TerritoryNotLicensed,
        RejectionReason::KindNotLicensed,
        RejectionReason::TempoOutOfBounds,
        RejectionReason::SemitonesOutOfBounds,
        RejectionReason::StemNotLicensed,
        RejectionReason::VoiceNotLicensed,
        RejectionReason::UnknownVoiceModel,
        RejectionReason::ConsentMissing,
        RejectionReason::ConsentWithdrawn,
        RejectionReason::ConsentExpired,
        RejectionReason::ConsentKindNotCovered,
        RejectionReason::ConsentTerritoryNotCovered,
        RejectionReason::VoiceModelNotTrained,
    ];

    /// The stable code, as recorded and returned (`tempo_out_of_bounds`).
    pub fn code(self) -> &'static str {
        match self {
            RejectionReason::UnknownRecording => "unknown_recording",
            RejectionReason::NotParticipating => "not_participating",
            RejectionReason::OutsideWindow => "outside_window",
            RejectionReason::TerritoryNotLicensed => "territory_not_licensed",
            RejectionReason::KindNotLicensed => "kind_not_licensed",
            RejectionReason::TempoOutOfBounds => "tempo_out_of_bounds",
            RejectionReason::SemitonesOutOfBounds => "semitones_out_of_bounds",
            RejectionReason::StemNotLicensed => "stem_not_licensed",
            RejectionReason::VoiceNotLicensed => "voice_not_licensed",
            RejectionReason::UnknownVoiceModel => "unknown_voice_model",
            RejectionReason::ConsentMissing => "consent_missing",
            RejectionReason::ConsentWithdrawn => "consent_withdrawn",
            RejectionReason::ConsentExpired => "consent_expired",
            RejectionReason::ConsentKindNotCovered => "consent_kind_not_covered",
            RejectionReason::ConsentTerritoryNotCovered => "consent_territory_not_covered",
            RejectionReason::VoiceModelNotTrained => "voice_model_not_trained",
        }
    }
}

/// `generation.rejected`: the only event of a refused job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationRejected {
    pub job: Uuid,
    pub recording: String,
    pub requested_by: String,
    pub recipe: Recipe,
    pub reason: RejectionReason,
    /// The reason in words, naming the input that was refused.
    pub message: String,
    /// The requested value that broke the term (`"1.3"` for a tempo rate,
    /// `"FR"` for a territory, `"2028-01-04"` for a day), where one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The requester's territory (absent in logs from before licence terms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub territory: Option<String>,
    /// The UTC day the request was decided on, which windows are read against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licensed_on: Option<CalendarDate>,
}

/// `generation.abandoned`: the last event of a job the server stopped
/// before it could finish (still queued at shutdown, or running past the
/// shutdown wait). A job that never started has only this event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationAbandoned {
    pub job: Uuid,
    /// Why, in words (e.g. that the server shut down while it was queued).
    pub reason: String,
}

/// The op a generation step ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepOp {
    /// Decode and check the licensed input files.
    LoadStems,
    /// Gain-scaled sum of inputs, optionally loudness-normalised.
    Mix,
    /// Phase-vocoder time stretch.
    TimeStretch,
    /// Phase vocoder plus resampling.
    PitchShift,
    /// f0 and loudness from a source vocal, sung by a voice model (DDSP);
    /// with a melody's notes among its inputs, they set where the voice
    /// sings and the pitch it aims at.
    VoiceTransfer,
    /// A source vocal's melody transcribed by a trained network (Basic
    /// Pitch) to notes; the output is the note list, not audio.
    Transcribe,
}

impl StepOp {
    pub fn as_str(self) -> &'static str {
        match self {
            StepOp::LoadStems => "load-stems",
            StepOp::Mix => "mix",
            StepOp::TimeStretch => "time-stretch",
            StepOp::PitchShift => "pitch-shift",
            StepOp::VoiceTransfer => "voice-transfer",
            StepOp::Transcribe => "transcribe",
        }
    }
}

/// An input or output of a step, by content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepArtifact {
    /// The artifact's role in the step (`drums`, `bus`, `voice-model`, ...).
    pub name: String,
    /// Content hash of the stored file's bytes.
    pub file: ContentHash,
    /// Content hash of the decoded PCM, for audio artifacts.
    pub pcm: Option<ContentHash>,
}

/// A WGSL kernel a step ran, named by the SHA-256 of its source text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelRef {
    pub name: String,
    pub source: ContentHash,
}

/// Where a step's kernels ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComputeBackend {
    Gpu,
    Cpu,
}

/// The GPU adapter that ran a step, as wgpu describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterRecord {
    pub name: String,
    /// Graphics API, e.g. `vulkan`.
    pub backend: String,
    /// e.g. `Cpu` for lavapipe, `DiscreteGpu` for a card.
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
}

/// `generation.step`: one op of a job, with what it read and wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationStep {
    pub job: Uuid,
    /// 1-based position of the step in the job.
    pub step: u32,
    pub op: StepOp,
    /// The op's parameters in integer units; enough to run it again.
    pub params: serde_json::Value,
    pub inputs: Vec<StepArtifact>,
    /// Every output is stored as an artifact, so `replay` can find it.
    pub outputs: Vec<StepArtifact>,
    pub kernels: Vec<KernelRef>,
    pub backend: ComputeBackend,
    /// `None` on the CPU twins.
    pub adapter: Option<AdapterRecord>,
    /// What the op measured on the audio, in the units its name ends with
    /// (e.g. `loudness_centi_lufs`, `energy_bp`).
    pub measurements: BTreeMap<String, i64>,
    /// Wall time of the op.
    pub duration_ms: u64,
}

/// `voice.model-trained`: a voice model learned from a consenting artist's
/// licensed stems, so the model's own provenance is in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceModelTrained {
    /// The catalog's voice model id.
    pub voice_model: String,
    /// Party id of the artist whose voice it is.
    pub artist: String,
    /// The consent the training relied on, as the catalog records it.
    pub consent_reference: Option<String>,
    /// File hashes of the licensed training stems, in catalog order.
    pub training_stems: Vec<ContentHash>,
    /// Content hash of the model artifact.
    pub artifact: ContentHash,
    pub kernels: Vec<KernelRef>,
    pub backend: ComputeBackend,
    pub adapter: Option<AdapterRecord>,
    pub frames_total: u64,
    pub frames_voiced: u64,
    pub cells_filled: u64,
    pub cells_total: u64,
    pub duration_ms: u64,
}

/// `model.registered`: a trained network the engine runs, as an artifact
/// with its own provenance: where the file comes from, under which
/// licence, and its hash. A step that runs it names the same hash among
/// its inputs, so a derivative's lineage reaches this event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRegistered {
    /// The id steps name it by, e.g. `basic-pitch-icassp-2022`.
    pub model: String,
    /// What it does, for a reader of the log.
    pub description: String,
    /// Content hash of the model file's bytes, as stored in the artifact
    /// store.
    pub artifact: ContentHash,
    /// SPDX licence identifier of the file.
    pub licence: String,
    /// Who made and published it.
    pub authors: String,
    /// The package it was taken from, e.g. `pypi:basic-pitch`.
    pub source_package: String,
    pub source_version: String,
    /// The file's path inside that package.
    pub source_path: String,
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
    /// The acoustic fingerprint of the decoded output, so that a re-encoded
    /// or trimmed copy can be traced; absent in version 1 events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_fingerprint: Option<AcousticFingerprint>,
}

/// `generation.credentials-issued`: the published output with its C2PA
/// manifest embedded and signed, as distributed
/// (`schemas/json/credentials-issued.schema.json`). It follows the job's
/// `generation.derivative-published`, whose log proof the manifest carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsIssued {
    pub job: Uuid,
    pub derivative: Uuid,
    /// Seq of the `generation.derivative-published` event the manifest proves.
    pub published_seq: u64,
    /// Content hash of the raw output (the published event's `output`).
    pub output: ContentHash,
    /// Content hash of the distributed file: the output with its manifest.
    pub file: ContentHash,
    /// Content hash of the embedded C2PA manifest store (JUMBF bytes).
    pub manifest: ContentHash,
    /// MIME type of the distributed file (`audio/wav`).
    pub format: String,
    /// Subject of the certificate that signed the manifest.
    pub signer: String,
}

/// [`AcousticFingerprint::algorithm`] of a Chromaprint fingerprint computed
/// with Chromaprint's default configuration (`TEST2`, algorithm id 1): one
/// 32-bit item per 4096/3 samples at 11025 Hz of the mono downmix.
pub const FINGERPRINT_CHROMAPRINT_TEST2: &str = "chromaprint-test2";

/// An acoustic fingerprint, recorded as integers only (no floats in the
/// log): anyone holding the artifact can compute it again and compare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcousticFingerprint {
    /// Which algorithm and configuration computed `items`, e.g.
    /// [`FINGERPRINT_CHROMAPRINT_TEST2`].
    pub algorithm: String,
    /// The raw 32-bit items in order, each little-endian, as RFC 4648
    /// base64 with padding.
    pub items: String,
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

impl Recipe {
    /// A remix that plays every stem as delivered, at the recording's own
    /// tempo and key.
    pub fn unchanged_remix() -> Recipe {
        Recipe {
            kind: RecipeKind::Remix,
            stems: BTreeMap::new(),
            tempo_rate_ppm: 1_000_000,
            semitones_cents: 0,
            voice_model: None,
        }
    }
}

impl GenerationRequested {
    /// A request by `requested_by` for an unchanged remix of `recording`
    /// that names no stems; set the fields a case needs on the result.
    pub fn unchanged_remix(job: Uuid, recording: &str, requested_by: &str) -> Self {
        GenerationRequested {
            job,
            recording: recording.into(),
            requested_by: requested_by.into(),
            recipe: Recipe::unchanged_remix(),
            stems: BTreeMap::new(),
            voice_model: None,
            territory: None,
            licensed_on: None,
            terms_seq: None,
            consent_seq: None,
        }
    }

    /// The opening of this job's stream as the fold requires it before a
    /// publication: this request, then a first step that loads stems
    /// (recorded with no artifacts, on the CPU, in 1 ms). Tests and
    /// benchmarks that need a published derivative without running the
    /// engine build their jobs from it; the payloads are `(event type,
    /// data)` pairs for whichever store API they append through.
    pub fn opening_events(&self) -> [(&'static str, serde_json::Value); 2] {
        let step = GenerationStep {
            job: self.job,
            step: 1,
            op: StepOp::LoadStems,
            params: serde_json::json!({}),
            inputs: Vec::new(),
            outputs: Vec::new(),
            kernels: Vec::new(),
            backend: ComputeBackend::Cpu,
            adapter: None,
            measurements: BTreeMap::new(),
            duration_ms: 1,
        };
        let to_json = |value: Result<serde_json::Value, serde_json::Error>| {
            value.expect("generation payloads are plain data and always serialize")
        };
        [
            (GENERATION_REQUESTED, to_json(serde_json::to_value(self))),
            (GENERATION_STEP, to_json(serde_json::to_value(step))),
        ]
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
        assert_eq!(event.output_fingerprint, None);
        assert_eq!(serde_json::to_value(&event).unwrap(), value);
    }

    #[test]
    fn derivative_published_v2_carries_a_fingerprint_and_v1_still_parses() {
        let hash = format!("sha256:{}", "1".repeat(64));
        let v1 = json!({
            "job": "6f1c1c1e-1111-4a4a-8b8b-000000000001",
            "derivative": "6f1c1c1e-1111-4a4a-8b8b-000000000001",
            "recording": "GBAYE0601498", "requested_by": "u1", "recipe": {},
            "output": hash, "output_pcm": hash, "duration_ms": 1000,
            "attribution": [{"kind": "recording", "ref": "GBAYE0601498", "weight_bp": 10000}]
        });
        let old: DerivativePublished = serde_json::from_value(v1.clone()).unwrap();
        assert_eq!(old.output_fingerprint, None);
        // A v1 event re-serializes without the field, byte for byte.
        assert_eq!(serde_json::to_value(&old).unwrap(), v1);

        let mut v2 = v1.clone();
        v2["output_fingerprint"] =
            json!({"algorithm": FINGERPRINT_CHROMAPRINT_TEST2, "items": "AQAAAAIAAAA="});
        let new: DerivativePublished = serde_json::from_value(v2.clone()).unwrap();
        assert_eq!(
            new.output_fingerprint,
            Some(AcousticFingerprint {
                algorithm: "chromaprint-test2".into(),
                items: "AQAAAAIAAAA=".into(),
            })
        );
        assert_eq!(serde_json::to_value(&new).unwrap(), v2);

        let mut extra = v2;
        extra["output_fingerprint"]["score"] = json!(1);
        assert!(serde_json::from_value::<DerivativePublished>(extra).is_err());
    }

    #[test]
    fn a_step_round_trips_and_unknown_fields_or_ops_are_refused() {
        let hash = format!("sha256:{}", "2".repeat(64));
        let value = json!({
            "job": "6f1c1c1e-1111-4a4a-8b8b-000000000001", "step": 3, "op": "pitch-shift",
            "params": {"cents": -200},
            "inputs": [{"name": "instrumental", "file": hash, "pcm": hash}],
            "outputs": [{"name": "instrumental", "file": hash, "pcm": hash}],
            "kernels": [{"name": "resample", "source": hash}],
            "backend": "gpu",
            "adapter": {"name": "llvmpipe", "backend": "vulkan", "device_type": "Cpu", "driver": "llvmpipe", "driver_info": "Mesa"},
            "measurements": {"peak_bp": 9100}, "duration_ms": 12
        });
        let step: GenerationStep = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(step.op, StepOp::PitchShift);
        assert_eq!(step.op.as_str(), "pitch-shift");
        assert_eq!(serde_json::to_value(&step).unwrap(), value);
        let mut extra = value.clone();
        extra["seconds"] = json!(1.5);
        assert!(serde_json::from_value::<GenerationStep>(extra).is_err());
        let mut op = value;
        op["op"] = json!("upscale");
        assert!(serde_json::from_value::<GenerationStep>(op).is_err());
    }

    #[test]
    fn a_rejection_records_the_integer_recipe_and_the_reason() {
        let value = json!({
            "job": "6f1c1c1e-1111-4a4a-8b8b-000000000002", "recording": "ZZLL02600001",
            "requested_by": "u1",
            "recipe": {"kind": "cover", "stems": {"drums": {"gain_mb": -300, "mute": false}},
                       "tempo_rate_ppm": 1300000, "semitones_cents": -250, "voice_model": "vm9"},
            "reason": "tempo_out_of_bounds", "message": "tempo rate 1.3 is above 1.25",
            "value": "1.3", "territory": "US", "licensed_on": "2026-12-07"
        });
        let rejected: GenerationRejected = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(rejected.reason, RejectionReason::TempoOutOfBounds);
        assert_eq!(rejected.value.as_deref(), Some("1.3"));
        assert_eq!(rejected.recipe.stems["drums"].gain_mb, -300);
        assert_eq!(serde_json::to_value(&rejected).unwrap(), value);
        // A rejection logged before licence terms: kebab-case code, no value.
        let mut old = value.clone();
        for field in ["value", "territory", "licensed_on"] {
            old.as_object_mut().unwrap().remove(field);
        }
        old["reason"] = json!("consent-not-granted");
        let rejected: GenerationRejected = serde_json::from_value(old).unwrap();
        assert_eq!(rejected.reason, RejectionReason::ConsentMissing);
        assert_eq!(rejected.territory, None);
        // Floats are not integers in the recorded recipe.
        let mut float = value;
        float["recipe"]["semitones_cents"] = json!(-2.5);
        assert!(serde_json::from_value::<GenerationRejected>(float).is_err());
    }

    #[test]
    fn every_reason_serializes_as_its_code() {
        for reason in RejectionReason::ALL {
            assert_eq!(
                serde_json::to_value(reason).unwrap(),
                json!(reason.code()),
                "{reason:?}"
            );
        }
    }
}
