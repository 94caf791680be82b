//! A shared-log node's memory of stream heads (each stream's last version
//! and leaf hash), exact as of one tree size.
//!
//! Several nodes append to one PostgreSQL log, one group commit at a time
//! under the log's head lock. Looking up the heads of a commit's streams
//! inside that turn makes every node wait for it; with this memory a node
//! only reads, under the lock, the events other nodes committed since its
//! last turn (a short seq range), and brings the heads up to date from them.
//! It also lets appends that arrived while the node waited for the lock
//! join that commit without another lookup.
//!
//! Every head kept is exact as of [`HeadCache::size`]: it was read from the
//! log, and every event committed after it was applied in seq order. A node
//! that cannot bring the cache up to date (it fell too far behind, or a
//! commit's outcome is unknown) forgets it all: an empty cache is exact at
//! any size. The cache also remembers streams looked up and found not to
//! exist (so that one created since is seen); any other stream is unknown.

use crate::merkle::{self, Hash};
use crate::store::StoredEvent;
use std::collections::HashMap;

/// Streams remembered at most; past this the cache starts again empty, so a
/// node serving millions of short streams keeps a bounded memory.
const STREAMS_MAX: usize = 65_536;

/// A stream's last event as (version, leaf hash), or `None` for a stream
/// that does not exist.
pub type Head = Option<(u64, Hash)>;

/// Stream heads exact as of the tree of `size` events.
#[derive(Debug)]
pub struct HeadCache {
    size: u64,
    heads: HashMap<String, Head>,
}

impl HeadCache {
    /// An empty cache, exact at `size`.
    pub fn empty(size: u64) -> HeadCache {
        HeadCache {
            size,
            heads: HashMap::new(),
        }
    }

    /// The tree size the heads are exact at.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The head of `stream`, or `None` when it is not remembered.
    pub fn get(&self, stream: &str) -> Option<Head> {
        self.heads.get(stream).copied()
    }

    /// Forgets every head; the empty cache is exact at `size`.
    pub fn forget(&mut self, size: u64) {
        self.heads.clear();
        self.size = size;
    }

    /// Remembers a head read from the log at this cache's size or later. A
    /// read at a later size is exact again once [`HeadCache::catch_up`]
    /// has applied the events from this cache's size on, which include
    /// every event that read saw.
    pub fn remember(&mut self, stream: String, head: Head) {
        self.heads.insert(stream, head);
    }

    /// Brings the remembered heads to `to`, given every event of seqs
    /// `size()..to` as (stream, version, leaf), in seq order. Only streams
    /// already remembered are updated (so only their leaves are hashed):
    /// another stream stays unknown and is looked up when needed.
    pub fn catch_up<'a>(
        &mut self,
        to: u64,
        events: impl IntoIterator<Item = (&'a str, u64, &'a [u8])>,
    ) {
        for (stream, version, leaf) in events {
            if let Some(head) = self.heads.get_mut(stream) {
                *head = Some((version, merkle::leaf_hash(leaf)));
            }
        }
        self.size = to;
    }

    /// Remembers the heads of the events just committed, seqs `size()..to`
    /// in seq order.
    ///
    /// This is where a cache past its bound starts again (not in the middle
    /// of a commit, whose plan relies on the heads it found).
    pub fn committed(&mut self, to: u64, events: &[StoredEvent]) {
        debug_assert_eq!(self.size + events.len() as u64, to);
        if self.heads.len() > STREAMS_MAX {
            self.heads.clear();
        }
        for event in events {
            self.remember(event.stream.clone(), Some((event.version, event.leaf_hash)));
        }
        self.size = to;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn event(seq: u64, stream: &str, version: u64) -> StoredEvent {
        let leaf = format!("{seq}").into_bytes();
        StoredEvent {
            seq,
            id: Uuid::now_v7(),
            stream: stream.into(),
            version,
            event_type: "t".into(),
            leaf_hash: merkle::leaf_hash(&leaf),
            leaf,
        }
    }

    #[test]
    fn catching_up_moves_the_remembered_streams_only() {
        let mut cache = HeadCache::empty(10);
        cache.remember("a".into(), Some((3, [1; 32])));
        // c was looked up and did not exist; b was never looked up.
        cache.remember("c".into(), None);
        let events = [
            ("a", 4, &b"10"[..]),
            ("b", 0, b"11"),
            ("a", 5, b"12"),
            ("c", 0, b"13"),
        ];
        cache.catch_up(14, events);
        assert_eq!(cache.size(), 14);
        assert_eq!(cache.get("a"), Some(Some((5, merkle::leaf_hash(b"12")))));
        assert_eq!(cache.get("c"), Some(Some((0, merkle::leaf_hash(b"13")))));
        assert_eq!(cache.get("b"), None);
    }

    #[test]
    fn a_head_read_after_the_cache_size_is_overtaken_by_the_events_it_saw() {
        // The lookup saw the log at size 12 (a's head at seq 11); the events
        // from 10 on include that one, and the final head is the same.
        let mut cache = HeadCache::empty(10);
        cache.remember("a".into(), Some((1, merkle::leaf_hash(b"11"))));
        cache.catch_up(12, [("a", 0, &b"10"[..]), ("a", 1, b"11")]);
        assert_eq!(cache.get("a"), Some(Some((1, merkle::leaf_hash(b"11")))));
    }

    #[test]
    fn committed_events_are_remembered_whatever_their_stream() {
        let mut cache = HeadCache::empty(5);
        cache.committed(7, &[event(5, "a", 0), event(6, "b", 3)]);
        assert_eq!(cache.size(), 7);
        assert_eq!(cache.get("a"), Some(Some((0, merkle::leaf_hash(b"5")))));
        assert_eq!(cache.get("b"), Some(Some((3, merkle::leaf_hash(b"6")))));
    }

    #[test]
    fn forgetting_leaves_an_empty_cache_at_the_given_size() {
        let mut cache = HeadCache::empty(0);
        cache.committed(1, &[event(0, "a", 0)]);
        cache.forget(7);
        assert_eq!((cache.size(), cache.get("a")), (7, None));
    }

    #[test]
    fn past_its_bound_the_cache_starts_again_after_a_commit() {
        let mut cache = HeadCache::empty(0);
        for i in 0..=STREAMS_MAX {
            cache.remember(format!("s{i}"), None);
        }
        // Still whole until the commit that relies on it is done.
        assert!(cache.get("s0").is_some());
        cache.committed(1, &[event(0, "a", 0)]);
        assert_eq!(cache.heads.len(), 1);
        assert!(cache.get("s0").is_none());
        assert!(cache.get("a").is_some());
    }
}
