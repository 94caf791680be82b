//! Command-line front end: each submodule is one group of subcommands that
//! parses its arguments, calls a library and prints the result.

pub mod audio;
pub mod catalog;
pub mod demo;
pub mod generate;
pub mod keys;
pub mod lineage;
pub mod log;
pub mod migrate;
pub mod projections;
pub mod reconcile;
pub mod replay;
pub mod serve;
pub mod statements;
pub mod usage;
pub mod voice;

use crate::api::records::RecordsLocation;
use ledger::store::open::{self, OpenError, OpenOptions, StoreLocation};
use ledger::store::sqlite;
use ledger::{EventStore, StoreError};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Exit status for a failed check or an operational failure.
pub const EXIT_FAILURE: ExitCode = ExitCode::FAILURE;
/// Exit status for bad usage or bad input (nothing was written).
pub const EXIT_BAD_INPUT: u8 = 2;

/// The file beside a PostgreSQL log that holds this node's read models
/// (projections, API keys stay in their own file): the log itself is shared
/// by every node, the read models are rebuilt from it on each.
pub const NODE_DATABASE_FILE: &str = "node.db";

/// What every subcommand gets: where the data lives.
pub struct Context {
    pub data_dir: PathBuf,
    pub origin: String,
    /// File holding an operator-supplied signing key, if any.
    pub signing_key: Option<PathBuf>,
    /// The log's store: a PostgreSQL or KurrentDB URL, or None for the
    /// embedded SQLite file in the data directory.
    pub store_url: Option<String>,
}

impl Context {
    fn signing_key_text(&self) -> anyhow::Result<Option<String>> {
        let Some(path) = &self.signing_key else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad_input(format!("cannot read --signing-key {}: {e}", path.display())))?;
        Ok(Some(text.trim().to_string()))
    }

    /// Where `--store` (or, without it, `--data`) puts the log.
    fn location(&self) -> anyhow::Result<StoreLocation> {
        StoreLocation::new(self.store_url.as_deref(), &self.data_dir).map_err(|e| match e {
            OpenError::UnknownScheme(url) => bad_input(format!(
                "--store {url:?} is not a store this ledgerline opens; give postgres://USER@HOST:PORT/DATABASE or esdb://HOST:2113 (KurrentDB), or leave --store out for the embedded SQLite log in --data"
            )),
            other => other.into(),
        })
    }

    /// Opens the log of `--store` or `--data`: for appending, creating it on
    /// first use, when `create`, else read-only. Every node of a shared log
    /// signs with the same key: `--signing-key`, or the key file in `--data`
    /// (created on first use; copy it to the other nodes).
    async fn open(&self, create: bool) -> anyhow::Result<Arc<dyn EventStore>> {
        let location = self.location()?;
        let options = OpenOptions {
            origin: self.origin.clone(),
            signing_key: self.signing_key_text()?,
            key_dir: self.data_dir.clone(),
            create,
        };
        open::open_store(&location, &options)
            .await
            .map_err(|e| match e {
                OpenError::Store(e) => e.into(),
                OpenError::KurrentDbNotBuilt { scheme } => bad_input(format!(
                    "--store names a KurrentDB log ({scheme}://...), and this ledgerline was built without the KurrentDB backend; build it with `cargo build --features kurrentdb`"
                )),
                OpenError::MissingKey(path) => bad_input(format!(
                    "the checkpoint key {} is missing; give the log's key with --signing-key FILE",
                    path.display()
                )),
                other => other.into(),
            })
    }

    /// Opens (creating on first use) the log: the embedded store in the data
    /// directory, or the PostgreSQL database or KurrentDB server of `--store`.
    pub async fn open_store(&self) -> anyhow::Result<Arc<dyn EventStore>> {
        self.open(true).await
    }

    /// Opens the existing log for reading only (no signing, no writes), so
    /// read commands never change a log, even a damaged one.
    pub async fn open_store_read_only(&self) -> anyhow::Result<Arc<dyn EventStore>> {
        self.open(false).await
    }

    /// The SQLite file that holds this node's read models (projections):
    /// the log's own database for the embedded store, else a file of its own
    /// in the data directory.
    pub fn local_database(&self) -> anyhow::Result<PathBuf> {
        if self.location()?.is_shared() {
            ledger::private::create_private_dir(&self.data_dir)?;
            let database = self.data_dir.join(NODE_DATABASE_FILE);
            ledger::private::prepare_database(&database)?;
            Ok(database)
        } else {
            Ok(self.data_dir.join(sqlite::DATABASE_FILE))
        }
    }

    /// Where the HTTP API's keys and idempotency records are: in the log's
    /// PostgreSQL database, shared by its nodes, or in this data directory.
    pub fn records_location(&self) -> anyhow::Result<RecordsLocation> {
        Ok(match self.location()? {
            StoreLocation::Postgres(url) => RecordsLocation::Postgres(url),
            _ => RecordsLocation::DataDir(self.data_dir.clone()),
        })
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
            let hint = error
                .chain()
                .find_map(|c| c.downcast_ref().and_then(store_hint));
            eprintln!("ledgerline: {error:#}{}", hint.unwrap_or_default());
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

/// What the user can do about a store error, in this CLI's flags and commands.
fn store_hint(error: &StoreError) -> Option<String> {
    Some(match error {
        StoreError::NoLog(_) => "; append an event or run `ledgerline demo` first".into(),
        StoreError::OriginMismatch { stored, .. } => {
            format!("; pass --origin {stored:?}, or use another --data or --store")
        }
        StoreError::ForeignKey { .. } => "; give the log's key with --signing-key FILE".into(),
        StoreError::SchemaBehind { .. } => {
            "; open it once with a writing node (`ledgerline serve`, or any append)".into()
        }
        _ => return None,
    })
}

/// Keeps a headless machine's terminal free of window-system errors.
///
/// Mesa's `VK_LAYER_MESA_device_select` Vulkan layer, loaded implicitly
/// with Mesa's drivers, connects to the Wayland and X displays while it
/// enumerates GPUs, to prefer the one driving the screen. With no display,
/// libwayland prints `error: XDG_RUNTIME_DIR is invalid or not set` on
/// stderr, which reads as a failure though nothing failed. Where no display
/// is set there is no screen to prefer, so the layer is switched off with
/// the `NODEVICE_SELECT` variable its manifest declares, unless the user
/// chose a device with `MESA_VK_DEVICE_SELECT` or set the switch already.
///
/// Call it first in `main`, before any thread starts: it sets an
/// environment variable of this process.
pub fn quiet_headless_vulkan() {
    let set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    let headless = !set("DISPLAY") && !set("WAYLAND_DISPLAY");
    if headless && !set("MESA_VK_DEVICE_SELECT") && std::env::var_os("NODEVICE_SELECT").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
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

/// A progress callback for long commands: passes `(done, total)` to
/// `report` at most once every two seconds, so a long run says it is alive
/// without flooding stderr.
pub(crate) fn progress_every_two_seconds(
    mut report: impl FnMut(u64, u64) + Send,
) -> impl FnMut(u64, u64) + Send {
    let mut last_report = std::time::Instant::now();
    move |done, total| {
        if last_report.elapsed() >= std::time::Duration::from_secs(2) {
            last_report = std::time::Instant::now();
            report(done, total);
        }
    }
}
