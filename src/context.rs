//! Where a command's data lives (the data directory, the log's store, the
//! checkpoint key), shared by the CLI and the HTTP API: both open the log,
//! the read models and the API's records from one `Context`. Opening a store
//! is `ledger`'s ([`ledger::store::open`]); this module adds the flags that
//! name each setting to its errors.

use inference::credentials::SigningIdentity;
use ledger::store::open::{self, OpenError, OpenOptions, StoreLocation};
use ledger::store::sqlite;
use ledger::EventStore;
use std::path::PathBuf;
use std::sync::Arc;

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
    /// An operator-supplied C2PA signing chain (PEM, end-entity first) and
    /// its Ed25519 private key (PKCS#8 PEM); both or neither.
    pub c2pa_cert: Option<PathBuf>,
    pub c2pa_key: Option<PathBuf>,
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

    /// The identity that signs Content Credentials: `--c2pa-cert` and
    /// `--c2pa-key`, or the one in the data directory, made on first use (as
    /// the checkpoint key is). Load it before writing anything, so that a
    /// missing or unusable key refuses a job with nothing appended.
    pub fn signing_identity(&self) -> anyhow::Result<SigningIdentity> {
        let identity = match (&self.c2pa_cert, &self.c2pa_key) {
            (Some(cert), Some(key)) => SigningIdentity::from_files(cert, key),
            (Some(_), None) | (None, Some(_)) => {
                return Err(bad_input(
                    "give both --c2pa-cert CHAIN.pem and --c2pa-key KEY.pem (or neither, for the data directory's own signing identity)",
                ))
            }
            (None, None) => SigningIdentity::load_or_create(&self.data_dir, &self.origin),
        };
        identity.map_err(|e| match e {
            e if e.is_client_error() => {
                bad_input(format!("{e}; see `ledgerline credentials --help`"))
            }
            e => e.into(),
        })
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

/// Where the HTTP API's own records are (keys, idempotency; see
/// `crate::api::records`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordsLocation {
    /// `api.db` in this data directory.
    DataDir(PathBuf),
    /// The log's PostgreSQL database, at this URL.
    Postgres(String),
}

/// An error caused by the caller's input: reported with exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Shorthand for a `BadInput` error.
pub fn bad_input(message: impl Into<String>) -> anyhow::Error {
    BadInput(message.into()).into()
}
