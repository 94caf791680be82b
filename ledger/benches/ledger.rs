//! `scripts/bench ledger`: durable append throughput, proof latency, audit
//! speed and a monitor's catch-up from tiles on the embedded store, each
//! printed beside a baseline measured in the same run (plain SQLite inserts
//! of the same leaf bytes, same durability, same group commit, no hashing;
//! for the audit and the monitor, reading the events alone).
//!
//! Options: `--events N` (size of the proof/verify log, default 1,000,000),
//! `--seconds S` (duration of each throughput run, default 5),
//! `--store postgres://USER@HOST:PORT/DB` (also measure the PostgreSQL store
//! from one node and from three, beside plain SQL inserts with the same
//! durability and group commit but no hashing or sequencing; the bench makes
//! a database of its own on that server and drops it afterwards).

use ledger::store::postgres::{PostgresConfig, PostgresStore};
use ledger::store::sqlite::{SqliteConfig, SqliteStore};
use ledger::{AppendRequest, EventStore, ExpectedVersion, NewEvent, NoteSigner};
use rusqlite::{params, Connection};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

const WRITERS: usize = 64;
/// Alternating slices per throughput row.
const THROUGHPUT_SLICES: usize = 4;

struct Options {
    events: u64,
    seconds: f64,
    store: Option<String>,
}

fn options() -> Options {
    let mut options = Options {
        events: 1_000_000,
        seconds: 5.0,
        store: None,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--events" => {
                options.events = args[i + 1].parse().expect("--events N");
                i += 1;
            }
            "--seconds" => {
                options.seconds = args[i + 1].parse().expect("--seconds S");
                i += 1;
            }
            "--store" => {
                options.store = Some(args[i + 1].clone());
                i += 1;
            }
            _ => {} // cargo bench passes --bench
        }
        i += 1;
    }
    options
}

/// A realistic generation-step payload (about 400 bytes once canonical).
fn payload(n: u64) -> serde_json::Value {
    json!({
        "job": format!("{:08x}-5b0a-4c8e-9d6e-2f1f3f1d8a10", n),
        "op": "hpss",
        "params": {"n_fft": 2048, "hop": 512, "kernel": 31, "power": 2, "margin": 1},
        "inputs": [format!("sha256:{:064x}", n)],
        "output": format!("sha256:{:064x}", n + 1),
        "kernel": "sha256:5f1c3a0e0d0b4c4f8e0f0c5a3b7d9e1f2a3b4c5d6e7f8091a2b3c4d5e6f70812",
        "backend": "cpu",
        "adapter": null,
        "duration_ms": 12
    })
}

fn open_store(dir: &std::path::Path) -> Arc<SqliteStore> {
    Arc::new(SqliteStore::open(SqliteConfig::new(dir, "bench.ledgerline.local/log")).unwrap())
}

