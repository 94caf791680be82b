//! `ledgerline usage import FILE.csv`: appends a usage report, all lines or
//! none; lines already imported are skipped and reported.

use super::{bad_input, Context};
use clap::{Args, Subcommand};
use projections::usage::parse_usage_csv;
use projections::usage_import::{import_usage, UsageImportError};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum UsageCommand {
    /// Import a usage CSV (header line_id,period,derivative,territory,currency,streams,gross,reverses).
    /// Prints {"imported","skipped","seqs"}; skipped line ids are also reported on stderr.
    Import(ImportArgs),
}

#[derive(Args)]
pub struct ImportArgs {
    /// The usage report (see schemas/json/usage-line.schema.json).
    file: PathBuf,
}

pub async fn run(command: UsageCommand, context: &Context) -> anyhow::Result<ExitCode> {
    let UsageCommand::Import(args) = command;
    let bytes = std::fs::read(&args.file).map_err(|e| {
        bad_input(format!(
            "cannot read usage report {}: {e}",
            args.file.display()
        ))
    })?;
    let lines = parse_usage_csv(&bytes).map_err(|e| bad_input(e.to_string()))?;
    let (store, mut projections) = super::projections::open(context).await?;
    let summary = import_usage(store.as_ref(), &mut projections, lines)
        .await
        .map_err(|e| match e {
            UsageImportError::Usage(e) => bad_input(e.to_string()),
            other => other.into(),
        })?;
    for line_id in &summary.skipped {
        eprintln!("ledgerline: line_id {line_id:?} was already imported; skipped");
    }
    let seqs: Vec<u64> = summary.imported.iter().map(|(_, seq)| *seq).collect();
    println!(
        "{}",
        json!({"imported": summary.imported.len(), "skipped": summary.skipped, "seqs": seqs})
    );
    Ok(ExitCode::SUCCESS)
}
