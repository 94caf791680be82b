//! `ledgerline licence show ISRC [--as-of SEQ]`: the licence terms of a
//! recording in force at a seq, with every catalog event that set them.

use super::lineage::Format;
use super::{bad_input, Context};
use clap::{Args, Subcommand};
use projections::terms_history::{render_text, terms_history, TermsHistoryError};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum LicenceCommand {
    /// The terms in force for a recording, and the events that set them.
    Show(ShowArgs),
}

#[derive(Args)]
pub struct ShowArgs {
    /// The recording's ISRC.
    isrc: String,
    /// Answer from the log prefix 0..SEQ only.
    #[arg(long)]
    as_of: Option<u64>,
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
}

pub async fn run(command: LicenceCommand, context: &Context) -> anyhow::Result<ExitCode> {
    let LicenceCommand::Show(args) = command;
    let store = context.open_store_read_only().await?;
    let history = terms_history(store.as_ref(), &args.isrc, args.as_of)
        .await
        .map_err(|e| match e {
            TermsHistoryError::Store(e) => e.into(),
            client => bad_input(client.to_string()),
        })?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&history)?),
        Format::Text => print!("{}", render_text(&history)),
    }
    Ok(ExitCode::SUCCESS)
}