/// Runs `writers` concurrent tasks, each calling `append(writer, n)` (which
/// durably writes `batch` events numbered from `n`) until time is up, and
/// returns events per second.
async fn throughput<F, Fut>(writers: usize, batch: usize, seconds: f64, append: F) -> f64
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (append, stop, count) = (append.clone(), stop.clone(), count.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    append(w, n).await;
                    n += batch as u64;
                    count.fetch_add(batch as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Appends through the ledger: canonical envelopes, hashing, Merkle tree, checkpoints.
async fn ledger_throughput(
    store: Arc<dyn EventStore>,
    writers: usize,
    batch: usize,
    seconds: f64,
) -> f64 {
    throughput(writers, batch, seconds, move |w, n| {
        let store = store.clone();
        async move {
            let events = (0..batch)
                .map(|i| NewEvent::new("generation.step", payload(n + i as u64)))
                .collect();
            let request =
                AppendRequest::new(format!("generation-{w}"), ExpectedVersion::Any, events);
            store.append(request).await.unwrap();
        }
    })
    .await
}

/// The baseline: the same table layout and indexes, the same leaf bytes, the
/// same kind of event id as the ledger makes (UUIDv7), WAL with
/// synchronous=FULL, and the same group commit, but no hashing, no Merkle
/// tree, no checkpoints.
/// Rows of (stream, leaf) for one insert, and where to say it is durable.
type PlainInsert = (Vec<(String, Vec<u8>)>, oneshot::Sender<()>);

struct PlainSqlite {
    sender: mpsc::Sender<PlainInsert>,
}

impl PlainSqlite {
    fn open(path: &std::path::Path) -> PlainSqlite {
        let mut conn = Connection::open(path).unwrap();
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
            .unwrap();
        conn.execute_batch(&format!(
            "PRAGMA synchronous=FULL; PRAGMA cache_size=-{};
             CREATE TABLE events (seq INTEGER PRIMARY KEY, id BLOB NOT NULL, stream TEXT NOT NULL,
                                  version INTEGER NOT NULL, type TEXT NOT NULL, leaf BLOB NOT NULL);
             CREATE UNIQUE INDEX events_by_id ON events (id);
             CREATE UNIQUE INDEX events_by_stream ON events (stream, version);",
            ledger::store::sqlite::CACHE_KIB
        ))
        .unwrap();
        let (sender, mut receiver) = mpsc::channel::<PlainInsert>(4096);
        std::thread::spawn(move || {
            let mut seq = 0i64;
            let mut versions = std::collections::HashMap::<String, i64>::new();
            while let Some(first) = receiver.blocking_recv() {
                let mut batch = vec![first];
                while let Ok(more) = receiver.try_recv() {
                    batch.push(more);
                }
                let transaction = conn.transaction().unwrap();
                {
                    let mut insert = transaction
                        .prepare_cached("INSERT INTO events (seq, id, stream, version, type, leaf) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
                        .unwrap();
                    for (rows, _) in &batch {
                        for (stream, leaf) in rows {
                            let version = versions.entry(stream.clone()).or_insert(0);
                            insert
                                .execute(params![
                                    seq,
                                    uuid::Uuid::now_v7().as_bytes().as_slice(),
                                    stream,
                                    *version,
                                    "generation.step",
                                    leaf
                                ])
                                .unwrap();
                            seq += 1;
                            *version += 1;
                        }
                    }
                }
                transaction.commit().unwrap();
                for (_, reply) in batch {
                    let _ = reply.send(());
                }
            }
        });
        PlainSqlite { sender }
    }

    async fn insert(&self, rows: Vec<(String, Vec<u8>)>) {
        let (reply, done) = oneshot::channel();
        self.sender.send((rows, reply)).await.unwrap();
        done.await.unwrap();
    }
}

async fn baseline_throughput(
    plain: Arc<PlainSqlite>,
    leaves: Arc<Vec<Vec<u8>>>,
    writers: usize,
    batch: usize,
    seconds: f64,
) -> f64 {
    throughput(writers, batch, seconds, move |w, n| {
        let (plain, leaves) = (plain.clone(), leaves.clone());
        async move {
            let rows = (0..batch)
                .map(|i| {
                    (
                        format!("generation-{w}"),
                        leaves[(w + n as usize + i) % leaves.len()].clone(),
                    )
                })
                .collect();
            plain.insert(rows).await;
        }
    })
    .await
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "meets"
    } else {
        "MISSES"
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let options = options();
    let scratch = tempfile::tempdir().unwrap();
    println!(
        "ledger bench: embedded SQLite (WAL, synchronous=FULL), {} cores, {} s per throughput run",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        options.seconds
    );

    // Throughput. Background load on a shared machine drifts, so ours and
    // the baseline run in alternating slices and each rate is the mean of
    // its slices: both see the same conditions.
    let store = open_store(&scratch.path().join("throughput"));
    ledger_throughput(store.clone(), WRITERS, 1, 0.5).await; // warm-up, and leaves for the baseline
    let leaves: Arc<Vec<Vec<u8>>> = Arc::new(
        store
            .read_range(0, 20_000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.leaf)
            .collect(),
    );
    let plain = Arc::new(PlainSqlite::open(&scratch.path().join("plain.db")));
    let rows: [(&str, usize, usize); 3] = [
        ("1 writer", 1, 1),
        ("64 writers", WRITERS, 1),
        ("1 writer, batches of 100", 1, 100),
    ];
    println!(
        "{:<34} {:>14} {:>16} {:>7}",
        "durable appends", "ledger ev/s", "plain SQLite ev/s", "ratio"
    );
    for (name, writers, batch) in rows {
        let slice = options.seconds / THROUGHPUT_SLICES as f64;
        let (mut ours, mut base) = (0.0, 0.0);
        for _ in 0..THROUGHPUT_SLICES {
            ours += ledger_throughput(store.clone(), writers, batch, slice).await;
            base += baseline_throughput(plain.clone(), leaves.clone(), writers, batch, slice).await;
        }
        let (ours, base) = (
            ours / THROUGHPUT_SLICES as f64,
            base / THROUGHPUT_SLICES as f64,
        );
        println!("{name:<34} {ours:>14.0} {base:>16.0} {:>7.2}", ours / base);
        if writers == WRITERS {
            println!(
                "  bar: >= 20,000 events/s with 64 writers: {}; >= 50% of baseline: {}",
                verdict(ours >= 20_000.0),
                verdict(ours / base >= 0.5)
            );
        }
    }
    drop(store);
    if let Some(url) = &options.store {
        postgres_throughput(url, options.seconds).await;
    }

    // A large log for proofs and the audit, filled in batches.
    let big_dir = scratch.path().join("big");
    let store = open_store(&big_dir);
    let started = Instant::now();
    let batch = 5_000u64;
    let mut filled = 0;
    while filled < options.events {
        let take = batch.min(options.events - filled);
        let events = (0..take)
            .map(|i| NewEvent::new("generation.step", payload(filled + i)))
            .collect();
        store
            .append(AppendRequest::new(
                format!("generation-{}", filled / batch % 1000),
                ExpectedVersion::Any,
                events,
            ))
            .await
            .unwrap();
        filled += take;
        if filled % 200_000 == 0 {
            eprintln!("  filled {filled}/{} events", options.events);
        }
    }
    let checkpoint = store.checkpoint_now().await.unwrap();
    println!(
        "filled a log of {} events in batches of {batch}: {:.0} events/s",
        options.events,
        options.events as f64 / started.elapsed().as_secs_f64()
    );

    let size = checkpoint.size;
    let mut rng_state = 0x9e3779b97f4a7c15u64;
    let mut next = move || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state
    };
    let samples = 5_000;
    let mut inclusion = Vec::with_capacity(samples);
    let mut consistency = Vec::with_capacity(samples);
    for _ in 0..samples {
        let index = next() % size;
        let started = Instant::now();
        let proof = store.prove_inclusion(index, size).await.unwrap();
        inclusion.push(started.elapsed());
        assert_eq!(proof.root_hash, checkpoint.root);
        let from = 1 + next() % (size - 1);
        let started = Instant::now();
        let proof = store.prove_consistency(from, size).await.unwrap();
        consistency.push(started.elapsed());
        assert_eq!(proof.to_root, checkpoint.root);
    }
    inclusion.sort_unstable();
    consistency.sort_unstable();
    // Baseline for proof reads: the plain point lookup of one event by seq.
    let mut lookups = Vec::with_capacity(samples);
    for _ in 0..samples {
        let seq = next() % size;
        let started = Instant::now();
        store.read_range(seq, 1).await.unwrap();
        lookups.push(started.elapsed());
    }
    lookups.sort_unstable();
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{:<34} {:>10} {:>10}",
        format!("proofs at {size} events (µs)"),
        "p50",
        "p99"
    );
    let latency_row = |name: &str, sorted: &[Duration]| {
        println!(
            "{name:<34} {:>10.0} {:>10.0}",
            micros(percentile(sorted, 0.5)),
            micros(percentile(sorted, 0.99))
        );
    };
    latency_row("inclusion proof", &inclusion);
    latency_row("consistency proof", &consistency);
    latency_row("baseline: read one event by seq", &lookups);
    println!(
        "  bar: inclusion proof p99 <= 1 ms: {}",
        verdict(percentile(&inclusion, 0.99) <= Duration::from_millis(1))
    );

    let verifier = store.verifier().clone();
    let started = Instant::now();
    let report = ledger::verify::audit(store.as_ref(), &verifier, &mut |_, _| {})
        .await
        .unwrap();
    let verify_rate = report.events as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut read = 0u64;
    loop {
        let page = store.read_range(read, 16_384).await.unwrap();
        if page.is_empty() {
            break;
        }
        read += page.len() as u64;
    }
    let read_rate = read as f64 / started.elapsed().as_secs_f64();
    println!(
        "verify: {verify_rate:.0} events/s over {} events (baseline: reading them alone, {read_rate:.0} events/s, ratio {:.2})",
        report.events,
        verify_rate / read_rate
    );
    println!(
        "  bar: verify >= 100,000 events/s: {}",
        verdict(verify_rate >= 100_000.0)
    );

    // A monitor catching up on the whole log from its tiles: the monitor's
    // logic in-process, reading each tile and entry bundle as `/tlog/`
    // serves it (through `ledger::store::tiles`), without HTTP.
    let mirror = scratch.path().join("mirror");
    let source = ledger::monitor::StoreSource {
        store: store.clone() as Arc<dyn EventStore>,
        runtime: tokio::runtime::Handle::current(),
    };
    let started = Instant::now();
    let round = tokio::task::spawn_blocking(move || {
        let mut monitor = ledger::monitor::Monitor::open(&mirror, verifier).unwrap();
        monitor.round(&source, &mut |_| {}, &mut |_, _| {}).unwrap()
    })
    .await
    .unwrap();
    let monitor_rate = round.to as f64 / started.elapsed().as_secs_f64();
    assert_eq!(round.checkpoint.root, checkpoint.root);
    println!(
        "monitor catch-up: {monitor_rate:.0} events/s over {} events, {} tiles and {} entry bundles (baseline: reading the events alone, {read_rate:.0} events/s, ratio {:.2})",
        round.to,
        round.tiles_fetched,
        round.bundles_fetched,
        monitor_rate / read_rate
    );
    println!(
        "  bar: monitor catch-up >= 100,000 events/s: {}",
        verdict(monitor_rate >= 100_000.0)
    );
}

/// Nodes in the multi-node rows (store instances in this process, each with
/// its own writer connection, group commit and read pool, as separate
/// `ledgerline` processes would have).
const NODES: usize = 3;

/// The PostgreSQL rows: 64 writers on one node, then spread over three
/// nodes, each beside the plain-SQL baseline, in alternating slices.
async fn postgres_throughput(server_url: &str, seconds: f64) {
    let database = format!("ledgerline_bench_{}", uuid::Uuid::new_v4().simple());
    admin(server_url, &format!("CREATE DATABASE {database}")).await;
    let url = url_with_database(server_url, &database);
    let signer = NoteSigner::generate("bench.ledgerline.local/log").unwrap();
    let mut nodes: Vec<Arc<dyn EventStore>> = Vec::new();
    for _ in 0..NODES {
        let config = PostgresConfig::new(&url, signer.clone());
        nodes.push(Arc::new(PostgresStore::open(config).await.unwrap()));
    }
    ledger_throughput(nodes[0].clone(), WRITERS, 1, 0.5).await; // warm-up, and leaves
    let leaves: Arc<Vec<Vec<u8>>> = Arc::new(
        nodes[0]
            .read_range(0, 20_000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.leaf)
            .collect(),
    );
    let mut plain = Vec::new();
    for _ in 0..NODES {
        plain.push(Arc::new(PlainPostgres::open(&url).await));
    }
    println!(
        "{:<34} {:>14} {:>16} {:>7}",
        "PostgreSQL durable appends", "ledger ev/s", "plain SQL ev/s", "ratio"
    );
    let mut three_nodes = (0.0, 0.0);
    for (name, node_count) in [
        ("64 writers, 1 node", 1),
        ("64 writers over 3 nodes", NODES),
    ] {
        let slice = seconds / THROUGHPUT_SLICES as f64;
        let (mut ours, mut base) = (0.0, 0.0);
        for _ in 0..THROUGHPUT_SLICES {
            let nodes = nodes[..node_count].to_vec();
            ours += throughput(WRITERS, 1, slice, move |w, n| {
                let store = nodes[w % nodes.len()].clone();
                async move {
                    let event = NewEvent::new("generation.step", payload(n));
                    let request = AppendRequest::new(
                        format!("generation-{w}"),
                        ExpectedVersion::Any,
                        vec![event],
                    );
                    store.append(request).await.unwrap();
                }
            })
            .await;
            let (plain, leaves) = (plain[..node_count].to_vec(), leaves.clone());
            base += throughput(WRITERS, 1, slice, move |w, n| {
                let (plain, leaves) = (plain[w % plain.len()].clone(), leaves.clone());
                async move {
                    let leaf = leaves[(w + n as usize) % leaves.len()].clone();
                    plain.insert(format!("generation-{w}"), leaf).await;
                }
            })
            .await;
        }
        let (ours, base) = (
            ours / THROUGHPUT_SLICES as f64,
            base / THROUGHPUT_SLICES as f64,
        );
        println!("{name:<34} {ours:>14.0} {base:>16.0} {:>7.2}", ours / base);
        if node_count == NODES {
            three_nodes = (ours, base);
        }
    }
    println!(
        "  bar: >= 10,000 events/s from three nodes: {}; >= 50% of baseline: {}",
        verdict(three_nodes.0 >= 10_000.0),
        verdict(three_nodes.0 / three_nodes.1 >= 0.5)
    );
    let verifier = nodes[0].verifier().clone();
    let report = ledger::verify::audit(nodes[0].as_ref(), &verifier, &mut |_, _| {})
        .await
        .unwrap();
    println!(
        "  the PostgreSQL log verifies: {} events, no gap",
        report.events
    );
    drop(nodes);
    drop(plain);
    admin(
        server_url,
        &format!("DROP DATABASE {database} WITH (FORCE)"),
    )
    .await;
}

async fn admin(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to --store {url}: {e}"));
    let driver = tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap();
    drop(client);
    let _ = driver.await;
}

fn url_with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{base}/{database}{query}")
}

