//! Property test of the HTTP API's body parsers: any bytes, and any damage
//! to a valid body, sent to each endpoint that reads a body, get an answer
//! below 500; and a body refused as malformed, too large or of the wrong
//! media type leaves the log exactly as long as it was.

mod common;

#[path = "../projections/tests/hostile_input/damage.rs"]
mod damage;

use common::ok_json;
use common::server::Server;
use damage::mutate;
use proptest::prelude::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// Requests per property; each is one loopback round trip.
const CASES: u32 = 200;

/// The endpoints that read a body, each with its media type and a valid body.
fn endpoints() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let derivative = uuid::Uuid::from_u128(1);
    vec![
        (
            "/v1/streams/notes-1/events",
            "application/json",
            json!([{"type": "note.added", "data": {"text": "hello", "n": [1, 2.5, null]}}, {"type": "note.added", "data": {}}])
                .to_string()
                .into_bytes(),
        ),
        (
            "/v1/catalog",
            "application/json",
            json!({"parties": [{"id": "label", "name": "Blue Label", "role": "label"}],
                   "policy": {"id": "v1", "platform_share": "0.30", "creator_share": "0.20", "master_share": "0.5"}})
            .to_string()
            .into_bytes(),
        ),
        (
            "/v1/usage",
            "text/csv",
            format!("line_id,period,derivative,territory,currency,streams,gross,reverses\nL1,2026-03,{derivative},US,USD,10,1.00,\n")
                .into_bytes(),
        ),
        (
            "/v1/reconciliations?period=2026-03",
            "text/csv",
            b"party,currency,amount\nlabel,USD,1.00\n".to_vec(),
        ),
        (
            "/v1/generations",
            "application/json",
            json!({"recording": "GBAYE0601498", "requested_by": "creator", "territory": "US",
                   "recipe": {"kind": "remix", "stems": {"drums": {"gain_db": -3.0}}}})
            .to_string()
            .into_bytes(),
        ),
    ]
}

fn log_size(server: &Server) -> u64 {
    let health = server.get("/healthz", None);
    assert_eq!(health.status, 200, "{}", health.body);
    health.json()["events"].as_u64().unwrap()
}

/// Sends `body` to endpoint `which` and checks the answer.
fn send(server: &Server, token: &str, which: usize, media_type: &str, body: &[u8]) {
    let (path, _, _) = &endpoints()[which];
    let before = log_size(server);
    let reply = server.post(
        path,
        &[
            ("content-type", media_type),
            ("authorization", &format!("Bearer {token}")),
        ],
        body,
    );
    assert!(
        reply.status < 500,
        "{path} answered {} to {:?}: {}",
        reply.status,
        String::from_utf8_lossy(body),
        reply.body
    );
    // An accepted generation appends its events from the worker, later:
    // wait for the job to end, so that the next request's count is its own.
    if reply.status == 202 {
        wait_for_job_end(server, token, &reply.json());
    }
    // Malformed, oversized and mistyped bodies are refused before anything
    // is decided; other refusals (a licence refusal, say) may be recorded.
    if matches!(reply.status, 400 | 413 | 415) {
        assert_eq!(
            log_size(server),
            before,
            "{path} refused a body with {} but the log grew: {}",
            reply.status,
            reply.body
        );
    }
}

/// How long a queued generation job may take to end (it fails at once:
/// the log holds no catalog).
const JOB_WAIT: Duration = Duration::from_secs(60);

fn wait_for_job_end(server: &Server, token: &str, accepted: &serde_json::Value) {
    let job = accepted["job"].as_str().expect("a 202 names its job");
    let deadline = Instant::now() + JOB_WAIT;
    loop {
        let status = server.get(&format!("/v1/generations/{job}"), Some(token));
        assert_eq!(status.status, 200, "{}", status.body);
        if !matches!(status.json()["state"].as_str(), Some("queued" | "running")) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "job {job} did not end: {}",
            status.body
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn hostile_bodies_get_answers_below_500_and_refused_ones_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let token = ok_json(dir.path(), &["keys", "create", "--role", "admin"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let server = Server::start(dir.path());
    let count = endpoints().len();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(CASES));
    let body = prop_oneof![
        // Any bytes.
        (0..count, proptest::collection::vec(any::<u8>(), 0..2048))
            .prop_map(|(which, bytes)| (which, None, bytes)),
        // A valid body, damaged.
        (
            0..count,
            proptest::collection::vec(
                (any::<usize>(), any::<u8>(), any::<u8>(), 1usize..64),
                1..12
            )
        )
            .prop_map(|(which, edits)| (
                which,
                None,
                mutate(&endpoints()[which].2, &edits)
            )),
        // A valid body under another media type.
        (
            0..count,
            prop_oneof![
                Just("text/plain"),
                Just("application/json"),
                Just("text/csv"),
                Just("multipart/form-data")
            ]
        )
            .prop_map(|(which, media_type)| (
                which,
                Some(media_type),
                endpoints()[which].2.clone()
            )),
    ];
    runner
        .run(&body, |(which, media_type, bytes)| {
            let media_type = media_type.unwrap_or(endpoints()[which].1);
            send(&server, &token, which, media_type, &bytes);
            Ok(())
        })
        .unwrap();
    assert!(server.stop().success());
}
