//! One generation job, from a validated request and the catalog's licensing
//! facts to a published derivative, one event per step.

use super::licensing::{today, Licence, LicensedInputs};
use super::request::{RequestError, ValidRequest};
use super::steps::{
    MixParams, OpInput, OpOutput, OpParams, ShiftParams, StretchParams, TranscribeParams,
    VoiceParams, PUBLISHED_CEILING_CENTI_DBTP, TARGET_CENTI_LUFS,
};
use super::{backend_of, content_hash, PipelineError};
use crate::artifacts::{Artifact, ArtifactStore};
use crate::audio::Audio;
use crate::credentials::{
    self, GenerationFacts, NetworkIngredient, Provenance, SigningIdentity, StemIngredient,
    VoiceIngredient,
};
use crate::gpu::Engine;
use ledger::tlog_proof::TlogProof;
use ledger::{AppendRequest, Appended, EventStore, ExpectedVersion, NewEvent};
use schemas::generation::{
    generation_stream, AttributionComponent, AttributionKind, ComputeBackend, CredentialsIssued,
    DerivativePublished, GenerationRejected, GenerationRequested, GenerationStep, ModelRegistered,
    Recipe, RecipeKind, StepArtifact, StepOp, VoiceModelUse, CREDENTIALS_ISSUED,
    DERIVATIVE_PUBLISHED, DERIVATIVE_PUBLISHED_SCHEMA_VERSION, GENERATION_REJECTED,
    GENERATION_REQUESTED, GENERATION_SCHEMA_VERSION, GENERATION_STEP, WEIGHT_BP_TOTAL,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;
use uuid::Uuid;

/// Tempo rate and key shift that leave the audio as it is.
const RATE_PPM_UNIT: u32 = 1_000_000;
/// The name of the voice model artifact among a step's inputs.
pub const VOICE_MODEL_INPUT: &str = "voice-model";
/// The name of the transcription network's file among a step's inputs.
pub const TRANSCRIPTION_MODEL_INPUT: &str = "transcription-model";
/// The name of a transcribed melody's note list among a step's outputs.
const MELODY_NOTES: &str = "melody-notes";
/// A catalog recording delivered without stems has only this one.
const MIXTURE: &str = "mixture";
const VOCALS: &str = "vocals";
/// Names of step outputs: the instrumental bus, the sung voice, the derivative.
const INSTRUMENTAL: &str = "instrumental";
const VOICE: &str = "voice";
const OUTPUT: &str = "output";

/// Runs generation jobs on one engine, artifact store and log.
pub struct Generator<'a> {
    pub engine: Engine,
    pub artifacts: &'a ArtifactStore,
    pub store: &'a dyn EventStore,
    /// Signs the Content Credentials of every published output.
    pub identity: &'a SigningIdentity,
}

/// One recorded step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepRecord {
    pub seq: u64,
    pub op: StepOp,
    pub duration_ms: u64,
}

/// A published derivative.
#[derive(Debug, Clone)]
pub struct Generated {
    pub job: Uuid,
    /// The derivative's id (equal to the job id).
    pub derivative: Uuid,
    /// The output WAV in the artifact store.
    pub output: Artifact,
    pub attribution: Vec<AttributionComponent>,
    pub requested_seq: u64,
    pub steps: Vec<StepRecord>,
    pub published_seq: u64,
    /// The output as distributed, with its Content Credentials.
    pub credentialed: Credentialed,
}

/// A published output with its C2PA manifest embedded and signed.
#[derive(Debug, Clone)]
pub struct Credentialed {
    /// `sha256:<hex>` of the distributed file.
    pub file_hash: String,
    /// `sha256:<hex>` of the embedded manifest store.
    pub manifest_hash: String,
    /// Seq of the `generation.credentials-issued` event.
    pub seq: u64,
    /// Wall time of reading the output back (checked against its hash),
    /// hashing it for the hard binding, signing the manifest and storing
    /// it, microseconds (what credentials add to a
    /// job, beside one checkpoint and one append). The distributed file is
    /// the output with the manifest embedded; the artifact store assembles
    /// it when it is read ([`ArtifactStore::load_distributed`]).
    pub sign_embed_us: u64,
}

