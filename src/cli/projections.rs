//! `ledgerline projections ...`: the persisted read models of the
//! `projections` library (royalties, lineage index) in the log's database.

use super::Context;
use clap::Subcommand;
use ledger::EventStore;
use projections::runner::Projections;
use serde_json::json;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum ProjectionsCommand {
    /// Fold the whole log again from seq 0 into fresh projection tables;
    /// prints {"from","to"}. Statements afterwards are byte-identical.
    Rebuild,
    /// Fold the events appended since the last run; prints {"from","to"}.
    CatchUp,
}

/// Opens the store and the projection tables in this node's local database.
pub async fn open(
    context: &Context,
) -> anyhow::Result<(std::sync::Arc<dyn EventStore>, Projections)> {
    let store = context.open_store().await?;
    let projections = Projections::open(&context.local_database()?)?;
    Ok((store, projections))
}

pub async fn run(command: ProjectionsCommand, context: &Context) -> anyhow::Result<ExitCode> {
    let (store, mut projections) = open(context).await?;
    let store: &dyn EventStore = store.as_ref();
    let outcome = match command {
        ProjectionsCommand::Rebuild => {
            let mut progress = super::progress_every_two_seconds(|done, total| {
                eprintln!("projections rebuild: {done}/{total} events read")
            });
            projections.rebuild_reporting(store, &mut progress).await?
        }
        ProjectionsCommand::CatchUp => projections.catch_up(store).await?,
    };
    println!("{}", json!({"from": outcome.from, "to": outcome.to}));
    Ok(ExitCode::SUCCESS)
}
