//! Error mapping, in-process against the router: every refusal has the one
//! body shape `{"error": {"code", "message"}}` (checked by
//! `Reply::error_code`) and the status its cause calls for.

mod in_process;

use axum::http::Method;
use in_process::Api;
use ledger::store::{AppendRequest, ExpectedVersion};
use ledger::NewEvent;
use ledgerline::api::auth::Role;
use ledgerline::api::body::BODY_BYTES_MAX;
use ledgerline::api::generations::sse::EVENT_STREAMS_PER_KEY_MAX;
use serde_json::json;

/// An API and an admin key's token.
async fn api_and_admin() -> (Api, String) {
    let api = Api::open().await;
    let admin = api.key(Role::Admin, None).await;
    (api, admin)
}

#[tokio::test]
async fn an_unknown_path_is_404_pointing_at_the_api_document() {
    let api = Api::open().await;
    let reply = api.get("/v2/nothing", None).await;
    assert_eq!(reply.refusal(), (404, "not_found".into()));
    let message = reply.json()["error"]["message"].to_string();
    assert!(message.contains("/openapi.json"), "{message}");
}

#[tokio::test]
async fn a_method_the_path_does_not_take_is_405() {
    let api = Api::open().await;
    let json = [("content-type", "application/json")];
    let reply = api
        .call(Method::POST, "/v1/checkpoint", None, &json, "{}")
        .await;
    assert_eq!(reply.refusal(), (405, "method_not_allowed".into()));
}

#[tokio::test]
async fn a_malformed_query_is_400() {
    let api = Api::open().await;
    let reply = api.get("/v1/proofs/inclusion?seq=x&size=1", None).await;
    assert_eq!(reply.refusal(), (400, "bad_request".into()));
}

#[tokio::test]
async fn a_body_that_is_not_json_is_400_naming_the_fault() {
    let (api, admin) = api_and_admin().await;
    let json = [("content-type", "application/json")];
    let reply = api
        .call(
            Method::POST,
            "/v1/streams/s/events",
            Some(&admin),
            &json,
            "{",
        )
        .await;
    assert_eq!(reply.refusal(), (400, "bad_request".into()));
    let message = reply.json()["error"]["message"].to_string();
    assert!(message.contains("not valid JSON"), "{message}");
}

#[tokio::test]
async fn a_stale_expected_version_is_409_with_the_typed_conflict() {
    let (api, admin) = api_and_admin().await;
    let note = json!({"type": "note.test", "data": {}});
    let first = api
        .post_json("/v1/streams/s/events", Some(&admin), &note)
        .await;
    assert_eq!(first.status, 201);
    let stale = json!({"type": "note.test", "data": {}, "expected_version": 0});
    let reply = api
        .post_json("/v1/streams/s/events", Some(&admin), &stale)
        .await;
    assert_eq!(reply.refusal(), (409, "version_conflict".into()));
    assert_eq!(
        reply.json()["error"]["conflict"],
        json!({"stream": "s", "expected_version": 0, "actual_version": 1})
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let (api, admin) = api_and_admin().await;
    let json = [("content-type", "application/json")];
    let body = vec![b' '; BODY_BYTES_MAX + 1];
    let reply = api
        .call(
            Method::POST,
            "/v1/streams/s/events",
            Some(&admin),
            &json,
            body,
        )
        .await;
    assert_eq!(reply.refusal(), (413, "payload_too_large".into()));
}

#[tokio::test]
async fn a_body_of_the_wrong_media_type_is_415() {
    let (api, admin) = api_and_admin().await;
    let text = [("content-type", "text/plain")];
    let body = r#"{"type":"note.test","data":{}}"#;
    let reply = api
        .call(
            Method::POST,
            "/v1/streams/s/events",
            Some(&admin),
            &text,
            body,
        )
        .await;
    assert_eq!(reply.refusal(), (415, "unsupported_media_type".into()));
}

#[tokio::test]
async fn an_event_the_ledger_refuses_is_422() {
    let (api, admin) = api_and_admin().await;
    let bad_type = json!({"type": "9 bad", "data": {}});
    let reply = api
        .post_json("/v1/streams/s/events", Some(&admin), &bad_type)
        .await;
    assert_eq!(reply.refusal(), (422, "unprocessable".into()));
}

#[tokio::test]
async fn an_event_stream_over_the_keys_cap_is_429_with_retry_after() {
    let (api, admin) = api_and_admin().await;
    // A job from an earlier server: its stream is in the log alone.
    let job = uuid::Uuid::new_v4();
    let stream = schemas::generation::generation_stream(job);
    let requested = NewEvent::new("generation.requested", json!({"job": job.to_string()}));
    let append = AppendRequest::new(stream, ExpectedVersion::Exact(0), vec![requested]);
    api.state.store.append(append).await.unwrap();

    let path = format!("/v1/generations/{job}/events");
    // Each stream stays counted while its unread response is held.
    let mut open = Vec::new();
    for _ in 0..EVENT_STREAMS_PER_KEY_MAX {
        let (status, response) = api.open_stream(&path, &admin).await;
        assert_eq!(status, 200);
        open.push(response);
    }
    let reply = api.get(&path, Some(&admin)).await;
    assert_eq!(reply.refusal(), (429, "too_many_requests".into()));
    assert!(reply.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn a_401_names_the_bearer_scheme() {
    let api = Api::open().await;
    let reply = api.get("/v1/events", None).await;
    assert_eq!(reply.refusal(), (401, "unauthorized".into()));
    assert_eq!(reply.headers["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn a_forbidden_role_is_403_naming_the_roles_allowed() {
    let api = Api::open().await;
    let generator = api.key(Role::Generator, None).await;
    let reply = api.get("/v1/events", Some(&generator)).await;
    assert_eq!(reply.refusal(), (403, "forbidden".into()));
    let message = reply.json()["error"]["message"].to_string();
    assert!(message.contains("admin, auditor"), "{message}");
}
