//! End to end over HTTP: the real `ledgerline serve` answers the log
//! endpoints with exactly what the CLI prints, appends durably and
//! idempotently, refuses bad input with the one error shape and writes
//! nothing, and on SIGTERM leaves a log covered by a final checkpoint.

mod common;

use common::server::Server;
use common::{ok, ok_json, run};
use ledger::envelope::{format_time, DATA_DEPTH_MAX};
use ledger::merkle::{
    leaf_hash, verify_consistency, verify_inclusion, Frontier, Hash, HashReader, MerkleError,
};
use ledger::store::sequencer::{assemble_leaf, PreparedEvent};
use ledger::NoteVerifier;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

fn hash(value: &Value) -> Hash {
    hex::decode(value.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn hashes(value: &Value) -> Vec<Hash> {
    value.as_array().unwrap().iter().map(hash).collect()
}

fn admin_token(data: &Path) -> String {
    let created = ok_json(data, &["keys", "create", "--role", "admin"]);
    created["token"].as_str().unwrap().to_string()
}

/// Events in the log, as the server counts them.
fn event_count(server: &Server) -> u64 {
    let health = server.get("/healthz", None);
    assert_eq!(health.status, 200, "{}", health.body);
    health.json()["events"].as_u64().unwrap()
}

#[test]
fn log_endpoints_serve_what_the_cli_prints() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let token = admin_token(data);
    let server = Server::start(data);

    // The checkpoint and the key, byte for byte as the CLI prints them.
    let note = server.get("/v1/checkpoint", None);
    assert_eq!(note.status, 200);
    assert!(
        note.content_type.starts_with("text/plain"),
        "{}",
        note.content_type
    );
    assert_eq!(note.body, ok(data, &["checkpoint"]));
    let key = server.get("/v1/key", None).json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(key, ok(data, &["key"]).trim());
    let verifier = NoteVerifier::from_verifier_key(&key).unwrap();
    assert_eq!(verifier.verify_checkpoint(&note.body).unwrap().size, 0);
    // Without a witness policy there are no witnesses to name.
    assert_eq!(
        server.get("/v1/witnesses", None).json(),
        json!({"quorum": 0, "witnesses": []})
    );

    let one = server.post_json(
        "/v1/streams/notes-1/events",
        &token,
        &json!({"type": "note.test", "data": {"title": "Yesterday"}, "expected_version": 0}),
    );
    assert_eq!(one.status, 201, "{}", one.body);
    assert_eq!(one.json()["events"][0]["seq"], 0);
    let two = server.post_json(
        "/v1/streams/notes-2/events",
        &token,
        &json!([{"type": "note.test", "data": {"n": 1}}, {"type": "note.test", "data": {"n": 2}}]),
    );
    assert_eq!(two.status, 201, "{}", two.body);
    let appended = two.json()["events"].clone();
    assert_eq!(
        (appended[0]["seq"].as_u64(), appended[1]["seq"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(
        (
            appended[0]["version"].as_u64(),
            appended[1]["version"].as_u64()
        ),
        (Some(0), Some(1))
    );

    // A stale expected version: 409 with the typed conflict, nothing written.
    let conflict = server.post_json(
        "/v1/streams/notes-1/events",
        &token,
        &json!({"type": "note.test", "data": {}, "expected_version": 0}),
    );
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.error_code(), "version_conflict");
    assert_eq!(
        conflict.json()["error"]["conflict"],
        json!({"stream": "notes-1", "expected_version": 0, "actual_version": 1})
    );
    assert_eq!(event_count(&server), 3);

    // Events: the same objects as `ledgerline events`, paged by seq.
    let cli_events: Vec<Value> = ok(data, &["events"])
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let page = server.get("/v1/events", Some(&token)).json();
    assert_eq!(page["events"], Value::Array(cli_events.clone()));
    assert_eq!(page["next"], 3);
    assert_eq!(page["events"][1]["leaf_hash"], appended[0]["leaf_hash"]);
    let page = server.get("/v1/events?from=1&limit=1", Some(&token)).json();
    assert_eq!(page["events"], json!([cli_events[1]]));
    assert_eq!(page["next"], 2);

    // Streams, paged by version.
    let stream = server.get("/v1/streams/notes-2", Some(&token)).json();
    assert_eq!(stream["events"], json!([cli_events[1], cli_events[2]]));
    let stream = server
        .get("/v1/streams/notes-2?from=1", Some(&token))
        .json();
    assert_eq!(stream["events"], json!([cli_events[2]]));
    assert_eq!(stream["next"], 2);
    let missing = server.get("/v1/streams/notes-9", Some(&token));
    assert_eq!(
        (missing.status, missing.error_code().as_str()),
        (404, "not_found")
    );
    let bad_name = server.get("/v1/streams/bad%20name", Some(&token));
    assert_eq!(
        (bad_name.status, bad_name.error_code().as_str()),
        (400, "bad_request")
    );
    let too_many = server.get("/v1/events?limit=10001", Some(&token));
    assert_eq!(too_many.status, 400);
    assert!(too_many.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("limit"));
    let not_a_number = server.get("/v1/events?from=x", Some(&token));
    assert_eq!(not_a_number.status, 400);
    assert!(not_a_number.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("from"));

    // Proofs: the CLI's JSON, and they verify with the RFC 6962 checks.
    let inclusion = server.get("/v1/proofs/inclusion?seq=1&size=3", None);
    assert_eq!(inclusion.status, 200, "{}", inclusion.body);
    let inclusion = inclusion.json();
    assert_eq!(
        inclusion,
        ok_json(data, &["proof", "inclusion", "--seq", "1", "--size", "3"])
    );
    let root = hash(&inclusion["root_hash"]);
    verify_inclusion(
        1,
        3,
        &hash(&cli_events[1]["leaf_hash"]),
        &hashes(&inclusion["proof"]),
        &root,
    )
    .unwrap();
    let consistency = server
        .get("/v1/proofs/consistency?from=1&to=3", None)
        .json();
    assert_eq!(
        consistency,
        ok_json(data, &["proof", "consistency", "--from", "1", "--to", "3"])
    );
    verify_consistency(
        1,
        3,
        &hashes(&consistency["proof"]),
        &hash(&consistency["from_root"]),
        &root,
    )
    .unwrap();
    for bad in [
        "/v1/proofs/inclusion?size=3",
        "/v1/proofs/inclusion?seq=3&size=3",
        "/v1/proofs/inclusion?seq=0&size=99",
        "/v1/proofs/consistency?from=3&to=1",
        "/v1/proofs/consistency?from=1&to=99",
        "/v1/proofs/consistency",
    ] {
        let reply = server.get(bad, None);
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (400, "bad_request"),
            "{bad}"
        );
    }

    // The writer signs within a second of the last batch: that checkpoint
    // is the root the proofs lead to.
    let deadline = Instant::now() + Duration::from_secs(10);
    let latest = loop {
        let checkpoint = verifier
            .verify_checkpoint(&server.get("/v1/checkpoint", None).body)
            .unwrap();
        if checkpoint.size == 3 || Instant::now() > deadline {
            break checkpoint;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!((latest.size, latest.root), (3, root));
    let first = server.get("/v1/checkpoint?size=0", None);
    assert_eq!(first.body, ok(data, &["checkpoint", "--size", "0"]));
    // Events 1 and 2 were one atomic batch: no checkpoint can have size 2.
    let absent = server.get("/v1/checkpoint?size=2", None);
    assert_eq!(
        (absent.status, absent.error_code().as_str()),
        (404, "not_found")
    );

    // SIGTERM: a clean exit whose final checkpoint covers every append.
    let status = server.stop();
    assert!(status.success(), "serve exits cleanly on SIGTERM: {status}");
    let note = ok(data, &["checkpoint"]);
    assert_eq!(verifier.verify_checkpoint(&note).unwrap().size, 3);
    let verified = run(data, &["verify"]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

/// A refused append: headers, body, then the status, error code and a
/// phrase the message must contain.
type BadAppend<'a> = (&'a [(&'a str, &'a str)], &'a str, u16, &'a str, &'a str);

#[test]
fn appends_are_idempotent_and_bad_input_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let token = admin_token(data);
    let server = Server::start(data);
    let authorization = format!("Bearer {token}");
    let path = "/v1/streams/reports-2026-11/events";
    let post = |headers: &[(&str, &str)], body: &str| {
        let mut all = vec![("authorization", authorization.as_str())];
        all.extend_from_slice(headers);
        server.post(path, &all, body.as_bytes())
    };
    let json_type = ("content-type", "application/json");

    // Idempotency-Key: the retry gets the first response and appends nothing.
    let body = r#"[{"type":"test.reported","data":{"plays":1}},{"type":"test.reported","data":{"plays":2}}]"#;
    let first = post(&[json_type, ("idempotency-key", "retry-1")], body);
    assert_eq!(first.status, 201, "{}", first.body);
    let retry = post(&[json_type, ("idempotency-key", "retry-1")], body);
    assert_eq!(
        (retry.status, retry.body.as_str()),
        (201, first.body.as_str())
    );
    assert_eq!(event_count(&server), 2);
    // The same key for a different request is refused, not applied.
    let reused = post(
        &[json_type, ("idempotency-key", "retry-1")],
        r#"{"type":"test.reported","data":{"plays":3}}"#,
    );
    assert_eq!(
        (reused.status, reused.error_code().as_str()),
        (409, "id_reused")
    );
    assert!(reused.body.contains("Idempotency-Key"));
    // A new key is a new append; so is no key at all.
    let other = post(&[json_type, ("idempotency-key", "retry-2")], body);
    assert_eq!(other.status, 201);
    assert_ne!(other.body, first.body);
    // A client-chosen event id is idempotent too.
    let with_id = r#"{"type":"test.reported","data":{"plays":4},"id":"7b0b6c55-4c8e-4c39-9d43-2a4f0f1f0a01"}"#;
    let by_id = post(&[json_type], with_id);
    assert_eq!(by_id.status, 201);
    assert_eq!(post(&[json_type], with_id).body, by_id.body);
    assert_eq!(event_count(&server), 5);

    // Bad input: the one error shape, the right status, nothing written.
    let cases: &[BadAppend] = &[
        (
            &[],
            r#"{"type":"t","data":{}}"#,
            415,
            "unsupported_media_type",
            "application/json",
        ),
        (
            &[("content-type", "text/plain")],
            r#"{"type":"t","data":{}}"#,
            415,
            "unsupported_media_type",
            "text/plain",
        ),
        (&[json_type], "{not json", 400, "bad_request", "JSON"),
        (
            &[json_type],
            r#"{"data":{}}"#,
            400,
            "bad_request",
            "`type` is missing",
        ),
        (
            &[json_type],
            r#"{"type":"t","data":{},"colour":1}"#,
            400,
            "bad_request",
            "`colour` is not an event field",
        ),
        (
            &[json_type],
            r#"[{"type":"t","data":{}},{"type":"t","data":{},"expected_version":1}]"#,
            400,
            "bad_request",
            "event [1]: expected_version",
        ),
        (
            &[json_type],
            r#"{"type":"t","data":{},"id":"nope"}"#,
            400,
            "bad_request",
            "field `id` must be a UUID",
        ),
        (&[json_type], "42", 400, "bad_request", "list"),
        (&[json_type], "[]", 400, "bad_request", "at least one"),
        (
            &[json_type, ("idempotency-key", "")],
            r#"{"type":"t","data":{}}"#,
            400,
            "bad_request",
            "Idempotency-Key",
        ),
        (
            &[json_type],
            r#"{"type":"t","data":[1]}"#,
            422,
            "unprocessable",
            "object",
        ),
        (
            &[json_type],
            r#"{"type":"9 bad","data":{}}"#,
            422,
            "unprocessable",
            "event type",
        ),
        (
            &[json_type],
            r#"{"type":"t","data":{"n":9007199254740993}}"#,
            422,
            "unprocessable",
            "string",
        ),
    ];
    for (headers, body, status, code, mentions) in cases {
        let reply = post(headers, body);
        assert_eq!(reply.status, *status, "{body}: {}", reply.body);
        assert_eq!(reply.error_code(), *code, "{body}");
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            message.contains(mentions),
            "{body}: {message:?} should mention {mentions:?}"
        );
    }
    let bad_stream = server.post_json(
        "/v1/streams/bad%20name/events",
        &token,
        &json!({"type": "t", "data": {}}),
    );
    assert_eq!(
        (bad_stream.status, bad_stream.error_code().as_str()),
        (400, "bad_request")
    );

    // Over the body limit: refused from the declared length, before the body is read.
    let mut socket = std::net::TcpStream::connect(server.address()).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        socket,
        "POST {path} HTTP/1.1\r\nhost: {}\r\nauthorization: {authorization}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n[",
        server.address(),
        (8 << 20) + 1
    )
    .unwrap();
    let mut response = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&response).contains("payload_too_large") {
        let read = socket.read(&mut buffer).unwrap();
        assert!(
            read > 0,
            "the server answered: {}",
            String::from_utf8_lossy(&response)
        );
        response.extend_from_slice(&buffer[..read]);
    }
    assert!(
        response.starts_with(b"HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    assert_eq!(event_count(&server), 5);

    // Unknown paths and methods get the error shape too.
    let unknown = server.get("/v2/nothing", None);
    assert_eq!(
        (unknown.status, unknown.error_code().as_str()),
        (404, "not_found")
    );
    let wrong_method = server.post("/v1/checkpoint", &[json_type], b"{}");
    assert_eq!(
        (wrong_method.status, wrong_method.error_code().as_str()),
        (405, "method_not_allowed")
    );

    // Request ids: the caller's is echoed, otherwise one is made.
    let echoed = server.post("/v1/key", &[("x-request-id", "trace-42")], b"");
    assert_eq!(echoed.request_id.as_deref(), Some("trace-42"));
    let made = server.get("/healthz", None).request_id.unwrap();
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");

    // Metrics count what happened, in the Prometheus text format.
    let metrics = server.get("/metrics", Some(&token));
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .content_type
        .starts_with("text/plain; version=0.0.4"));
    let value = |name: &str| -> f64 {
        metrics
            .body
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{name} missing:\n{}", metrics.body))
            .parse()
            .unwrap()
    };
    // Five successful requests (8 events, retries included); the five
    // refused by the ledger (reused key, empty list, three 422s) are failures.
    assert_eq!(value("ledgerline_append_batch_events_count"), 5.0);
    assert_eq!(value("ledgerline_append_events_total"), 8.0);
    assert_eq!(value("ledgerline_append_failures_total"), 5.0);
    assert_eq!(value("ledgerline_writer_queue_depth"), 0.0);
    assert!(value("ledgerline_http_requests_total{class=\"4xx\"}") >= 15.0);

    assert!(server.stop().success());
}

/// The attack of a forged derivative: an ingest key appending the engine's
/// `generation.derivative-published` to a generation stream. Every event
/// type and stream the engine and the importers own is refused with 403,
/// naming the reserved prefixes, and nothing is written.
#[test]
fn raw_appends_of_engine_and_importer_events_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let ingest = ok_json(data, &["keys", "create", "--role", "ingest"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let server = Server::start(data);
    let job = "6f1c1c1e-1111-4a4a-8b8b-000000000001";
    let forged = json!({"job": job, "derivative": job, "recording": "GBAYE0601498",
        "requested_by": "mallory", "recipe": {}, "output": format!("sha256:{}", "2".repeat(64)),
        "output_pcm": format!("sha256:{}", "3".repeat(64)), "duration_ms": 1000,
        "attribution": [{"kind": "recording", "ref": "GBAYE0601498", "weight_bp": 10000}]});
    let attempts = [
        (
            format!("/v1/streams/generation-{job}/events"),
            json!({"type": "generation.derivative-published", "data": forged}),
        ),
        (
            "/v1/streams/notes/events".to_string(),
            json!([{"type": "note.test", "data": {}}, {"type": "usage.line-imported", "data": {}}]),
        ),
        (
            "/v1/streams/notes/events".to_string(),
            json!({"type": "catalog.party-registered", "data": {"id": "mallory"}}),
        ),
        (
            "/v1/streams/party-mallory/events".to_string(),
            json!({"type": "note.test", "data": {}}),
        ),
    ];
    for (path, body) in attempts {
        let refused = server.post_json(&path, &ingest, &body);
        assert_eq!(
            (refused.status, refused.error_code().as_str()),
            (403, "forbidden"),
            "{path}: {}",
            refused.body
        );
        assert!(refused.body.contains("is reserved"), "{}", refused.body);
    }
    assert_eq!(event_count(&server), 0);
    let allowed = server.post_json(
        "/v1/streams/notes/events",
        &ingest,
        &json!({"type": "note.test", "data": {}}),
    );
    assert_eq!(allowed.status, 201, "{}", allowed.body);
}

#[test]
fn openapi_documents_every_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let reply = server.get("/openapi.json", None);
    assert_eq!(reply.status, 200);
    let document = reply.json();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        document["openapi"]
    );
    let mut documented: Vec<String> = Vec::new();
    let mut operation_ids: Vec<String> = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                documented.push(format!("{} {path}", method.to_uppercase()));
                operation_ids.push(operation["operationId"].as_str().unwrap().to_string());
            }
        }
    }
    // OpenAPI requires operation ids to be unique; generated clients name
    // their methods after them.
    let count = operation_ids.len();
    operation_ids.sort();
    operation_ids.dedup();
    assert_eq!(
        operation_ids.len(),
        count,
        "duplicate operationId in {operation_ids:?}"
    );
    documented.sort();
    let mut served = vec![
        "GET /healthz",
        "GET /metrics",
        "GET /openapi.json",
        "GET /tlog/checkpoint",
        "GET /tlog/tile/{path}",
        "GET /v1/checkpoint",
        "GET /v1/checkpoints",
        "GET /v1/events",
        "GET /v1/key",
        "GET /v1/witnesses",
        "GET /v1/proofs/consistency",
        "GET /v1/proofs/inclusion",
        "GET /v1/lineage/{derivative}",
        "GET /v1/statements/{period}",
        "GET /v1/streams/{stream}",
        "GET /v1/generations/{id}",
        "GET /v1/generations/{id}/events",
        "GET /v1/artifacts/{hash}",
        "GET /v1/takedowns",
        "POST /v1/generations",
        "POST /v1/streams/{stream}/events",
        "POST /v1/catalog",
        "POST /v1/lineage",
        "POST /v1/reconciliations",
        "POST /v1/usage",
        "POST /v1/voice-models/{id}/consent-withdrawals",
    ];
    served.sort();
    assert_eq!(documented, served);
    // Every documented path answers something other than 404/405.
    for entry in &served {
        let (method, path) = entry.split_once(' ').unwrap();
        let path = path
            .replace("{stream}", "s")
            .replace("{period}", "2026-03")
            .replace("{derivative}", "6f1c1c1e-1111-4a4a-8b8b-000000000001")
            .replace("{id}", "6f1c1c1e-1111-4a4a-8b8b-000000000001")
            .replace("{hash}", &"0".repeat(64));
        let reply = match method {
            "GET" => server.get(&path, None),
            _ => server.post(&path, &[], b""),
        };
        assert!(
            ![404, 405].contains(&reply.status),
            "{entry}: {}",
            reply.status
        );
    }
    let schemes = &document["components"]["securitySchemes"]["bearer"];
    assert_eq!(schemes["scheme"], "bearer");
    let errors = &document["components"]["schemas"]["ErrorBody"];
    assert!(errors.is_object(), "the error shape is documented");
    assert!(server.stop().success());
}

