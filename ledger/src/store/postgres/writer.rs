//! This node's single writer: group commits planned by the shared
//! sequencer and committed under the `log_head` row lock, and checkpoints
//! signed under the same lock. Reads for clients are the read pool's.

use super::connection::Connector;
use super::edge::Edge;
use super::rows::{
    checkpoint_row, event_row, to_i64, EventRows, EVENT_COLUMNS, INSERT_EVENTS,
    PUBLISH_DURABLE_SIZE,
};
use crate::merkle;
use crate::store::head_cache::HeadCache;
use crate::store::node;
use crate::store::sequencer::{
    self, Batch, CheckpointCadence, ClientResult, PrefetchedView, PreparedRequest, Sequencer,
    WriterHealth, WriterMessage,
};
use crate::store::{SignedCheckpoint, StoreError, StoredEvent};
use std::collections::{HashMap, HashSet};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};
use uuid::Uuid;

/// How long an append waits for another node's head lock before failing
/// (a node stuck mid-transaction must not stall the others forever).
pub(super) const LOCK_TIMEOUT: &str = "30s";
/// The server ends a writer session that sits inside a transaction this
/// long, releasing the head lock of a node that froze or lost its network.
pub(super) const IDLE_IN_TRANSACTION_TIMEOUT: &str = "60s";

/// The writer's statements, prepared once per connection.
pub(super) struct WriteStatements {
    pub(super) lock_head: Statement,
    pub(super) events_by_id: Statement,
    pub(super) stream_heads: Statement,
    pub(super) events_since: Statement,
    pub(super) write_rows: Statement,
    pub(super) insert_checkpoint: Statement,
    pub(super) checkpoint_by_size: Statement,
    pub(super) publish_durable_size: Statement,
}

/// The writer's connection: durable commits, bounded lock waits.
pub(super) struct WriterConnection {
    pub(super) client: Client,
    pub(super) statements: WriteStatements,
}

impl WriterConnection {
    pub(super) async fn new(client: Client) -> Result<WriterConnection, StoreError> {
        // An acknowledged append must survive a server crash, whatever the
        // server's default (the append transaction alone opts out, and the
        // durable publish that follows it is what makes it safe); and no
        // node may hold the head lock forever.
        client
            .batch_execute(&format!(
                "SET synchronous_commit = on;
                 SET lock_timeout = '{LOCK_TIMEOUT}';
                 SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_TIMEOUT}';"
            ))
            .await?;
        let statements = WriteStatements {
            lock_head: client
                .prepare(
                    "SELECT size, frontier, last_time FROM log_head WHERE singleton FOR UPDATE",
                )
                .await?,
            events_by_id: client
                .prepare(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE id = ANY($1)"
                ))
                .await?,
            // One index probe per stream, for the stream's last event.
            stream_heads: client
                .prepare(
                    "SELECT s.stream, e.version, e.leaf
                     FROM unnest($1::text[]) AS s(stream)
                     CROSS JOIN LATERAL (
                         SELECT version, leaf FROM events
                         WHERE events.stream = s.stream
                         ORDER BY version DESC LIMIT 1
                     ) AS e",
                )
                .await?,
            // What was committed from seq $1 on (at most $2 events): read
            // under the head lock, it brings this node's stream heads, and
            // lookups made before the lock, up to date.
            events_since: client
                .prepare(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events
                     WHERE seq >= $1 AND seq < $1 + $2 ORDER BY seq"
                ))
                .await?,
            // The whole group commit in one statement, run while the head
            // lock is held: the events (arrays, one row each, with their
            // stored hashes) and the new head.
            write_rows: client
                .prepare(&format!(
                    "WITH new_events AS ({INSERT_EVENTS})
                     UPDATE log_head SET size = $8, frontier = $9, last_time = $10 WHERE singleton"
                ))
                .await?,
            insert_checkpoint: client
                .prepare(
                    "INSERT INTO checkpoints (size, root, note) VALUES ($1, $2, $3)
                     ON CONFLICT (size) DO NOTHING",
                )
                .await?,
            checkpoint_by_size: client
                .prepare("SELECT size, root, note FROM checkpoints WHERE size = $1")
                .await?,
            publish_durable_size: client.prepare(PUBLISH_DURABLE_SIZE).await?,
        };
        Ok(WriterConnection { client, statements })
    }
}

