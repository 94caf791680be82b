//! `ledgerline statements`: royalty statements per period and currency,
//! citing the checkpoint they were computed from.

use super::Context;
use clap::{Args, ValueEnum};
use projections::statement::{mark_takedowns, render_detail_csv, statement_detail, statements};
use serde_json::json;
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Json,
    Csv,
}

#[derive(Args)]
pub struct StatementsArgs {
    /// Period, YYYY-MM.
    #[arg(long)]
    period: String,
    /// ISO 4217 currency; every currency with usage in the period when absent
    /// (JSON is then an array of statements).
    #[arg(long)]
    currency: Option<String>,
    /// Only this party's row (the rounding still covers every party).
    #[arg(long)]
    party: Option<String>,
    /// With --party: list each usage line and component behind the amount,
    /// with seqs; lines of derivatives taken down by the period's end are
    /// marked (`after_takedown`).
    #[arg(long, requires = "party")]
    detail: bool,
    /// Answer from the log prefix 0..SEQ (the first SEQ events) only.
    #[arg(long)]
    as_of: Option<u64>,
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
}

pub async fn run(args: StatementsArgs, context: &Context) -> anyhow::Result<ExitCode> {
    let (store, mut projections) = super::projections::open(context).await?;
    let mut found = statements(
        store.as_ref(),
        &mut projections,
        &args.period,
        args.currency.as_deref(),
        args.as_of,
    )
    .await?;
    if let Some(party) = &args.party {
        for statement in &mut found {
            statement.lines.retain(|line| &line.party == party);
        }
    }
    if args.detail {
        let party = args
            .party
            .as_deref()
            .expect("clap requires --party with --detail");
        let mut details = Vec::new();
        for statement in &found {
            let lines = projections.booked_lines(
                &statement.period,
                &statement.currency,
                statement.checkpoint.size,
            )?;
            details.push(statement_detail(&lines, party)?);
        }
        // The statements of one call share their period and checkpoint.
        if let Some(first) = found.first() {
            mark_takedowns(
                store.as_ref(),
                first.checkpoint.size,
                &first.period,
                details.iter_mut().flatten(),
            )
            .await?;
        }
        match args.format {
            Format::Json => {
                let out: Vec<_> = found
                    .iter()
                    .zip(&details)
                    .map(|(statement, details)| {
                        json!({
                            "period": statement.period, "currency": statement.currency, "checkpoint": statement.checkpoint,
                            "party": party, "line": statement.lines.first(), "details": details
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&out)?)
            }
            Format::Csv => print!(
                "{}",
                render_detail_csv(party, found.iter().zip(details.iter().map(Vec::as_slice)))
            ),
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.format {
        Format::Json if args.currency.is_some() => {
            println!("{}", serde_json::to_string_pretty(&found[0])?)
        }
        Format::Json => println!("{}", serde_json::to_string_pretty(&found)?),
        Format::Csv => print!("{}", projections::statement::render_csv(&found)),
    }
    Ok(ExitCode::SUCCESS)
}
