//! Where a command's data lives (the data directory, the log's store, the
//! checkpoint key), shared by the CLI and the HTTP API: both open the log,
//! the read models and the API's records from one `Context`.

use ledger::store::is_kurrentdb_url;
use ledger::store::postgres::{self, PostgresConfig, PostgresStore};
use ledger::store::sequencer::load_signer;
use ledger::store::sqlite::{self, SqliteConfig, SqliteStore};
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
    /// The log's store: a `postgres://` URL, or None for the embedded SQLite
    /// file in the data directory.
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

    fn sqlite_config(&self) -> anyhow::Result<SqliteConfig> {
        let mut config = SqliteConfig::new(&self.data_dir, &self.origin);
        config.signing_key = self.signing_key_text()?;
        Ok(config)
    }

    /// The PostgreSQL URL of `--store`, if one was given; a KurrentDB URL is
    /// [`kurrentdb_url`](Self::kurrentdb_url)'s, and any other scheme is bad input.
    fn postgres_url(&self) -> anyhow::Result<Option<&str>> {
        match self.store_url.as_deref() {
            None | Some("") => Ok(None),
            Some(url) if postgres::is_postgres_url(url) => Ok(Some(url)),
            Some(url) if is_kurrentdb_url(url) => Ok(None),
            Some(url) => Err(bad_input(format!(
                "--store {url:?} is not a store this ledgerline opens; give postgres://USER@HOST:PORT/DATABASE or esdb://HOST:2113 (KurrentDB), or leave --store out for the embedded SQLite log in --data"
            ))),
        }
    }

    /// The KurrentDB connection string of `--store`, if one was given
    /// (opening it needs a build with the `kurrentdb` feature).
    fn kurrentdb_url(&self) -> Option<&str> {
        self.store_url
            .as_deref()
            .filter(|url| is_kurrentdb_url(url))
    }

    /// Opens the KurrentDB log of `--store`; its nodes share one signing
    /// key exactly as PostgreSQL nodes do.
    #[cfg(feature = "kurrentdb")]
    async fn open_kurrentdb(
        &self,
        url: &str,
        writable: bool,
    ) -> anyhow::Result<Arc<dyn EventStore>> {
        use ledger::store::kurrentdb::{KurrentDbConfig, KurrentDbStore};
        let config = KurrentDbConfig::new(url, self.node_signer(writable)?);
        Ok(if writable {
            Arc::new(KurrentDbStore::open(config).await?)
        } else {
            Arc::new(KurrentDbStore::open_read_only(config).await?)
        })
    }

    #[cfg(not(feature = "kurrentdb"))]
    async fn open_kurrentdb(
        &self,
        url: &str,
        _writable: bool,
    ) -> anyhow::Result<Arc<dyn EventStore>> {
        let scheme = url.split_once("://").map_or(url, |(scheme, _)| scheme);
        Err(bad_input(format!(
            "--store names a KurrentDB log ({scheme}://...), and this ledgerline was built without the KurrentDB backend; build it with `cargo build --features kurrentdb`"
        )))
    }

    fn postgres_config(&self, url: &str, create_key: bool) -> anyhow::Result<PostgresConfig> {
        Ok(PostgresConfig::new(url, self.node_signer(create_key)?))
    }

    /// Every node of a shared log (PostgreSQL, KurrentDB) signs with the
    /// same key: the operator's (`--signing-key`), or the key file in this
    /// node's data directory, created on first use as for the embedded
    /// store (then copy it to the other nodes). Read-only opens never create one.
    fn node_signer(&self, create_key: bool) -> anyhow::Result<ledger::NoteSigner> {
        let key_file = self.data_dir.join(sqlite::KEY_FILE);
        let signing_key = self.signing_key_text()?;
        if signing_key.is_none() && !create_key && !key_file.exists() {
            return Err(bad_input(format!(
                "the checkpoint key {} is missing; give the log's key with --signing-key FILE",
                key_file.display()
            )));
        }
        if signing_key.is_none() {
            ledger::private::create_private_dir(&self.data_dir)?;
        }
        Ok(load_signer(
            signing_key.as_deref(),
            &key_file,
            &self.origin,
        )?)
    }

    /// Opens (creating on first use) the log: the embedded store in the data
    /// directory, or the PostgreSQL database or KurrentDB server of `--store`.
    pub async fn open_store(&self) -> anyhow::Result<Arc<dyn EventStore>> {
        if let Some(url) = self.kurrentdb_url() {
            return self.open_kurrentdb(url, true).await;
        }
        if let Some(url) = self.postgres_url()? {
            let config = self.postgres_config(url, true)?;
            return Ok(Arc::new(PostgresStore::open(config).await?));
        }
        let config = self.sqlite_config()?;
        let store = tokio::task::spawn_blocking(move || SqliteStore::open(config)).await??;
        Ok(Arc::new(store))
    }

    /// Opens the existing log for reading only (no signing, no writes), so
    /// read commands never change a log, even a damaged one.
    pub async fn open_store_read_only(&self) -> anyhow::Result<Arc<dyn EventStore>> {
        if let Some(url) = self.kurrentdb_url() {
            return self.open_kurrentdb(url, false).await;
        }
        if let Some(url) = self.postgres_url()? {
            let config = self.postgres_config(url, false)?;
            return Ok(Arc::new(PostgresStore::open_read_only(config).await?));
        }
        let config = self.sqlite_config()?;
        let store =
            tokio::task::spawn_blocking(move || SqliteStore::open_read_only(config)).await??;
        Ok(Arc::new(store))
    }

    /// The SQLite file that holds this node's read models (projections):
    /// the log's own database for the embedded store, else a file of its own
    /// in the data directory.
    pub fn local_database(&self) -> anyhow::Result<PathBuf> {
        if self.postgres_url()?.is_some() || self.kurrentdb_url().is_some() {
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
        Ok(match self.postgres_url()? {
            Some(url) => RecordsLocation::Postgres(url.to_string()),
            None => RecordsLocation::DataDir(self.data_dir.clone()),
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
