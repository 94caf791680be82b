//! One `add-checkpoint` request to a witness over HTTP(S), with a deadline.
//! The call blocks (ureq), so it runs on tokio's blocking pool.

use crate::witness::protocol::RESPONSE_BYTES_MAX;
use std::io::Read as _;
use std::time::Duration;

/// A witness's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// POSTs `body` to `url`; any answer with a status is a [`Reply`], a
/// connection failure or a missed deadline an error.
pub async fn post(url: String, body: String, timeout: Duration) -> anyhow::Result<Reply> {
    tokio::task::spawn_blocking(move || post_blocking(&url, &body, timeout)).await?
}

fn post_blocking(url: &str, body: &str, timeout: Duration) -> anyhow::Result<Reply> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .post(url)
        .header("content-type", "text/plain; charset=utf-8")
        .send(body)?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut bytes = Vec::new();
    response
        .into_body()
        .into_reader()
        .take(RESPONSE_BYTES_MAX as u64 + 1)
        .read_to_end(&mut bytes)?;
    anyhow::ensure!(
        bytes.len() <= RESPONSE_BYTES_MAX,
        "the answer is longer than {RESPONSE_BYTES_MAX} bytes"
    );
    Ok(Reply {
        status,
        content_type,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}
