//! End to end over HTTP: a generation request is queued (202), runs on the
//! server's worker, reports its steps and result, streams its log events as
//! Server-Sent Events in seq order, and its output downloads with the hash
//! the log records. A refused request ends `rejected` with only its
//! rejection event; bad input, missing keys and wrong roles get their 4xx; a
//! full queue answers 429 with `Retry-After`; and a shutdown abandons queued
//! jobs with a final `generation.abandoned` event.

mod common;

use common::server::Server;
use common::{ok, ok_json};
use inference::artifacts::ArtifactStore;
use inference::sample_catalog;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const ISRC: &str = "ZZLL02600001";
/// Short clips keep the jobs quick on CI's software GPU.
const SECONDS: f64 = 1.5;
/// The queue test's clips: long enough (about 1.3 s of work on 2 cores)
/// that the job it keeps running is still running when the requests after
/// it, and the shutdown, arrive some milliseconds later.
const LONG_SECONDS: f64 = 16.0;
/// How long a test waits for one job to end.
const JOB_WAIT: Duration = Duration::from_secs(180);
/// Every server in this file lets one job wait behind the running one, so
/// that a burst of requests fills the queue.
const QUEUE_JOBS: &str = "1";

/// Renders `seconds` of the sample song's stems into the artifact store and
/// imports a catalog naming them (as tests/generate.rs does).
fn setup(data: &Path, seconds: f64) {
    let stems = common::stored_stems(data, &sample_catalog::tracks()[0], seconds);
    let catalog = json!({
        "parties": [
            {"id": "label", "name": "Label", "role": "label"},
            {"id": "pub", "name": "Publisher", "role": "publisher"}
        ],
        "works": [{"iswc": "T-034524680-1", "title": "Song", "publishing_splits": [{"party": "pub", "share": "1"}]}],
        "recordings": [{"isrc": ISRC, "title": "Song", "work": "T-034524680-1",
                        "master_splits": [{"party": "label", "share": "1"}], "stems": stems,
                        "licence": {"participating": true}}],
        "policy": {"id": "v1", "platform_share": "0.3", "creator_share": "0.1", "master_share": "0.5"}
    });
    let path = data.join("catalog.json");
    std::fs::write(&path, catalog.to_string()).unwrap();
    ok(data, &["catalog", "import", &path.display().to_string()]);
}

fn token(data: &Path, args: &[&str]) -> String {
    let mut all = vec!["keys", "create"];
    all.extend_from_slice(args);
    ok_json(data, &all)["token"].as_str().unwrap().to_string()
}

fn start(data: &Path) -> Server {
    // Read by `ledgerline serve` (`--generation-queue`); set once for the
    // whole test binary, before any server starts.
    static QUEUE: std::sync::Once = std::sync::Once::new();
    QUEUE.call_once(|| std::env::set_var("LEDGERLINE_GENERATION_QUEUE", QUEUE_JOBS));
    Server::start(data)
}

/// A remix with five steps (load, mix, stretch, shift, final mix).
fn remix() -> Value {
    json!({"recording": ISRC, "requested_by": "creator-1", "territory": "US",
           "recipe": {"kind": "remix", "stems": {"drums": {"gain_db": -3.0}},
                      "tempo_rate": 1.25, "semitones": 1}})
}

/// An agent for what the common helpers do not read: binary bodies,
/// long event streams and arbitrary response headers.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(JOB_WAIT))
        .build()
        .new_agent()
}

struct RawReply {
    status: u16,
    content_type: String,
    retry_after: Option<String>,
    body: Vec<u8>,
}

