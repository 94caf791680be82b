//! `ledgerline generate --request REQ.json`: runs one generation job and
//! prints `{"derivative","output","output_path","published_seq","file",
//! "file_path","credentials_seq","attribution"}`: `file` is the file as
//! distributed, with its Content Credentials.
//! A request the catalog does not license is refused with exit status 2,
//! and only its `generation.rejected` event is appended; stdout then holds
//! `{"job","rejected_seq","reason","value"}`, the reason a stable code
//! (`tempo_out_of_bounds`, `consent_withdrawn`, ...).

use super::{bad_input, Context};
use clap::Args;
use inference::artifacts::ArtifactStore;
use inference::pipeline::{GenerationRequest, Generator, LicensedInputs, PipelineError};
use inference::{Backend, Engine};
use schemas::generation::RejectionReason;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use uuid::Uuid;

#[derive(Args)]
pub struct GenerateArgs {
    /// The request document (see schemas/json/generation-request.schema.json).
    #[arg(long, value_name = "REQ.json")]
    request: PathBuf,
    /// Where the kernels run: gpu, cpu or auto (GPU when an adapter exists).
    #[arg(long, default_value = "auto")]
    backend: Backend,
}

/// A pipeline error as the CLI reports it: the caller's fault (bad,
/// unlicensed or unreplayable input) exits 2, anything else 1.
pub fn pipeline_error(error: PipelineError) -> anyhow::Error {
    if error.is_client_error() {
        let untrained = matches!(
            &error,
            PipelineError::Refused { refusal, .. } | PipelineError::NotLicensed(refusal)
                if refusal.reason == RejectionReason::VoiceModelNotTrained
        );
        let hint = if untrained {
            "; `ledgerline voice train --model ID` trains the voice model named above"
        } else {
            ""
        };
        bad_input(format!("{error}{hint}"))
    } else {
        error.into()
    }
}

pub async fn run(args: GenerateArgs, context: &Context) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.request).map_err(|e| {
        bad_input(format!(
            "cannot read request {}: {e}",
            args.request.display()
        ))
    })?;
    let request = GenerationRequest::from_json(&text)
        .and_then(|r| r.validate())
        .map_err(|e| bad_input(format!("request {}: {e}", args.request.display())))?;
    let engine = Engine::select(args.backend)?;
    // Before anything is written: a missing or unusable signing key
    // refuses the job with nothing appended.
    let identity = context.signing_identity()?;
    let artifacts = ArtifactStore::open(&context.data_dir)?;
    let store = context.open_store().await?;
    let licensed = LicensedInputs::from_log(store.as_ref(), &request).await?;
    let generator = Generator {
        engine,
        artifacts: &artifacts,
        store: store.as_ref(),
        identity: &identity,
    };
    let job = Uuid::new_v4();
    let generated = match generator.generate(job, &request, &licensed).await {
        Ok(generated) => generated,
        Err(error) => {
            // A refusal is an answer too: its stable code and value on
            // stdout for scripts, the sentence on stderr.
            if let PipelineError::Refused { refusal, seq } = &error {
                println!(
                    "{}",
                    json!({"job": job, "rejected_seq": seq, "reason": refusal.reason.code(), "value": refusal.value})
                );
            }
            return Err(pipeline_error(error));
        }
    };
    // The distributed file exists as the output plus its manifest store;
    // written out here for a caller who wants it as a file.
    let file_path = artifacts.write_distributed(&generated.credentialed.file_hash)?;
    for step in &generated.steps {
        eprintln!(
            "step seq {} {} on {} in {} ms",
            step.seq,
            step.op.as_str(),
            engine.backend_name(),
            step.duration_ms
        );
    }
    println!(
        "{}",
        json!({
            "derivative": generated.derivative,
            "output": generated.output.file_hash,
            "output_path": generated.output.path,
            "published_seq": generated.published_seq,
            "file": generated.credentialed.file_hash,
            "file_path": file_path,
            "credentials_seq": generated.credentialed.seq,
            "attribution": generated.attribution,
        })
    );
    Ok(ExitCode::SUCCESS)
}
