//! The HTTP API in-process: `api::router` over the real embedded store, API
//! records and read models in a temporary data directory, called with
//! `tower::ServiceExt::oneshot`. No port and no child process, so auth,
//! roles and error mapping are checked request by request; what needs a
//! real process (connections, signals, crashes, several nodes) stays in
//! the end-to-end tests.
#![allow(dead_code)]

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request};
use axum::response::Response;
use axum::Router;
use http_body_util::BodyExt;
use ledgerline::api::auth::Role;
use ledgerline::api::generations::QUEUE_JOBS_DEFAULT;
use ledgerline::api::{router, AppState};
use ledgerline::context::Context;
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

/// The API over a fresh data directory, removed when this is dropped.
pub struct Api {
    pub state: Arc<AppState>,
    router: Router,
    _dir: tempfile::TempDir,
}

/// An answer, its body read whole.
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Api {
    /// Opens the API's state exactly as `ledgerline serve` does.
    pub async fn open() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let context = Context {
            data_dir: dir.path().to_path_buf(),
            origin: ledger::checkpoint::DEFAULT_ORIGIN.to_string(),
            signing_key: None,
            store_url: None,
            c2pa_cert: None,
            c2pa_key: None,
        };
        let state = AppState::open(&context, QUEUE_JOBS_DEFAULT).await.unwrap();
        Api {
            router: router(state.clone()),
            state,
            _dir: dir,
        }
    }

    /// A new API key's token for `role` (a label key: bound to `party`).
    pub async fn key(&self, role: Role, party: Option<&str>) -> String {
        self.state.keys.create(role, party).await.unwrap().token
    }

    /// Sends one request; `token` goes in `Authorization: Bearer`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// GETs `path` and hands back the response unread, for a body that
    /// does not end (an event stream): (status, response).
    pub async fn open_stream(&self, path: &str, token: &str) -> (u16, Response) {
        let request = Request::get(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        (response.status().as_u16(), response)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, &[], Body::empty())
            .await
    }

    /// POSTs `body` as `application/json`.
    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        let json = [("content-type", "application/json")];
        self.call(Method::POST, path, token, &json, body.to_string())
            .await
    }

    /// POSTs `body` as `text/csv`.
    pub async fn post_csv(&self, path: &str, token: Option<&str>, body: &str) -> Reply {
        let csv = [("content-type", "text/csv")];
        self.call(Method::POST, path, token, &csv, body.to_string())
            .await
    }
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The `code` of an error body, checking the body has the one error
    /// shape: `{"error": {"code": "...", "message": "..."}}`.
    pub fn error_code(&self) -> String {
        let body = self.json();
        let error = &body["error"];
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "an error says what was wrong: {body}"
        );
        error["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error body: {body}"))
            .to_string()
    }

    /// The status and error code, for one assertion on both.
    pub fn refusal(&self) -> (u16, String) {
        (self.status, self.error_code())
    }
}
