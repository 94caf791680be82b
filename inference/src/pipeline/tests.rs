//! Pipeline tests on a real SQLite log and artifact store, with a short
//! sample song: the job's event sequence and payloads, refusals that write
//! only the rejection, cover attribution, training provenance, replay.

use super::*;
use crate::artifacts::ArtifactStore;
use crate::gpu::Engine;
use crate::sample_catalog;
use ledger::store::sqlite::{SqliteConfig, SqliteStore};
use ledger::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
use schemas::catalog::{self, Consent, Recording, Split, Stems, VoiceModel};
use schemas::generation::{
    generation_stream, AttributionKind, DerivativePublished, GenerationRejected,
    GenerationRequested, GenerationStep, RejectionReason, StepOp, VoiceModelTrained,
};
use schemas::licence::LicenceTerms;
use schemas::ContentHash;
use serde_json::json;
use uuid::Uuid;

const ISRC: &str = "ZZLL02600001";
const VOICE: &str = "voice-test-v1";
/// Long enough for several phase-vocoder frames and voiced notes, short
/// enough for the CPU twins in a debug test run.
const SECONDS: f64 = 1.5;

struct Fixture {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    artifacts: ArtifactStore,
    identity: crate::credentials::SigningIdentity,
}

fn hash(text: &str) -> ContentHash {
    ContentHash::parse(text).unwrap()
}

async fn append(store: &SqliteStore, stream: &str, event_type: &str, data: serde_json::Value) {
    store
        .append(AppendRequest::new(
            stream,
            ExpectedVersion::Any,
            vec![NewEvent::new(event_type, data)],
        ))
        .await
        .unwrap();
}

/// A log holding one recording of the sample song (stems in the artifact
/// store) and one voice model trained on nothing yet, with consent as given.
async fn fixture(consent: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(
        dir.path(),
        ledger::checkpoint::DEFAULT_ORIGIN,
    ))
    .unwrap();
    let artifacts = ArtifactStore::open(dir.path()).unwrap();
    let spec = &sample_catalog::tracks()[0];
    let mut stems = Stems::default();
    for stem in spec.render(SECONDS) {
        let stored = hash(&artifacts.write_wav(&stem.audio).unwrap().file_hash);
        match stem.catalog_slot() {
            "drums" => stems.drums = Some(stored),
            "bass" => stems.bass = Some(stored),
            "other" => stems.other = Some(stored),
            "vocals" => stems.vocals = Some(stored),
            other => panic!("unexpected stem {other}"),
        }
    }
    let vocals = stems.vocals.clone().unwrap();
    let split = vec![Split {
        party: "artist".into(),
        share: 1.into(),
    }];
    let recording = Recording {
        isrc: ISRC.into(),
        title: spec.title.into(),
        work: "T-034524680-1".into(),
        master_splits: split.clone(),
        stems,
        licence: Some(LicenceTerms::unrestricted()),
    };
    append(
        &store,
        &catalog::recording_stream(ISRC),
        catalog::RECORDING_REGISTERED,
        serde_json::to_value(&recording).unwrap(),
    )
    .await;
    let voice = VoiceModel {
        id: VOICE.into(),
        artist: "artist".into(),
        consent: Consent {
            granted: consent,
            reference: Some("consent/1".into()),
            scope: None,
        },
        training_stems: vec![vocals],
        likeness_splits: split,
    };
    append(
        &store,
        &catalog::voice_model_stream(VOICE),
        catalog::VOICE_MODEL_REGISTERED,
        serde_json::to_value(&voice).unwrap(),
    )
    .await;
    let identity =
        crate::credentials::SigningIdentity::init(dir.path(), ledger::checkpoint::DEFAULT_ORIGIN)
            .unwrap();
    Fixture {
        _dir: dir,
        store,
        artifacts,
        identity,
    }
}

fn request(recipe: serde_json::Value) -> ValidRequest {
    GenerationRequest::from_json(
        &json!({"recording": ISRC, "requested_by": "creator", "territory": "US", "recipe": recipe})
            .to_string(),
    )
    .unwrap()
    .validate()
    .unwrap()
}

