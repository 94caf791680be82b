//! Two `ledgerline serve` nodes on one PostgreSQL log share the API's
//! records: a key made on one node's command line is accepted by both, a
//! revocation is seen by both at once, and a retried `Idempotency-Key`
//! reaching the other node gets the first response and appends nothing.

mod common;
mod postgres_support;

use common::server::Server;
use common::{append_to, generation_job};
use postgres_support::{node_args, required_env, write_shared_key, TestDatabase};
use serde_json::json;
use std::path::Path;
use std::process::Command;

const DERIVATIVE: &str = "6f1c1c1e-1111-4a4a-8b8b-000000000001";

/// Runs `ledgerline OPTIONS ARGS` and returns its stdout, asserting success.
fn run(options: &[String], args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ledgerline"))
        .args(options)
        .args(args)
        .env_remove("LEDGERLINE_DATA")
        .env_remove("LEDGERLINE_STORE")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ledgerline {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A party, a work, a recording, the policy and one published derivative,
/// appended through the ledger library as the importers and the engine
/// write them (`ledgerline append` refuses their types).
fn publish_a_derivative(url: &str, key_file: &Path) {
    let key = std::fs::read_to_string(key_file).unwrap();
    let signer = ledger::NoteSigner::from_private_key(key.trim()).unwrap();
    let mut streams: Vec<(String, &str, serde_json::Value)> = ["m1", "p1", "u1"]
        .into_iter()
        .map(|party| {
            (
                format!("party-{party}"),
                "catalog.party-registered",
                json!({"id": party, "name": party.to_uppercase(), "role": "other"}),
            )
        })
        .collect();
    streams.push((
        "work-T-000000001-0".into(),
        "catalog.work-registered",
        json!({"iswc": "T-000000001-0", "title": "W", "publishing_splits": [{"party": "p1", "share": "1"}]}),
    ));
    streams.push((
        "recording-GBAYE0601498".into(),
        "catalog.recording-registered",
        json!({"isrc": "GBAYE0601498", "title": "R", "work": "T-000000001-0",
               "master_splits": [{"party": "m1", "share": "1"}],
               "stems": {"mixture": format!("sha256:{:064x}", 1)}}),
    ));
    streams.push((
        "policy-v1".into(),
        "catalog.policy-set",
        json!({"id": "v1", "platform_share": "0.3", "creator_share": "0.15", "master_share": "0.55"}),
    ));
    let published = json!({"job": DERIVATIVE, "derivative": DERIVATIVE, "recording": "GBAYE0601498",
        "requested_by": "u1", "recipe": {}, "output": format!("sha256:{:064x}", 2),
        "output_pcm": format!("sha256:{:064x}", 3), "duration_ms": 1000,
        "attribution": [{"kind": "recording", "ref": "GBAYE0601498", "weight_bp": 10000}]});
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let config = ledger::store::postgres::PostgresConfig::new(url, signer);
            let store = ledger::store::postgres::PostgresStore::open(config)
                .await
                .unwrap();
            for (stream, event_type, data) in streams {
                append_to(
                    &store,
                    &stream,
                    vec![ledger::NewEvent::new(event_type, data)],
                )
                .await;
            }
            let (stream, events) = generation_job(&published);
            append_to(&store, &stream, events).await;
        });
}

fn token(options: &[String], role: &str) -> (String, String) {
    let created: serde_json::Value =
        serde_json::from_str(&run(options, &["keys", "create", "--role", role])).unwrap();
    (
        created["id"].as_str().unwrap().to_string(),
        created["token"].as_str().unwrap().to_string(),
    )
}

#[test]
fn nodes_of_one_postgres_log_share_keys_and_idempotency() {
    let Some(admin_url) = required_env("LEDGERLINE_TEST_POSTGRES_URL") else {
        return;
    };
    let database = TestDatabase::create(&admin_url);
    let dir = tempfile::tempdir().unwrap();
    let key_file = write_shared_key(dir.path());
    let (data_a, data_b) = (dir.path().join("node-a"), dir.path().join("node-b"));
    let node_a = node_args(&data_a, &database.url, &key_file);
    let node_b = node_args(&data_b, &database.url, &key_file);
    // Keys made before any node ran: the command applies the migrations.
    let (ingest_id, ingest) = token(&node_a, "ingest");
    let (_, auditor) = token(&node_b, "auditor");
    publish_a_derivative(&database.url, &key_file);

    let a = Server::start_with(&data_a, &node_a[2..]);
    let b = Server::start_with(&data_b, &node_b[2..]);
    for server in [&a, &b] {
        assert_eq!(server.get("/v1/events?limit=1", Some(&auditor)).status, 200);
        assert_eq!(server.get("/v1/events?limit=1", Some(&ingest)).status, 403);
    }
    // Both nodes list the same keys, whichever data directory asks.
    assert_eq!(
        run(&node_a, &["keys", "list"]),
        run(&node_b, &["keys", "list"])
    );
    assert!(!data_a.join("api.db").exists() && !data_b.join("api.db").exists());

    let report = format!(
        "line_id,period,derivative,territory,currency,streams,gross,reverses\nA1,2026-04,{DERIVATIVE},US,USD,10,4.00,\n"
    );
    let post = |server: &Server, key: &str, body: &str| {
        let authorization = format!("Bearer {ingest}");
        server.post(
            "/v1/usage",
            &[
                ("authorization", &authorization),
                ("content-type", "text/csv"),
                ("idempotency-key", key),
            ],
            body.as_bytes(),
        )
    };
    let size = |server: &Server| {
        server.get("/healthz", None).json()["events"]
            .as_u64()
            .unwrap()
    };
    let first = post(&a, "report-1", &report);
    assert_eq!(first.status, 200, "{}", first.body);
    let after_first = size(&a);
    // The retry reaches the other node: same answer, nothing appended.
    let retry = post(&b, "report-1", &report);
    assert_eq!((retry.status, &retry.body), (200, &first.body));
    assert_eq!(size(&b), after_first);
    // The same key for another request is refused on either node.
    let other = report.replace("A1,", "A2,");
    let reused = post(&b, "report-1", &other);
    assert_eq!(
        (reused.status, reused.error_code().as_str()),
        (409, "id_reused")
    );

    // Concurrent requests with one key, spread over both nodes, reserve it
    // in the shared records: all get one response, and the line is in the
    // log once.
    let concurrent = report.replace("A1,", "C1,");
    let post = &post;
    let replies: Vec<(u16, String)> = std::thread::scope(|scope| {
        let posts: Vec<_> = (0..8)
            .map(|n| {
                let (server, body) = (if n % 2 == 0 { &a } else { &b }, &concurrent);
                scope.spawn(move || post(server, "report-3", body))
            })
            .collect();
        posts
            .into_iter()
            .map(|post| {
                let reply = post.join().unwrap();
                (reply.status, reply.body)
            })
            .collect()
    });
    assert_eq!(replies[0].0, 200, "{}", replies[0].1);
    assert!(
        replies.iter().all(|reply| reply == &replies[0]),
        "{replies:?}"
    );
    let after_concurrent = size(&a);
    assert_eq!(after_concurrent, after_first + 1, "one line, imported once");

    // Revoked on one node's command line, refused by both at once.
    run(&node_b, &["keys", "revoke", &ingest_id]);
    for server in [&a, &b] {
        let refused = post(server, "report-2", &other);
        assert_eq!(refused.status, 401, "{}", refused.body);
    }
    assert_eq!(size(&a), after_concurrent);
}