/// How many seqs `events_since` reads under the head lock. A node whose
/// stream heads are older than that (it was idle while others appended)
/// forgets them and looks up what its commit needs, under the lock.
pub(super) const CATCH_UP_EVENTS_MAX: i64 = 1024;

/// What a group commit must look up: the events of client-given ids (for
/// idempotent retries) and the heads of streams this node does not
/// remember.
#[derive(Default)]
pub(super) struct Unknown {
    pub(super) ids: Vec<Uuid>,
    pub(super) streams: Vec<String>,
}

impl Unknown {
    /// What `clients` need that `heads` does not hold and `asked` did not
    /// already look up.
    pub(super) fn of(
        clients: &[Vec<PreparedRequest>],
        heads: &HeadCache,
        asked: &Unknown,
    ) -> Unknown {
        let (ids, streams) = sequencer::lookups(clients);
        let asked_ids: HashSet<&Uuid> = asked.ids.iter().collect();
        let asked_streams: HashSet<&str> = asked.streams.iter().map(String::as_str).collect();
        Unknown {
            ids: ids
                .into_iter()
                .filter(|id| !asked_ids.contains(id))
                .collect(),
            streams: streams
                .into_iter()
                .filter(|s| heads.get(s).is_none() && !asked_streams.contains(s.as_str()))
                .collect(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.streams.is_empty()
    }
}

/// The events with the given ids and the last event of each given stream.
pub(super) async fn lookup(
    conn: &WriterConnection,
    unknown: &Unknown,
) -> Result<(Vec<Row>, Vec<Row>), tokio_postgres::Error> {
    let (client, statements) = (&conn.client, &conn.statements);
    let id_params: [&(dyn ToSql + Sync); 1] = [&unknown.ids];
    let stream_params: [&(dyn ToSql + Sync); 1] = [&unknown.streams];
    tokio::try_join!(
        async {
            if unknown.ids.is_empty() {
                return Ok(Vec::new());
            }
            client.query(&statements.events_by_id, &id_params).await
        },
        async {
            if unknown.streams.is_empty() {
                return Ok(Vec::new());
            }
            client.query(&statements.stream_heads, &stream_params).await
        },
    )
}

/// This node's single writer: the sequencer, the signer and the write
/// connection (reopened after it is lost).
pub(super) struct Writer {
    pub(super) connector: Connector,
    pub(super) conn: Option<WriterConnection>,
    pub(super) sequencer: Sequencer,
    /// The sequencer's frontier as stored hashes, kept beside it for the head row.
    pub(super) edge: Edge,
    pub(super) cadence: CheckpointCadence,
    /// Stream heads this node has seen, exact as of their own tree size.
    pub(super) heads: HeadCache,
    /// This node's row of `log_durable`.
    pub(super) node: Uuid,
    pub(super) health: WriterHealth,
}

impl node::NodeWriter for Writer {
    async fn commit_batch(&mut self, batch: Batch, more: &mut mpsc::Receiver<WriterMessage>) {
        Writer::commit_batch(self, batch, more).await
    }
    async fn sign_checkpoint(&mut self) -> Result<(), StoreError> {
        Writer::sign_checkpoint(self).await
    }
    fn cadence(&mut self) -> &mut CheckpointCadence {
        &mut self.cadence
    }
    fn health(&self) -> &WriterHealth {
        &self.health
    }
    fn size(&self) -> u64 {
        self.sequencer.frontier().size()
    }
}

impl Writer {
    /// The write connection, opened again if it was lost.
    pub(super) async fn take_connection(&mut self) -> Result<WriterConnection, StoreError> {
        match self.conn.take() {
            Some(conn) if !conn.client.is_closed() => Ok(conn),
            _ => WriterConnection::new(self.connector.connect().await?).await,
        }
    }

    /// Keeps what [`lookup`] found for `asked`: the events by id in
    /// `found`, the stream heads (and the streams that do not exist) in
    /// this node's memory.
    pub(super) fn remember(
        &mut self,
        asked: &Unknown,
        (by_id, heads): &(Vec<Row>, Vec<Row>),
        found: &mut HashMap<Uuid, StoredEvent>,
    ) -> Result<(), StoreError> {
        for row in by_id {
            let event = event_row(row)?;
            found.insert(event.id, event);
        }
        for stream in &asked.streams {
            self.heads.remember(stream.clone(), None);
        }
        for row in heads {
            let stream: String = row.try_get(0)?;
            let version: i64 = row.try_get(1)?;
            let leaf: Vec<u8> = row.try_get(2)?;
            self.heads
                .remember(stream, Some((version as u64, merkle::leaf_hash(&leaf))));
        }
        Ok(())
    }

    /// One group commit: every append in `batch`, and those that reach
    /// `more` while this node waits for the head lock, one transaction.
    pub(super) async fn commit_batch(
        &mut self,
        mut batch: Batch,
        more: &mut mpsc::Receiver<WriterMessage>,
    ) {
        let before = (self.sequencer.clone(), self.edge.clone());
        let outcome = match self.take_connection().await {
            Ok(mut conn) => {
                let outcome = self.write(&mut conn, &mut batch, more).await;
                // After a failure the transaction's state is unknown: start
                // the next one on a fresh connection.
                if outcome.is_ok() {
                    self.conn = Some(conn);
                }
                outcome
            }
            Err(error) => Err(error),
        };
        if let Err(error) = &outcome {
            // Nothing this node planned is known to be committed: forget it.
            // If the commit did land (the reply was lost), the head has moved
            // and the next transaction reloads the frontier from the log.
            (self.sequencer, self.edge) = before;
            self.heads.forget(self.sequencer.frontier().size());
            tracing::error!("group commit failed: {error}");
        }
        self.health.record(&outcome);
        batch.answer(outcome, self.cadence.latest());
    }

    /// One group commit in two round trips, the head lock held from the end
    /// of the first to the `COMMIT` in the second (and a third, under the
    /// lock, when appends need heads or ids this node has not seen):
    ///
    /// 1. Before the lock, the ids and stream heads this node does not
    ///    remember are looked up; then the lock, and behind it the events
    ///    other nodes committed since this node's stream heads were exact
    ///    (each statement of a READ COMMITTED transaction reads a snapshot
    ///    taken when it starts, so that read, queued behind the lock, sees
    ///    every earlier commit). The lookups thus run while another node
    ///    may still hold the lock, not inside this node's turn.
    /// 2. Once the lock is held, appends that arrived meanwhile join the
    ///    batch; then the rows, the head, the COMMIT (which does not wait
    ///    for its WAL flush, so the lock is free at once) and the durable
    ///    publish of the log's size go out together. The clients are
    ///    answered once the publish, and so the flush, is done.
    pub(super) async fn write(
        &mut self,
        conn: &mut WriterConnection,
        batch: &mut Batch,
        more: &mut mpsc::Receiver<WriterMessage>,
    ) -> Result<Vec<ClientResult>, StoreError> {
        let (client, statements) = (&conn.client, &conn.statements);
        let node = self.node;
        let publish: [&(dyn ToSql + Sync); 1] = [&node];
        let known = self.heads.size();
        let asked = Unknown::of(&batch.clients, &self.heads, &Unknown::default());
        let since_params: [&(dyn ToSql + Sync); 2] =
            [&to_i64(known, "tree size")?, &CATCH_UP_EVENTS_MAX];
        let (_, looked_up, head, since) = tokio::try_join!(
            // The commit releases the head lock without waiting for its WAL
            // flush; the durable publish after it waits (see below).
            client.batch_execute("BEGIN; SET LOCAL synchronous_commit = off"),
            lookup(conn, &asked),
            client.query_one(&statements.lock_head, &[]),
            client.query(&statements.events_since, &since_params),
        )?;
        batch.top_up(more);
        let clients = std::mem::take(&mut batch.clients);
        self.catch_up(&head)?;
        let head_size = head.try_get::<_, i64>(0)? as u64;
        let mut found = HashMap::new();
        let behind = head_size.checked_sub(known);
        let late = if behind.is_some_and(|n| n <= CATCH_UP_EVENTS_MAX as u64) {
            self.remember(&asked, &looked_up, &mut found)?;
            if Some(since.len() as u64) != behind {
                return Err(StoreError::Corrupt(format!(
                    "the log holds {} events from seq {known} to its size {head_size}: a gap",
                    since.len()
                )));
            }
            let asked_ids: HashSet<Uuid> = asked.ids.iter().copied().collect();
            let mut events = Vec::with_capacity(since.len());
            for row in &since {
                let version: i64 = row.try_get(3)?;
                events.push((row.try_get(2)?, version as u64, row.try_get(5)?));
                // A retry of an append that another node committed since
                // the lookup.
                if asked_ids.contains(&row.try_get(1)?) {
                    let event = event_row(row)?;
                    found.insert(event.id, event);
                }
            }
            self.heads.catch_up(head_size, events);
            // What the appends that joined after the lock still need.
            Unknown::of(&clients, &self.heads, &asked)
        } else {
            // This node was further behind than `events_since` reads: what
            // it looked up may be stale, so look everything up again.
            self.heads.forget(head_size);
            Unknown::of(&clients, &self.heads, &Unknown::default())
        };
        if !late.is_empty() {
            let looked_up = lookup(conn, &late).await?;
            self.remember(&late, &looked_up, &mut found)?;
        }
        let mut view = PrefetchedView {
            events_by_id: found,
            stream_heads: HashMap::new(),
        };
        for request in clients.iter().flatten() {
            if let Some(Some(head)) = self.heads.get(&request.stream) {
                view.stream_heads.insert(request.stream.clone(), head);
            }
        }
        let checkpoint_now = batch.checkpoint_requested();
        let plan = self
            .sequencer
            .plan(&mut view, clients, OffsetDateTime::now_utc())?;
        let size = self.sequencer.frontier().size();
        let checkpoint_due = (checkpoint_now || self.cadence.due()) && self.cadence.pending(size);
        if plan.events.is_empty() && !checkpoint_due {
            // Retries and refusals only, answered from what this
            // transaction read, which may not be durable yet: publish too.
            tokio::try_join!(
                client.batch_execute("COMMIT"),
                client.execute(&statements.publish_durable_size, &publish),
            )?;
            return Ok(plan.results);
        }
        let rows = EventRows::new(&plan.events, &plan.hashes)?;
        self.edge = self.edge.advance(size, &plan.hashes)?;
        let frontier_bytes = self.edge.to_bytes();
        let last_time = match plan.events.last() {
            Some(event) => Some(event.header()?.time.into_owned()),
            None => head.try_get::<_, Option<String>>(2)?,
        };
        let new_size = to_i64(size, "tree size")?;
        let [seqs, ids, streams, versions, types, leaves, hashes] = rows.params();
        let params: [&(dyn ToSql + Sync); 10] = [
            seqs,
            ids,
            streams,
            versions,
            types,
            leaves,
            hashes,
            &new_size,
            &frontier_bytes,
            &last_time,
        ];
        let has_events = !plan.events.is_empty();
        let write_rows = async {
            if has_events {
                client.execute(&statements.write_rows, &params).await?;
            }
            Ok::<_, tokio_postgres::Error>(())
        };
        if checkpoint_due {
            // Rare (once per interval): store and check the checkpoint
            // before committing, so a conflict commits nothing. A
            // checkpoint is only ever committed durably, with the size it
            // covers published in the same transaction.
            write_rows.await?;
            let checkpoint = self.insert_checkpoint(client, statements).await?;
            tokio::try_join!(
                client.batch_execute("SET LOCAL synchronous_commit = on"),
                client.execute(&statements.publish_durable_size, &publish),
                client.batch_execute("COMMIT"),
            )?;
            self.cadence.record(checkpoint);
        } else {
            // The rows, the COMMIT (which releases the lock at once) and
            // the durable publish go out together; the answer waits for the
            // publish, that is for the WAL flush that covers this commit.
            // If a statement fails the transaction is aborted, COMMIT only
            // rolls it back, and the failure is what the caller sees; the
            // publish then states only what was committed anyway.
            tokio::try_join!(
                write_rows,
                client.batch_execute("COMMIT"),
                client.execute(&statements.publish_durable_size, &publish),
            )?;
        }
        self.heads.committed(size, &plan.events);
        Ok(plan.results)
    }

    /// Another node appended since this writer's last transaction: the head
    /// lock is held now, and the locked row carries the frontier and the
    /// log's clock, so this writer becomes current without another read.
    pub(super) fn catch_up(&mut self, head: &Row) -> Result<(), StoreError> {
        let size = head.try_get::<_, i64>(0)? as u64;
        if size == self.sequencer.frontier().size() {
            return Ok(());
        }
        tracing::debug!(
            size,
            "the log grew on another node; taking its frontier from the head row"
        );
        let edge = Edge::from_bytes(size, head.try_get(1)?)?;
        let last_time = match head.try_get::<_, Option<String>>(2)? {
            Some(text) => {
                OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
                    .map_err(|e| StoreError::Corrupt(format!("log_head.last_time {text:?}: {e}")))?
            }
            None => OffsetDateTime::now_utc(),
        };
        self.sequencer = Sequencer::new(edge.frontier(size)?, last_time);
        self.edge = edge;
        Ok(())
    }

    /// Signs and stores a checkpoint of the whole committed log, under the
    /// head lock, if none of its size exists yet.
    pub(super) async fn sign_checkpoint(&mut self) -> Result<(), StoreError> {
        let conn = self.take_connection().await?;
        let node = self.node;
        let outcome = async {
            let (client, statements) = (&conn.client, &conn.statements);
            let publish: [&(dyn ToSql + Sync); 1] = [&node];
            let (_, head) = tokio::try_join!(
                client.batch_execute("BEGIN"),
                client.query_one(&statements.lock_head, &[]),
            )?;
            self.catch_up(&head)?;
            let checkpoint = if self.cadence.pending(self.sequencer.frontier().size()) {
                Some(self.insert_checkpoint(client, statements).await?)
            } else {
                None
            };
            // A durable transaction (the connection's default): the
            // checkpoint and the size it covers become visible together.
            tokio::try_join!(
                client.execute(&statements.publish_durable_size, &publish),
                client.batch_execute("COMMIT"),
            )?;
            if let Some(checkpoint) = checkpoint {
                self.cadence.record(checkpoint);
            }
            Ok::<_, StoreError>(())
        }
        .await;
        if outcome.is_ok() {
            self.conn = Some(conn);
        }
        outcome
    }

    /// Stores this node's signature of the current tree, or, when another
    /// node signed this size first, returns that one after checking it is
    /// the same note (Ed25519 signatures are deterministic, so a node with
    /// the same key signs the very same bytes).
    pub(super) async fn insert_checkpoint(
        &self,
        transaction: &Client,
        statements: &WriteStatements,
    ) -> Result<SignedCheckpoint, StoreError> {
        let checkpoint = self.cadence.sign(self.sequencer.frontier());
        let size = to_i64(checkpoint.size, "tree size")?;
        let inserted = transaction
            .execute(
                &statements.insert_checkpoint,
                &[&size, &checkpoint.root.as_slice(), &checkpoint.note],
            )
            .await?;
        if inserted == 0 {
            let row = transaction
                .query_one(&statements.checkpoint_by_size, &[&size])
                .await?;
            let stored = checkpoint_row(&row)?;
            if stored != checkpoint {
                return Err(StoreError::Corrupt(format!(
                    "a different checkpoint of size {} is stored (root {}, ours {}); nodes of one log must share one key and one log",
                    checkpoint.size,
                    hex::encode(stored.root),
                    hex::encode(checkpoint.root)
                )));
            }
        }
        Ok(checkpoint)
    }
}
