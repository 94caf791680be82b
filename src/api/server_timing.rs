//! W3C Server Timing (<https://www.w3.org/TR/server-timing/>): how long each
//! phase of a request took, as a `Server-Timing` response header. Browsers
//! show it in their network panel and expose it to same-origin pages
//! through Resource Timing, which is how `scripts/bench console` tells the
//! upload apart from the answer.

use axum::http::header::HeaderValue;
use axum::http::HeaderName;
use axum::response::Response;
use std::time::{Duration, Instant};

/// The header's name.
pub const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

/// Phases and their durations, in the order they were recorded.
#[derive(Debug, Default)]
pub struct ServerTiming {
    phases: Vec<(&'static str, Duration)>,
}

impl ServerTiming {
    /// Records that phase `name` (a token: letters, digits, `-`, `_`) took
    /// `duration`.
    pub fn record(&mut self, name: &'static str, duration: Duration) {
        self.phases.push((name, duration));
    }

    /// Records phase `name` as the time since `started`.
    pub fn since(&mut self, name: &'static str, started: Instant) {
        self.record(name, started.elapsed());
    }

    /// `name;dur=milliseconds, …`, to a tenth of a millisecond.
    pub fn header_value(&self) -> HeaderValue {
        let text = self
            .phases
            .iter()
            .map(|(name, duration)| format!("{name};dur={:.1}", duration.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(", ");
        HeaderValue::from_str(&text).expect("phase names are header tokens")
    }

    /// Adds the header to `response`, unless no phase was recorded.
    pub fn attach(&self, response: &mut Response) {
        if !self.phases.is_empty() {
            response
                .headers_mut()
                .insert(SERVER_TIMING, self.header_value());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_listed_in_order_in_milliseconds() {
        let mut timing = ServerTiming::default();
        timing.record("upload", Duration::from_micros(12_345));
        timing.record("lookup", Duration::from_nanos(50_000));
        assert_eq!(timing.header_value(), "upload;dur=12.3, lookup;dur=0.1");
    }

    #[test]
    fn no_phase_no_header() {
        let mut response = Response::new(axum::body::Body::empty());
        ServerTiming::default().attach(&mut response);
        assert!(response.headers().get(SERVER_TIMING).is_none());
    }
}
