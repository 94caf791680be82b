//! PostgreSQL restarts under load: a clean `pg_ctl restart` and a `kill -9`
//! of the postmaster while `ledgerline` clients append. Clients see errors
//! or success, never a silent loss: after recovery every acknowledged append
//! is in the log with its acknowledged seq and leaf hash, the log has no gap
//! and no duplicate, and `ledgerline verify` passes. The test runs its own
//! cluster (initdb into a temporary directory), so it may kill it.

mod postgres_support;

use postgres_support::{
    append_until, events_by_key, node_args, verify, write_shared_key, Cluster, TestDatabase,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: u64 = 2;

#[test]
fn server_restarts_lose_no_acknowledged_append() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let database = TestDatabase::create(&cluster.url);
    let dir = tempfile::tempdir().unwrap();
    let key_file = write_shared_key(dir.path());
    let stop = Arc::new(AtomicBool::new(false));
    // Each client appends until told to stop; when an append fails (the
    // server is down), it starts again, as an operator's retry loop would.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|node| {
            let args = node_args(
                &dir.path().join(format!("node{node}")),
                &database.url,
                &key_file,
            );
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut acknowledged = Vec::new();
                let mut failures = 0u64;
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let until = Instant::now() + Duration::from_millis(700);
                    let (acks, succeeded, next_n) = append_until(&args, "faults", node, n, until);
                    acknowledged.extend(acks);
                    failures += u64::from(!succeeded);
                    n = next_n;
                    if !succeeded {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
                (acknowledged, failures)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    cluster.restart();
    std::thread::sleep(Duration::from_millis(1500));
    cluster.kill_and_start();
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::SeqCst);
    let mut acknowledged = Vec::new();
    let mut failures = 0;
    for client in clients {
        let (acks, client_failures) = client.join().unwrap();
        acknowledged.extend(acks);
        failures += client_failures;
    }
    let reader = node_args(&dir.path().join("node0"), &database.url, &key_file);
    let events = events_by_key(&reader);
    eprintln!(
        "{} acknowledged, {} in the log, {failures} client runs ended in an error",
        acknowledged.len(),
        events.len()
    );
    assert!(!acknowledged.is_empty());
    for (key, seq, leaf_hash) in &acknowledged {
        assert_eq!(
            events.get(key),
            Some(&(*seq, leaf_hash.clone())),
            "acknowledged append {key} survived the restarts as acknowledged"
        );
    }
    // One more append after recovery works, and the log verifies.
    let (acks, succeeded, _) = append_until(
        &reader,
        "faults",
        99,
        0,
        Instant::now() + Duration::from_millis(300),
    );
    assert!(
        succeeded && !acks.is_empty(),
        "appends work again after recovery"
    );
    verify(&reader);
}