impl Fixture {
    fn generator(&self) -> Generator<'_> {
        Generator {
            engine: Engine::Cpu,
            artifacts: &self.artifacts,
            store: &self.store,
            identity: &self.identity,
        }
    }

    async fn run(&self, request: &ValidRequest) -> Result<Generated, PipelineError> {
        let licensed = LicensedInputs::from_log(&self.store, request)
            .await
            .unwrap();
        self.generator()
            .generate(Uuid::new_v4(), request, &licensed)
            .await
    }

    async fn events(&self, stream: &str) -> Vec<ledger::Envelope> {
        self.store
            .read_stream(stream, 0, 100)
            .await
            .unwrap()
            .iter()
            .map(|e| e.envelope().unwrap())
            .collect()
    }
}

#[tokio::test]
async fn a_remix_records_every_step_and_publishes_the_whole_to_the_recording() {
    let f = fixture(true).await;
    let request = request(json!({"kind": "remix",
        "stems": {"drums": {"gain_db": -3.0}, "vocals": {"mute": true}},
        "tempo_rate": 1.25, "semitones": 2}));
    let generated = f.run(&request).await.unwrap();
    let events = f.events(&generation_stream(generated.job)).await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "generation.requested",
            "generation.step",
            "generation.step",
            "generation.step",
            "generation.step",
            "generation.step",
            "generation.derivative-published",
            "generation.credentials-issued"
        ]
    );
    let requested: GenerationRequested = serde_json::from_value(events[0].data.clone()).unwrap();
    assert_eq!(requested.recording, ISRC);
    // The decision's facts: territory, day, and the catalog event whose
    // terms allowed it (the recording's registration, seq 0).
    assert_eq!(requested.territory.as_deref(), Some("US"));
    assert_eq!(requested.licensed_on, Some(licensing::today()));
    assert_eq!(
        (requested.terms_seq, requested.consent_seq),
        (Some(0), None)
    );
    assert_eq!(requested.recipe.tempo_rate_ppm, 1_250_000);
    assert_eq!(requested.recipe.semitones_cents, 200);
    // Muted vocals are not read at all.
    assert_eq!(
        requested.stems.keys().collect::<Vec<_>>(),
        ["bass", "drums", "other"]
    );

    let steps: Vec<GenerationStep> = events[1..6]
        .iter()
        .map(|e| serde_json::from_value(e.data.clone()).unwrap())
        .collect();
    let ops: Vec<StepOp> = steps.iter().map(|s| s.op).collect();
    assert_eq!(
        ops,
        [
            StepOp::LoadStems,
            StepOp::Mix,
            StepOp::TimeStretch,
            StepOp::PitchShift,
            StepOp::Mix
        ]
    );
    for (index, step) in steps.iter().enumerate() {
        assert_eq!(step.step as usize, index + 1);
        assert_eq!(step.job, generated.job);
        assert_eq!(step.backend, schemas::generation::ComputeBackend::Cpu);
        assert!(step.adapter.is_none());
        // Every output is in the artifact store, by file and by PCM hash.
        for output in &step.outputs {
            f.artifacts.load(output.file.as_str()).unwrap();
            f.artifacts
                .load(output.pcm.as_ref().unwrap().as_str())
                .unwrap();
        }
    }
    // Each step reads what the one before it wrote.
    for pair in steps[1..].windows(2) {
        assert_eq!(pair[1].inputs, pair[0].outputs);
    }
    let drums = steps[1]
        .inputs
        .iter()
        .position(|i| i.name == "drums")
        .unwrap();
    assert_eq!(steps[1].params["gains_mb"][drums], json!(-300));
    assert_eq!(steps[1].params["target_centi_lufs"], json!(null));
    assert_eq!(steps[2].params, json!({"rate_ppm": 1_250_000}));
    assert_eq!(steps[3].params, json!({"cents": 200}));
    assert_eq!(steps[4].params["target_centi_lufs"], json!(-1400));
    let kernel_names =
        |s: &GenerationStep| s.kernels.iter().map(|k| k.name.clone()).collect::<Vec<_>>();
    assert_eq!(kernel_names(&steps[0]), Vec::<String>::new());
    assert_eq!(
        kernel_names(&steps[3]),
        ["stft", "phase_vocoder", "resample"]
    );
    assert_eq!(
        steps[3].kernels[2].source.as_str(),
        crate::kernels::resample::SOURCE.source_hash()
    );

    let published: DerivativePublished = serde_json::from_value(events[6].data.clone()).unwrap();
    assert_eq!(published.derivative, generated.job);
    assert_eq!(published.output.as_str(), generated.output.file_hash);
    assert_eq!(published.output, steps[4].outputs[0].file);
    assert_eq!(published.attribution, generated.attribution);
    assert_eq!(published.weight_bp_sum(), 10_000);
    assert_eq!(published.attribution[0].kind, AttributionKind::Recording);
    // A 1.25x faster remix is 1.5 s / 1.25 = 1.2 s long.
    assert_eq!(published.duration_ms, 1_200);
    assert_eq!(
        published.recipe,
        serde_json::to_value(&request.recipe).unwrap()
    );

    // Every step replays on the CPU twin and matches its record exactly.
    for step in &generated.steps {
        let report = replay(&f.store, &f.artifacts, step.seq).await.unwrap();
        assert!(report.matches, "{report:?}");
        assert_eq!(report.snr_db, Some(replay::SNR_DB_IDENTICAL));
    }
}

