//! `ledgerline catalog import FILE.json`: validates a catalog document and
//! appends it, all or nothing, as registrations and amendments.

use super::{bad_input, Context};
use clap::{Args, Subcommand};
use inference::artifacts::ArtifactStore;
use projections::catalog::{CatalogDocument, CatalogError};
use schemas::content_hash::ContentHash;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum CatalogCommand {
    /// Import a catalog document (parties, works, recordings, voice models,
    /// policy); stem PATHs are relative to the document, and each stem is
    /// checked as audio and stored in the data directory's artifacts. Prints
    /// {"registered","amended","unchanged","seqs"}.
    Import(ImportArgs),
}

#[derive(Args)]
pub struct ImportArgs {
    /// The catalog document (see schemas/json/catalog.schema.json).
    file: PathBuf,
}

pub async fn run(command: CatalogCommand, context: &Context) -> anyhow::Result<ExitCode> {
    let CatalogCommand::Import(args) = command;
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| bad_input(format!("cannot read catalog {}: {e}", args.file.display())))?;
    let base = args
        .file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let document = CatalogDocument::from_json(&text).map_err(|e| bad_input(e.to_string()))?;
    // Each stem is validated as audio and kept in the artifact store, where
    // generation jobs load it by hash; the catalog records the SHA-256 of its
    // file bytes. A refused document leaves stored stems behind, but those
    // are content-addressed files, not log entries: nothing is appended.
    let artifacts = ArtifactStore::open(&context.data_dir)?;
    let mut resolve = |path: &str| {
        let full = base.join(path);
        artifacts
            .ingest_file(&full)
            .map_err(|e| e.to_string())
            .and_then(|artifact| ContentHash::parse(&artifact.file_hash).map_err(|e| e.to_string()))
            .map_err(|e| format!("{:?} is not a usable stem: {e}", full.display().to_string()))
    };
    let catalog = document.validate(&mut resolve).map_err(|e| match e {
        CatalogError::Syntax(_) | CatalogError::Invalid(_) => bad_input(e.to_string()),
        other => other.into(),
    })?;
    let store = context.open_store().await?;
    let summary = catalog.import(store.as_ref()).await?;
    println!(
        "{}",
        json!({"registered": summary.registered, "amended": summary.amended, "unchanged": summary.unchanged, "seqs": summary.seqs})
    );
    Ok(ExitCode::SUCCESS)
}
