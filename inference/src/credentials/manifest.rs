//! What a derivative's C2PA manifest states, built from the job's log
//! records (C2PA 2.x: `c2pa.actions.v2`, ingredients v3, a custom
//! assertion).
//!
//! - `c2pa.actions`: `c2pa.created` with the IPTC digital source type
//!   `compositeWithTrainedAlgorithmicMedia` (licensed recordings mixed in;
//!   `trainedAlgorithmicMedia` when none is), then one `c2pa.edited` per
//!   generation step, carrying the op, its integer parameters and the
//!   ingredients it read.
//! - Ingredients: each licensed stem (`componentOf`, titled by ISRC and
//!   stem, its logged content hash as instance id) and the voice model
//!   (`inputTo`, its model hash, artist and consent reference).
//! - [`PROVENANCE_LABEL`]: where the derivative is in the log, with a C2SP
//!   `tlog-proof@v1` of its `generation.derivative-published` event.

use schemas::generation::GenerationStep;
use schemas::ContentHash;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

/// Label of ledgerline's own assertion (a reverse-domain custom label).
pub const PROVENANCE_LABEL: &str = "org.ledgerline.provenance";
/// IPTC digital source type of audio made by a trained model with licensed
/// recordings mixed in (<https://cv.iptc.org/newscodes/digitalsourcetype/>).
pub const COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA: &str =
    "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia";
/// IPTC digital source type of audio made by a trained model alone.
pub const TRAINED_ALGORITHMIC_MEDIA: &str =
    "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia";
/// The voice model's ingredient label.
const VOICE_LABEL: &str = "voice-model";
/// The transcription network's ingredient label.
const NETWORK_LABEL: &str = "transcription-model";

/// `org.ledgerline.provenance`: the derivative's place in the log, provable
/// offline with the log's verifier key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The log's origin (its checkpoints' first line and key name).
    pub origin: String,
    pub derivative: Uuid,
    pub job: Uuid,
    /// Seq (leaf index) of the `generation.derivative-published` event.
    pub published_seq: u64,
    /// Hex RFC 6962 leaf hash of that event.
    pub published_leaf_hash: String,
    /// C2SP `tlog-proof@v1` of that leaf against a signed checkpoint.
    pub tlog_proof: String,
}

/// A licensed stem the job read, as the catalog logged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StemIngredient {
    /// ISRC of the recording.
    pub isrc: String,
    /// The stem's name (`vocals`, `drums`, ...).
    pub stem: String,
    /// Content hash of the stem file, as logged.
    pub file: ContentHash,
}

/// The licensed voice model a cover used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceIngredient {
    pub model: String,
    /// Content hash of the trained model artifact.
    pub artifact: ContentHash,
    pub artist: String,
    pub consent_reference: Option<String>,
}

/// A trained network a step ran (a cover's melody transcription), as its
/// `model.registered` event describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkIngredient {
    pub model: String,
    /// Content hash of the model file.
    pub artifact: ContentHash,
    /// SPDX identifier of its licence.
    pub licence: String,
    pub authors: String,
    /// Package and version it was taken from.
    pub source: String,
}

/// Everything a derivative's manifest states.
#[derive(Debug, Clone)]
pub struct GenerationFacts {
    pub stems: Vec<StemIngredient>,
    pub voice: Option<VoiceIngredient>,
    pub network: Option<NetworkIngredient>,
    /// The job's `generation.step` records, in order.
    pub steps: Vec<GenerationStep>,
    pub provenance: Provenance,
}

fn stem_label(stem: &StemIngredient) -> String {
    format!("stem-{}", stem.stem)
}

/// A model file a step read (the voice model, the transcription network):
/// its ingredient label and content hash.
struct ModelFile<'a> {
    label: &'static str,
    artifact: &'a ContentHash,
}