/// Data `depth` objects deep: `{"a":{"a":{}}}` is 3 deep.
fn nested(depth: usize) -> Value {
    (1..depth).fold(json!({}), |inner, _| json!({ "a": inner }))
}

/// The Merkle hashes stored in a data directory's SQLite log.
struct StoredHashes<'a>(&'a rusqlite::Connection);

impl HashReader for StoredHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
        indexes
            .iter()
            .map(|&index| {
                let hash: Vec<u8> = self
                    .0
                    .query_row(
                        "SELECT hash FROM merkle_hashes WHERE idx = ?1",
                        [index as i64],
                        |row| row.get(0),
                    )
                    .map_err(|e| MerkleError::Read(e.to_string()))?;
                hash.try_into()
                    .map_err(|_| MerkleError::Read(format!("hash {index} is not 32 bytes")))
            })
            .collect()
    }
}

/// Writes one event as the first of `stream` straight into the SQLite log,
/// past every check the writer makes, as a writer without them would have:
/// the leaf the sequencer builds, and its Merkle hashes when `with_hashes`.
fn append_behind_the_writer(data: &Path, stream: &str, payload: &Value, with_hashes: bool) {
    let conn = rusqlite::Connection::open(data.join(ledger::store::sqlite::DATABASE_FILE)).unwrap();
    let size: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
        .unwrap();
    let event = PreparedEvent {
        id: uuid::Uuid::new_v4(),
        id_given: false,
        event_type: "test.raw".into(),
        schema: 1,
        // One member per object and no numbers: serde_json's bytes are RFC 8785's.
        data: serde_json::to_vec(payload).unwrap(),
    };
    let time = format_time(time::OffsetDateTime::now_utc());
    let leaf = assemble_leaf(&event, size as u64, stream, 0, &time, None);
    conn.execute(
        "INSERT INTO events (seq, id, stream, version, type, leaf) VALUES (?1, ?2, ?3, 0, ?4, ?5)",
        rusqlite::params![
            size,
            event.id.as_bytes().as_slice(),
            stream,
            event.event_type,
            leaf
        ],
    )
    .unwrap();
    if with_hashes {
        let mut frontier = Frontier::load(size as u64, &StoredHashes(&conn)).unwrap();
        let mut hashes = Vec::new();
        frontier.append(leaf_hash(&leaf), &mut hashes);
        for (index, hash) in hashes {
            conn.execute(
                "INSERT INTO merkle_hashes (idx, hash) VALUES (?1, ?2)",
                rusqlite::params![index as i64, hash.as_slice()],
            )
            .unwrap();
        }
    }
}

