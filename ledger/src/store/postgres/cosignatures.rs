//! Witness cosignatures of the log's checkpoints in PostgreSQL (migration
//! `0005_cosignatures`).
//!
//! They are not part of the log, so they are written on a pooled
//! connection in a transaction of their own, never by the append writer:
//! appends never wait for them.

use super::rows::to_i64;
use super::PostgresStore;
use crate::store::{StoreError, StoredCosignature};

impl PostgresStore {
    /// Keeps `cosignatures`, all or none; one per checkpoint and key, the
    /// first kept.
    pub(super) async fn insert_cosignatures(
        &self,
        cosignatures: Vec<StoredCosignature>,
    ) -> Result<(), StoreError> {
        if self.is_read_only() {
            return Err(StoreError::ReadOnly);
        }
        let mut conn = self.readers.get().await?;
        let transaction = conn.client.transaction().await?;
        // No wait for the WAL flush: a cosignature lost to a crash is asked
        // for again (the witness answers 409 with its size, then cosigns the
        // same checkpoint again), and appends keep the flushes to themselves.
        transaction
            .batch_execute("SET LOCAL synchronous_commit = off")
            .await?;
        for cosignature in &cosignatures {
            let size = to_i64(cosignature.size, "checkpoint size")?;
            let stored = transaction
                .query_opt("SELECT 1 FROM checkpoints WHERE size = $1", &[&size])
                .await?;
            if stored.is_none() {
                return Err(StoreError::NoCheckpoint(cosignature.size));
            }
            transaction
                .execute(
                    "INSERT INTO cosignatures (size, name, key_id, timestamp, line)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    &[
                        &size,
                        &cosignature.name,
                        &i64::from(cosignature.key_id),
                        &to_i64(cosignature.timestamp, "cosignature timestamp")?,
                        &cosignature.line,
                    ],
                )
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// The cosignatures of the checkpoint of `size`.
    pub(super) async fn cosignatures_of(
        &self,
        size: u64,
    ) -> Result<Vec<StoredCosignature>, StoreError> {
        let size = to_i64(size, "checkpoint size")?;
        let rows = self
            .read_rows(
                "SELECT size, name, key_id, timestamp, line FROM cosignatures
                 WHERE size = $1 ORDER BY name, key_id",
                &[&size],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let key_id: i64 = row.try_get(2)?;
                Ok(StoredCosignature {
                    size: row.try_get::<_, i64>(0)? as u64,
                    name: row.try_get(1)?,
                    key_id: u32::try_from(key_id).map_err(|_| {
                        StoreError::Corrupt(format!(
                            "the cosignature key id {key_id} is not 32 bits"
                        ))
                    })?,
                    timestamp: row.try_get::<_, i64>(3)? as u64,
                    line: row.try_get(4)?,
                })
            })
            .collect()
    }

    /// The largest size cosigned by at least `quorum` of `witnesses`.
    pub(super) async fn latest_size_cosigned_by(
        &self,
        witnesses: Vec<(String, u32)>,
        quorum: usize,
    ) -> Result<Option<u64>, StoreError> {
        if witnesses.is_empty() || quorum == 0 {
            return Ok(None);
        }
        let names: Vec<String> = witnesses.iter().map(|(name, _)| name.clone()).collect();
        let key_ids: Vec<i64> = witnesses.iter().map(|(_, id)| i64::from(*id)).collect();
        let quorum = quorum as i64;
        let rows = self
            .read_rows(
                "SELECT size FROM cosignatures
                 WHERE (name, key_id) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))
                 GROUP BY size HAVING count(*) >= $3 ORDER BY size DESC LIMIT 1",
                &[&names, &key_ids, &quorum],
            )
            .await?;
        match rows.first() {
            Some(row) => Ok(Some(row.try_get::<_, i64>(0)? as u64)),
            None => Ok(None),
        }
    }
}