/// The PostgreSQL baseline: rows like the ledger's events (same indexes:
/// seq, id, stream and version) with the same leaf bytes and kind of id
/// (UUIDv7), durable commits
/// (`synchronous_commit = on`) and the same group commit on one connection
/// per node, but no head lock, no hashing, no Merkle rows, no checkpoints.
/// The baseline's next version number, for every stream and node.
static PLAIN_VERSIONS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

struct PlainPostgres {
    sender: mpsc::Sender<(String, Vec<u8>, oneshot::Sender<()>)>,
}

impl PlainPostgres {
    async fn open(url: &str) -> PlainPostgres {
        let (mut client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(
                "SET synchronous_commit = on;
                 CREATE TABLE IF NOT EXISTS plain_events (
                     seq bigserial PRIMARY KEY, id uuid NOT NULL UNIQUE, stream text NOT NULL,
                     version bigint NOT NULL, leaf bytea NOT NULL, UNIQUE (stream, version))",
            )
            .await
            .unwrap();
        let insert = client
            .prepare(
                "INSERT INTO plain_events (id, stream, version, leaf)
                 SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bytea[])",
            )
            .await
            .unwrap();
        let (sender, mut receiver) = mpsc::channel::<(String, Vec<u8>, oneshot::Sender<()>)>(4096);
        tokio::spawn(async move {
            while let Some(first) = receiver.recv().await {
                let mut batch = vec![first];
                while let Ok(next) = receiver.try_recv() {
                    batch.push(next);
                }
                let ids: Vec<uuid::Uuid> = batch.iter().map(|_| uuid::Uuid::now_v7()).collect();
                let streams: Vec<&str> = batch.iter().map(|(s, _, _)| s.as_str()).collect();
                // Versions unique per stream (and increasing, as the
                // ledger's are) without reading: one counter shared by
                // every node. Reading a stream's head is the part of
                // sequencing the baseline leaves out.
                let versions: Vec<i64> = ids
                    .iter()
                    .map(|_| PLAIN_VERSIONS.fetch_add(1, Ordering::Relaxed))
                    .collect();
                let leaves: Vec<&[u8]> = batch.iter().map(|(_, l, _)| l.as_slice()).collect();
                let transaction = client.transaction().await.unwrap();
                transaction
                    .execute(&insert, &[&ids, &streams, &versions, &leaves])
                    .await
                    .unwrap();
                transaction.commit().await.unwrap();
                for (_, _, reply) in batch {
                    let _ = reply.send(());
                }
            }
        });
        PlainPostgres { sender }
    }

    async fn insert(&self, stream: String, leaf: Vec<u8>) {
        let (reply, done) = oneshot::channel();
        self.sender.send((stream, leaf, reply)).await.unwrap();
        done.await.unwrap();
    }
}
