-- ledgerline scale-out store (PostgreSQL), third migration: the durable
-- size, so that the head lock is released before the WAL flush.
--
-- Every append transaction holds the log_head row lock until it ends, and
-- a durable commit ends only after its WAL flush. Nodes therefore flushed
-- one after another, each flush carrying one node's group commit. Now the
-- append transaction commits without waiting for its flush
-- (synchronous_commit = off, for that transaction only), which releases
-- the lock at once, and right after it, on the same connection, the node
-- publishes the log's size here in a durable transaction of its own. A
-- durable commit flushes the whole WAL up to its own commit record, so
-- every event that transaction could see is durable by the time it
-- commits; flushes from several nodes are shared again, and none is made
-- under the lock. A node answers its clients only after that publish.
--
-- Readers never read past the durable size: the log's size is the largest
-- size here, and reads of events stop below it. So no reader can see an
-- event that a server crash could still take back (other nodes' writers
-- do see such events, under the head lock; they build on them, and WAL
-- order makes a later commit durable only with every earlier one).
-- Checkpoints are written by durable transactions only, which publish
-- their size in the same transaction, so a visible checkpoint is durable
-- and never larger than the durable size.
--
-- One row per node (a random id each time a node opens the log), so that
-- nodes never wait for each other's publish. Only the largest size
-- matters: a node deletes the smaller rows when it opens.
CREATE TABLE log_durable (
    node uuid   PRIMARY KEY,
    size bigint NOT NULL CHECK (size >= 0)
);

-- Before this migration every commit was durable.
INSERT INTO log_durable (node, size)
    SELECT '00000000-0000-0000-0000-000000000000', size FROM log_head;
