//! `scripts/bench projections`: usage import, rebuild, statement and lineage
//! speed of the royalty projection on the embedded store.
//!
//! Default scale: 1,000,000 usage lines over 10,000 derivatives and
//! 50,000 parties. Options: `--lines N`, `--derivatives N`, `--parties N`,
//! `--lookups N` (lineage queries, default 1000), `--rebuilds N` (rebuilds
//! timed, default 3; the goal is judged on their median). Rebuild is printed
//! beside a baseline measured in the same run: reading and decoding the same
//! events without folding them.

use ledger::store::sqlite::{SqliteConfig, SqliteStore};
use ledger::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
use projections::fold_input::FoldInput;
use projections::lineage::{lineage, LineageQuery};
use projections::runner::Projections;
use projections::statement::{compute_statement, statements};
use projections::usage_import::import_usage;
use rust_decimal::Decimal;
use schemas::catalog as events;
use schemas::usage::UsageLine;
use serde_json::json;
use std::time::{Duration, Instant};
use uuid::Uuid;

struct Options {
    lines: u64,
    derivatives: u64,
    parties: u64,
    lookups: u64,
    /// Rebuilds to time: the goal is judged on their median, since single
    /// runs on a shared machine vary (`docs/performance.md`).
    rebuilds: u64,
}

fn options() -> Options {
    let mut options = Options {
        lines: 1_000_000,
        derivatives: 10_000,
        parties: 50_000,
        lookups: 1_000,
        rebuilds: 3,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let value = || args[i + 1].parse::<u64>().expect("a number");
        match args[i].as_str() {
            "--lines" => options.lines = value(),
            "--derivatives" => options.derivatives = value(),
            "--parties" => options.parties = value(),
            "--lookups" => options.lookups = value(),
            "--rebuilds" => options.rebuilds = value(),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    assert!(options.parties >= 100, "--parties must be at least 100");
    assert!(options.rebuilds >= 1, "--rebuilds must be at least 1");
    options
}

/// An ISWC with a valid check digit for work number `n`.
fn iswc(n: u64) -> String {
    let digits = format!("{:09}", n);
    let weighted: u32 = 1 + digits
        .bytes()
        .enumerate()
        .map(|(i, b)| (i as u32 + 1) * u32::from(b - b'0'))
        .sum::<u32>();
    format!("T-{digits}-{}", (10 - weighted % 10) % 10)
}

fn party(n: u64) -> String {
    format!("p{n:06}")
}

fn split(parties: &[u64], shares: &[&str]) -> serde_json::Value {
    json!(parties
        .iter()
        .zip(shares)
        .map(|(p, s)| json!({"party": party(*p), "share": s}))
        .collect::<Vec<_>>())
}

async fn append_chunked(store: &SqliteStore, requests: Vec<AppendRequest>) {
    let mut chunk = Vec::new();
    let mut count = 0;
    for request in requests {
        count += request.events.len();
        chunk.push(request);
        if count >= 9_000 {
            store.append_all(std::mem::take(&mut chunk)).await.unwrap();
            count = 0;
        }
    }
    if !chunk.is_empty() {
        store.append_all(chunk).await.unwrap();
    }
}

/// CPU time this process has used, all threads, from /proc (Linux): steadier
/// than wall time on a shared machine, for comparing builds.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces): utime and stime
    // are the 12th and 13th, in clock ticks of 1/100 s on Linux.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn rate(count: u64, elapsed: Duration) -> String {
    format!("{:.0}/s", count as f64 / elapsed.as_secs_f64())
}

/// A generation job's stream up to its publication, as the engine appends
/// it: the request and one step (the fold accepts a derivative only after
/// both).
fn job_start(job: Uuid, recording: &str, requested_by: &str) -> AppendRequest {
    use schemas::generation::{generation_stream, GenerationRequested};
    let opening = GenerationRequested::unchanged_remix(job, recording, requested_by)
        .opening_events()
        .map(|(event_type, data)| NewEvent::new(event_type, data));
    AppendRequest::new(
        generation_stream(job),
        ExpectedVersion::Exact(0),
        opening.into(),
    )
}

fn main() {
    let options = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(options));
}

