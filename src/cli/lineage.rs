//! `ledgerline lineage (FILE | DERIVATIVE_ID)`: where an audio file or a
//! derivative came from and who was paid for it, with inclusion proofs. A
//! file is matched by its bytes' hash, its decoded PCM's hash, and only when
//! both miss, by its acoustic fingerprint (which costs a full analysis).

use super::{bad_input, Context};
use clap::{Args, ValueEnum};
use inference::artifacts::ArtifactError;
use projections::lineage::{
    hash_file, lineage, render_text, AudioIdentity, LineageAnswer, LineageError, LineageQuery,
};
use std::path::Path;
use std::process::ExitCode;
use uuid::Uuid;

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Json,
    Text,
}

#[derive(Args)]
pub struct LineageArgs {
    /// An audio file, or a derivative id (UUID).
    target: String,
    /// Answer from the log prefix 0..SEQ only.
    #[arg(long)]
    as_of: Option<u64>,
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
}

pub async fn run(args: LineageArgs, context: &Context) -> anyhow::Result<ExitCode> {
    let path = Path::new(&args.target);
    let mut decodes = false;
    let mut query = match Uuid::parse_str(&args.target) {
        Ok(id) if !path.exists() => LineageQuery::Derivative(id),
        _ => {
            let file_hash = hash_file(path).map_err(|e| {
                bad_input(format!(
                    "{:?} is neither a derivative id (UUID) nor a readable file: {e}",
                    args.target
                ))
            })?;
            // A re-wrapped or re-encoded copy still has the same decoded
            // PCM; a file that does not decode is matched by its bytes only.
            let pcm_hash = match inference::artifacts::pcm_hash_of_file(path) {
                Ok(hash) => Some(hash),
                Err(error @ ArtifactError::TooManySamples { .. }) => {
                    return Err(bad_input(format!("{}: {error}", args.target)))
                }
                Err(_) => None,
            };
            decodes = pcm_hash.is_some();
            LineageQuery::Audio(AudioIdentity {
                file_hash: file_hash.to_string(),
                pcm_hash,
                fingerprint: None,
            })
        }
    };
    let (store, mut projections) = super::projections::open(context).await?;
    let input_error = |e: LineageError| match e {
        LineageError::Projection(
            error @ projections::runner::ProjectionError::AsOfBeyondLog { .. },
        ) => bad_input(error.to_string()),
        other => other.into(),
    };
    let mut answer = lineage(store.as_ref(), &mut projections, &query, args.as_of)
        .await
        .map_err(input_error)?;
    if let (LineageAnswer::NotFound { .. }, LineageQuery::Audio(identity), true) =
        (&answer, &mut query, decodes)
    {
        // Neither hash matched: a re-encoded, resampled or trimmed copy is
        // still found by its acoustic fingerprint.
        identity.fingerprint = Some(
            inference::fingerprint::fingerprint_file(path)
                .map_err(|e| bad_input(format!("{}: {e}", args.target)))?,
        );
        answer = lineage(store.as_ref(), &mut projections, &query, args.as_of)
            .await
            .map_err(input_error)?;
    }
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&answer)?),
        Format::Text => print!("{}", render_text(&answer)),
    }
    Ok(ExitCode::SUCCESS)
}
