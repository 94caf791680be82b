//! `ledgerline reconcile`: compares a label's statement with ours; exit 0
//! when every row matches, 1 otherwise.

use super::{bad_input, Context};
use clap::{Args, ValueEnum};
use projections::reconcile::{parse_label_statement, reconcile, render_text};
use projections::statement::statements;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Args)]
pub struct ReconcileArgs {
    /// The label's statement: CSV with header party,currency,amount[,derivative].
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
    let mut theirs = parse_label_statement(&bytes).map_err(|e| bad_input(e.to_string()))?;
    if let Some(currency) = &args.currency {
        theirs.retain(|row| &row.currency == currency);
    }
    let (store, mut projections) = super::projections::open(context).await?;
    let mut ours = statements(
        store.as_ref(),
        &mut projections,
        &args.period,
        args.currency.as_deref(),
        args.as_of,
    )
    .await
    .map_err(super::statements::statement_error)?;
    let checkpoint = match ours.first() {
        Some(statement) => statement.checkpoint.clone(),
        None => projections::statement::checkpoint_for(store.as_ref(), args.as_of)
            .await
            .map_err(super::statements::statement_error)?,
    };
    // Currencies the label reports that we have no usage in still get a
    // (possibly empty) statement of ours to compare with.
    if args.currency.is_none() {
        let mut missing: Vec<String> = theirs
            .iter()
            .map(|row| row.currency.clone())
            .filter(|c| !ours.iter().any(|s| &s.currency == c))
            .collect();
        missing.sort();
        missing.dedup();
        for currency in missing {
            ours.extend(
                statements(
                    store.as_ref(),
                    &mut projections,
                    &args.period,
                    Some(&currency),
                    Some(checkpoint.size),
                )
                .await
                .map_err(super::statements::statement_error)?,
            );
        }
    }
    let mut lines = Vec::new();
    for statement in &ours {
        lines.extend(projections.booked_lines(
            &statement.period,
            &statement.currency,
            checkpoint.size,
        )?);
    }
    let report = reconcile(&args.period, checkpoint, &ours, &lines, &theirs);
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