/// A licensed input, decoded, with its record.
struct Loaded {
    record: StepArtifact,
    input: OpInput,
}

/// A step's output: stored, and passed on to the next step.
struct Intermediate {
    record: StepArtifact,
    artifact: Artifact,
    audio: Audio,
}

/// The job's stream, the next version to append and the steps so far.
struct JobLog<'s> {
    store: &'s dyn EventStore,
    job: Uuid,
    stream: String,
    version: u64,
    steps: Vec<StepRecord>,
    /// The step events as appended, for the manifest's actions.
    step_events: Vec<GenerationStep>,
}

impl JobLog<'_> {
    async fn append(
        &mut self,
        event_type: &str,
        schema: u32,
        data: serde_json::Value,
    ) -> Result<Appended, PipelineError> {
        let mut event = NewEvent::new(event_type, data);
        event.schema = schema;
        let appended = self
            .store
            .append(AppendRequest::new(
                &self.stream,
                ExpectedVersion::Exact(self.version),
                vec![event],
            ))
            .await?;
        self.version += 1;
        appended
            .into_iter()
            .next()
            .ok_or_else(|| PipelineError::Step("the store appended nothing".into()))
    }
}

fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("generation payloads serialize")
}

/// The stems a job reads: separate stems when the recording has them (its
/// mixture would double them), else the mixture; muted ones left out. For
/// a cover, the vocal is split off as the melody's source.
struct StemPlan {
    /// (name, gain in millibels), in catalog order.
    instrumental: Vec<(String, i32)>,
    /// The source vocal of a cover.
    source_vocal: Option<String>,
    /// A cover's gain on the sung voice, millibels.
    voice_gain_mb: i32,
}

fn plan_stems(request: &ValidRequest, licence: &Licence) -> Result<StemPlan, RequestError> {
    let available: Vec<&String> = licence.recording.stems.keys().collect();
    let separate: Vec<&String> = available
        .iter()
        .copied()
        .filter(|name| name.as_str() != MIXTURE)
        .collect();
    let used: Vec<&String> = if separate.is_empty() {
        available.clone()
    } else {
        separate
    };
    let invalid = |field: String, message: String| RequestError::Invalid { field, message };
    let names = used
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    for name in request.recipe.stems.keys() {
        if !used.contains(&name) {
            let why = if available.contains(&name) {
                format!(
                    "recording {} has separate stems ({names}), so its {name} is not used; edit those",
                    request.recording
                )
            } else {
                format!(
                    "recording {} has no {name} stem to edit; its stems are {names}",
                    request.recording
                )
            };
            return Err(invalid(format!("recipe.stems.{name}"), why));
        }
    }
    let setting = |name: &str| request.recipe.stems.get(name).copied().unwrap_or_default();
    let cover = request.recipe.kind == RecipeKind::Cover;
    let source_vocal = if cover {
        if !used.iter().any(|n| n.as_str() == VOCALS) {
            return Err(invalid(
                "recording".into(),
                format!(
                    "recording {} has no licensed vocals stem, which a cover sings from; its stems are {names}",
                    request.recording
                ),
            ));
        }
        Some(VOCALS.to_string())
    } else {
        None
    };
    let instrumental: Vec<(String, i32)> = used
        .iter()
        .filter(|name| !(cover && name.as_str() == VOCALS))
        .filter(|name| !setting(name).mute)
        .map(|name| ((*name).clone(), setting(name).gain_mb))
        .collect();
    if instrumental.is_empty() {
        return Err(invalid(
            "recipe.stems".into(),
            if cover {
                format!("every instrumental stem ({names} but vocals) is muted: a cover needs one to sing over")
            } else {
                format!("every stem ({names}) is muted: nothing would be left to play")
            },
        ));
    }
    Ok(StemPlan {
        instrumental,
        source_vocal,
        voice_gain_mb: if cover { setting(VOCALS).gain_mb } else { 0 },
    })
}

