//! PostgreSQL for the end-to-end tests of the scale-out store: fresh
//! databases on the server `scripts/test` starts, a cluster of a test's own
//! (for fault injection), and `ledgerline append --jsonl` clients that
//! record what was acknowledged.
//!
//! Without `LEDGERLINE_TEST_POSTGRES_URL` / `LEDGERLINE_TEST_PG_BINDIR` these
//! tests say they were skipped; with `LEDGERLINE_REQUIRE_POSTGRES=1` they
//! fail instead, so CI can never skip them silently.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The value of `var`, or None after printing why the test is skipped
/// (a panic when `LEDGERLINE_REQUIRE_POSTGRES=1`).
pub fn required_env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => {
            assert!(
                std::env::var("LEDGERLINE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "LEDGERLINE_REQUIRE_POSTGRES=1 but {var} is unset: the PostgreSQL tests cannot run"
            );
            eprintln!("skipped: set {var} (scripts/test does)");
            None
        }
    }
}

/// Runs SQL through `psql` (the server package's client) and returns its output.
pub fn psql(url: &str, sql: &str) -> String {
    let output = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-X", "-A", "-t", "-c", sql])
        .output()
        .expect("psql runs (Debian package postgresql-client)");
    assert!(
        output.status.success(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The URL with its database replaced.
pub fn url_with_database(url: &str, database: &str) -> String {
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

/// A fresh database, dropped when the test ends.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl TestDatabase {
    pub fn create(admin_url: &str) -> TestDatabase {
        let name = format!("ledgerline_test_{}", uuid::Uuid::new_v4().simple());
        psql(admin_url, &format!("CREATE DATABASE {name}"));
        TestDatabase {
            admin_url: admin_url.to_string(),
            url: url_with_database(admin_url, &name),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &self.admin_url,
                "-X",
                "-q",
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// A PostgreSQL cluster of the test's own, in a temporary directory, on a
/// free loopback port, so the test may restart and kill it.
pub struct Cluster {
    bindir: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    pub url: String,
}

/// initdb and postgres refuse to run as root: as root, run them as the
/// `postgres` OS user that Debian's package creates.
fn as_postgres_user(program: &Path) -> Command {
    // `id -u` tells root apart without a libc dependency.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn check(mut command: Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Cluster {
    /// initdb and start; None (skipped) without `LEDGERLINE_TEST_PG_BINDIR`.
    pub fn start() -> Option<Cluster> {
        let bindir = PathBuf::from(required_env("LEDGERLINE_TEST_PG_BINDIR")?);
        let dir = tempfile::Builder::new()
            .prefix("ledgerline-pg-fault")
            .tempdir()
            .unwrap();
        let _ = Command::new("chown")
            .args(["postgres:", &dir.path().display().to_string()])
            .output();
        let mut initdb = as_postgres_user(&bindir.join("initdb"));
        initdb.arg("-D").arg(dir.path().join("data")).args([
            "-U",
            "postgres",
            "--encoding=UTF8",
            "--no-locale",
        ]);
        check(initdb, "initdb");
        std::fs::write(
            dir.path().join("data/pg_hba.conf"),
            "local all all trust\nhost all all 127.0.0.1/32 trust\n",
        )
        .unwrap();
        let port = free_port();
        let cluster = Cluster {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            bindir,
            dir,
            port,
        };
        cluster.pg_ctl("start");
        Some(cluster)
    }

    fn pg_ctl(&self, action: &str) {
        let mut command = as_postgres_user(&self.bindir.join("pg_ctl"));
        command
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "60", "-m", "fast", "-o"])
            .arg(format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=on",
                self.port,
                self.dir.path().display()
            ))
            .arg(action);
        check(command, &format!("pg_ctl {action}"));
    }

    /// `pg_ctl restart`: a clean shutdown and start.
    pub fn restart(&self) {
        self.pg_ctl("restart");
    }

    /// SIGKILL of the postmaster, then a start (crash recovery from the WAL).
    pub fn kill_and_start(&self) {
        let pid_file =
            std::fs::read_to_string(self.dir.path().join("data/postmaster.pid")).unwrap();
        let pid = pid_file.lines().next().unwrap().trim().to_string();
        check(
            {
                let mut kill = Command::new("kill");
                kill.args(["-9", &pid]);
                kill
            },
            "kill -9 of the postmaster",
        );
        // The old server processes notice the postmaster's death and exit;
        // until they have, a new postmaster refuses to start beside them.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut command = as_postgres_user(&self.bindir.join("pg_ctl"));
            command
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .arg("-l")
                .arg(self.dir.path().join("server.log"))
                .args(["-w", "-t", "60", "-o"])
                .arg(format!(
                    "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=on",
                    self.port,
                    self.dir.path().display()
                ))
                .arg("start");
            let output = command.output().unwrap();
            if output.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not start again after kill -9: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut command = as_postgres_user(&self.bindir.join("pg_ctl"));
        command
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = command.output();
    }
}

/// What one `append --jsonl` client had acknowledged: line payload key ->
/// (seq, leaf hash).
pub type Acks = Vec<(String, u64, String)>;

/// Runs `ledgerline ARGS append --stream STREAM --type test.tick --jsonl -`,
/// feeding `{"node": node, "n": n}` lines from `first_n` on until `until`,
/// and returns the acknowledged lines and whether the process succeeded.
/// A client that hits an error exits non-zero; what it acknowledged before
/// counts all the same.
pub fn append_until(
    base: &[String],
    stream: &str,
    node: u64,
    first_n: u64,
    until: Instant,
) -> (Acks, bool, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ledgerline"))
        .args(base)
        .args([
            "append",
            "--stream",
            stream,
            "--type",
            "test.tick",
            "--jsonl",
            "-",
        ])
        .env_remove("LEDGERLINE_DATA")
        .env_remove("LEDGERLINE_STORE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ledgerline starts");
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let mut n = first_n;
        while Instant::now() < until {
            if writeln!(stdin, "{{\"node\":{node},\"n\":{n}}}").is_err() {
                break; // the client stopped on an error
            }
            n += 1;
            // Pace the input a little: the client keeps 64 in flight anyway.
            if n % 64 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        n
    });
    let stdout = child.stdout.take().unwrap();
    let acks: Acks = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .map(|line| {
            let ack: Value = serde_json::from_str(&line).expect("acks are whole JSON lines");
            let key = format!("{node}:{}", ack["line"].as_u64().unwrap() - 1 + first_n);
            (
                key,
                ack["seq"].as_u64().unwrap(),
                ack["leaf_hash"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let status = child.wait().unwrap();
    let next_n = feeder.join().unwrap();
    (acks, status.success(), next_n)
}

/// Every event of the log as (payload key "node:n", seq, leaf hash), read
/// with `ledgerline events`, after checking that seqs run 0..len with no
/// gap and no duplicate.
pub fn events_by_key(base: &[String]) -> std::collections::HashMap<String, (u64, String)> {
    let output = Command::new(env!("CARGO_BIN_EXE_ledgerline"))
        .args(base)
        .arg("events")
        .env_remove("LEDGERLINE_DATA")
        .env_remove("LEDGERLINE_STORE")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "events: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut events = std::collections::HashMap::new();
    for (expected_seq, line) in String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .enumerate()
    {
        let event: Value = serde_json::from_str(line).unwrap();
        let seq = event["seq"].as_u64().unwrap();
        assert_eq!(seq, expected_seq as u64, "seqs are gap-free and unique");
        use base64::Engine as _;
        let leaf = base64::engine::general_purpose::STANDARD
            .decode(event["leaf"].as_str().unwrap())
            .unwrap();
        let envelope: Value = serde_json::from_slice(&leaf).unwrap();
        let data = &envelope["data"];
        let key = format!("{}:{}", data["node"], data["n"]);
        let previous = events.insert(
            key.clone(),
            (seq, event["leaf_hash"].as_str().unwrap().to_string()),
        );
        assert!(previous.is_none(), "payload {key} was appended twice");
    }
    events
}

/// `ledgerline verify` must pass; returns its output line.
pub fn verify(base: &[String]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ledgerline"))
        .args(base)
        .arg("verify")
        .env_remove("LEDGERLINE_DATA")
        .env_remove("LEDGERLINE_STORE")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "verify failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The global arguments of one node: its own data directory, the shared
/// store and the shared signing key.
pub fn node_args(data: &Path, url: &str, key_file: &Path) -> Vec<String> {
    vec![
        "--data".into(),
        data.display().to_string(),
        "--store".into(),
        url.to_string(),
        "--signing-key".into(),
        key_file.display().to_string(),
    ]
}

/// Writes a new checkpoint signing key for the default origin, for every node to share.
pub fn write_shared_key(dir: &Path) -> PathBuf {
    let key_file = dir.join("shared.key");
    let signer = ledger::NoteSigner::generate(ledger::checkpoint::DEFAULT_ORIGIN).unwrap();
    std::fs::write(&key_file, signer.private_key()).unwrap();
    key_file
}
