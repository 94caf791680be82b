//! `ledgerline credentials init|trust-anchor|show|verify`: the identity that
//! signs Content Credentials (C2PA), and reading and verifying the
//! credentials a file carries.

use super::{bad_input, Context};
use clap::{Args, Subcommand, ValueEnum};
use inference::credentials::{self, CredentialsError, SigningIdentity, Verification};
use ledger::NoteVerifier;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The largest file read for its credentials, bytes (the API's upload limit).
const FILE_BYTES_MAX: u64 = 128 * 1024 * 1024;

#[derive(Subcommand)]
pub enum CredentialsCommand {
    /// Make a local certificate authority and a signing certificate for this
    /// log in the data directory (private keys mode 0600).
    Init,
    /// Print the local root certificate (PEM): verifiers add it to their
    /// trust list.
    TrustAnchor,
    /// Print a file's C2PA manifest store as JSON.
    Show(FileArgs),
    /// Check a file's credentials: signature, hard binding, trust and the
    /// log proof (exit 1 on any failure).
    Verify(VerifyArgs),
}

#[derive(Args)]
pub struct FileArgs {
    /// A WAV, FLAC or MP3 file.
    file: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Json,
    Text,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// A WAV, FLAC or MP3 file.
    file: PathBuf,
    /// Root certificates (PEM) to trust; default: the data directory's own
    /// root, if it has one.
    #[arg(long, value_name = "PEM")]
    trust_anchor: Option<PathBuf>,
    /// The log's verifier key (`name+hex8+base64`) to check the log proof
    /// against; default: the key of the log in --data or --store.
    #[arg(long, value_name = "VKEY")]
    log_key: Option<String>,
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
}

pub async fn run(command: CredentialsCommand, context: &Context) -> anyhow::Result<ExitCode> {
    match command {
        CredentialsCommand::Init => {
            let identity = SigningIdentity::init(&context.data_dir, &context.origin)
                .map_err(|e| bad_input(e.to_string()))?;
            let dir = context.data_dir.join(credentials::identity::DIR);
            println!(
                "{}",
                json!({
                    "subject": identity.subject(),
                    "chain": dir.join(credentials::identity::CHAIN_FILE),
                    "key": dir.join(credentials::identity::KEY_FILE),
                    "trust_anchor": dir.join(credentials::identity::ROOT_CERT_FILE),
                })
            );
            Ok(ExitCode::SUCCESS)
        }
        CredentialsCommand::TrustAnchor => {
            match SigningIdentity::trust_anchor_pem(&context.data_dir)? {
                Some(pem) => print!("{pem}"),
                None => {
                    return Err(bad_input(format!(
                        "{} has no local certificate authority; run `ledgerline credentials init` (a brought chain's root comes from its issuer)",
                        context.data_dir.display()
                    )))
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        CredentialsCommand::Show(args) => {
            let bytes = read_file(&args.file)?;
            let store = credentials::read_manifest_store(&bytes).map_err(file_error)?;
            println!("{}", serde_json::to_string_pretty(&store)?);
            Ok(ExitCode::SUCCESS)
        }
        CredentialsCommand::Verify(args) => verify(args, context).await,
    }
}

async fn verify(args: VerifyArgs, context: &Context) -> anyhow::Result<ExitCode> {
    let bytes = read_file(&args.file)?;
    let anchors = match &args.trust_anchor {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            bad_input(format!(
                "cannot read --trust-anchor {}: {e}",
                path.display()
            ))
        })?),
        None => SigningIdentity::trust_anchor_pem(&context.data_dir)?,
    };
    let log = match &args.log_key {
        Some(key) => Some(
            NoteVerifier::from_verifier_key(key)
                .map_err(|e| bad_input(format!("--log-key: {e}")))?,
        ),
        None => match context.open_store_read_only().await {
            Ok(store) => Some(store.verifier().clone()),
            // Without a log here the proof is reported unchecked, not an error.
            Err(_) => None,
        },
    };
    let verification =
        credentials::verify(&bytes, anchors.as_deref(), log.as_ref()).map_err(file_error)?;
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "file": args.file,
                "ok": verification.ok(),
                "verification": verification,
            }))?
        ),
        Format::Text => {
            let store = credentials::read_manifest_store(&bytes).map_err(file_error)?;
            print!("{}", summary(&args.file, &verification, &store));
        }
    }
    Ok(if verification.ok() {
        ExitCode::SUCCESS
    } else {
        super::EXIT_FAILURE
    })
}

fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    let size = std::fs::metadata(path)
        .map_err(|e| bad_input(format!("cannot read {}: {e}", path.display())))?
        .len();
    if size > FILE_BYTES_MAX {
        return Err(bad_input(format!(
            "{} is {size} bytes, more than the {FILE_BYTES_MAX} read for credentials",
            path.display()
        )));
    }
    std::fs::read(path).map_err(|e| bad_input(format!("cannot read {}: {e}", path.display())))
}

/// A file in another format is bad input (exit 2); a file whose credentials
/// are missing or unreadable fails the check (exit 1).
fn file_error(error: CredentialsError) -> anyhow::Error {
    if error.is_client_error() {
        bad_input(error.to_string())
    } else {
        error.into()
    }
}

/// A short human-readable account of a file's credentials: who signed it,
/// each check, the source type, the ingredients and the actions.
pub fn summary(file: &Path, verification: &Verification, store: &Value) -> String {
    let mark = |ok: bool| if ok { "ok  " } else { "FAIL" };
    let mut out = format!(
        "Content Credentials of {}\n  signed by     {} (C2PA state {})\n",
        file.display(),
        verification.signer.as_deref().unwrap_or("(unknown)"),
        verification.state
    );
    for (name, check) in [
        ("signature", &verification.signature),
        ("hard binding", &verification.hard_binding),
        ("trust", &verification.trust),
        ("log proof", &verification.log_proof),
    ] {
        out.push_str(&format!(
            "  {name:<13} {} {}\n",
            mark(check.ok),
            check.detail
        ));
    }
    let manifest = store["active_manifest"]
        .as_str()
        .map(|label| &store["manifests"][label])
        .unwrap_or(&Value::Null);
    let actions: Vec<&Value> = manifest["assertions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| {
            a["label"]
                .as_str()
                .is_some_and(|l| l.starts_with("c2pa.actions"))
        })
        .flat_map(|a| a["data"]["actions"].as_array().into_iter().flatten())
        .collect();
    if let Some(source) = actions.iter().find_map(|a| a["digitalSourceType"].as_str()) {
        out.push_str(&format!(
            "  source type   {}\n",
            source.rsplit('/').next().unwrap_or(source)
        ));
    }
    for ingredient in manifest["ingredients"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  ingredient    {} ({}, {})\n",
            ingredient["title"].as_str().unwrap_or("?"),
            ingredient["relationship"].as_str().unwrap_or("?"),
            ingredient["instance_id"].as_str().unwrap_or("?"),
        ));
    }
    let steps: Vec<&str> = actions
        .iter()
        .filter_map(|a| a["parameters"]["org.ledgerline.op"].as_str())
        .collect();
    out.push_str(&format!(
        "  actions       c2pa.created, then {} steps: {}\n",
        steps.len(),
        steps.join(", ")
    ));
    out
}
