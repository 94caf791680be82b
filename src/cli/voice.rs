//! `ledgerline voice train --model ID`: trains the catalog's voice model on
//! its licensed training stems and records `voice.model-trained` (training
//! stems, consent reference, model artifact and kernel hashes) on the
//! model's training stream. A cover can use a model only once it is trained.

use super::generate::pipeline_error;
use super::Context;
use clap::{Args, Subcommand};
use inference::artifacts::ArtifactStore;
use inference::pipeline::train_voice_model;
use inference::{Backend, Engine};
use serde_json::json;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum VoiceCommand {
    /// Train a voice model on its licensed stems (they must be in the
    /// artifact store); prints {"voice_model","artifact","seq",...}.
    Train(TrainArgs),
}

#[derive(Args)]
pub struct TrainArgs {
    /// The catalog's voice model id.
    #[arg(long)]
    model: String,
    /// Where the kernels run: gpu, cpu or auto (GPU when an adapter exists).
    #[arg(long, default_value = "auto")]
    backend: Backend,
}

pub async fn run(command: VoiceCommand, context: &Context) -> anyhow::Result<ExitCode> {
    let VoiceCommand::Train(args) = command;
    let engine = Engine::select(args.backend)?;
    let artifacts = ArtifactStore::open(&context.data_dir)?;
    let store = context.open_store().await?;
    let trained = train_voice_model(&engine, &artifacts, store.as_ref(), &args.model)
        .await
        .map_err(pipeline_error)?;
    println!(
        "{}",
        json!({
            "voice_model": trained.voice_model,
            "artifact": trained.artifact,
            "seq": trained.seq,
            "backend": engine.backend_name(),
            "frames_total": trained.report.frames_total,
            "frames_voiced": trained.report.frames_voiced,
            "cells_filled": trained.report.cells_filled,
            "cells_total": trained.report.cells_total,
            "duration_ms": trained.duration_ms,
        })
    );
    Ok(ExitCode::SUCCESS)
}
