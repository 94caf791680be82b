//! `ledgerline statements`: royalty statements per period and currency,
//! citing the checkpoint they were computed from.

use super::{bad_input, Context};
use clap::{Args, ValueEnum};
use projections::runner::ProjectionError;
use projections::statement::{statement_detail, statements, StatementError};
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
    /// With --party: list each usage line and component behind the amount, with seqs.
    #[arg(long, requires = "party")]
    detail: bool,
    /// Answer from the log prefix 0..SEQ (the first SEQ events) only.
    #[arg(long)]
    as_of: Option<u64>,
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
}

/// Maps library errors caused by the arguments to exit status 2.
pub fn statement_error(error: StatementError) -> anyhow::Error {
    match error {
        StatementError::BadPeriod(_)
        | StatementError::BadCurrency(..)
        | StatementError::Projection(ProjectionError::AsOfBeyondLog { .. }) => {
            bad_input(error.to_string())
        }
        other => other.into(),
    }
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
    .await
    .map_err(statement_error)?;
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
        let mut out = Vec::new();
        for statement in &found {
            let lines = projections.booked_lines(
                &statement.period,
                &statement.currency,
                statement.checkpoint.size,
            )?;
            let details = statement_detail(&lines, party)?;
            out.push(json!({
                "period": statement.period, "currency": statement.currency, "checkpoint": statement.checkpoint,
                "party": party, "line": statement.lines.first(), "details": details
            }));
        }
        match args.format {
            Format::Json => println!("{}", serde_json::to_string_pretty(&out)?),
            Format::Csv => {
                println!("period,currency,checkpoint_size,party,seq,line_id,derivative,component,reference,amount");
                for (statement, value) in found.iter().zip(&out) {
                    for d in value["details"].as_array().into_iter().flatten() {
                        println!(
                            "{},{},{},{},{},{},{},{},{},{}",
                            statement.period,
                            statement.currency,
                            statement.checkpoint.size,
                            party,
                            d["seq"],
                            d["line_id"].as_str().unwrap_or(""),
                            d["derivative"].as_str().unwrap_or(""),
                            d["component"].as_str().unwrap_or(""),
                            d["reference"].as_str().unwrap_or(""),
                            d["amount"].as_str().unwrap_or("")
                        );
                    }
                }
            }
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
