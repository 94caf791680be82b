//! Three `ledgerline` processes, each a node with its own data directory,
//! append concurrently to one PostgreSQL log for a bounded time. Afterwards
//! the log has no gap and no duplicate, holds every acknowledged append
//! with the acknowledged leaf hash, and `ledgerline verify` passes.

mod postgres_support;

use postgres_support::{
    append_until, events_by_key, node_args, required_env, verify, write_shared_key, TestDatabase,
};
use std::time::{Duration, Instant};

const NODES: u64 = 3;
const APPEND_TIME: Duration = Duration::from_secs(4);

#[test]
fn three_nodes_append_to_one_gap_free_log() {
    let Some(admin_url) = required_env("LEDGERLINE_TEST_POSTGRES_URL") else {
        return;
    };
    let database = TestDatabase::create(&admin_url);
    let dir = tempfile::tempdir().unwrap();
    let key_file = write_shared_key(dir.path());
    let nodes: Vec<Vec<String>> = (0..NODES)
        .map(|node| {
            node_args(
                &dir.path().join(format!("node{node}")),
                &database.url,
                &key_file,
            )
        })
        .collect();
    let until = Instant::now() + APPEND_TIME;
    // Every node appends to its own stream and to one shared stream, so the
    // shared stream's versions and prev links interleave across nodes.
    let clients: Vec<_> = nodes
        .iter()
        .enumerate()
        .flat_map(|(node, args)| {
            [format!("node-{node}"), "shared".to_string()]
                .into_iter()
                .enumerate()
                .map(move |(half, stream)| {
                    let args = args.clone();
                    let node = node as u64 * 2 + half as u64;
                    std::thread::spawn(move || append_until(&args, &stream, node, 0, until))
                })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for client in clients {
        let (acks, succeeded, _) = client.join().unwrap();
        assert!(succeeded, "a client failed without any fault injected");
        assert!(!acks.is_empty(), "every client got appends through");
        acknowledged.extend(acks);
    }
    let events = events_by_key(&nodes[0]);
    eprintln!(
        "{} events from {NODES} nodes in {APPEND_TIME:?}",
        events.len()
    );
    assert_eq!(
        events.len(),
        acknowledged.len(),
        "nothing unacknowledged was appended"
    );
    for (key, seq, leaf_hash) in &acknowledged {
        assert_eq!(
            events.get(key),
            Some(&(*seq, leaf_hash.clone())),
            "acknowledged append {key} is in the log as acknowledged"
        );
    }
    let report = verify(&nodes[2]);
    assert!(
        report.starts_with(&format!("ok {} events", events.len())),
        "{report}"
    );
}
