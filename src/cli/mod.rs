//! Command-line front end: each submodule is one group of subcommands that
//! parses its arguments, calls a library and prints the result.

pub mod audio;
pub mod catalog;
pub mod demo;
pub mod keys;
pub mod lineage;
pub mod log;
pub mod projections;
pub mod reconcile;
pub mod serve;
pub mod statements;
pub mod usage;

use ledger::store::sqlite::{SqliteConfig, SqliteStore};
use ledger::StoreError;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Exit status for a failed check or an operational failure.
pub const EXIT_FAILURE: ExitCode = ExitCode::FAILURE;
/// Exit status for bad usage or bad input (nothing was written).
pub const EXIT_BAD_INPUT: u8 = 2;

/// What every subcommand gets: where the data lives.
pub struct Context {
    pub data_dir: PathBuf,
    pub origin: String,
    /// File holding an operator-supplied signing key, if any.
    pub signing_key: Option<PathBuf>,
}

impl Context {
    fn store_config(&self) -> anyhow::Result<SqliteConfig> {
        let mut config = SqliteConfig::new(&self.data_dir, &self.origin);
        if let Some(path) = &self.signing_key {
            let text = std::fs::read_to_string(path).map_err(|e| {
                bad_input(format!("cannot read --signing-key {}: {e}", path.display()))
            })?;
            config.signing_key = Some(text.trim().to_string());
        }
        Ok(config)
    }

    /// Opens (creating on first use) the embedded store in the data directory.
    pub async fn open_store(&self) -> anyhow::Result<Arc<SqliteStore>> {
        let config = self.store_config()?;
        let store = tokio::task::spawn_blocking(move || SqliteStore::open(config)).await??;
        Ok(Arc::new(store))
    }

    /// Opens the existing embedded store for reading only (no signing, no
    /// writes), so read commands never change a log, even a damaged one.
    pub async fn open_store_read_only(&self) -> anyhow::Result<Arc<SqliteStore>> {
        let config = self.store_config()?;
        let store =
            tokio::task::spawn_blocking(move || SqliteStore::open_read_only(config)).await??;
        Ok(Arc::new(store))
    }
}

/// An error caused by the caller's input: reported with exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Shorthand for a `BadInput` error.
pub fn bad_input(message: impl Into<String>) -> anyhow::Error {
    BadInput(message.into()).into()
}

/// Prints a failed command's error as one sentence on stderr and picks the exit status.
pub fn finish(outcome: anyhow::Result<ExitCode>) -> ExitCode {
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("ledgerline: {error:#}");
            let client_error = error.chain().any(|cause| {
                cause.is::<BadInput>()
                    || cause
                        .downcast_ref::<StoreError>()
                        .is_some_and(StoreError::is_client_error)
            });
            if client_error {
                ExitCode::from(EXIT_BAD_INPUT)
            } else {
                EXIT_FAILURE
            }
        }
    }
}

/// Logs go to stderr so that stdout stays machine-readable; `RUST_LOG` tunes them.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