#[test]
fn a_log_holding_an_event_too_deep_for_readers_opens_appends_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let token = admin_token(data);
    let append = [
        "append",
        "--stream",
        "s",
        "--type",
        "test.tick",
        "--data",
        "{}",
    ];
    ok_json(data, &append);
    // One level deeper than any writer now accepts: the leaf, envelope
    // included, is past serde_json's nesting limit.
    append_behind_the_writer(data, "deep", &nested(DATA_DEPTH_MAX + 1), true);
    assert_eq!(ok_json(data, &append)["seq"], 2);
    let server = Server::start(data);
    assert_eq!(event_count(&server), 3);
    let appended = server.post_json(
        "/v1/streams/s/events",
        &token,
        &json!({"type": "test.tick", "data": {}}),
    );
    assert_eq!(appended.status, 201, "{}", appended.body);
    let page = server.get("/v1/events", Some(&token));
    assert_eq!(page.json()["events"].as_array().unwrap().len(), 4);
    assert!(server.stop().success());
    assert!(ok(data, &["verify"]).starts_with("ok 4 events"));
}

#[test]
fn healthz_reports_a_writer_that_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let token = admin_token(data);
    let server = Server::start(data);
    let append = || {
        server.post_json(
            "/v1/streams/s/events",
            &token,
            &json!({"type": "test.tick", "data": {}}),
        )
    };
    assert_eq!(append().status, 201);
    assert_eq!(server.get("/healthz", None).status, 200);
    // An event another process wrote without its Merkle hashes: the writer
    // cannot extend the tree past it, while reads still answer.
    append_behind_the_writer(data, "ghost", &json!({}), false);
    assert_eq!(append().status, 500);
    let health = server.get("/healthz", None);
    assert_eq!(health.status, 503, "{}", health.body);
    assert_eq!(health.error_code(), "unavailable");
    let message = health.json()["error"]["message"].to_string();
    assert!(message.contains("cannot be appended to"), "{message}");
}