impl GenerationFacts {
    /// The model files among the ingredients, each with its title and
    /// description.
    fn model_ingredients(&self) -> Vec<(ModelFile<'_>, String, String)> {
        let voice = self.voice.as_ref().map(|voice| {
            let consent = voice
                .consent_reference
                .as_deref()
                .unwrap_or("none recorded");
            (
                ModelFile {
                    label: VOICE_LABEL,
                    artifact: &voice.artifact,
                },
                format!("voice model {}", voice.model),
                format!(
                    "Voice model {} of {}, trained on the artist's licensed stems; model hash {}; consent reference {}",
                    voice.model, voice.artist, voice.artifact.as_str(), consent
                ),
            )
        });
        let network = self.network.as_ref().map(|network| {
            (
                ModelFile {
                    label: NETWORK_LABEL,
                    artifact: &network.artifact,
                },
                format!("trained network {}", network.model),
                format!(
                    "Trained network {} by {}, licence {}, from {}; model hash {}",
                    network.model,
                    network.authors,
                    network.licence,
                    network.source,
                    network.artifact.as_str()
                ),
            )
        });
        voice.into_iter().chain(network).collect()
    }

    /// The IPTC digital source type of the output.
    pub fn digital_source_type(&self) -> &'static str {
        if self.stems.is_empty() {
            TRAINED_ALGORITHMIC_MEDIA
        } else {
            COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
        }
    }

    /// The c2pa manifest definition (the `c2pa` crate's JSON form), without
    /// the provenance assertion, which is added as JSON when signing.
    pub(crate) fn definition(&self) -> Value {
        let models = self.model_ingredients();
        let mut ingredients: Vec<Value> = self
            .stems
            .iter()
            .map(|stem| {
                json!({
                    "title": format!("{} {}", stem.isrc, stem.stem),
                    "format": "audio/wav",
                    "relationship": "componentOf",
                    "label": stem_label(stem),
                    "instance_id": stem.file.as_str(),
                    "description": format!(
                        "Licensed stem {:?} of recording {}, content hash {} as logged in the catalog",
                        stem.stem, stem.isrc, stem.file.as_str()
                    ),
                })
            })
            .collect();
        for (model, title, description) in &models {
            ingredients.push(json!({
                "title": title,
                "format": "application/octet-stream",
                "relationship": "inputTo",
                "label": model.label,
                "instance_id": model.artifact.as_str(),
                "description": description,
            }));
        }

        let mut actions = vec![json!({
            "action": "c2pa.created",
            "digitalSourceType": self.digital_source_type(),
            "softwareAgent": {"name": "ledgerline", "version": env!("CARGO_PKG_VERSION")},
            "description": format!(
                "Derivative {} generated by ledgerline job {} from licensed inputs",
                self.provenance.derivative, self.provenance.job
            ),
        })];
        for step in &self.steps {
            let mut ids: Vec<String> = Vec::new();
            for input in &step.inputs {
                let label = if let Some(stem) = self.stems.iter().find(|s| s.file == input.file) {
                    stem_label(stem)
                } else if let Some((model, _, _)) =
                    models.iter().find(|(m, _, _)| *m.artifact == input.file)
                {
                    model.label.to_string()
                } else {
                    continue;
                };
                if !ids.contains(&label) {
                    ids.push(label);
                }
            }
            // The parameters as their RFC 8785 text, byte for byte what the
            // step event logged: c2pa 0.90 writes an array of integers in
            // action parameters as a CBOR byte string, keeping each
            // number's low byte only (gains [0, -300] read back as [0]).
            let params =
                serde_json_canonicalizer::to_string(&step.params).expect("a JSON value serialises");
            let mut parameters = json!({
                "org.ledgerline.step": step.step,
                "org.ledgerline.op": step.op.as_str(),
                "org.ledgerline.params": params,
            });
            if !ids.is_empty() {
                parameters["ingredientIds"] = json!(ids);
            }
            actions.push(json!({
                "action": "c2pa.edited",
                "digitalSourceType": self.digital_source_type(),
                "description": format!("ledgerline step {}: {}", step.step, step.op.as_str()),
                "parameters": parameters,
            }));
        }

        json!({
            "title": format!("derivative {}.wav", self.provenance.derivative),
            "format": "audio/wav",
            "claim_generator_info": [{"name": "ledgerline", "version": env!("CARGO_PKG_VERSION")}],
            "ingredients": ingredients,
            "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": actions}}],
        })
    }
}
