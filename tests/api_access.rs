//! Who may call what. API keys from `ledgerline keys`, stored hashed, and
//! revoked on a running server (end to end); then, in-process against the
//! router, every role against every protected endpoint group of the access
//! table, 401 for missing, malformed, unknown and revoked keys, and the
//! public endpoints open to all.

mod common;
mod in_process;

use axum::http::Method;
use common::server::Server;
use common::{ok, ok_json, run};
use in_process::{Api, Reply};
use ledgerline::api::auth::Role;
use serde_json::{json, Value};

/// Creates a key with `ledgerline keys create` and returns (id, token).
fn create_key(data: &std::path::Path, args: &[&str]) -> (String, String) {
    let mut all = vec!["keys", "create"];
    all.extend_from_slice(args);
    let created = ok_json(data, &all);
    (
        created["id"].as_str().unwrap().to_string(),
        created["token"].as_str().unwrap().to_string(),
    )
}

fn listed_keys(data: &std::path::Path) -> Vec<Value> {
    ok(data, &["keys", "list"])
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn keys_create_returns_a_token_that_list_never_shows() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (_, admin) = create_key(data, &["--role", "admin"]);
    let (label_id, label) = create_key(data, &["--role", "label", "--party", "label-a"]);
    assert!(admin.starts_with("llk_") && admin.len() == 68, "{admin}");
    assert_ne!(admin, label);

    let listed = listed_keys(data);
    assert_eq!(listed.len(), 2);
    let label_entry = listed
        .iter()
        .find(|k| k["id"] == label_id.as_str())
        .unwrap();
    assert_eq!(label_entry["role"], "label");
    assert_eq!(label_entry["party"], "label-a");
    assert_eq!(label_entry["revoked"], Value::Null);
    for entry in &listed {
        assert!(
            entry.get("token").is_none(),
            "list never shows a token: {entry}"
        );
    }
}

#[test]
fn tokens_are_never_stored_in_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (_, admin) = create_key(data, &["--role", "admin"]);
    let (_, label) = create_key(data, &["--role", "label", "--party", "label-a"]);
    let stored = std::fs::read(data.join("api.db")).unwrap();
    for token in [&admin, &label] {
        let secret = token.trim_start_matches("llk_").as_bytes();
        assert!(
            !stored.windows(secret.len()).any(|w| w == secret),
            "a token is stored in plain text"
        );
    }
}

#[test]
fn bad_key_usage_exits_2_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    create_key(data, &["--role", "admin"]);
    for args in [
        &["keys", "create", "--role", "label"][..],
        &["keys", "create", "--role", "admin", "--party", "label-a"],
        &["keys", "create", "--role", "root"],
        &["keys", "create", "--role", "label", "--party", "bad party"],
        &["keys", "revoke", "no-such-key"],
    ] {
        let output = run(data, args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(!output.stderr.is_empty());
    }
    assert_eq!(listed_keys(data).len(), 1);
}

/// The process-level smoke test of access: the CLI and a running server
/// share the key records.
#[test]
fn a_key_revoked_by_the_cli_is_refused_at_once_by_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (admin_id, admin) = create_key(data, &["--role", "admin"]);
    let server = Server::start(data);
    assert_eq!(server.get("/v1/events", Some(&admin)).status, 200);
    ok(data, &["keys", "revoke", &admin_id]);
    let revoked = server.get("/v1/events", Some(&admin));
    assert_eq!(
        (revoked.status, revoked.error_code().as_str()),
        (401, "unauthorized")
    );
    let admin_entry = listed_keys(data)
        .into_iter()
        .find(|k| k["id"] == admin_id.as_str())
        .unwrap();
    assert!(admin_entry["revoked"].is_string());
    assert!(server.stop().success());
}

/// One request to a protected endpoint, sent as every role in turn.
struct Probe {
    method: Method,
    path: &'static str,
    /// The body's media type and text, for a POST.
    body: Option<(&'static str, String)>,
}

impl Probe {
    fn get(path: &'static str) -> Probe {
        Probe {
            method: Method::GET,
            path,
            body: None,
        }
    }

    fn post(path: &'static str, media_type: &'static str, body: impl Into<String>) -> Probe {
        Probe {
            method: Method::POST,
            path,
            body: Some((media_type, body.into())),
        }
    }