#[tokio::test]
async fn a_refused_request_appends_only_its_rejection() {
    let f = fixture(false).await;
    let cases = [
        (
            json!({"recording": "ZZLL09999999", "requested_by": "creator", "territory": "US", "recipe": {"kind": "remix"}}),
            RejectionReason::UnknownRecording,
        ),
        (
            json!({"recording": ISRC, "requested_by": "creator", "territory": "US", "recipe": {"kind": "cover", "voice_model": "nobody"}}),
            RejectionReason::UnknownVoiceModel,
        ),
        (
            json!({"recording": ISRC, "requested_by": "creator", "territory": "US", "recipe": {"kind": "cover", "voice_model": VOICE}}),
            RejectionReason::ConsentMissing,
        ),
    ];
    for (document, reason) in cases {
        let request = GenerationRequest::from_json(&document.to_string())
            .unwrap()
            .validate()
            .unwrap();
        let size = f.store.size().await.unwrap();
        let artifacts_before = std::fs::read_dir(f._dir.path().join("artifacts/sha256"))
            .unwrap()
            .count();
        let job = Uuid::new_v4();
        let licensed = LicensedInputs::from_log(&f.store, &request).await.unwrap();
        let error = f
            .generator()
            .generate(job, &request, &licensed)
            .await
            .unwrap_err();
        let PipelineError::Refused { refusal, seq } = &error else {
            panic!("expected a refusal, got {error}");
        };
        assert!(error.is_client_error());
        assert_eq!(refusal.reason, reason);
        assert_eq!(*seq, size);
        assert_eq!(f.store.size().await.unwrap(), size + 1, "one event only");
        let events = f.events(&generation_stream(job)).await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, "generation.rejected");
        let rejected: GenerationRejected = serde_json::from_value(events[0].data.clone()).unwrap();
        assert_eq!((rejected.reason, rejected.job), (reason, job));
        assert_eq!(rejected.value, refusal.value);
        assert_eq!(rejected.territory.as_deref(), Some("US"));
        assert_eq!(rejected.licensed_on, Some(licensing::today()));
        assert_eq!(rejected.recipe, request.recipe);
        let artifacts_after = std::fs::read_dir(f._dir.path().join("artifacts/sha256"))
            .unwrap()
            .count();
        assert_eq!(artifacts_after, artifacts_before, "no artifact written");
    }

    // Training a model without consent is refused with nothing written.
    let size = f.store.size().await.unwrap();
    let error = train_voice_model(&Engine::Cpu, &f.artifacts, &f.store, VOICE)
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        PipelineError::NotLicensed(Refusal {
            reason: RejectionReason::ConsentMissing,
            ..
        })
    ));
    assert_eq!(f.store.size().await.unwrap(), size);
}

