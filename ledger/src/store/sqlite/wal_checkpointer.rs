//! Copying the WAL into the database file in the background, so that the
//! writer's commits never pay for SQLite's automatic checkpoint. It only
//! moves pages SQLite already committed; it never writes the log.

use super::open_connection;
use rusqlite::Connection;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the background connection copies the WAL into the database.
pub(super) const WAL_CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

/// Copies the WAL into the database file from its own connection and
/// thread, so that the writer's commits never stall on SQLite's automatic
/// checkpoint (a page copy and an fsync of the database file). Passive: it
/// never blocks the writer or readers. Stops, after a last pass, when dropped.
pub(super) struct WalCheckpointer {
    pub(super) stop: Option<std::sync::mpsc::Sender<()>>,
    pub(super) thread: Option<JoinHandle<()>>,
}

impl WalCheckpointer {
    pub(super) fn start(writer: &Connection) -> WalCheckpointer {
        let idle = WalCheckpointer {
            stop: None,
            thread: None,
        };
        let Some(path) = writer.path().map(PathBuf::from) else {
            return idle;
        };
        let conn = match open_connection(&path) {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!("no background WAL checkpoints ({e}); SQLite checkpoints on commit");
                return idle;
            }
        };
        if let Err(e) = writer.execute_batch("PRAGMA wal_autocheckpoint=0") {
            tracing::warn!("cannot hand WAL checkpoints to the background ({e})");
            return idle;
        }
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ledger-wal-checkpoint".into())
            .spawn(move || loop {
                let last = !matches!(
                    stopped.recv_timeout(WAL_CHECKPOINT_INTERVAL),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                );
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!("WAL checkpoint failed: {e}");
                }
                if last {
                    break;
                }
            });
        match thread {
            Ok(thread) => WalCheckpointer {
                stop: Some(stop),
                thread: Some(thread),
            },
            Err(e) => {
                tracing::warn!("no background WAL checkpoints ({e})");
                let _ = writer.execute_batch("PRAGMA wal_autocheckpoint=1000");
                idle
            }
        }
    }
}

impl Drop for WalCheckpointer {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
