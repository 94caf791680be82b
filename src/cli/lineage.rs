//! `ledgerline lineage (FILE | DERIVATIVE_ID)`: where an audio file or a
//! derivative came from and who was paid for it, with inclusion proofs. A
//! file is matched by its bytes' hash, its decoded PCM's hash, and only when
//! both miss, by its acoustic fingerprint (which costs a full analysis).

use super::{bad_input, Context};
use crate::lineage_credentials::{self, Finding};
use clap::{Args, ValueEnum};
use inference::artifacts::ArtifactError;
use projections::lineage::{
    hash_file, lineage, lineage_of_audio, render_text, AudioIdentity, LineageQuery,
};
use std::path::Path;
use std::process::ExitCode;
use uuid::Uuid;

/// The largest file whose credentials are read (the API's upload limit).
const CREDENTIALS_READ_BYTES_MAX: u64 = 128 << 20;

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(u64::MAX, |m| m.len())
}

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
    let query = match Uuid::parse_str(&args.target) {
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
            LineageQuery::Audio(AudioIdentity {
                file_hash: file_hash.to_string(),
                pcm_hash,
                fingerprint: None,
            })
        }
    };
    let (store, projections) = super::projections::open(context).await?;
    // A lock, though nothing runs beside this lookup: the lookups borrow
    // the projections one at a time, which a plain `&mut` cannot say.
    let (store, projections) = (store.as_ref(), &tokio::sync::Mutex::new(projections));
    let as_of = args.as_of;
    let look_up = |query: LineageQuery| async move {
        let mut projections = projections.lock().await;
        Ok::<_, anyhow::Error>(lineage(store, &mut projections, &query, as_of).await?)
    };
    // Credentials first: a file whose credentials verify is answered by the
    // derivative they name; failing credentials are reported, not trusted.
    let finding = match &query {
        LineageQuery::Audio(_) if file_size(path) <= CREDENTIALS_READ_BYTES_MAX => {
            lineage_credentials::check_file(path, &context.data_dir, store.verifier())
        }
        _ => Finding::Absent,
    };
    let of_a_file = matches!(query, LineageQuery::Audio(_));
    let mut by_credentials = None;
    if let Some(derivative) = finding.derivative() {
        let mut answer = look_up(LineageQuery::Derivative(derivative)).await?;
        if lineage_credentials::mark_found_by_credentials(&mut answer) {
            by_credentials = Some(answer);
        }
    }
    let answer = match (by_credentials, query) {
        (Some(answer), _) => answer,
        (None, LineageQuery::Audio(identity)) => {
            let fingerprint = async {
                inference::fingerprint::fingerprint_file(path)
                    .map_err(|e| bad_input(format!("{}: {e}", args.target)))
            };
            lineage_of_audio(identity, fingerprint, look_up).await?
        }
        (None, derivative) => look_up(derivative).await?,
    };
    match args.format {
        // A file's answer says what its credentials said; a derivative
        // id's is the plain answer.
        Format::Json if of_a_file => println!(
            "{}",
            serde_json::to_string_pretty(&lineage_credentials::annotate(&answer, &finding))?
        ),
        Format::Json => println!("{}", serde_json::to_string_pretty(&answer)?),
        Format::Text => {
            match &finding {
                Finding::Valid { verification, .. } => println!(
                    "Content Credentials valid: signed by {}, log proof verified",
                    verification.signer.as_deref().unwrap_or("(unknown)")
                ),
                Finding::Invalid(_) => println!(
                    "Content Credentials present but INVALID (not trusted): {}",
                    finding.report()
                ),
                Finding::Absent => {}
            }
            print!("{}", render_text(&answer))
        }
    }
    Ok(ExitCode::SUCCESS)
}