fn raw(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> RawReply {
    let mut response = response.expect("the server answers");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    RawReply {
        status: response.status().as_u16(),
        content_type: header("content-type").unwrap_or_default(),
        retry_after: header("retry-after"),
        body: response.body_mut().read_to_vec().unwrap(),
    }
}

fn raw_get(server: &Server, path: &str, token: &str) -> RawReply {
    raw(agent()
        .get(format!("{}{path}", server.base))
        .header("authorization", format!("Bearer {token}"))
        .call())
}

fn raw_post(server: &Server, path: &str, token: &str, body: &Value) -> RawReply {
    raw(agent()
        .post(format!("{}{path}", server.base))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .send(body.to_string().as_bytes()))
}

/// POST /v1/generations of `body` with an `Idempotency-Key`.
fn post_generation(server: &Server, token: &str, key: &str, body: &Value) -> RawReply {
    raw(agent()
        .post(format!("{}/v1/generations", server.base))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .send(body.to_string().as_bytes()))
}

/// Polls a job's status every 10 ms until its state is not one of `waiting`,
/// and returns that status.
fn poll_until_not(server: &Server, job: &str, token: &str, waiting: &[&str]) -> Value {
    let deadline = Instant::now() + JOB_WAIT;
    loop {
        let reply = server.get(&format!("/v1/generations/{job}"), Some(token));
        assert_eq!(reply.status, 200, "{}", reply.body);
        let status = reply.json();
        let state = status["state"].as_str().unwrap();
        if !waiting.contains(&state) {
            return status;
        }
        assert!(Instant::now() < deadline, "job {job} still {state}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until the worker has taken the job (and not yet finished it).
fn wait_until_running(server: &Server, job: &str, token: &str) {
    let status = poll_until_not(server, job, token, &["queued"]);
    assert_eq!(
        status["state"], "running",
        "job {job} ended before the test saw it run: {status}"
    );
}

/// Waits until the job is neither queued nor running.
fn wait_for_end(server: &Server, job: &str, token: &str) -> Value {
    poll_until_not(server, job, token, &["queued", "running"])
}

/// One Server-Sent Event: its `event:`, `id:` and `data:` fields.
#[derive(Debug)]
struct SseEvent {
    event: String,
    id: Option<u64>,
    data: Value,
}

/// Parses a `text/event-stream` body (WHATWG HTML, section 9.2); comments
/// (keep-alives) are skipped.
fn parse_sse(body: &str) -> Vec<SseEvent> {
    let mut events = Vec::new();
    for block in body.split("\n\n") {
        let (mut event, mut id, mut data) = (None, None, String::new());
        for line in block.lines() {
            if let Some(value) = line.strip_prefix("event:") {
                event = Some(value.trim().to_string());
            } else if let Some(value) = line.strip_prefix("id:") {
                id = Some(value.trim().parse().unwrap());
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push_str(value.trim());
            }
        }
        if let Some(event) = event {
            events.push(SseEvent {
                event,
                id,
                data: serde_json::from_str(&data).unwrap(),
            });
        }
    }
    events
}

#[test]
fn a_generation_runs_streams_its_events_and_serves_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    setup(data, SECONDS);
    let generator = token(data, &["--role", "generator"]);
    let auditor = token(data, &["--role", "auditor"]);
    let server = start(data);

    let headers = |token: &str, key: &str| {
        vec![
            ("authorization".to_string(), format!("Bearer {token}")),
            ("content-type".to_string(), "application/json".to_string()),
            ("idempotency-key".to_string(), key.to_string()),
        ]
    };
    let post_once = |key: &str| {
        let headers = headers(&generator, key);
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        server.post("/v1/generations", &headers, remix().to_string().as_bytes())
    };
    let accepted = post_once("remix-1");
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let accepted = accepted.json();
    let job = accepted["job"].as_str().unwrap().to_string();
    assert_eq!(accepted["status"], format!("/v1/generations/{job}"));
    assert_eq!(accepted["events"], format!("/v1/generations/{job}/events"));
    // A retry with the same key is the same job, and queues nothing.
    let retried = post_once("remix-1");
    assert_eq!(retried.status, 202, "{}", retried.body);
    assert_eq!(retried.json(), accepted);

    // The event stream, followed from the start, ends with the publication.
    let stream = raw_get(&server, &format!("/v1/generations/{job}/events"), &auditor);
    assert_eq!(stream.status, 200);
    assert!(
        stream.content_type.starts_with("text/event-stream"),
        "{}",
        stream.content_type
    );
    let events = parse_sse(std::str::from_utf8(&stream.body).unwrap());
    let types: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        types,
        [
            "generation.requested",
            "generation.step",
            "generation.step",
            "generation.step",
            "generation.step",
            "generation.step",
            "generation.derivative-published",
            "generation.credentials-issued"
        ]
    );
    for pair in events.windows(2) {
        assert!(pair[0].id.unwrap() < pair[1].id.unwrap(), "seq order");
    }
    for (version, event) in events.iter().enumerate() {
        // Each event's data is the event as GET /v1/streams/{stream} renders it.
        assert_eq!(event.data["seq"].as_u64(), event.id);
        assert_eq!(event.data["type"], event.event.as_str());
        assert_eq!(event.data["stream"], format!("generation-{job}"));
        assert_eq!(event.data["version"], version as u64);
    }
    let page = server.get(&format!("/v1/streams/generation-{job}"), Some(&auditor));
    assert_eq!(page.status, 200);
    let rendered: Vec<Value> = events.iter().map(|e| e.data.clone()).collect();
    assert_eq!(page.json()["events"], json!(rendered));

    // The status lists the steps and names the output.
    let status = wait_for_end(&server, &job, &generator);
    assert_eq!(status["state"], "published", "{status}");
    assert_eq!(status["error"], Value::Null);
    let steps = status["steps"].as_array().unwrap();
    let ops: Vec<&str> = steps.iter().map(|s| s["op"].as_str().unwrap()).collect();
    assert_eq!(
        ops,
        ["load-stems", "mix", "time-stretch", "pitch-shift", "mix"]
    );
    let step_seqs: Vec<u64> = steps.iter().map(|s| s["seq"].as_u64().unwrap()).collect();
    let streamed_step_seqs: Vec<u64> = events
        .iter()
        .filter(|e| e.event == "generation.step")
        .map(|e| e.id.unwrap())
        .collect();
    assert_eq!(step_seqs, streamed_step_seqs);
    for step in steps {
        assert!(["gpu", "cpu"].contains(&step["backend"].as_str().unwrap()));
        assert!(step["duration_ms"].is_u64());
    }
    let result = &status["result"];
    assert_eq!(result["derivative"], job.as_str());
    assert_eq!(
        result["attribution"],
        json!([{"kind": "recording", "ref": ISRC, "weight_bp": 10000}])
    );

    // The output downloads, by prefixed or bare hash, as distributed: with
    // its Content Credentials, the file credentials-issued names.
    let output = result["output"].as_str().unwrap();
    let file = result["file"].as_str().unwrap();
    assert_ne!(file, output);
    for path in [
        format!("/v1/artifacts/{output}"),
        format!("/v1/artifacts/{}", output.strip_prefix("sha256:").unwrap()),
        format!("/v1/artifacts/{file}"),
    ] {
        let download = raw_get(&server, &path, &generator);
        assert_eq!(download.status, 200);
        assert_eq!(download.content_type, "audio/wav");
        assert_eq!(inference::artifacts::file_hash(&download.body), file);
        let store = inference::credentials::read_manifest_store(&download.body).unwrap();
        assert!(store.to_string().contains("org.ledgerline.provenance"));
    }

    // A request the catalog does not license: rejected, one event only.
    let unknown = json!({"recording": "ZZLL09999999", "requested_by": "creator-1", "territory": "US",
                         "recipe": {"kind": "remix"}});
    let refused = server.post_json("/v1/generations", &generator, &unknown);
    assert_eq!(refused.status, 202, "{}", refused.body);
    let refused_job = refused.json()["job"].as_str().unwrap().to_string();
    let status = wait_for_end(&server, &refused_job, &auditor);
    assert_eq!(status["state"], "rejected", "{status}");
    assert_eq!(status["steps"], json!([]));
    assert_eq!(status["result"], Value::Null);
    assert!(status["error"].as_str().unwrap().contains("ZZLL09999999"));
    let page = server
        .get(
            &format!("/v1/streams/generation-{refused_job}"),
            Some(&auditor),
        )
        .json();
    let types: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["generation.rejected"]);
    let stream = raw_get(
        &server,
        &format!("/v1/generations/{refused_job}/events"),
        &auditor,
    );
    let events = parse_sse(std::str::from_utf8(&stream.body).unwrap());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event, "generation.rejected");

    // Two jobs ran (the idempotent retry queued none), one per outcome.
    let metrics = server.get("/metrics", Some(&auditor)).body;
    assert!(
        metrics.contains("ledgerline_generation_jobs_total{outcome=\"published\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ledgerline_generation_jobs_total{outcome=\"rejected\"} 1\n"),
        "{metrics}"
    );
    let log = server.get("/v1/events?limit=10000", Some(&auditor)).json();
    let mut generation_streams: Vec<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["stream"].as_str().unwrap())
        .filter(|s| s.starts_with("generation-"))
        .collect();
    generation_streams.dedup();
    assert_eq!(generation_streams.len(), 2, "{generation_streams:?}");

    assert!(server.stop().success());
}