impl Generator<'_> {
    /// Runs job `job` for `request`. A request the catalog does not license
    /// appends only `generation.rejected` and returns
    /// [`PipelineError::Refused`]; a request that does not fit the recording,
    /// or whose inputs are missing from the artifact store, writes nothing.
    pub async fn generate(
        &self,
        job: Uuid,
        request: &ValidRequest,
        licensed: &LicensedInputs,
    ) -> Result<Generated, PipelineError> {
        let mut log = JobLog {
            store: self.store,
            job,
            stream: generation_stream(job),
            version: 0,
            steps: Vec::new(),
            step_events: Vec::new(),
        };
        let day = today();
        let licence = match licensed.license(request, day) {
            Ok(licence) => licence,
            Err(refusal) => {
                let rejected = GenerationRejected {
                    job,
                    recording: request.recording.clone(),
                    requested_by: request.requested_by.clone(),
                    recipe: request.recipe.clone(),
                    reason: refusal.reason,
                    message: refusal.message.clone(),
                    value: refusal.value.clone(),
                    territory: Some(request.territory.clone()),
                    licensed_on: Some(day),
                };
                let appended = log
                    .append(
                        GENERATION_REJECTED,
                        GENERATION_SCHEMA_VERSION,
                        to_json(&rejected),
                    )
                    .await?;
                return Err(PipelineError::Refused {
                    refusal,
                    seq: appended.seq,
                });
            }
        };
        let plan = plan_stems(request, &licence)?;

        // Everything the job reads is decoded before anything is written, so
        // a job whose inputs are missing or damaged leaves no trace.
        let load_started = Instant::now();
        let mut stem_inputs = Vec::new();
        let stem_names = plan
            .instrumental
            .iter()
            .map(|(name, _)| name.clone())
            .chain(plan.source_vocal.clone());
        for name in stem_names {
            let hash = &licence.recording.stems[&name];
            let (artifact, audio) = self.artifacts.load(hash.as_str())?;
            if artifact.file_hash != hash.as_str() {
                return Err(PipelineError::Tampered(format!(
                    "licensed {name} stem {} in the artifact store no longer has that hash",
                    hash.as_str()
                )));
            }
            stem_inputs.push(Loaded {
                record: StepArtifact {
                    name,
                    file: content_hash(&artifact.file_hash),
                    pcm: Some(content_hash(&artifact.pcm_hash)),
                },
                input: OpInput::Audio(audio),
            });
        }
        let voice_model = match &licence.voice_model {
            Some(model) => Some(Loaded {
                record: StepArtifact {
                    name: VOICE_MODEL_INPUT.into(),
                    file: model.artifact.clone(),
                    pcm: None,
                },
                input: OpInput::Bytes(self.artifacts.load_bytes(model.artifact.as_str())?),
            }),
            None => None,
        };
        let load_ms = load_started.elapsed().as_millis() as u64;
        // A cover's melody is transcribed by a trained network, whose file
        // is registered in the log (once) before any step runs it.
        let registered_network = match &voice_model {
            Some(_) => Some(
                super::model_registry::basic_pitch(
                    self.store,
                    self.artifacts,
                    std::path::Path::new(crate::transcribe::model::VENDORED_PATH),
                )
                .await?,
            ),
            None => None,
        };
        let network = registered_network.as_ref().map(|registered| Loaded {
            record: StepArtifact {
                name: TRANSCRIPTION_MODEL_INPUT.into(),
                file: registered.registration.artifact.clone(),
                pcm: None,
            },
            input: OpInput::Bytes(registered.bytes.clone()),
        });

        let requested = GenerationRequested {
            job,
            recording: request.recording.clone(),
            requested_by: request.requested_by.clone(),
            recipe: request.recipe.clone(),
            stems: stem_inputs
                .iter()
                .map(|l| (l.record.name.clone(), l.record.file.clone()))
                .collect(),
            voice_model: licence.voice_model.clone(),
            territory: Some(request.territory.clone()),
            licensed_on: Some(day),
            terms_seq: Some(licence.recording.terms_seq),
            consent_seq: licence.consent_seq,
        };
        let requested_seq = log
            .append(
                GENERATION_REQUESTED,
                GENERATION_SCHEMA_VERSION,
                to_json(&requested),
            )
            .await?
            .seq;

        // load-stems: the decoded PCM of each licensed file is its output.
        let load_records: Vec<StepArtifact> =
            stem_inputs.iter().map(|l| l.record.clone()).collect();
        self.record_step(
            &mut log,
            &OpParams::LoadStems,
            load_records.clone(),
            load_records,
            &OpOutput {
                audio: Vec::new(),
                files: Vec::new(),
                measurements: BTreeMap::new(),
                energy_bp: Vec::new(),
            },
            load_ms,
        )
        .await?;

        let voice = licence.voice_model.as_ref().zip(voice_model.as_ref());
        let (output, energy_bp) = self
            .render(
                &mut log,
                &request.recipe,
                &plan,
                &stem_inputs,
                voice,
                network.as_ref(),
            )
            .await?;

        // The recording's share is the energy of its (remixed) stems in the
        // output; a cover's voice share is the energy of the sung vocal.
        let attribution = match &licence.voice_model {
            Some(model) => vec![
                AttributionComponent {
                    kind: AttributionKind::Recording,
                    reference: request.recording.clone(),
                    weight_bp: energy_bp[0],
                },
                AttributionComponent {
                    kind: AttributionKind::Voice,
                    reference: model.id.clone(),
                    weight_bp: energy_bp[1],
                },
            ],
            None => vec![AttributionComponent {
                kind: AttributionKind::Recording,
                reference: request.recording.clone(),
                weight_bp: WEIGHT_BP_TOTAL,
            }],
        };
        assert_eq!(
            attribution.iter().map(|c| c.weight_bp).sum::<u32>(),
            WEIGHT_BP_TOTAL,
            "attribution conserves the whole"
        );
        let Intermediate {
            artifact, audio, ..
        } = output;
        let published = DerivativePublished {
            job,
            derivative: job,
            recording: request.recording.clone(),
            requested_by: request.requested_by.clone(),
            recipe: to_json(&request.recipe),
            output: content_hash(&artifact.file_hash),
            output_pcm: content_hash(&artifact.pcm_hash),
            duration_ms: (audio.duration_s() * 1000.0).round() as u64,
            attribution: attribution.clone(),
            // Recorded so that a re-encoded or trimmed copy found in the
            // wild can be traced here by `lineage`; published audio is
            // validated to 8 kHz or more, which Chromaprint accepts.
            output_fingerprint: Some(crate::fingerprint::to_record(
                &crate::fingerprint::fingerprint(&audio)
                    .map_err(|e| PipelineError::Step(e.to_string()))?,
            )),
        };
        let published_event = log
            .append(
                DERIVATIVE_PUBLISHED,
                DERIVATIVE_PUBLISHED_SCHEMA_VERSION,
                to_json(&published),
            )
            .await?;
        let published_seq = published_event.seq;
        let artist = licensed.voice_model.as_ref().map(|m| m.artist.clone());
        let credentialed = self
            .credential(
                &mut log,
                ingredients(
                    &licence,
                    artist,
                    &stem_inputs,
                    registered_network.as_ref().map(|r| &r.registration),
                ),
                &artifact,
                &published_event,
            )
            .await?;
        Ok(Generated {
            job,
            derivative: job,
            output: artifact,
            attribution,
            requested_seq,
            steps: log.steps,
            published_seq,
            credentialed,
        })
    }

    /// Content Credentials for the published output: a checkpoint covering
    /// the published event is signed, the manifest (with that event's log
    /// proof) is signed for the output and stored beside it, and
    /// `generation.credentials-issued` names the distributed file (the
    /// output with the manifest embedded) by its hash.
    async fn credential(
        &self,
        log: &mut JobLog<'_>,
        ingredients: Ingredients,
        output: &Artifact,
        published: &Appended,
    ) -> Result<Credentialed, PipelineError> {
        let checkpoint = self.store.checkpoint_now().await?;
        if checkpoint.size <= published.seq {
            return Err(PipelineError::Step(format!(
                "the signed checkpoint (size {}) does not cover the published event (seq {})",
                checkpoint.size, published.seq
            )));
        }
        let inclusion = self
            .store
            .prove_inclusion(published.seq, checkpoint.size)
            .await?;
        let tlog_proof = TlogProof {
            index: published.seq,
            proof: inclusion.proof,
            checkpoint_note: checkpoint.note,
        };
        let facts = GenerationFacts {
            stems: ingredients.stems,
            voice: ingredients.voice,
            network: ingredients.network,
            steps: log.step_events.clone(),
            provenance: Provenance {
                origin: self.store.verifier().name().to_string(),
                derivative: log.job,
                job: log.job,
                published_seq: published.seq,
                published_leaf_hash: hex::encode(published.leaf_hash),
                tlog_proof: tlog_proof.to_text(),
            },
        };
        let started = Instant::now();
        let wav = self.artifacts.load_bytes(&output.file_hash)?;
        let issued = credentials::sign_wav(self.identity, &facts, &wav)?;
        let manifest_hash = self.artifacts.put_credentials(
            &output.file_hash,
            &issued.manifest,
            &issued.file_hash,
        )?;
        let sign_embed_us = started.elapsed().as_micros() as u64;
        let file_hash = issued.file_hash;
        let event = CredentialsIssued {
            job: log.job,
            derivative: log.job,
            published_seq: published.seq,
            output: content_hash(&output.file_hash),
            file: content_hash(&file_hash),
            manifest: content_hash(&manifest_hash),
            format: "audio/wav".into(),
            signer: self.identity.subject().to_string(),
        };
        let seq = log
            .append(
                CREDENTIALS_ISSUED,
                GENERATION_SCHEMA_VERSION,
                to_json(&event),
            )
            .await?
            .seq;
        Ok(Credentialed {
            file_hash,
            manifest_hash,
            seq,
            sign_embed_us,
        })
    }

    /// The ops of a job after loading: the instrumental stems mixed with
    /// their gains (into a bus when it is transformed further), time
    /// stretch and key shift of the bus, a cover's melody transcription
    /// (with `network`) and voice transfer, and the final mixdown
    /// normalised to the target loudness. Returns the output and each final
    /// input's share of its energy.
    async fn render(
        &self,
        log: &mut JobLog<'_>,
        recipe: &Recipe,
        plan: &StemPlan,
        stems: &[Loaded],
        voice: Option<(&VoiceModelUse, &Loaded)>,
        network: Option<&Loaded>,
    ) -> Result<(Intermediate, Vec<u32>), PipelineError> {
        let transformed = recipe.tempo_rate_ppm != RATE_PPM_UNIT || recipe.semitones_cents != 0;
        let instrumental_count = plan.instrumental.len();
        let instrumental: Vec<&dyn StepInput> = stems[..instrumental_count]
            .iter()
            .map(|l| l as &dyn StepInput)
            .collect();
        let gains: Vec<i32> = plan.instrumental.iter().map(|(_, g)| *g).collect();

        let rendered = if recipe.kind == RecipeKind::Remix && !transformed {
            // One mixdown with the stem gains straight to the target loudness.
            self.run_step(
                log,
                OpParams::Mix(MixParams {
                    gains_mb: gains,
                    target_centi_lufs: Some(TARGET_CENTI_LUFS),
                    true_peak_ceiling_centi_dbtp: Some(PUBLISHED_CEILING_CENTI_DBTP),
                }),
                &instrumental,
                OUTPUT,
            )
            .await?
        } else {
            let mut bus = self
                .run_step(
                    log,
                    OpParams::Mix(MixParams {
                        gains_mb: gains,
                        target_centi_lufs: None,
                        true_peak_ceiling_centi_dbtp: None,
                    }),
                    &instrumental,
                    INSTRUMENTAL,
                )
                .await?
                .0;
            if recipe.tempo_rate_ppm != RATE_PPM_UNIT {
                bus = self
                    .run_step(
                        log,
                        OpParams::TimeStretch(StretchParams {
                            rate_ppm: recipe.tempo_rate_ppm,
                        }),
                        &[&bus],
                        INSTRUMENTAL,
                    )
                    .await?
                    .0;
            }
            if recipe.semitones_cents != 0 {
                bus = self
                    .run_step(
                        log,
                        OpParams::PitchShift(ShiftParams {
                            cents: recipe.semitones_cents,
                        }),
                        &[&bus],
                        INSTRUMENTAL,
                    )
                    .await?
                    .0;
            }
            match voice {
                Some((model, model_input)) => {
                    let source = &stems[instrumental_count];
                    let notes = match network {
                        Some(network) => Some(
                            self.run_file_step(
                                log,
                                OpParams::Transcribe(TranscribeParams {
                                    model: crate::transcribe::MODEL_ID.into(),
                                }),
                                &[source, network],
                                MELODY_NOTES,
                            )
                            .await?,
                        ),
                        None => None,
                    };
                    let mut inputs: Vec<&dyn StepInput> = vec![source, model_input];
                    if let Some(notes) = &notes {
                        inputs.push(notes);
                    }
                    let voice = self
                        .run_step(
                            log,
                            OpParams::VoiceTransfer(VoiceParams {
                                voice_model: model.id.clone(),
                                cents: recipe.semitones_cents,
                                rate_ppm: recipe.tempo_rate_ppm,
                            }),
                            &inputs,
                            VOICE,
                        )
                        .await?
                        .0;
                    self.run_step(
                        log,
                        OpParams::Mix(MixParams {
                            gains_mb: vec![0, plan.voice_gain_mb],
                            target_centi_lufs: Some(TARGET_CENTI_LUFS),
                            true_peak_ceiling_centi_dbtp: Some(PUBLISHED_CEILING_CENTI_DBTP),
                        }),
                        &[&bus, &voice],
                        OUTPUT,
                    )
                    .await?
                }
                None => {
                    self.run_step(
                        log,
                        OpParams::Mix(MixParams {
                            gains_mb: vec![0],
                            target_centi_lufs: Some(TARGET_CENTI_LUFS),
                            true_peak_ceiling_centi_dbtp: Some(PUBLISHED_CEILING_CENTI_DBTP),
                        }),
                        &[&bus],
                        OUTPUT,
                    )
                    .await?
                }
            }
        };
        Ok(rendered)
    }

    /// Runs one op on the job's engine, stores its output as an artifact,
    /// appends its step event and returns the output with its energy shares.
    async fn run_step(
        &self,
        log: &mut JobLog<'_>,
        params: OpParams,
        inputs: &[&dyn StepInput],
        output_name: &str,
    ) -> Result<(Intermediate, Vec<u32>), PipelineError> {
        let (out, (record, artifact, audio)) = self
            .run_and_record(log, params, inputs, |params, out| {
                if out.audio.len() != 1 {
                    return Err(PipelineError::Step(format!(
                        "{} made {} outputs where the job expects one",
                        params.op().as_str(),
                        out.audio.len()
                    )));
                }
                let audio = out.audio.remove(0);
                let artifact = self.artifacts.write_wav(&audio)?;
                let record = StepArtifact {
                    name: output_name.to_string(),
                    file: content_hash(&artifact.file_hash),
                    pcm: Some(content_hash(&artifact.pcm_hash)),
                };
                Ok((record.clone(), (record, artifact, audio)))
            })
            .await?;
        Ok((
            Intermediate {
                record,
                artifact,
                audio,
            },
            out.energy_bp,
        ))
    }

    /// Runs an op whose output is a file, not audio (a note list), on the
    /// job's engine, stores it by hash, appends its step event and returns
    /// it as a later step's input.
    async fn run_file_step(
        &self,
        log: &mut JobLog<'_>,
        params: OpParams,
        inputs: &[&dyn StepInput],
        output_name: &str,
    ) -> Result<Loaded, PipelineError> {
        let (_, loaded) = self
            .run_and_record(log, params, inputs, |params, out| {
                if out.files.len() != 1 || !out.audio.is_empty() {
                    return Err(PipelineError::Step(format!(
                        "{} made {} files and {} audio outputs where the job expects one file",
                        params.op().as_str(),
                        out.files.len(),
                        out.audio.len()
                    )));
                }
                let bytes = out.files.remove(0);
                let record = StepArtifact {
                    name: output_name.to_string(),
                    file: content_hash(&self.artifacts.put_bytes(&bytes)?),
                    pcm: None,
                };
                Ok((
                    record.clone(),
                    Loaded {
                        record,
                        input: OpInput::Bytes(bytes),
                    },
                ))
            })
            .await?;
        Ok(loaded)
    }

    /// Runs `params` on the job's engine over `inputs`, timed; `store`
    /// takes the one output the job keeps out of the op's output, stores
    /// it and returns its record. The step event is then appended.
    async fn run_and_record<T>(
        &self,
        log: &mut JobLog<'_>,
        params: OpParams,
        inputs: &[&dyn StepInput],
        store: impl FnOnce(&OpParams, &mut OpOutput) -> Result<(StepArtifact, T), PipelineError>,
    ) -> Result<(OpOutput, T), PipelineError> {
        let op_inputs: Vec<OpInput> = inputs.iter().map(|i| i.op_input()).collect();
        let started = Instant::now();
        let mut out = params.execute(&self.engine, &op_inputs)?;
        let duration_ms = started.elapsed().as_millis() as u64;
        let (record, kept) = store(&params, &mut out)?;
        let records = inputs.iter().map(|i| i.record()).collect();
        self.record_step(log, &params, records, vec![record], &out, duration_ms)
            .await?;
        Ok((out, kept))
    }

    async fn record_step(
        &self,
        log: &mut JobLog<'_>,
        params: &OpParams,
        inputs: Vec<StepArtifact>,
        outputs: Vec<StepArtifact>,
        out: &OpOutput,
        duration_ms: u64,
    ) -> Result<(), PipelineError> {
        // Decoding runs on the CPU whatever the engine; kernels on the engine.
        let (backend, adapter) = if params.op() == StepOp::LoadStems {
            (ComputeBackend::Cpu, None)
        } else {
            backend_of(&self.engine)
        };
        let mut measurements = out.measurements.clone();
        for (input, bp) in inputs.iter().zip(&out.energy_bp) {
            measurements.insert(format!("{}_energy_bp", input.name), i64::from(*bp));
        }
        let step = GenerationStep {
            job: log.job,
            step: log.steps.len() as u32 + 1,
            op: params.op(),
            params: params.to_json(),
            inputs,
            outputs,
            kernels: params.kernels(),
            backend,
            adapter,
            measurements,
            duration_ms,
        };
        let appended = log
            .append(GENERATION_STEP, GENERATION_SCHEMA_VERSION, to_json(&step))
            .await?;
        log.step_events.push(step.clone());
        tracing::info!(
            job = %log.job,
            seq = appended.seq,
            op = step.op.as_str(),
            backend = ?step.backend,
            duration_ms,
            "generation step"
        );
        log.steps.push(StepRecord {
            seq: appended.seq,
            op: step.op,
            duration_ms,
        });
        Ok(())
    }
}

