//! Where the HTTP API keeps its own records (API keys, kept idempotent
//! responses), apart from the audited log.
//!
//! On the embedded store they are in the data directory's `api.db`. On
//! PostgreSQL they are in the log's own database (migration `0002_api`), so
//! that every node serving that log accepts the same keys, a key revoked on
//! one node is refused by all at once, and a retried `Idempotency-Key` gets
//! the first response whichever node the retry reaches. (A KurrentDB log
//! has no tables to share, so its nodes keep `api.db` each.)

pub use crate::context::RecordsLocation;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row};

/// How long a PostgreSQL connection attempt may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[error("the API records in {place} failed: {message}")]
pub struct RecordsError {
    place: String,
    message: String,
}

/// An open connection to the records.
pub enum Records {
    Sqlite(SqliteRecords),
    /// Boxed: it holds the connection settings, far larger than a path.
    Postgres(Box<PostgresRecords>),
}

impl Records {
    /// The error for a failure of these records: `error` says what failed.
    pub fn failed(&self, error: impl std::fmt::Display) -> RecordsError {
        match self {
            Records::Sqlite(db) => db.failed(error),
            Records::Postgres(db) => db.failed(error),
        }
    }

    /// Opens the records at `location`, creating their tables on first use
    /// (on PostgreSQL, by applying the log's migrations with `origin`).
    pub async fn open(location: &RecordsLocation, origin: &str) -> Result<Records, RecordsError> {
        Ok(match location {
            RecordsLocation::DataDir(dir) => {
                let dir = dir.clone();
                let open = tokio::task::spawn_blocking(move || SqliteRecords::open(&dir));
                Records::Sqlite(open.await.map_err(|e| RecordsError {
                    place: "the data directory".into(),
                    message: e.to_string(),
                })??)
            }
            RecordsLocation::Postgres(url) => {
                Records::Postgres(Box::new(PostgresRecords::open(url, origin).await?))
            }
        })
    }
}

/// `api.db`: one connection, serialized by a mutex (each call is one or two
/// indexed statements), used from blocking threads.
pub struct SqliteRecords {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
}

impl SqliteRecords {
    fn open(data_dir: &Path) -> Result<SqliteRecords, RecordsError> {
        let path = data_dir.join(super::API_DATABASE_FILE);
        let failed = |e: &dyn std::fmt::Display| RecordsError {
            place: path.display().to_string(),
            message: e.to_string(),
        };
        ledger::private::create_private_dir(data_dir).map_err(|e| failed(&e))?;
        ledger::private::prepare_database(&path).map_err(|e| failed(&e))?;
        let conn = Connection::open(&path).map_err(|e| failed(&e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| failed(&e))?;
        conn.execute_batch(include_str!("records.sql"))
            .map_err(|e| failed(&e))?;
        Ok(SqliteRecords {
            path,
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `work` on the connection, on a blocking thread.
    pub async fn run<R: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, RecordsError> {
        let conn = self.conn.clone();
        let result = tokio::task::spawn_blocking(move || {
            let conn = conn.lock().expect("API records lock");
            work(&conn)
        })
        .await;
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.failed(e)),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn failed(&self, error: impl std::fmt::Display) -> RecordsError {
        RecordsError {
            place: self.path.display().to_string(),
            message: error.to_string(),
        }
    }
}

/// The log's PostgreSQL database: one client shared by every request (the
/// driver pipelines concurrent queries on it), replaced when the server
/// drops it.
pub struct PostgresRecords {
    config: tokio_postgres::Config,
    /// `host:port/database`, for messages (never the password).
    place: String,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
}

impl PostgresRecords {
    async fn open(url: &str, origin: &str) -> Result<PostgresRecords, RecordsError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| RecordsError {
            place: "--store".into(),
            message: format!("{url:?} is not a PostgreSQL URL ({e})"),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("ledgerline-api");
        let place = describe(&config);
        ledger::store::postgres::migrate_database(url, origin)
            .await
            .map_err(|e| RecordsError {
                place: place.clone(),
                message: e.to_string(),
            })?;
        let records = PostgresRecords {
            config,
            place,
            client: tokio::sync::Mutex::new(None),
        };
        records.client().await?;
        Ok(records)
    }

    /// A live client, connecting again if the last one was closed (a server
    /// restart, a dropped connection).
    async fn client(&self) -> Result<Arc<Client>, RecordsError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| self.failed(e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!("the API records' PostgreSQL connection ended: {e}");
            }
        });
        let client = Arc::new(client);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Runs a query; a connection the server closed is replaced and the
    /// query sent once more (it may have failed before running at all).
    pub async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, RecordsError> {
        let client = self.client().await?;
        match client.query(sql, params).await {
            Err(_) if client.is_closed() => self
                .client()
                .await?
                .query(sql, params)
                .await
                .map_err(|e| self.failed(e)),
            result => result.map_err(|e| self.failed(e)),
        }
    }

    /// Runs a statement, as [`query`](Self::query) does; returns the rows it changed.
    pub async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, RecordsError> {
        let client = self.client().await?;
        match client.execute(sql, params).await {
            Err(_) if client.is_closed() => self
                .client()
                .await?
                .execute(sql, params)
                .await
                .map_err(|e| self.failed(e)),
            result => result.map_err(|e| self.failed(e)),
        }
    }

    fn failed(&self, error: impl std::fmt::Display) -> RecordsError {
        RecordsError {
            place: self.place.clone(),
            message: error.to_string(),
        }
    }
}

/// `host:port/database` of a connection config, without credentials.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "PostgreSQL {host}:{port}/{}",
        config.get_dbname().unwrap_or("postgres")
    )
}
