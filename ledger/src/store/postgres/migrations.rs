//! The schema: applying the numbered migrations in `migrations/` once
//! each, in order, and checking the log's format and origin. The migrations
//! create and alter tables; this module runs no other statement on them.

use super::connection::{backend, Connector};
use crate::store::StoreError;
use std::collections::{HashMap, HashSet};
use tokio::runtime::Handle;
use tokio_postgres::Client;

/// The migrations as (version, name, DDL), in order; each is applied once
/// and recorded by version and name in `schema_migrations` (no checksum is
/// kept, so a migration's text may be reworded but never its effect).
///
/// `0002_api` creates the HTTP API's tables (keys, idempotency records),
/// which belong to the binary, not to the log. It stays in this sequence
/// because every existing database has it applied as migration 2: a new
/// database must get the same numbered schema, and moving it out would
/// leave a gap that databases already migrated disagree with.
pub(super) const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "0001_init", include_str!("migrations/0001_init.sql")),
    (2, "0002_api", include_str!("migrations/0002_api.sql")),
    (
        3,
        "0003_durable_size",
        include_str!("migrations/0003_durable_size.sql"),
    ),
    (
        4,
        "0004_event_hashes",
        include_str!("migrations/0004_event_hashes.sql"),
    ),
    (
        5,
        "0005_cosignatures",
        include_str!("migrations/0005_cosignatures.sql"),
    ),
];

/// The newest migration, which reads rely on.
pub(super) fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |(version, _, _)| *version)
}

/// The on-disk format this code writes (the same envelope and tree as the
/// embedded store's format 1); opening another is refused.
pub(super) const FORMAT_VERSION: &str = "1";
/// Session advisory lock held while migrations run, so that nodes starting
/// at once apply each migration exactly once (the bytes spell "ledgerln").
pub(super) const MIGRATION_LOCK_KEY: i64 = 0x6c65_6467_6572_6c6e;

/// Connects and applies pending migrations, as [`PostgresStore::open`](super::PostgresStore::open)
/// does, without starting a node: for commands that need the database's
/// other tables (the HTTP API's keys) before any node has run.
pub async fn migrate_database(url: &str, origin: &str) -> Result<(), StoreError> {
    let connector = Connector::new(url, Handle::current())?;
    let mut client = connector.connect().await?;
    migrate(&mut client, origin).await
}

/// Applies every migration not yet recorded in `schema_migrations`, under a
/// session advisory lock so that nodes starting at once take turns (the
/// second finds the work done), then checks the log's format and origin.
pub(super) async fn migrate(client: &mut Client, origin: &str) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    let outcome = apply_migrations(client, origin).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await;
    outcome?;
    unlocked?;
    Ok(())
}

pub(super) async fn apply_migrations(client: &mut Client, origin: &str) -> Result<(), StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await?;
    let applied: HashSet<i32> = client
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let known: HashSet<i32> = MIGRATIONS.iter().map(|(version, _, _)| *version).collect();
    if let Some(newer) = applied.difference(&known).max() {
        return Err(backend(format!(
            "the database has schema migration {newer}, which this version does not know; open it with a newer version"
        )));
    }
    for (version, name, ddl) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tracing::info!(version, name, "applying PostgreSQL migration");
        let transaction = client.transaction().await?;
        transaction.batch_execute(ddl).await?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await?;
        transaction.commit().await?;
    }
    client
        .execute(
            "INSERT INTO ledger_meta (key, value) VALUES ('format_version', $1), ('origin', $2)
             ON CONFLICT (key) DO NOTHING",
            &[&FORMAT_VERSION, &origin],
        )
        .await?;
    let meta: HashMap<String, String> = client
        .query("SELECT key, value FROM ledger_meta", &[])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let format = meta.get("format_version").map_or("", String::as_str);
    if format != FORMAT_VERSION {
        return Err(backend(format!(
            "the log is in format {format:?}; this version reads format {FORMAT_VERSION}"
        )));
    }
    let stored = meta.get("origin").map_or("", String::as_str);
    if stored != origin {
        return Err(StoreError::OriginMismatch {
            stored: stored.to_string(),
            given: origin.to_string(),
        });
    }
    Ok(())
}
