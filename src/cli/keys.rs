//! `ledgerline keys`: API keys for the HTTP API. Tokens are printed once, at
//! creation; the API's records (`api.db` in the data directory, or the log's
//! PostgreSQL database, shared by its nodes) keep only their SHA-256.

use super::{bad_input, Context};
use crate::api::auth::Role;
use crate::api::keys::{KeyError, KeyStore};
use crate::api::records::Records;
use clap::Subcommand;
use std::process::ExitCode;
use std::sync::Arc;

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
    let records = Records::open(&context.records_location()?, &context.origin).await?;
    let keys = KeyStore::new(Arc::new(records));
    match command {
        KeysCommand::Create { role, party } => {
            let created = keys
                .create(role, party.as_deref())
                .await
                .map_err(key_error)?;
            println!("{}", serde_json::to_string(&created)?);
        }
        KeysCommand::List => {
            for key in keys.list().await.map_err(key_error)? {
                println!("{}", serde_json::to_string(&key)?);
            }
        }
        KeysCommand::Revoke { id } => keys.revoke(&id).await.map_err(key_error)?,
    }
    Ok(ExitCode::SUCCESS)
}
