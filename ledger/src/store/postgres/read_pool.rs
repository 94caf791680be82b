//! Read connections: a bounded pool, each connection with its prepared
//! statements, and the store's reads through it (a read on a connection
//! lost to a server restart is retried once on a new one). Writes of the
//! log never go through the pool; witness cosignatures, which are not part
//! of it, do (`cosignatures`).

use super::connection::Connector;
use super::hashes::{with_stored_hashes, DynReader};
use super::rows::{durable_size, hash_from, to_i64};
use super::PostgresStore;
use crate::merkle::{self, Hash, HashReader, MerkleError};
use crate::store::StoreError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};

/// Read connections open at once per node; further reads wait their turn.
pub const READERS_MAX: usize = 16;
/// Idle read connections kept open.
pub const READERS_IDLE_MAX: usize = 8;

/// A read connection with its prepared statements.
pub(super) struct ReadConnection {
    pub(super) client: Client,
    pub(super) statements: HashMap<&'static str, Statement>,
}

impl ReadConnection {
    pub(super) async fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let statement = match self.statements.get(sql) {
            Some(statement) => statement.clone(),
            None => {
                let statement = self.client.prepare(sql).await?;
                self.statements.insert(sql, statement.clone());
                statement
            }
        };
        Ok(self.client.query(&statement, params).await?)
    }
}

/// Read connections, opened on demand and kept idle for reuse; one lost to
/// a server restart is dropped, and the next read opens a new one.
pub(super) struct ReadPool {
    pub(super) connector: Connector,
    pub(super) idle: Mutex<Vec<ReadConnection>>,
    /// One permit per open read connection, [`READERS_MAX`] in all.
    pub(super) permits: Arc<tokio::sync::Semaphore>,
}

impl ReadPool {
    pub(super) fn new(connector: Connector) -> Arc<ReadPool> {
        Arc::new(ReadPool {
            connector,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(tokio::sync::Semaphore::new(READERS_MAX)),
        })
    }
}

/// A read connection on loan; it goes back to the pool when dropped.
pub(super) struct PooledRead {
    pub(super) pool: Arc<ReadPool>,
    pub(super) conn: Option<ReadConnection>,
    pub(super) _permit: tokio::sync::OwnedSemaphorePermit,
}

impl std::ops::Deref for PooledRead {
    type Target = ReadConnection;
    fn deref(&self) -> &ReadConnection {
        self.conn.as_ref().expect("a loaned connection")
    }
}

impl std::ops::DerefMut for PooledRead {
    fn deref_mut(&mut self) -> &mut ReadConnection {
        self.conn.as_mut().expect("a loaned connection")
    }
}

impl Drop for PooledRead {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if conn.client.is_closed() {
                return;
            }
            let mut idle = self.pool.idle.lock().expect("reader pool lock");
            if idle.len() < READERS_IDLE_MAX {
                idle.push(conn);
            }
        }
    }
}

impl ReadPool {
    /// Lends an idle connection, or opens a new one.
    pub(super) async fn get(self: &Arc<Self>) -> Result<PooledRead, StoreError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let pooled = loop {
            let candidate = self.idle.lock().expect("reader pool lock").pop();
            match candidate {
                Some(conn) if conn.client.is_closed() => continue,
                other => break other,
            }
        };
        let conn = match pooled {
            Some(conn) => conn,
            None => ReadConnection {
                client: self.connector.connect().await?,
                statements: HashMap::new(),
            },
        };
        Ok(PooledRead {
            pool: self.clone(),
            conn: Some(conn),
            _permit: permit,
        })
    }
}

impl PostgresStore {
    /// Runs one read. A read that failed because its pooled connection had
    /// been lost (the server restarted since it was last used) is retried
    /// once on a new connection: reads change nothing, so that is safe.
    pub(super) async fn read_rows(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let mut conn = self.readers.get().await?;
        match conn.query(sql, params).await {
            Err(_) if conn.client.is_closed() => {
                drop(conn);
                self.readers.get().await?.query(sql, params).await
            }
            result => result,
        }
    }

    pub(super) async fn with_reader<R>(
        &self,
        f: impl Fn(&dyn HashReader) -> Result<R, MerkleError>,
    ) -> Result<R, StoreError> {
        let conn = self.readers.get().await?;
        with_stored_hashes(&conn.client, f).await
    }

    pub(super) async fn read_size(&self) -> Result<u64, StoreError> {
        let rows = self
            .read_rows(concat!("SELECT ", durable_size!()), &[])
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| StoreError::Corrupt("no durable size".into()))?;
        let size: i64 = row.try_get(0)?;
        Ok(size as u64)
    }

    pub(super) async fn check_size(&self, what: &str, size: u64) -> Result<(), StoreError> {
        let tree_size = self.read_size().await?;
        if size > tree_size {
            return Err(StoreError::OutOfRange {
                what: format!("{what} {size}"),
                size: tree_size,
            });
        }
        Ok(())
    }

    /// The root of the tree of `size` leaves: a signed checkpoint's root when
    /// one of that size is stored (one row), else computed from stored hashes.
    pub(super) async fn root_at(&self, size: u64) -> Result<Hash, StoreError> {
        let key = to_i64(size, "tree size")?;
        let rows = self
            .read_rows("SELECT root FROM checkpoints WHERE size = $1", &[&key])
            .await?;
        match rows.first() {
            Some(row) => hash_from(row.try_get(0)?, "a checkpoint root"),
            None => {
                self.with_reader(|r| merkle::tree_hash(size, &DynReader(r)))
                    .await
            }
        }
    }
}
