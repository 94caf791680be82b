//! `GET /metrics`: counters and histograms in the Prometheus text exposition
//! format (version 0.0.4), kept in atomics so recording never blocks a request.

use super::auth::{authorize, Action, Principal};
use super::error::ApiError;
use super::AppState;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The media type Prometheus scrapes.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the events-per-append histogram.
const BATCH_EVENTS_BUCKETS: [f64; 8] = [1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 1000.0, 10000.0];
/// Upper bounds of the latency histograms, in seconds.
const LATENCY_SECONDS_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// A fixed-bucket histogram. The sum is kept in millionths so it stays an
/// integer atomic.
pub struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, plus +Inf.
    counts: Vec<AtomicU64>,
    sum_millionths: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_millionths: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_millionths
            .fetch_add((value * 1e6).round() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_millionths.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

/// How a generation job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenerationOutcome {
    Published,
    Rejected,
    /// Stopped by an error; the job table keeps the message.
    Failed,
    /// Stopped by a shutdown, queued or running past the wait.
    Abandoned,
}

impl GenerationOutcome {
    const ALL: [GenerationOutcome; 4] = [
        GenerationOutcome::Published,
        GenerationOutcome::Rejected,
        GenerationOutcome::Failed,
        GenerationOutcome::Abandoned,
    ];

    pub fn name(self) -> &'static str {
        match self {
            GenerationOutcome::Published => "published",
            GenerationOutcome::Rejected => "rejected",
            GenerationOutcome::Failed => "failed",
            GenerationOutcome::Abandoned => "abandoned",
        }
    }
}

/// Generation jobs by outcome. Shared with the generation worker, which
/// lives on its own thread and holds no `AppState`.
#[derive(Default)]
pub struct GenerationCounts {
    by_outcome: [AtomicU64; 4],
}

impl GenerationCounts {
    pub fn record(&self, outcome: GenerationOutcome) {
        let index = GenerationOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .expect("every outcome is listed");
        self.by_outcome[index].fetch_add(1, Ordering::Relaxed);
    }
}

/// Everything the server counts.
pub struct Metrics {
    /// Events in successful append requests (idempotent retries included:
    /// the ledger answers a retry with the first result).
    append_events: AtomicU64,
    /// Append requests that failed (any status).
    append_failures: AtomicU64,
    /// Events per append request.
    append_batch_events: Histogram,
    /// Time from request parsed to append durable.
    append_seconds: Histogram,
    /// Every HTTP request, by status class (1xx..5xx).
    requests_by_class: [AtomicU64; 5],
    /// Every HTTP request's handling time.
    request_seconds: Histogram,
    /// Generation jobs by outcome.
    pub generations: Arc<GenerationCounts>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            append_events: AtomicU64::new(0),
            append_failures: AtomicU64::new(0),
            append_batch_events: Histogram::new(&BATCH_EVENTS_BUCKETS),
            append_seconds: Histogram::new(&LATENCY_SECONDS_BUCKETS),
            requests_by_class: Default::default(),
            request_seconds: Histogram::new(&LATENCY_SECONDS_BUCKETS),
            generations: Arc::default(),
        }
    }
}

impl Metrics {
    pub fn record_append(&self, events: usize, elapsed: Duration) {
        self.append_events
            .fetch_add(events as u64, Ordering::Relaxed);
        self.append_batch_events.observe(events as f64);
        self.append_seconds.observe(elapsed.as_secs_f64());
    }

    pub fn record_append_failure(&self) {
        self.append_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_request(&self, status: u16, elapsed: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.requests_by_class[class].fetch_add(1, Ordering::Relaxed);
        self.request_seconds.observe(elapsed.as_secs_f64());
    }

    /// The exposition text; `queue_depth` is read from the store and
    /// `generation_queue_depth` from the generation queue at scrape time.
    pub fn render(&self, queue_depth: usize, generation_queue_depth: usize) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            &mut out,
            "ledgerline_append_events_total",
            "Events in successful append requests, idempotent retries included.",
            self.append_events.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "ledgerline_append_failures_total",
            "Append requests refused or failed.",
            self.append_failures.load(Ordering::Relaxed),
        );
        self.append_batch_events.render(
            &mut out,
            "ledgerline_append_batch_events",
            "Events per append request.",
        );
        self.append_seconds.render(
            &mut out,
            "ledgerline_append_duration_seconds",
            "Time until an append request was durable.",
        );
        let _ = writeln!(
            out,
            "# HELP ledgerline_writer_queue_depth Appends waiting for the ledger writer.\n\
             # TYPE ledgerline_writer_queue_depth gauge\nledgerline_writer_queue_depth {queue_depth}"
        );
        let _ = writeln!(
            out,
            "# HELP ledgerline_http_requests_total HTTP requests served, by status class.\n\
             # TYPE ledgerline_http_requests_total counter"
        );
        for (index, count) in self.requests_by_class.iter().enumerate() {
            let _ = writeln!(
                out,
                "ledgerline_http_requests_total{{class=\"{}xx\"}} {}",
                index + 1,
                count.load(Ordering::Relaxed)
            );
        }
        self.request_seconds.render(
            &mut out,
            "ledgerline_http_request_duration_seconds",
            "Time to handle an HTTP request.",
        );
        let _ = writeln!(
            out,
            "# HELP ledgerline_generation_queue_depth Generation jobs waiting for the worker.\n\
             # TYPE ledgerline_generation_queue_depth gauge\nledgerline_generation_queue_depth {generation_queue_depth}"
        );
        let _ = writeln!(
            out,
            "# HELP ledgerline_generation_jobs_total Generation jobs finished, by outcome.\n\
             # TYPE ledgerline_generation_jobs_total counter"
        );
        for (outcome, count) in GenerationOutcome::ALL
            .iter()
            .zip(&self.generations.by_outcome)
        {
            let _ = writeln!(
                out,
                "ledgerline_generation_jobs_total{{outcome=\"{}\"}} {}",
                outcome.name(),
                count.load(Ordering::Relaxed)
            );
        }
        out
    }
}

/// Prometheus metrics (admin and auditor keys).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain"),
        (status = 401, description = "No valid API key", body = super::error::ErrorBody),
        (status = 403, description = "Role may not read metrics", body = super::error::ErrorBody),
    )
)]
pub async fn metrics(
    State(state): State<Arc<AppState>>,
    principal: Principal,
) -> Result<impl IntoResponse, ApiError> {
    authorize(&principal, Action::ReadMetrics, None)?;
    let mut text = state
        .metrics
        .render(state.store.queue_depth(), state.generations.queue_depth());
    if let Some(witnessing) = &state.witnessing {
        witnessing.status.render(&mut text);
    }
    Ok(([(CONTENT_TYPE, PROMETHEUS_TEXT)], text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let histogram = Histogram::new(&BATCH_EVENTS_BUCKETS);
        for value in [1.0, 3.0, 3.0, 20000.0] {
            histogram.observe(value);
        }
        let mut out = String::new();
        histogram.render(&mut out, "h", "help");
        assert!(out.contains("h_bucket{le=\"1\"} 1\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"5\"} 3\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"10000\"} 3\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("h_sum 20007\nh_count 4\n"), "{out}");
    }
}