#[tokio::test]
async fn a_request_that_does_not_fit_the_recording_writes_nothing() {
    let f = fixture(true).await;
    let size = f.store.size().await.unwrap();
    let muted = request(json!({"kind": "remix", "stems": {
        "drums": {"mute": true}, "bass": {"mute": true}, "other": {"mute": true}, "vocals": {"mute": true}}}));
    let mixture = request(json!({"kind": "remix", "stems": {"mixture": {"gain_db": 1.0}}}));
    for request in [muted, mixture] {
        let error = f.run(&request).await.unwrap_err();
        assert!(matches!(error, PipelineError::Request(_)), "{error}");
    }
    // A cover of a model never trained is refused (recorded).
    let cover = request(json!({"kind": "cover", "voice_model": VOICE}));
    let error = f.run(&cover).await.unwrap_err();
    assert!(
        matches!(&error, PipelineError::Refused { refusal, .. } if refusal.reason == RejectionReason::VoiceModelNotTrained),
        "{error}"
    );
    assert_eq!(f.store.size().await.unwrap(), size + 1);
}

#[tokio::test]
async fn a_cover_is_attributed_to_the_recording_and_the_voice() {
    let f = fixture(true).await;
    let trained = train_voice_model(&Engine::Cpu, &f.artifacts, &f.store, VOICE)
        .await
        .unwrap();
    let events = f
        .events(&schemas::generation::voice_training_stream(VOICE))
        .await;
    assert_eq!(events.len(), 1);
    let record: VoiceModelTrained = serde_json::from_value(events[0].data.clone()).unwrap();
    assert_eq!(record.artifact, trained.artifact);
    assert_eq!(record.consent_reference.as_deref(), Some("consent/1"));
    assert_eq!(record.training_stems.len(), 1);
    assert!(record.frames_voiced > 0 && record.frames_voiced <= record.frames_total);
    // The model artifact is stored by the hash the event names.
    crate::voice::VoiceModel::from_bytes(
        &f.artifacts.load_bytes(trained.artifact.as_str()).unwrap(),
    )
    .unwrap();

    let request = request(
        json!({"kind": "cover", "voice_model": VOICE, "semitones": -3,
                                 "stems": {"drums": {"gain_db": -6.0}}}),
    );
    let generated = f.run(&request).await.unwrap();
    let events = f.events(&generation_stream(generated.job)).await;
    let requested: GenerationRequested = serde_json::from_value(events[0].data.clone()).unwrap();
    assert_eq!(requested.voice_model.unwrap().artifact, trained.artifact);
    // The voice model's registration, seq 1, stated the consent.
    assert_eq!(requested.consent_seq, Some(1));
    // The steps, then the publication, then its credentials.
    let ops: Vec<StepOp> = events[1..events.len() - 2]
        .iter()
        .map(|e| {
            serde_json::from_value::<GenerationStep>(e.data.clone())
                .unwrap()
                .op
        })
        .collect();
    assert_eq!(
        ops,
        [
            StepOp::LoadStems,
            StepOp::Mix,
            StepOp::PitchShift,
            StepOp::Transcribe,
            StepOp::VoiceTransfer,
            StepOp::Mix
        ]
    );
    // The network's file is registered once, with its provenance, and the
    // transcription names it by that hash.
    let registrations = f
        .events(&schemas::generation::model_stream(
            crate::transcribe::MODEL_ID,
        ))
        .await;
    assert_eq!(registrations.len(), 1);
    let registered: schemas::generation::ModelRegistered =
        serde_json::from_value(registrations[0].data.clone()).unwrap();
    assert_eq!(
        registered.artifact.as_str(),
        format!("sha256:{}", crate::transcribe::MODEL_SHA256)
    );
    assert_eq!(registered.licence, "Apache-2.0");
    assert_eq!(registered.source_version, "0.4.0");
    let transcribe: GenerationStep = serde_json::from_value(events[4].data.clone()).unwrap();
    assert_eq!(
        transcribe.params,
        json!({"model": "basic-pitch-icassp-2022"})
    );
    assert_eq!(transcribe.inputs[0].name, "vocals");
    assert_eq!(transcribe.inputs[1].name, "transcription-model");
    assert_eq!(transcribe.inputs[1].file, registered.artifact);
    assert_eq!(transcribe.outputs[0].name, "melody-notes");
    assert_eq!(transcribe.outputs[0].pcm, None);
    assert_eq!(transcribe.kernels[0].name, "onnx");
    // The sample song sings E5 (MIDI 76) on its first two beats (0.625 s
    // each at 96 bpm): the notes say so where each beat is steady.
    let melody = crate::transcribe::melody::Melody::from_bytes(
        &f.artifacts
            .load_bytes(transcribe.outputs[0].file.as_str())
            .unwrap(),
    )
    .unwrap();
    for time_s in [0.3, 0.9] {
        assert_eq!(
            melody.note_at(time_s).map(|n| n.pitch_midi),
            Some(76),
            "{melody:?}"
        );
    }
    assert_eq!(
        transcribe.measurements["melody_notes"],
        melody.notes.len() as i64
    );
    // The notes drive the voice.
    let voice_step: GenerationStep = serde_json::from_value(events[5].data.clone()).unwrap();
    assert_eq!(voice_step.inputs[2], transcribe.outputs[0]);
    let published: DerivativePublished =
        serde_json::from_value(events[events.len() - 2].data.clone()).unwrap();
    assert_eq!(published.weight_bp_sum(), 10_000);
    // The cover's credentials name the voice model as an input, with its hash.
    let credentialed = f
        .artifacts
        .load_distributed(&generated.output.file_hash)
        .unwrap()
        .unwrap();
    let store = crate::credentials::read_manifest_store(&credentialed).unwrap();
    let label = store["active_manifest"].as_str().unwrap();
    let voice = store["manifests"][label]["ingredients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["relationship"] == "inputTo")
        .unwrap()
        .clone();
    assert_eq!(voice["instance_id"], trained.artifact.as_str());
    assert!(voice["description"].as_str().unwrap().contains("consent"));
    // ... and the network that transcribed the melody, with its licence.
    let network = store["manifests"][label]["ingredients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["instance_id"] == registered.artifact.as_str())
        .unwrap()
        .clone();
    assert_eq!(network["relationship"], "inputTo");
    assert!(network["description"]
        .as_str()
        .unwrap()
        .contains("Apache-2.0"));
    let kinds: Vec<(AttributionKind, &str)> = published
        .attribution
        .iter()
        .map(|c| (c.kind, c.reference.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (AttributionKind::Recording, ISRC),
            (AttributionKind::Voice, VOICE)
        ]
    );
    // Both sources are audible in the output.
    assert!(
        published.attribution.iter().all(|c| c.weight_bp >= 500),
        "{:?}",
        published.attribution
    );

    // The transcription and the voice transfer replay on the CPU twin, the
    // note list to the byte.
    for op in [StepOp::Transcribe, StepOp::VoiceTransfer] {
        let step = generated.steps.iter().find(|s| s.op == op).unwrap();
        let report = replay(&f.store, &f.artifacts, step.seq).await.unwrap();
        assert!(report.matches, "{report:?}");
    }
    let transcribed = generated
        .steps
        .iter()
        .find(|s| s.op == StepOp::Transcribe)
        .unwrap();
    let report = replay(&f.store, &f.artifacts, transcribed.seq)
        .await
        .unwrap();
    assert_eq!(report.compared, "bytes");
    assert_eq!(report.recorded, report.rerun);

    // A second cover reuses the registration.
    f.run(&request).await.unwrap();
    assert_eq!(
        f.events(&schemas::generation::model_stream(
            crate::transcribe::MODEL_ID
        ))
        .await
        .len(),
        1
    );
}

#[tokio::test]
async fn replay_refuses_events_that_are_not_steps_and_detects_altered_outputs() {
    let f = fixture(true).await;
    let generated = f
        .run(&request(json!({"kind": "remix", "tempo_rate": 0.8})))
        .await
        .unwrap();
    for seq in [generated.requested_seq, generated.published_seq, 0, 10_000] {
        let error = replay(&f.store, &f.artifacts, seq).await.unwrap_err();
        assert!(matches!(error, PipelineError::Replay(_)), "{error}");
    }
    // Overwrite the stretched bus with other audio under the same name:
    // the replay notices the bytes no longer have their hash.
    let stretch = generated
        .steps
        .iter()
        .find(|s| s.op == StepOp::TimeStretch)
        .unwrap();
    let event = f.store.read_range(stretch.seq, 1).await.unwrap().remove(0);
    let step: GenerationStep = serde_json::from_value(event.envelope().unwrap().data).unwrap();
    let path = f._dir.path().join("artifacts/sha256").join(
        step.outputs[0]
            .file
            .as_str()
            .strip_prefix("sha256:")
            .unwrap(),
    );
    let quiet = crate::Audio::new(44_100, vec![vec![0.001; 1000]]);
    std::fs::write(&path, crate::artifacts::encode_wav(&quiet)).unwrap();
    let error = replay(&f.store, &f.artifacts, stretch.seq)
        .await
        .unwrap_err();
    assert!(matches!(error, PipelineError::Tampered(_)), "{error}");
    assert!(!error.is_client_error());
    assert!(
        error
            .to_string()
            .contains("no longer has its recorded hash"),
        "{error}"
    );
}

#[tokio::test]
async fn a_published_output_is_credentialed_with_its_stems_and_log_proof() {
    let f = fixture(true).await;
    let request = request(json!({"kind": "remix", "stems": {"vocals": {"mute": true}}}));
    let generated = f.run(&request).await.unwrap();
    let events = f.events(&generation_stream(generated.job)).await;
    let issued: schemas::generation::CredentialsIssued =
        serde_json::from_value(events.last().unwrap().data.clone()).unwrap();
    assert_eq!(issued.published_seq, generated.published_seq);
    assert_eq!(issued.output.as_str(), generated.output.file_hash);
    assert_eq!(issued.file.as_str(), generated.credentialed.file_hash);
    assert_ne!(issued.file, issued.output);
    // Downloads of the output, or of the distributed file by its hash,
    // find the credentialed file: the output, once, with its manifest.
    let stored = f
        .artifacts
        .credentials_of(&generated.output.file_hash)
        .unwrap();
    assert_eq!(stored.file, generated.credentialed.file_hash);
    assert_eq!(stored.manifest.as_deref(), Some(issued.manifest.as_str()));
    assert_eq!(
        f.artifacts
            .credentials_of(&generated.credentialed.file_hash),
        Some(stored)
    );
    assert!(f
        .artifacts
        .path_of(&generated.credentialed.file_hash)
        .is_err());
    let file = f
        .artifacts
        .load_distributed(&generated.credentialed.file_hash)
        .unwrap()
        .unwrap();
    assert_eq!(crate::artifacts::file_hash(&file), issued.file.as_str());
    let anchor = crate::credentials::SigningIdentity::trust_anchor_pem(f._dir.path())
        .unwrap()
        .unwrap();
    let verifier = ledger::EventStore::verifier(&f.store);
    let v = crate::credentials::verify(&file, Some(&anchor), Some(verifier)).unwrap();
    assert!(v.ok(), "{v:#?}");
    assert_eq!(v.provenance.unwrap().published_seq, generated.published_seq);
    let store = crate::credentials::read_manifest_store(&file).unwrap();
    let text = store.to_string();
    let requested: GenerationRequested = serde_json::from_value(events[0].data.clone()).unwrap();
    for (stem, hash) in &requested.stems {
        assert!(text.contains(&format!("{ISRC} {stem}")), "{stem}");
        assert!(text.contains(hash.as_str()), "{hash:?}");
    }
}
