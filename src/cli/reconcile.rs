//! `ledgerline reconcile`: compares a label's statement with ours; exit 0
//! when every row matches, 1 otherwise.

use super::{bad_input, Context};
use clap::{Args, ValueEnum};
use projections::reconcile::{parse_label_statement, reconcile_with_log, render_text};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Args)]
pub struct ReconcileArgs {
    /// The label's statement: CSV with header party,currency,amount and an optional derivative column.
    #[arg(long)]
    statement: PathBuf,
    /// Period, YYYY-MM.
    #[arg(long)]
    period: String,
    /// Compare only this currency (the label's rows in others are ignored).
    #[arg(long)]
    currency: Option<String>,
    /// Answer from the log prefix 0..SEQ only.
    #[arg(long)]
    as_of: Option<u64>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

pub async fn run(args: ReconcileArgs, context: &Context) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.statement).map_err(|e| {
        bad_input(format!(
            "cannot read label statement {}: {e}",
            args.statement.display()
        ))
    })?;
    let theirs = parse_label_statement(&bytes)?;
    let (store, mut projections) = super::projections::open(context).await?;
    let report = reconcile_with_log(
        store.as_ref(),
        &mut projections,
        &args.period,
        args.currency.as_deref(),
        None,
        args.as_of,
        theirs,
    )
    .await?;
    match args.format {
        Format::Text => print!("{}", render_text(&report)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(if report.all_match {
        ExitCode::SUCCESS
    } else {
        super::EXIT_FAILURE
    })
}