#[test]
fn bad_requests_keys_and_roles_get_their_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    setup(data, SECONDS);
    let generator = token(data, &["--role", "generator"]);
    let ingest = token(data, &["--role", "ingest"]);
    let label = token(data, &["--role", "label", "--party", "label"]);
    let auditor = token(data, &["--role", "auditor"]);
    let server = start(data);
    let unknown_job = "/v1/generations/6f1c1c1e-1111-4a4a-8b8b-000000000001";

    // 400: a request that does not validate names its field; nothing is queued.
    let mut fast = remix();
    fast["recipe"]["tempo_rate"] = json!(3.0);
    let reply = server.post_json("/v1/generations", &generator, &fast);
    assert_eq!(reply.status, 400);
    assert_eq!(reply.error_code(), "bad_request");
    assert!(reply.body.contains("recipe.tempo_rate"), "{}", reply.body);
    let mut extra = remix();
    extra["priority"] = json!(1);
    let reply = server.post_json("/v1/generations", &generator, &extra);
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("priority"), "{}", reply.body);
    let auth = format!("Bearer {generator}");
    let reply = server.post(
        "/v1/generations",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        b"{not json",
    );
    assert_eq!(reply.status, 400);
    // 415: not JSON by its media type.
    let reply = server.post(
        "/v1/generations",
        &[("authorization", &auth), ("content-type", "text/plain")],
        remix().to_string().as_bytes(),
    );
    assert_eq!(reply.status, 415);
    assert_eq!(reply.error_code(), "unsupported_media_type");
    // 400: not a job id, not a hash.
    let reply = server.get("/v1/generations/not-a-uuid", Some(&generator));
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("not a UUID"), "{}", reply.body);
    let reply = server.get("/v1/generations/not-a-uuid/events", Some(&generator));
    assert_eq!(reply.status, 400);
    let reply = server.get("/v1/artifacts/sha256:xyz", Some(&generator));
    assert_eq!(reply.status, 400);
    assert_eq!(reply.error_code(), "bad_request");

    // 401 without a key, on every endpoint.
    let reply = server.post(
        "/v1/generations",
        &[("content-type", "application/json")],
        remix().to_string().as_bytes(),
    );
    assert_eq!(reply.status, 401);
    for path in [
        unknown_job.to_string(),
        format!("{unknown_job}/events"),
        format!("/v1/artifacts/{}", "0".repeat(64)),
    ] {
        let reply = server.get(&path, None);
        assert_eq!(reply.status, 401, "{path}");
        assert_eq!(reply.error_code(), "unauthorized");
    }

    // 403 outside the roles: ingest, label and auditor keys may not submit;
    // ingest and label keys may not read jobs or artifacts.
    for key in [&ingest, &label, &auditor] {
        let reply = server.post_json("/v1/generations", key, &remix());
        assert_eq!(reply.status, 403);
        assert_eq!(reply.error_code(), "forbidden");
    }
    for key in [&ingest, &label] {
        for path in [
            unknown_job.to_string(),
            format!("{unknown_job}/events"),
            format!("/v1/artifacts/{}", "0".repeat(64)),
        ] {
            let reply = server.get(&path, Some(key));
            assert_eq!(reply.status, 403, "{path}");
        }
    }

    // 404 for a job and an artifact nobody knows.
    for path in [
        unknown_job.to_string(),
        format!("{unknown_job}/events"),
        format!("/v1/artifacts/{}", "0".repeat(64)),
    ] {
        let reply = server.get(&path, Some(&auditor));
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.error_code(), "not_found");
    }

    // Nothing above reached the log.
    let log = server.get("/v1/events?limit=10000", Some(&auditor)).json();
    assert!(log["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| !e["stream"].as_str().unwrap().starts_with("generation-")));
    assert!(server.stop().success());
}

#[test]
fn a_full_queue_answers_429_and_shutdown_abandons_queued_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    setup(data, LONG_SECONDS);
    let generator = token(data, &["--role", "generator"]);
    let server = start(data);

    // The first job is queued, then taken by the worker once its compute
    // engine is up (a second or more on a loaded machine). The burst waits
    // for that, so that it meets a running job and an empty queue.
    let first = raw_post(&server, "/v1/generations", &generator, &remix());
    assert_eq!(
        first.status,
        202,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    let first: Value = serde_json::from_slice(&first.body).unwrap();
    let first = first["job"].as_str().unwrap().to_string();
    wait_until_running(&server, &first, &generator);

    // One more job waits behind the running one; the rest are refused.
    let mut accepted = vec![first];
    let mut refused = 0;
    for _ in 0..5 {
        let reply = raw_post(&server, "/v1/generations", &generator, &remix());
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        match reply.status {
            202 => accepted.push(body["job"].as_str().unwrap().to_string()),
            429 => {
                refused += 1;
                assert_eq!(body["error"]["code"], "too_many_requests");
                let seconds: u64 = reply.retry_after.as_deref().unwrap().parse().unwrap();
                assert!(seconds > 0);
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(
        (accepted.len(), refused),
        (2, 4),
        "a queue of one behind a running job takes one of five: {accepted:?}"
    );

    // Shut down at once: the queued job is abandoned before it starts, the
    // running one finishes, credentials and all; either way each job's
    // stream ends with a last event.
    assert!(server.stop().success());
    let log: Vec<Value> = ok(data, &["events"])
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let types = |job: &str| -> Vec<String> {
        let stream = format!("generation-{job}");
        log.iter()
            .filter(|event| event["stream"] == stream.as_str())
            .map(|event| event["type"].as_str().unwrap().to_string())
            .collect()
    };
    let running = types(&accepted[0]);
    assert_eq!(
        running.first().map(String::as_str),
        Some("generation.requested")
    );
    assert_eq!(
        running.last().map(String::as_str),
        Some("generation.credentials-issued"),
        "{running:?}"
    );
    assert_eq!(types(&accepted[1]), ["generation.abandoned"]);
}

/// The server's `EVENT_STREAMS_PER_KEY_MAX`.
const EVENT_STREAMS_PER_KEY_MAX: usize = 8;

#[test]
fn event_streams_beyond_the_per_key_cap_get_429() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    setup(data, LONG_SECONDS);
    let generator = token(data, &["--role", "generator"]);
    let auditor = token(data, &["--role", "auditor"]);
    let server = start(data);
    let submitted = raw_post(&server, "/v1/generations", &generator, &remix());
    assert_eq!(submitted.status, 202);
    let job: Value = serde_json::from_slice(&submitted.body).unwrap();
    let url = format!(
        "{}/v1/generations/{}/events",
        server.base,
        job["job"].as_str().unwrap()
    );
    // Each stream stays open, unread, while its job runs.
    let open = |token: &str| {
        agent()
            .get(&url)
            .header("authorization", format!("Bearer {token}"))
            .call()
            .expect("the server answers")
    };

    let streams: Vec<_> = (0..EVENT_STREAMS_PER_KEY_MAX)
        .map(|_| open(&generator))
        .collect();
    assert!(streams.iter().all(|stream| stream.status() == 200));
    let refused = open(&generator);
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(open(&auditor).status(), 200, "the cap is per key");
}

#[test]
fn a_failure_naming_a_file_answers_a_request_id_and_no_path() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let stem = &sample_catalog::tracks()[0].render(0.1)[0];
    let stored = ArtifactStore::open(data)
        .unwrap()
        .write_wav(&stem.audio)
        .unwrap();
    // The stored bytes no longer match their hash: the store's error names
    // the file.
    std::fs::write(&stored.path, b"not the stored audio").unwrap();
    let generator = token(data, &["--role", "generator"]);
    let server = start(data);

    let reply = server.get(
        &format!("/v1/artifacts/{}", stored.file_hash),
        Some(&generator),
    );
    assert_eq!(reply.status, 500, "{}", reply.body);
    assert_eq!(reply.error_code(), "internal");
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    let request_id = reply.request_id.expect("500s carry a request id");
    assert!(message.contains(&request_id), "{message}");
    let data_dir = data.display().to_string();
    for leak in [data_dir.as_str(), "/artifacts/", "sha256/"] {
        assert!(!message.contains(leak), "{message:?} contains {leak:?}");
    }
}

/// Identical requests sent at once with one `Idempotency-Key`, in several
/// rounds: each round queues exactly one job, every response of the round
/// names it, and the log holds one published derivative per key. The same
/// key with another body is refused.
#[test]
fn concurrent_requests_with_one_idempotency_key_queue_one_job() {
    const ROUNDS: usize = 3;
    const CONCURRENT: usize = 12;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    setup(data, SECONDS);
    let generator = token(data, &["--role", "generator"]);
    let auditor = token(data, &["--role", "auditor"]);
    let server = start(data);

    for round in 0..ROUNDS {
        let key = format!("burst-{round}");
        let replies: Vec<RawReply> = std::thread::scope(|scope| {
            let posts: Vec<_> = (0..CONCURRENT)
                .map(|_| scope.spawn(|| post_generation(&server, &generator, &key, &remix())))
                .collect();
            posts.into_iter().map(|post| post.join().unwrap()).collect()
        });
        let jobs: std::collections::BTreeSet<String> = replies
            .iter()
            .map(|reply| {
                let body: Value = serde_json::from_slice(&reply.body).unwrap();
                assert_eq!(reply.status, 202, "{body}");
                body["job"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(jobs.len(), 1, "round {round}: {jobs:?}");
        let job = jobs.into_iter().next().unwrap();
        assert_eq!(
            wait_for_end(&server, &job, &generator)["state"],
            "published"
        );
    }
    let events = server.get("/v1/events?limit=10000", Some(&auditor)).json();
    let published = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "generation.derivative-published")
        .count();
    assert_eq!(published, ROUNDS);

    let mut other = remix();
    other["requested_by"] = json!("creator-2");
    let reused = post_generation(&server, &generator, "burst-0", &other);
    let body: Value = serde_json::from_slice(&reused.body).unwrap();
    assert_eq!(
        (reused.status, body["error"]["code"].clone()),
        (409, json!("id_reused"))
    );
}
