//! The embedded store's read connections: read-only, memory-mapped, opened
//! on demand and kept idle for reuse. WAL lets them read beside the writer.

use super::{MMAP_BYTES, READERS_IDLE_MAX};
use crate::store::StoreError;
use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Read connections, opened on demand and kept idle for reuse.
pub(super) struct Readers {
    pub(super) path: PathBuf,
    pub(super) idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(super) fn with<R>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let pooled = self.idle.lock().expect("reader pool lock").pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(Duration::from_secs(10))?;
                // Through the memory map, as the writer's connection reads:
                // a page read without it is a pread() and a copy into the
                // page cache, which bulk reads such as a rebuild's pay on
                // every page.
                conn.execute_batch(&format!("PRAGMA mmap_size={MMAP_BYTES};"))?;
                conn
            }
        };
        let result = f(&conn);
        let mut idle = self.idle.lock().expect("reader pool lock");
        if idle.len() < READERS_IDLE_MAX {
            idle.push(conn);
        }
        result
    }
}