/// What a derivative's Content Credentials name as its ingredients.
struct Ingredients {
    stems: Vec<StemIngredient>,
    voice: Option<VoiceIngredient>,
    network: Option<NetworkIngredient>,
}

/// The ingredients of a job: the licensed stems it loaded, the voice
/// model of `artist` it sang with and the network that transcribed the
/// melody, if any.
fn ingredients(
    licence: &Licence,
    artist: Option<String>,
    stems: &[Loaded],
    network: Option<&ModelRegistered>,
) -> Ingredients {
    Ingredients {
        stems: stems
            .iter()
            .map(|l| StemIngredient {
                isrc: licence.recording.isrc.clone(),
                stem: l.record.name.clone(),
                file: l.record.file.clone(),
            })
            .collect(),
        voice: licence.voice_model.as_ref().map(|m| VoiceIngredient {
            model: m.id.clone(),
            artifact: m.artifact.clone(),
            artist: artist.unwrap_or_else(|| "unknown".into()),
            consent_reference: m.consent_reference.clone(),
        }),
        network: network.map(|n| NetworkIngredient {
            model: n.model.clone(),
            artifact: n.artifact.clone(),
            licence: n.licence.clone(),
            authors: n.authors.clone(),
            source: format!("{} {}", n.source_package, n.source_version),
        }),
    }
}

/// Something a step reads: a licensed input or an earlier step's output.
trait StepInput: Sync {
    fn record(&self) -> StepArtifact;
    fn op_input(&self) -> OpInput;
}

impl StepInput for Loaded {
    fn record(&self) -> StepArtifact {
        self.record.clone()
    }
    fn op_input(&self) -> OpInput {
        self.input.clone()
    }
}

impl StepInput for Intermediate {
    fn record(&self) -> StepArtifact {
        self.record.clone()
    }
    fn op_input(&self) -> OpInput {
        OpInput::Audio(self.audio.clone())
    }
}
