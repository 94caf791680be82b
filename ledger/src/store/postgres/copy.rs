//! Copying another store's log into this one (`ledgerline migrate`): the
//! exact leaf bytes and the signed checkpoints, each checked against the
//! tree rebuilt as the leaves arrive. This store's own appends are the
//! writer's.

use super::connection::backend;
use super::edge::Edge;
use super::rows::{checkpoint_row, to_i64, EventRows, INSERT_EVENTS, PUBLISH_DURABLE_SIZE};
use super::writer::LOCK_TIMEOUT;
use super::PostgresStore;
use crate::merkle::{self, Hash};
use crate::store::{EventStore, SignedCheckpoint, StoreError, StoredEvent};
use tokio_postgres::Client;
use uuid::Uuid;

/// Events copied per transaction by [`PostgresStore::copy_log`].
pub(super) const COPY_CHUNK_EVENTS: usize = 4096;

/// What [`PostgresStore::copy_log`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Events the target held before (a resumed copy starts after them).
    pub skipped: u64,
    pub copied: u64,
    /// Source checkpoints whose roots matched and which are now stored.
    pub checkpoints: usize,
    pub root: Hash,
}

impl PostgresStore {
    /// Copies another store's log into this one, event by event with its
    /// exact leaf bytes, and its signed checkpoints verbatim. The tree is
    /// rebuilt as the leaves arrive, and at every source checkpoint its root
    /// must equal the signed one (and the signature must verify with this
    /// store's key, which is why the target signs with the source's key).
    /// Each chunk commits under the head lock, ending at a checkpoint; a copy
    /// that stopped part way resumes after checking that what the target
    /// holds is a prefix of the source. `progress(done, total)` follows it.
    pub async fn copy_log(
        &self,
        source: &dyn EventStore,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<CopyReport, StoreError> {
        let total = source.size().await?;
        let checkpoints = source.checkpoints().await?;
        let mut client = self.readers.connector.connect().await?;
        client
            .batch_execute(&format!(
                "SET synchronous_commit = on; SET lock_timeout = '{LOCK_TIMEOUT}';"
            ))
            .await?;
        let head = client
            .query_one("SELECT size, frontier FROM log_head", &[])
            .await?;
        let start = head.try_get::<_, i64>(0)? as u64;
        let mut edge = Edge::from_bytes(start, head.try_get(1)?)?;
        if start > total {
            return Err(backend(format!(
                "the target log holds {start} events, more than the source's {total}; copy into an empty database"
            )));
        }
        let mut frontier = edge.frontier(start)?;
        if start > 0 {
            let source_root = source.prove_consistency(start, total).await?.from_root;
            if source_root != frontier.root() {
                return Err(backend(format!(
                    "the target's first {start} events are not the source's (roots {} and {}); copy into an empty database",
                    hex::encode(frontier.root()),
                    hex::encode(source_root)
                )));
            }
        }
        let mut report = CopyReport {
            skipped: start,
            copied: 0,
            checkpoints: 0,
            root: frontier.root(),
        };
        let mut next_checkpoint = checkpoints.partition_point(|c| c.size < start);
        let copier = Uuid::new_v4();
        loop {
            let from = frontier.size();
            // A chunk ends at the next checkpoint, so each signed root is
            // compared with the tree of exactly its size.
            let limit = checkpoints
                .get(next_checkpoint)
                .map_or(u64::MAX, |c| c.size - from)
                .min(total - from)
                .min(COPY_CHUNK_EVENTS as u64) as usize;
            let events = if limit == 0 {
                Vec::new()
            } else {
                source.read_range(from, limit).await?
            };
            let mut hashes = Vec::with_capacity(events.len() * 2);
            for (offset, event) in events.iter().enumerate() {
                let seq = from + offset as u64;
                let envelope = event.header()?;
                if event.seq != seq
                    || envelope.seq != seq
                    || envelope.stream != event.stream
                    || envelope.version != event.version
                    || envelope.id != event.id
                    || envelope.event_type != event.event_type
                {
                    return Err(StoreError::Corrupt(format!(
                        "source event {seq}: its columns and its leaf disagree; audit the source log"
                    )));
                }
                frontier.append(merkle::leaf_hash(&event.leaf), &mut hashes);
            }
            let mut signed = Vec::new();
            while let Some(checkpoint) = checkpoints
                .get(next_checkpoint)
                .filter(|c| c.size == frontier.size())
            {
                let note = self.verifier.verify_checkpoint(&checkpoint.note).map_err(|e| {
                    backend(format!(
                        "the source checkpoint of size {} does not verify with this log's key ({e}); copy with the source's signing key",
                        checkpoint.size
                    ))
                })?;
                if note.size != checkpoint.size || note.root != frontier.root() {
                    return Err(StoreError::Corrupt(format!(
                        "the source checkpoint of size {} signs root {}, but its events hash to {}",
                        checkpoint.size,
                        hex::encode(note.root),
                        hex::encode(frontier.root())
                    )));
                }
                signed.push(checkpoint.clone());
                next_checkpoint += 1;
            }
            if events.is_empty() && signed.is_empty() {
                break;
            }
            edge = edge.advance(frontier.size(), &hashes)?;
            let last_time = match events.last() {
                Some(event) => Some(event.header()?.time.into_owned()),
                None => None,
            };
            let head = HeadUpdate {
                frontier: edge.to_bytes(),
                last_time,
            };
            copy_chunk(&mut client, from, &events, &hashes, &head, &signed, copier).await?;
            report.copied += events.len() as u64;
            report.checkpoints += signed.len();
            report.root = frontier.root();
            progress(frontier.size(), total);
        }
        if frontier.size() != total {
            return Err(backend(format!(
                "the source shrank from {total} to {} events during the copy",
                frontier.size()
            )));
        }
        Ok(report)
    }
}

/// One transaction of a copy: the head must still be where the copy left
/// it (no node appended meanwhile), then events, hashes, head and
/// checkpoints are written together.
/// The head row's frontier and clock after a copied chunk.
pub(super) struct HeadUpdate {
    pub(super) frontier: Vec<u8>,
    pub(super) last_time: Option<String>,
}

pub(super) async fn copy_chunk(
    client: &mut Client,
    from: u64,
    events: &[StoredEvent],
    hashes: &[(u64, Hash)],
    head_update: &HeadUpdate,
    checkpoints: &[SignedCheckpoint],
    copier: Uuid,
) -> Result<(), StoreError> {
    let transaction = client.transaction().await?;
    let head: i64 = transaction
        .query_one("SELECT size FROM log_head WHERE singleton FOR UPDATE", &[])
        .await?
        .try_get(0)?;
    if head as u64 != from {
        return Err(backend(format!(
            "the target log changed during the copy (it holds {head} events, the copy expected {from}); stop the nodes appending to it"
        )));
    }
    if !events.is_empty() {
        let rows = EventRows::new(events, hashes)?;
        transaction.execute(INSERT_EVENTS, &rows.params()).await?;
        let size = to_i64(from + events.len() as u64, "tree size")?;
        transaction
            .execute(
                "UPDATE log_head SET size = $1, frontier = $2, last_time = $3 WHERE singleton",
                &[&size, &head_update.frontier, &head_update.last_time],
            )
            .await?;
    }
    // The copy's transactions are durable: publish what each one holds.
    transaction
        .execute(PUBLISH_DURABLE_SIZE, &[&copier])
        .await?;
    for checkpoint in checkpoints {
        let size = to_i64(checkpoint.size, "tree size")?;
        transaction
            .execute(
                "INSERT INTO checkpoints (size, root, note) VALUES ($1, $2, $3) ON CONFLICT (size) DO NOTHING",
                &[&size, &checkpoint.root.as_slice(), &checkpoint.note],
            )
            .await?;
        let stored = checkpoint_row(
            &transaction
                .query_one(
                    "SELECT size, root, note FROM checkpoints WHERE size = $1",
                    &[&size],
                )
                .await?,
        )?;
        if &stored != checkpoint {
            return Err(StoreError::Corrupt(format!(
                "the target already holds a different checkpoint of size {}",
                checkpoint.size
            )));
        }
    }
    transaction.commit().await?;
    Ok(())
}
