//! `ledgerline consent withdraw --voice-model ID --reference REF
//! [--effective DATE]`: records an artist's withdrawal of consent to a
//! voice model (`catalog.voice-consent-withdrawn`) and prints
//! `{"seq","voice_model","reference","effective"}`. From the effective day
//! new requests using the voice are refused and the derivatives made with
//! it are on `ledgerline takedowns`.

use super::{bad_input, Context};
use clap::{Args, Subcommand};
use inference::pipeline::licensing::today;
use projections::consent::withdraw_consent;
use schemas::licence::CalendarDate;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum ConsentCommand {
    /// Record the withdrawal of an artist's consent to a voice model.
    Withdraw(WithdrawArgs),
}

#[derive(Args)]
pub struct WithdrawArgs {
    /// The catalog's voice model id.
    #[arg(long)]
    voice_model: String,
    /// The withdrawn consent's reference, as the catalog records it.
    #[arg(long)]
    reference: String,
    /// The first day the withdrawal applies (YYYY-MM-DD, UTC); today if absent.
    #[arg(long, value_name = "DATE")]
    effective: Option<String>,
}

pub async fn run(command: ConsentCommand, context: &Context) -> anyhow::Result<ExitCode> {
    let ConsentCommand::Withdraw(args) = command;
    let effective = match &args.effective {
        Some(text) => text
            .parse::<CalendarDate>()
            .map_err(|e| bad_input(format!("--effective: {e}")))?,
        None => today(),
    };
    let store = context.open_store().await?;
    let withdrawn = withdraw_consent(
        store.as_ref(),
        &args.voice_model,
        &args.reference,
        effective,
    )
    .await
    .map_err(|e| {
        if e.is_client_error() {
            bad_input(e.to_string())
        } else {
            e.into()
        }
    })?;
    println!("{}", serde_json::to_string(&withdrawn)?);
    Ok(ExitCode::SUCCESS)
}
