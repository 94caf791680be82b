//! `ledgerline keys`: API keys for the HTTP API. Tokens are printed once, at
//! creation; the data directory keeps only their SHA-256.

use super::{bad_input, Context};
use crate::api::auth::{KeyError, KeyStore, Role};
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key; prints {"id","role","party","token"}. The token is shown only now.
    Create {
        /// admin, ingest, generator, auditor, or label (needs --party).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The party id a label key may read.
        #[arg(long)]
        party: Option<String>,
    },
    /// List keys as JSON Lines {"id","role","party","created","revoked"} (never tokens).
    List,
    /// Revoke a key by id: its token is refused from then on.
    Revoke {
        /// The key id (from `keys create` or `keys list`).
        id: String,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| {
        let names: Vec<_> = Role::ALL.iter().map(|r| r.name()).collect();
        format!("unknown role {text:?}; use one of {}", names.join(", "))
    })
}

fn key_error(error: KeyError) -> anyhow::Error {
    if error.is_client_error() {
        bad_input(error.to_string())
    } else {
        error.into()
    }
}

pub async fn run(command: KeysCommand, context: &Context) -> anyhow::Result<ExitCode> {
    let data_dir = context.data_dir.clone();
    tokio::task::spawn_blocking(move || {
        let keys = KeyStore::open(&data_dir).map_err(key_error)?;
        match command {
            KeysCommand::Create { role, party } => {
                let created = keys.create(role, party.as_deref()).map_err(key_error)?;
                println!("{}", serde_json::to_string(&created)?);
            }
            KeysCommand::List => {
                for key in keys.list().map_err(key_error)? {
                    println!("{}", serde_json::to_string(&key)?);
                }
            }
            KeysCommand::Revoke { id } => keys.revoke(&id).map_err(key_error)?,
        }
        Ok(ExitCode::SUCCESS)
    })
    .await?
}