/// Pages through `path` (`/v1/events` or a stream's) from its start,
/// checking that each page ends at the event that takes its leaves to
/// 4 MiB and that its `next` continues it; returns each page's positions.
fn page_through(server: &Server, token: &str, path: &str, position: &str) -> Vec<Vec<u64>> {
    let leaf_bytes = |event: &Value| {
        use base64::Engine as _;
        let leaf = event["leaf"].as_str().unwrap();
        base64::engine::general_purpose::STANDARD
            .decode(leaf)
            .unwrap()
            .len()
    };
    let mut pages = Vec::new();
    let mut from = 0;
    loop {
        let page = server.get(&format!("{path}?limit=200&from={from}"), Some(token));
        assert_eq!(page.status, 200, "{}", page.body);
        let page = page.json();
        let events = page["events"].as_array().unwrap();
        if events.is_empty() {
            assert_eq!(page["next"], from);
            return pages;
        }
        let bytes: Vec<usize> = events.iter().map(leaf_bytes).collect();
        let before_last: usize = bytes[..bytes.len() - 1].iter().sum();
        assert!(before_last < 4 << 20, "{before_last}");
        let positions: Vec<u64> = events
            .iter()
            .map(|e| e[position].as_u64().unwrap())
            .collect();
        from = page["next"].as_u64().unwrap();
        assert_eq!(from, positions.last().unwrap() + 1);
        pages.push(positions);
    }
}

