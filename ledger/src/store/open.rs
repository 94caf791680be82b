//! Opening a log from where it lives: a data directory (the embedded SQLite
//! store), a PostgreSQL URL or a KurrentDB URL, with the options every
//! backend shares (origin, signing key, whether to create).
//!
//! It chooses the backend and builds its configuration; it does not read
//! key files the operator names, and it knows no command-line flags: a
//! caller renders [`OpenError`] in its own terms.

use crate::store::sequencer::load_signer;
use crate::store::sqlite::{SqliteConfig, SqliteStore, KEY_FILE};
use crate::store::{is_kurrentdb_url, postgres, EventStore, StoreError};
use crate::NoteSigner;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a log lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// The embedded SQLite log in this data directory.
    DataDir(PathBuf),
    /// A PostgreSQL database (`postgres://` or `postgresql://`).
    Postgres(String),
    /// A KurrentDB server (see [`crate::store::KURRENTDB_URL_SCHEMES`]).
    KurrentDb(String),
}

impl StoreLocation {
    /// The log at `url` when one is given (and not empty), else the embedded
    /// log in `data_dir`.
    pub fn new(url: Option<&str>, data_dir: &Path) -> Result<StoreLocation, OpenError> {
        match url {
            None | Some("") => Ok(StoreLocation::DataDir(data_dir.to_path_buf())),
            Some(url) if postgres::is_postgres_url(url) => {
                Ok(StoreLocation::Postgres(url.to_string()))
            }
            Some(url) if is_kurrentdb_url(url) => Ok(StoreLocation::KurrentDb(url.to_string())),
            Some(url) => Err(OpenError::UnknownScheme(url.to_string())),
        }
    }

    /// True for a log several nodes share (PostgreSQL, KurrentDB).
    pub fn is_shared(&self) -> bool {
        !matches!(self, StoreLocation::DataDir(_))
    }
}

/// How to open a log, whatever its backend.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// The log's origin, which is also the signing key's name.
    pub origin: String,
    /// The checkpoint signing key (Go note private key text), when the
    /// operator supplies one; else the key file in `key_dir` is used.
    pub signing_key: Option<String>,
    /// The directory whose key file ([`KEY_FILE`]) signs when no key is
    /// supplied: the embedded log's data directory, or a node's own
    /// directory for a shared log (copy the file to every node).
    pub key_dir: PathBuf,
    /// True: open for appending, creating the log and its key file on first
    /// use. False: open an existing log for reading only, creating nothing.
    pub create: bool,
}

/// Why a log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0:?} is not the location of a log; expected postgres://USER@HOST:PORT/DATABASE, a KurrentDB URL (esdb://HOST:2113), or a data directory")]
    UnknownScheme(String),
    #[error("{scheme}://... names a KurrentDB log, and this build has no KurrentDB backend (cargo feature `kurrentdb`)")]
    KurrentDbNotBuilt { scheme: String },
    /// A read-only open of a shared log with no key supplied and no key file.
    #[error("the checkpoint key {} is missing, and a read-only open creates none", .0.display())]
    MissingKey(PathBuf),
    #[error("cannot create the directory {}: {source}", path.display())]
    KeyDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Opens the log at `location`: for appending (creating it on first use)
/// when `options.create`, else read-only, so that reads never change a log,
/// even a damaged one.
pub async fn open_store(
    location: &StoreLocation,
    options: &OpenOptions,
) -> Result<Arc<dyn EventStore>, OpenError> {
    match location {
        StoreLocation::DataDir(data_dir) => {
            let mut config = SqliteConfig::new(data_dir, &options.origin);
            config.signing_key = options.signing_key.clone();
            let create = options.create;
            let store = tokio::task::spawn_blocking(move || {
                if create {
                    SqliteStore::open(config)
                } else {
                    SqliteStore::open_read_only(config)
                }
            })
            .await
            .map_err(|e| StoreError::Backend(format!("opening the log failed: {e}")))??;
            Ok(Arc::new(store))
        }
        StoreLocation::Postgres(url) => {
            let config = postgres::PostgresConfig::new(url, node_signer(options)?);
            Ok(if options.create {
                Arc::new(postgres::PostgresStore::open(config).await?)
            } else {
                Arc::new(postgres::PostgresStore::open_read_only(config).await?)
            })
        }
        StoreLocation::KurrentDb(url) => open_kurrentdb(url, options).await,
    }
}

#[cfg(feature = "kurrentdb")]
async fn open_kurrentdb(
    url: &str,
    options: &OpenOptions,
) -> Result<Arc<dyn EventStore>, OpenError> {
    use crate::store::kurrentdb::{KurrentDbConfig, KurrentDbStore};
    let config = KurrentDbConfig::new(url, node_signer(options)?);
    Ok(if options.create {
        Arc::new(KurrentDbStore::open(config).await?)
    } else {
        Arc::new(KurrentDbStore::open_read_only(config).await?)
    })
}

#[cfg(not(feature = "kurrentdb"))]
async fn open_kurrentdb(
    url: &str,
    _options: &OpenOptions,
) -> Result<Arc<dyn EventStore>, OpenError> {
    let scheme = url.split_once("://").map_or(url, |(scheme, _)| scheme);
    Err(OpenError::KurrentDbNotBuilt {
        scheme: scheme.to_string(),
    })
}

/// The signer of a node of a shared log. Every node signs with the same
/// key: the one supplied, or the key file in the node's directory, created
/// on first use as for the embedded store. Read-only opens create none.
fn node_signer(options: &OpenOptions) -> Result<NoteSigner, OpenError> {
    let key_file = options.key_dir.join(KEY_FILE);
    if options.signing_key.is_none() {
        if !options.create && !key_file.exists() {
            return Err(OpenError::MissingKey(key_file));
        }
        crate::private::create_private_dir(&options.key_dir).map_err(|source| {
            OpenError::KeyDir {
                path: options.key_dir.clone(),
                source,
            }
        })?;
    }
    Ok(load_signer(
        options.signing_key.as_deref(),
        &key_file,
        &options.origin,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_told_apart_by_scheme() {
        let data = Path::new("data");
        assert_eq!(
            StoreLocation::new(None, data).unwrap(),
            StoreLocation::DataDir(data.into())
        );
        assert_eq!(
            StoreLocation::new(Some(""), data).unwrap(),
            StoreLocation::DataDir(data.into())
        );
        assert!(matches!(
            StoreLocation::new(Some("postgresql://u@h/db"), data),
            Ok(StoreLocation::Postgres(_))
        ));
        assert!(matches!(
            StoreLocation::new(Some("esdb://h:2113"), data),
            Ok(StoreLocation::KurrentDb(_))
        ));
        assert!(matches!(
            StoreLocation::new(Some("mysql://h/db"), data),
            Err(OpenError::UnknownScheme(url)) if url == "mysql://h/db"
        ));
    }

    /// A read-only open of a shared log never creates a key: with none
    /// supplied and no key file, it is refused before any connection.
    #[tokio::test]
    async fn read_only_shared_open_without_a_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let options = OpenOptions {
            origin: "example.com/log".into(),
            signing_key: None,
            key_dir: dir.path().join("node"),
            create: false,
        };
        let location = StoreLocation::Postgres("postgres://u@127.0.0.1:1/db".into());
        let error = open_store(&location, &options).await.err().unwrap();
        assert!(matches!(error, OpenError::MissingKey(_)), "{error}");
        assert!(!dir.path().join("node").exists());
    }
}