    async fn send(&self, api: &Api, token: Option<&str>) -> Reply {
        match &self.body {
            None => {
                api.call(self.method.clone(), self.path, token, &[], "")
                    .await
            }
            Some((media_type, body)) => {
                let headers = [("content-type", *media_type)];
                api.call(
                    self.method.clone(),
                    self.path,
                    token,
                    &headers,
                    body.clone(),
                )
                .await
            }
        }
    }
}

/// Every role, a label bound to `label-a`.
const ROLES: [(Role, Option<&str>); 5] = [
    (Role::Admin, None),
    (Role::Ingest, None),
    (Role::Generator, None),
    (Role::Auditor, None),
    (Role::Label, Some("label-a")),
];

/// Sends `probe` as every role: the roles in `allowed` reach the endpoint
/// and get its own answer, `allowed_status`; every other role gets 403.
async fn assert_only(api: &Api, probe: &Probe, allowed: &[Role], allowed_status: u16) {
    for (role, party) in ROLES {
        let token = api.key(role, party).await;
        let reply = probe.send(api, Some(&token)).await;
        let path = probe.path;
        let body = String::from_utf8_lossy(&reply.body);
        if allowed.contains(&role) {
            assert_eq!(reply.status, allowed_status, "{role:?} {path}: {body}");
        } else {
            assert_eq!(
                reply.refusal(),
                (403, "forbidden".into()),
                "{role:?} {path}"
            );
        }
    }
}

/// An API whose log holds one event in stream `s`, so reads find something.
async fn api_with_an_event() -> Api {
    let api = Api::open().await;
    let admin = api.key(Role::Admin, None).await;
    let appended = api
        .post_json("/v1/streams/s/events", Some(&admin), &note())
        .await;
    assert_eq!(appended.status, 201);
    api
}

fn note() -> Value {
    json!({"type": "note.test", "data": {"party": "label-a"}})
}

#[tokio::test]
async fn only_admin_and_auditor_read_the_log() {
    let api = api_with_an_event().await;
    let readers = [Role::Admin, Role::Auditor];
    for path in ["/v1/events", "/v1/events?party=label-a", "/v1/streams/s"] {
        assert_only(&api, &Probe::get(path), &readers, 200).await;
    }
}

#[tokio::test]
async fn only_admin_and_ingest_append_events() {
    let api = api_with_an_event().await;
    let append = Probe::post(
        "/v1/streams/s/events",
        "application/json",
        note().to_string(),
    );
    assert_only(&api, &append, &[Role::Admin, Role::Ingest], 201).await;
}

#[tokio::test]
async fn only_admin_and_auditor_read_metrics() {
    let api = Api::open().await;
    assert_only(
        &api,
        &Probe::get("/metrics"),
        &[Role::Admin, Role::Auditor],
        200,
    )
    .await;
}

#[tokio::test]
async fn admin_auditor_and_label_read_statements() {
    let api = api_with_an_event().await;
    let statement = Probe::get("/v1/statements/2025-01");
    let readers = [Role::Admin, Role::Auditor, Role::Label];
    assert_only(&api, &statement, &readers, 200).await;
}

#[tokio::test]
async fn only_admin_and_ingest_import_the_catalog() {
    let api = Api::open().await;
    // An empty document reaches the importer, which refuses it as no
    // catalog: the role is checked first.
    let import = Probe::post("/v1/catalog", "application/json", "{}");
    assert_only(&api, &import, &[Role::Admin, Role::Ingest], 400).await;
}

#[tokio::test]
async fn only_admin_and_ingest_import_usage() {
    let api = Api::open().await;
    let import = Probe::post("/v1/usage", "text/csv", "");
    assert_only(&api, &import, &[Role::Admin, Role::Ingest], 400).await;
}

#[tokio::test]
async fn admin_auditor_and_label_read_lineage() {
    let api = api_with_an_event().await;
    // An unknown derivative: the readers get the lineage answer, 404.
    let lineage = Probe::get("/v1/lineage/00000000-0000-4000-8000-000000000000");
    let readers = [Role::Admin, Role::Auditor, Role::Label];
    assert_only(&api, &lineage, &readers, 404).await;
}

#[tokio::test]
async fn admin_auditor_and_label_reconcile() {
    let api = api_with_an_event().await;
    let reconcile = Probe::post(
        "/v1/reconciliations?period=2025-01",
        "text/csv",
        "party,currency,amount\n",
    );
    let reconcilers = [Role::Admin, Role::Auditor, Role::Label];
    assert_only(&api, &reconcile, &reconcilers, 200).await;
}

#[tokio::test]
async fn only_admin_and_generator_submit_generations() {
    let api = Api::open().await;
    // An empty request reaches the engine's validation, which refuses it.
    let submit = Probe::post("/v1/generations", "application/json", "{}");
    assert_only(&api, &submit, &[Role::Admin, Role::Generator], 400).await;
}

#[tokio::test]
async fn admin_generator_and_auditor_read_generations() {
    let api = Api::open().await;
    let readers = [Role::Admin, Role::Generator, Role::Auditor];
    let status = Probe::get("/v1/generations/00000000-0000-4000-8000-000000000000");
    assert_only(&api, &status, &readers, 404).await;
    let artifact = Probe::get(
        "/v1/artifacts/sha256:0000000000000000000000000000000000000000000000000000000000000000",
    );
    assert_only(&api, &artifact, &readers, 404).await;
}

/// One request per protected endpoint group.
fn protected() -> Vec<Probe> {
    vec![
        Probe::get("/v1/events"),
        Probe::get("/v1/streams/s"),
        Probe::post(
            "/v1/streams/s/events",
            "application/json",
            note().to_string(),
        ),
        Probe::get("/metrics"),
        Probe::get("/v1/statements/2025-01"),
        Probe::post("/v1/catalog", "application/json", "{}"),
        Probe::post("/v1/usage", "text/csv", ""),
        Probe::get("/v1/lineage/00000000-0000-4000-8000-000000000000"),
        Probe::post("/v1/lineage", "audio/wav", "RIFF"),
        Probe::post("/v1/reconciliations?period=2025-01", "text/csv", ""),
        Probe::post("/v1/generations", "application/json", "{}"),
        Probe::get("/v1/generations/00000000-0000-4000-8000-000000000000"),
        Probe::get("/v1/generations/00000000-0000-4000-8000-000000000000/events"),
    ]
}

#[tokio::test]
async fn every_protected_endpoint_without_a_key_is_401_with_a_bearer_challenge() {
    let api = api_with_an_event().await;
    for probe in protected() {
        let reply = probe.send(&api, None).await;
        let path = probe.path;
        assert_eq!(reply.refusal(), (401, "unauthorized".into()), "{path}");
        assert_eq!(reply.headers["www-authenticate"], "Bearer", "{path}");
    }
}

/// Sends an append with this `Authorization` header value.
async fn append_with_authorization(api: &Api, authorization: &str) -> Reply {
    let headers = [
        ("authorization", authorization),
        ("content-type", "application/json"),
    ];
    let body = note().to_string();
    api.call(Method::POST, "/v1/streams/s/events", None, &headers, body)
        .await
}

#[tokio::test]
async fn a_basic_authorization_header_is_401() {
    let api = Api::open().await;
    let reply = append_with_authorization(&api, "Basic YWRtaW46YWRtaW4=").await;
    assert_eq!(reply.refusal(), (401, "unauthorized".into()));
}

#[tokio::test]
async fn an_empty_bearer_token_is_401() {
    let api = Api::open().await;
    let reply = append_with_authorization(&api, "Bearer ").await;
    assert_eq!(reply.refusal(), (401, "unauthorized".into()));
}

#[tokio::test]
async fn a_token_with_a_character_added_is_401() {
    let api = Api::open().await;
    let admin = api.key(Role::Admin, None).await;
    let reply = append_with_authorization(&api, &format!("Bearer {admin}x")).await;
    assert_eq!(reply.refusal(), (401, "unauthorized".into()));
}

#[tokio::test]
async fn an_unknown_well_formed_token_is_401() {
    let api = Api::open().await;
    let unknown = format!("Bearer llk_{}", "0".repeat(64));
    let reply = append_with_authorization(&api, &unknown).await;
    assert_eq!(reply.refusal(), (401, "unauthorized".into()));
}

#[tokio::test]
async fn a_revoked_key_is_401() {
    let api = Api::open().await;
    let created = api.state.keys.create(Role::Admin, None).await.unwrap();
    assert_eq!(
        api.get("/v1/events", Some(&created.token)).await.status,
        200
    );
    api.state.keys.revoke(&created.id).await.unwrap();
    let reply = api.get("/v1/events", Some(&created.token)).await;
    assert_eq!(reply.refusal(), (401, "unauthorized".into()));
}

#[tokio::test]
async fn public_endpoints_answer_without_a_key() {
    let api = api_with_an_event().await;
    for path in [
        "/v1/checkpoint",
        "/v1/key",
        "/v1/proofs/inclusion?seq=0&size=1",
        "/v1/proofs/consistency?from=1&to=1",
        "/healthz",
        "/openapi.json",
    ] {
        let reply = api.get(path, None).await;
        assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
    }
}