async fn run(o: Options) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        SqliteStore::open(SqliteConfig::new(dir.path(), "bench.example/projections")).unwrap();
    let mut projections = Projections::open(store.database_path()).unwrap();

    // The catalog: parties split in four bands: master (40%), publishing
    // (40%), likeness (8%), creators (the rest).
    let recordings = (o.parties * 4 / 10 / 4).max(1);
    let voice_models = (o.parties * 8 / 100 / 2).max(1);
    let creators_from = recordings * 8 + voice_models * 2;
    let creators = (o.parties - creators_from).max(1);
    let started = Instant::now();
    let mut requests = Vec::new();
    let request = |stream: String, event_type: &str, data: serde_json::Value| {
        AppendRequest::new(
            stream,
            ExpectedVersion::Any,
            vec![NewEvent::new(event_type, data)],
        )
    };
    for p in 0..o.parties {
        requests.push(request(
            events::party_stream(&party(p)),
            events::PARTY_REGISTERED,
            json!({"id": party(p), "name": format!("Party {p}"), "role": "other"}),
        ));
    }
    for r in 0..recordings {
        let w = iswc(r + 1);
        let publishers: Vec<u64> = (0..4).map(|k| recordings * 4 + r * 4 + k).collect();
        requests.push(request(events::work_stream(&w), events::WORK_REGISTERED, json!({"iswc": w, "title": "W", "publishing_splits": split(&publishers, &["0.333333", "0.333333", "0.2", "0.133334"])})));
        let isrc = format!("GBAYE{:07}", r);
        let masters: Vec<u64> = (0..4).map(|k| r * 4 + k).collect();
        requests.push(request(events::recording_stream(&isrc), events::RECORDING_REGISTERED, json!({"isrc": isrc, "title": "R", "work": w, "master_splits": split(&masters, &["0.4", "0.3", "0.2", "0.1"]), "stems": {"mixture": format!("sha256:{:064x}", r)}})));
    }
    for v in 0..voice_models {
        let artists = [recordings * 8 + v * 2, recordings * 8 + v * 2 + 1];
        requests.push(request(events::voice_model_stream(&format!("vm{v}")), events::VOICE_MODEL_REGISTERED, json!({"id": format!("vm{v}"), "artist": party(artists[0]), "consent": {"granted": true}, "training_stems": [format!("sha256:{:064x}", v)], "likeness_splits": split(&artists, &["0.6", "0.4"])})));
    }
    requests.push(request(events::policy_stream("v1"), events::POLICY_SET, json!({"id": "v1", "platform_share": "0.3", "creator_share": "0.15", "master_share": "0.55"})));
    for d in 0..o.derivatives {
        let id = Uuid::from_u128(u128::from(d) + 1);
        let r = d % recordings;
        let creator = party(creators_from + d % creators);
        let mut job = job_start(id, &format!("GBAYE{:07}", r), &creator);
        job.events.push(NewEvent::new(schemas::generation::DERIVATIVE_PUBLISHED, json!({
            "job": id, "derivative": id, "recording": format!("GBAYE{:07}", r), "requested_by": creator,
            "recipe": {}, "output": format!("sha256:{:064x}", d), "output_pcm": format!("sha256:{:064x}", d + (1 << 40)), "duration_ms": 1000,
            "attribution": [{"kind": "recording", "ref": format!("GBAYE{:07}", r), "weight_bp": 6000 + (d % 7) * 100}, {"kind": "voice", "ref": format!("vm{}", d % voice_models), "weight_bp": 4000 - (d % 7) * 100}]})));
        requests.push(job);
    }
    append_chunked(&store, requests).await;
    println!(
        "setup: {} parties, {} recordings, {} voice models, {} derivatives appended in {:.1?}",
        o.parties,
        recordings,
        voice_models,
        o.derivatives,
        started.elapsed()
    );

    // Usage import, in files of 10,000 lines, each all-or-nothing.
    let started = Instant::now();
    let mut n = 0u64;
    while n < o.lines {
        // Line i reports derivative i mod D; successive passes over the
        // derivatives alternate periods and currencies, so every statement
        // (period, currency) pays every party: 50k parties at full scale.
        let pass = |i: u64| i / o.derivatives;
        let batch: Vec<UsageLine> = (n..(n + 10_000).min(o.lines))
            .map(|i| UsageLine {
                line_id: format!("L{i}"),
                period: if pass(i) % 2 == 0 {
                    "2026-01".into()
                } else {
                    "2026-02".into()
                },
                derivative: Uuid::from_u128(u128::from(i % o.derivatives) + 1),
                territory: "US".into(),
                currency: if pass(i) / 2 % 2 == 0 {
                    "USD".into()
                } else {
                    "JPY".into()
                },
                streams: 100,
                gross: if pass(i) / 2 % 2 == 0 {
                    Decimal::new(1_234_567 + i as i64 % 1000, 6)
                } else {
                    Decimal::from(120 + i % 50)
                },
                reverses: None,
            })
            .collect();
        n += batch.len() as u64;
        import_usage(&store, &mut projections, batch).await.unwrap();
    }
    projections.catch_up(&store).await.unwrap();
    let import = started.elapsed();
    println!(
        "usage import: {} lines in {:.1?}: {} lines/s (check, append, fold)",
        o.lines,
        import,
        rate(o.lines, import)
    );

    // Baseline: read and decode every event as the fold reads it (usage
    // lines straight from their leaf bytes), without folding.
    let size = store.size().await.unwrap();
    let started = Instant::now();
    let mut from = 0;
    while from < size {
        let batch = store.read_leaves(from, 10_000).await.unwrap();
        for leaf in &batch {
            std::hint::black_box(FoldInput::from_leaf(leaf).unwrap());
        }
        from += batch.len() as u64;
    }
    let baseline = started.elapsed();

    let read_decode = baseline;
    let mut rebuilds = Vec::new();
    for round in 1..=o.rebuilds {
        let started = Instant::now();
        let cpu_before = cpu_time();
        projections.rebuild(&store).await.unwrap();
        let rebuild = started.elapsed();
        let cpu = cpu_time()
            .zip(cpu_before)
            .map(|(after, before)| {
                let cpu = after.saturating_sub(before);
                format!(
                    "; CPU {cpu:.1?} over all threads, {:.1} us per usage line",
                    cpu.as_secs_f64() * 1e6 / o.lines as f64
                )
            })
            .unwrap_or_default();
        println!(
            "rebuild {round}/{}: {size} events ({} usage lines) in {:.1?}: {} events/s, {} usage lines/s; baseline read+decode {:.1?} ({:.2}x of rebuild time){cpu}",
            o.rebuilds, o.lines, rebuild, rate(size, rebuild), rate(o.lines, rebuild), baseline, baseline.as_secs_f64() / rebuild.as_secs_f64()
        );
        rebuilds.push(rebuild);
    }
    rebuilds.sort();
    let rebuild = rebuilds[rebuilds.len() / 2];
    println!(
        "rebuild, median of {}: {:.1?}: {} usage lines/s",
        o.rebuilds,
        rebuild,
        rate(o.lines, rebuild)
    );

    let started = Instant::now();
    let statement = statements(&store, &mut projections, "2026-01", Some("USD"), None)
        .await
        .unwrap();
    let elapsed = started.elapsed();
    // Baseline: the same statement from the period's lines, each decoded
    // whole (what the detail view reads), then summed.
    let started = Instant::now();
    let checkpoint = statement[0].checkpoint.clone();
    let names = projections.party_names(checkpoint.size).unwrap();
    let lines = projections
        .booked_lines("2026-01", "USD", checkpoint.size)
        .unwrap();
    let from_lines = compute_statement("2026-01", "USD", checkpoint, &lines, &names).unwrap();
    let baseline = started.elapsed();
    assert_eq!(
        from_lines, statement[0],
        "both paths give the same statement"
    );
    println!(
        "statement 2026-01 USD: {} parties, {} usage lines, total {} in {:.1?}; baseline from decoded lines {:.1?} ({:.1}x)",
        statement[0].lines.len(),
        lines.len(),
        statement[0].total,
        elapsed,
        baseline,
        baseline.as_secs_f64() / elapsed.as_secs_f64()
    );
    let rebuild_rate = o.lines as f64 / rebuild.as_secs_f64();
    let read_decode_rate = size as f64 / read_decode.as_secs_f64();

    let mut latencies = Vec::with_capacity(o.lookups as usize);
    for k in 0..o.lookups {
        let id = Uuid::from_u128(u128::from((k * 7919) % o.derivatives) + 1);
        let started = Instant::now();
        let answer = lineage(
            &store,
            &mut projections,
            &LineageQuery::Derivative(id),
            None,
        )
        .await
        .unwrap();
        latencies.push(started.elapsed());
        std::hint::black_box(answer);
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!("lineage by derivative id ({} lookups, ~{} usage lines and proofs each): p50 {:.1?}, p99 {:.1?}", o.lookups, o.lines / o.derivatives, at(0.5), at(0.99));
    let verdict = |ok: bool| if ok { "meets" } else { "MISSES" };
    println!(
        "goals (2 cores, 1M lines, 50k parties): rebuild >= 200,000 usage lines/s: {} ({rebuild_rate:.0}/s, median; reading and decoding the log alone, no fold: {read_decode_rate:.0} events/s); statement <= 2 s: {}; lineage p99 <= 20 ms: {}",
        verdict(rebuild_rate >= 200_000.0),
        verdict(elapsed.as_secs_f64() <= 2.0),
        verdict(at(0.99).as_secs_f64() <= 0.020)
    );
}
