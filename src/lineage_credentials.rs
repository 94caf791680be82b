//! Content Credentials as the first witness of a file's lineage, shared by
//! `ledgerline lineage FILE` and `POST /v1/lineage`.
//!
//! A file whose credentials verify (signature, hard binding, trust in this
//! data directory's root, and the log proof against this log's key) is
//! answered by the derivative they name, `matched_by: credentials`. A file
//! whose credentials fail is reported as such and never trusted: its
//! lineage is then looked up by hash and fingerprint, like a file without
//! credentials.

use inference::credentials::{self, CredentialsError, SigningIdentity, Verification};
use ledger::NoteVerifier;
use projections::lineage::LineageAnswer;
use serde_json::{json, Value};
use std::path::Path;
use uuid::Uuid;

/// What a file's credentials say.
#[derive(Debug, Clone)]
pub enum Finding {
    /// No C2PA manifest (or not a format that carries one).
    Absent,
    /// Credentials that verify, naming a derivative of this log.
    Valid {
        derivative: Uuid,
        verification: Box<Verification>,
    },
    /// Credentials that fail: the reason, as reported.
    Invalid(Value),
}

impl Finding {
    /// The derivative to answer with, only for credentials that verify.
    pub fn derivative(&self) -> Option<Uuid> {
        match self {
            Finding::Valid { derivative, .. } => Some(*derivative),
            _ => None,
        }
    }

    /// The `credentials` member of a lineage answer.
    pub fn report(&self) -> Value {
        match self {
            Finding::Absent => Value::Null,
            Finding::Valid { verification, .. } => {
                json!({"valid": true, "verification": verification})
            }
            Finding::Invalid(report) => report.clone(),
        }
    }
}

/// Checks the credentials of the file at `path` against the trust anchor
/// in `data_dir` and the log key `log`. Reads the whole file: callers have
/// bounded its size already.
pub fn check_file(path: &Path, data_dir: &Path, log: &NoteVerifier) -> Finding {
    let Ok(bytes) = std::fs::read(path) else {
        return Finding::Absent;
    };
    let anchors = match SigningIdentity::trust_anchor_pem(data_dir) {
        Ok(anchors) => anchors,
        Err(e) => {
            return Finding::Invalid(json!({"valid": false, "error": e.to_string()}));
        }
    };
    match credentials::verify(&bytes, anchors.as_deref(), Some(log)) {
        Err(CredentialsError::NoManifest) | Err(CredentialsError::Unsupported(_)) => {
            Finding::Absent
        }
        Err(e) => Finding::Invalid(json!({"valid": false, "error": e.to_string()})),
        Ok(verification) => match (&verification.provenance, verification.ok()) {
            (Some(provenance), true) => Finding::Valid {
                derivative: provenance.derivative,
                verification: Box::new(verification),
            },
            _ => Finding::Invalid(json!({"valid": false, "verification": verification})),
        },
    }
}

/// Marks a found answer as found by the file's credentials.
pub fn mark_found_by_credentials(answer: &mut LineageAnswer) -> bool {
    match answer {
        LineageAnswer::Found(lineage) => {
            lineage.matched_by = "credentials".into();
            lineage.matched.method = "credentials".into();
            true
        }
        LineageAnswer::NotFound { .. } => false,
    }
}

/// A lineage answer with the credentials finding as its `credentials` member.
pub fn annotate(answer: &LineageAnswer, finding: &Finding) -> Value {
    let mut value = serde_json::to_value(answer).expect("a lineage answer serializes");
    value["credentials"] = finding.report();
    value
}