#[test]
fn event_pages_end_at_4_mib_of_leaves_and_say_where_to_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let token = admin_token(data);
    let server = Server::start(data);
    // Leaves of about 60 kB (the largest are 64 KiB): 70 of them reach
    // 4 MiB, fewer than the page's limit of 200.
    let pad = "x".repeat(60_000);
    let events: Vec<_> = (0..150)
        .map(|n| json!({"type": "test.big", "data": {"n": n, "pad": pad}}))
        .collect();
    for chunk in events.chunks(50) {
        let appended = server.post_json("/v1/streams/big/events", &token, &json!(chunk));
        assert_eq!(appended.status, 201, "{}", appended.body);
    }
    let pages = page_through(&server, &token, "/v1/events", "seq");
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(
        sizes,
        [70, 70, 10],
        "pages end at the event that reaches 4 MiB"
    );
    assert_eq!(pages.concat(), (0..150).collect::<Vec<u64>>());
    // The stream's pages end the same way.
    assert_eq!(
        page_through(&server, &token, "/v1/streams/big", "version"),
        pages
    );
}

#[test]
fn events_from_past_any_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let token = admin_token(data);
    let server = Server::start(data);
    let appended = server.post_json(
        "/v1/streams/s/events",
        &token,
        &json!({"type": "test.tick", "data": {}}),
    );
    assert_eq!(appended.status, 201);
    for from in [1u64 << 63, u64::MAX] {
        let reply = server.get(&format!("/v1/events?from={from}"), Some(&token));
        assert_eq!(reply.status, 400, "from={from}: {}", reply.body);
    }
}
