//! Where each witness stands, for `/metrics`: the size it last cosigned
//! (as the log holds its cosignature), how far and how long it is behind
//! the latest checkpoint, its refusals by status and its failed requests;
//! and the latest witnessed size under the policy.

use ledger::witness_policy::WitnessPolicy;
use ledger::EventStore;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One witness's state.
pub struct WitnessStatus {
    pub name: String,
    cosigned: AtomicU64,
    latest: AtomicU64,
    /// Since when the latest checkpoint has been ahead of the cosigned one.
    behind_since: Mutex<Option<Instant>>,
    refusals: Mutex<BTreeMap<u16, u64>>,
    errors: AtomicU64,
}

impl WitnessStatus {
    pub fn new(name: &str) -> WitnessStatus {
        WitnessStatus {
            name: name.to_owned(),
            cosigned: AtomicU64::new(0),
            latest: AtomicU64::new(0),
            behind_since: Mutex::new(None),
            refusals: Mutex::new(BTreeMap::new()),
            errors: AtomicU64::new(0),
        }
    }

    /// The size whose cosignature the log holds now.
    pub fn set_cosigned(&self, size: u64) {
        self.cosigned.store(size, Ordering::Relaxed);
        self.update_behind();
    }

    /// The size of the latest checkpoint, as the witness's task last read it.
    pub fn set_latest(&self, size: u64) {
        self.latest.store(size, Ordering::Relaxed);
        self.update_behind();
    }

    fn update_behind(&self) {
        let behind = self.latest.load(Ordering::Relaxed) > self.cosigned.load(Ordering::Relaxed);
        let mut since = self.behind_since.lock().expect("witness status lock");
        match (behind, *since) {
            (true, None) => *since = Some(Instant::now()),
            (false, Some(_)) => *since = None,
            _ => {}
        }
    }

    pub fn record_refusal(&self, status: u16) {
        *self
            .refusals
            .lock()
            .expect("witness status lock")
            .entry(status)
            .or_default() += 1;
    }

    pub fn record_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Refusals so far, by HTTP status.
    pub fn refusals(&self) -> BTreeMap<u16, u64> {
        self.refusals.lock().expect("witness status lock").clone()
    }
}

/// Every witness's state, and the latest witnessed size.
pub struct WitnessingStatus {
    pub witnesses: Vec<Arc<WitnessStatus>>,
    /// The latest size cosigned by a quorum, plus one (0: none yet).
    witnessed_plus_one: AtomicU64,
}

impl WitnessingStatus {
    pub fn new(policy: &WitnessPolicy) -> WitnessingStatus {
        WitnessingStatus {
            witnesses: policy
                .witnesses()
                .iter()
                .map(|w| Arc::new(WitnessStatus::new(&w.name)))
                .collect(),
            witnessed_plus_one: AtomicU64::new(0),
        }
    }

    /// Rereads the latest witnessed size from the store.
    pub async fn refresh_witnessed(&self, store: &dyn EventStore, policy: &WitnessPolicy) {
        let keys = ledger::witnessed::policy_keys(policy);
        if let Ok(Some(size)) = store.latest_cosigned_size(keys, policy.quorum()).await {
            self.witnessed_plus_one
                .fetch_max(size + 1, Ordering::Relaxed);
        }
    }

    /// The Prometheus exposition lines of every witness.
    pub fn render(&self, out: &mut String) {
        let gauge = |out: &mut String, name: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        };
        gauge(
            out,
            "ledgerline_witness_cosigned_size",
            "Size of the latest checkpoint the witness cosigned, as the log holds its cosignature.",
        );
        for w in &self.witnesses {
            let _ = writeln!(
                out,
                "ledgerline_witness_cosigned_size{{witness=\"{}\"}} {}",
                w.name,
                w.cosigned.load(Ordering::Relaxed)
            );
        }
        gauge(
            out,
            "ledgerline_witness_lag_entries",
            "Entries the latest checkpoint holds beyond the witness's latest cosigned one.",
        );
        for w in &self.witnesses {
            let lag = w
                .latest
                .load(Ordering::Relaxed)
                .saturating_sub(w.cosigned.load(Ordering::Relaxed));
            let _ = writeln!(
                out,
                "ledgerline_witness_lag_entries{{witness=\"{}\"}} {lag}",
                w.name
            );
        }
        gauge(
            out,
            "ledgerline_witness_lag_seconds",
            "Seconds since the latest checkpoint got ahead of the witness's latest cosigned one (0: not behind).",
        );
        for w in &self.witnesses {
            let seconds = w
                .behind_since
                .lock()
                .expect("witness status lock")
                .map_or(0.0, |since| since.elapsed().as_secs_f64());
            let _ = writeln!(
                out,
                "ledgerline_witness_lag_seconds{{witness=\"{}\"}} {seconds:.3}",
                w.name
            );
        }
        let _ = writeln!(
            out,
            "# HELP ledgerline_witness_refusals_total Checkpoints the witness refused, by HTTP status.\n\
             # TYPE ledgerline_witness_refusals_total counter"
        );
        for w in &self.witnesses {
            for (status, count) in w.refusals() {
                let _ = writeln!(
                    out,
                    "ledgerline_witness_refusals_total{{witness=\"{}\",status=\"{status}\"}} {count}",
                    w.name
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP ledgerline_witness_errors_total Requests to the witness that failed (unreachable, timed out, invalid answer).\n\
             # TYPE ledgerline_witness_errors_total counter"
        );
        for w in &self.witnesses {
            let _ = writeln!(
                out,
                "ledgerline_witness_errors_total{{witness=\"{}\"}} {}",
                w.name,
                w.errors.load(Ordering::Relaxed)
            );
        }
        let witnessed = self.witnessed_plus_one.load(Ordering::Relaxed);
        gauge(
            out,
            "ledgerline_witnessed_size",
            "Size of the latest checkpoint cosigned by the policy's quorum (-1: none yet).",
        );
        let _ = writeln!(out, "ledgerline_witnessed_size {}", witnessed as i128 - 1);
    }
}
