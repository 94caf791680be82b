//! Crash safety: SIGKILL the binary mid-append, again and again. Every
//! acknowledged append must survive, nothing half-written may be visible,
//! and the audit must pass after each restart.
//!
//! A killed process's unsynced writes stay in the kernel's page cache, so
//! this proves process crashes, not power loss; `ledger/tests/power_cut.rs`
//! cuts the power under the store.

mod common;

use common::{ledgerline, ok};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

const ROUNDS: u64 = 6;

#[test]
fn sigkill_never_loses_an_acknowledged_append() {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    eprintln!("crash test seed {seed} (rerun with CRASH_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    // (round, n) -> leaf hash acknowledged for it.
    let mut acknowledged: HashMap<(u64, u64), (u64, String)> = HashMap::new();

    for round in 0..ROUNDS {
        let mut child = ledgerline(data)
            .args([
                "append",
                "--stream",
                &format!("crash-{round}"),
                "--type",
                "test.tick",
                "--jsonl",
                "-",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || {
            for n in 0.. {
                if writeln!(stdin, "{{\"round\":{round},\"n\":{n}}}").is_err() {
                    break; // the process was killed
                }
            }
        });
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .map(|line| {
                    serde_json::from_str::<Value>(&line).expect("acks are whole JSON lines")
                })
                .collect::<Vec<_>>()
        });
        // Let it get going, then kill it at a random point.
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(rng.gen_range(150..700)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let acks = reader.join().unwrap();
        feeder.join().unwrap();
        eprintln!(
            "round {round}: killed after {:?} with {} acknowledged",
            started.elapsed(),
            acks.len()
        );
        for ack in acks {
            // Line numbers start at 1; payload n = line - 1.
            let n = ack["line"].as_u64().unwrap() - 1;
            acknowledged.insert(
                (round, n),
                (
                    ack["seq"].as_u64().unwrap(),
                    ack["leaf_hash"].as_str().unwrap().to_string(),
                ),
            );
        }

        // After each crash: the audit passes and every acknowledged append is there.
        let verified = ok(data, &["verify"]);
        assert!(verified.starts_with("ok "), "{verified}");
        let stored: HashMap<u64, Value> = ok(data, &["events"])
            .lines()
            .map(|line| {
                let event: Value = serde_json::from_str(line).unwrap();
                (event["seq"].as_u64().unwrap(), event)
            })
            .collect();
        for ((r, n), (seq, leaf_hash)) in &acknowledged {
            let event = stored
                .get(seq)
                .unwrap_or_else(|| panic!("acknowledged seq {seq} (round {r}, n {n}) is lost"));
            assert_eq!(event["leaf_hash"].as_str().unwrap(), leaf_hash);
            assert_eq!(event["stream"], format!("crash-{r}"));
        }
        let total: usize = stored.len();
        assert_eq!(
            stored.keys().max().map_or(0, |m| m + 1) as usize,
            total,
            "no gaps"
        );
    }
    assert!(
        acknowledged.len() as u64 >= ROUNDS,
        "the test must actually append something"
    );
}
