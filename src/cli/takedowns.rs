//! `ledgerline takedowns [--since SEQ] [--format json|text]`: the published
//! derivatives whose consent was withdrawn, whose recording left the
//! platform or whose licence window ended, each with the event that ended
//! it and that event's inclusion proof against a signed checkpoint.

use super::lineage::Format;
use super::Context;
use clap::Args;
use inference::pipeline::licensing::today;
use projections::takedowns::{render_text, takedowns};
use std::process::ExitCode;

#[derive(Args)]
pub struct TakedownsArgs {
    /// Only entries whose cause or publication is at or after this seq,
    /// and those that took effect on a later day than their cause (ended
    /// windows, withdrawals dated ahead).
    #[arg(long, default_value_t = 0)]
    since: u64,
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
}

pub async fn run(args: TakedownsArgs, context: &Context) -> anyhow::Result<ExitCode> {
    let store = context.open_store().await?;
    let list = takedowns(store.as_ref(), args.since, today(), None).await?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&list)?),
        Format::Text => print!("{}", render_text(&list)),
    }
    Ok(ExitCode::SUCCESS)
}
