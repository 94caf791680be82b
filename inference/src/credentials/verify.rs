//! Reads a file's C2PA manifest store and checks it: the claim signature,
//! the hard binding (the audio bytes are the ones signed), trust (the
//! signing chain leads to an anchor the caller names) and ledgerline's log
//! proof (the `org.ledgerline.provenance` assertion's `tlog-proof@v1`
//! verifies against the log's key and proves the named leaf).
//!
//! The first three are the c2pa library's validation, reported by its
//! status codes (C2PA 2.x, "Validation"); the fourth is ours.

use super::manifest::{Provenance, PROVENANCE_LABEL};
use super::CredentialsError;
use c2pa::Reader;
use ledger::tlog_proof::TlogProof;
use ledger::NoteVerifier;
use serde::Serialize;
use serde_json::json;
use std::io::Cursor;

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub ok: bool,
    pub detail: String,
}

impl Check {
    fn pass(detail: impl Into<String>) -> Check {
        Check {
            ok: true,
            detail: detail.into(),
        }
    }
    fn fail(detail: impl Into<String>) -> Check {
        Check {
            ok: false,
            detail: detail.into(),
        }
    }
}

/// A C2PA validation status code and what the library says about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub code: String,
    pub explanation: Option<String>,
}

/// Everything `verify` found about a file's credentials.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// The c2pa library's validation state: `Invalid`, `Valid` or `Trusted`.
    pub state: String,
    /// The active manifest's label.
    pub manifest: Option<String>,
    /// Common name of the signing certificate.
    pub signer: Option<String>,
    pub signature: Check,
    pub hard_binding: Check,
    pub trust: Check,
    pub log_proof: Check,
    /// Every failure code of the active manifest.
    pub failures: Vec<Status>,
    /// The provenance assertion, if the manifest has a readable one.
    pub provenance: Option<Provenance>,
}

impl Verification {
    /// True when every check passed and the library reported no failure.
    pub fn ok(&self) -> bool {
        self.signature.ok
            && self.hard_binding.ok
            && self.trust.ok
            && self.log_proof.ok
            && self.failures.is_empty()
    }
}

fn reader(bytes: &[u8], trust_anchors: Option<&str>) -> Result<Reader, CredentialsError> {
    let format = super::audio_format(bytes)?;
    let mut settings = json!({"verify": {"verify_trust": true, "verify_after_reading": true}});
    if let Some(anchors) = trust_anchors {
        settings["trust"] = json!({"user_anchors": anchors});
    }
    let context = super::context(settings).map_err(|e| {
        CredentialsError::Identity(format!("the trust anchors are not usable: {e}"))
    })?;
    match Reader::from_context(context).with_stream(format, Cursor::new(bytes)) {
        Ok(reader) => Ok(reader),
        Err(c2pa::Error::JumbfNotFound) | Err(c2pa::Error::ProvenanceMissing) => {
            Err(CredentialsError::NoManifest)
        }
        Err(e) => Err(CredentialsError::Malformed(e.to_string())),
    }
}

/// The file's manifest store as the c2pa library renders it (JSON), with
/// its validation against no trust anchor.
pub fn read_manifest_store(bytes: &[u8]) -> Result<serde_json::Value, CredentialsError> {
    let reader = reader(bytes, None)?;
    serde_json::from_str(&reader.json())
        .map_err(|e| CredentialsError::Malformed(format!("the manifest store is not JSON: {e}")))
}

fn codes(statuses: &[c2pa::validation_status::ValidationStatus]) -> Vec<Status> {
    statuses
        .iter()
        .map(|s| Status {
            code: s.code().to_string(),
            explanation: s.explanation().map(str::to_string),
        })
        .collect()
}

fn failing<'a>(failures: &'a [Status], prefixes: &[&str]) -> Vec<&'a str> {
    failures
        .iter()
        .map(|s| s.code.as_str())
        .filter(|code| prefixes.iter().any(|p| code.starts_with(p)))
        .collect()
}

/// Verifies the credentials in `bytes`: the library's validation with
/// `trust_anchors` (PEM roots) as the only trusted roots, then the log
/// proof against `log` (the log's verifier). A file without a manifest
/// or with one that does not parse is an error, not a verification.
pub fn verify(
    bytes: &[u8],
    trust_anchors: Option<&str>,
    log: Option<&NoteVerifier>,
) -> Result<Verification, CredentialsError> {
    let reader = reader(bytes, trust_anchors)?;
    let active = reader.active_manifest();
    let (success, failures) = match reader
        .validation_results()
        .and_then(|r| r.active_manifest())
    {
        Some(codes_of) => (codes(codes_of.success()), codes(codes_of.failure())),
        None => (Vec::new(), Vec::new()),
    };
    let succeeded = |code: &str| success.iter().any(|s| s.code == code);
    let signer = active
        .and_then(|m| m.signature_info())
        .and_then(|s| s.common_name.clone());

    let bad = failing(
        &failures,
        &["claimSignature.", "signingCredential.invalid", "cose."],
    );
    let signature = if !bad.is_empty() {
        Check::fail(format!("the claim signature fails: {}", bad.join(", ")))
    } else if succeeded("claimSignature.validated") {
        Check::pass(format!(
            "the claim signature verifies (signed by {})",
            signer.as_deref().unwrap_or("an unnamed certificate")
        ))
    } else {
        Check::fail("the claim signature was not validated")
    };

    let bad = failing(
        &failures,
        &[
            "assertion.dataHash.",
            "assertion.bmffHash.",
            "assertion.boxesHash.",
            "claim.hardBindings.",
        ],
    );
    let hard_binding = if !bad.is_empty() {
        Check::fail(format!(
            "the file's bytes are not those signed (hash mismatch: {})",
            bad.join(", ")
        ))
    } else if succeeded("assertion.dataHash.match")
        || succeeded("assertion.bmffHash.match")
        || succeeded("assertion.boxesHash.match")
    {
        Check::pass("the audio bytes are the ones signed (hard binding matches)")
    } else {
        Check::fail("no hard binding was validated")
    };

    let bad = failing(&failures, &["signingCredential."]);
    let trust = if succeeded("signingCredential.trusted") {
        Check::pass("the signing certificate chains to a trust anchor given")
    } else if trust_anchors.is_none() {
        Check::fail(format!(
            "no trust anchor given, so the signer is not trusted ({})",
            if bad.is_empty() {
                "signingCredential.untrusted".to_string()
            } else {
                bad.join(", ")
            }
        ))
    } else {
        Check::fail(format!(
            "the signing certificate does not chain to the trust anchors given ({})",
            bad.join(", ")
        ))
    };

    let provenance = active.and_then(|m| m.find_assertion::<Provenance>(PROVENANCE_LABEL).ok());
    let log_proof = match (&provenance, log) {
        (None, _) => Check::fail(format!(
            "the manifest has no readable {PROVENANCE_LABEL} assertion: it was not issued by a ledgerline log"
        )),
        (Some(_), None) => Check::fail("no log verifier key to check the log proof against"),
        (Some(p), Some(verifier)) => check_log_proof(p, verifier),
    };

    Ok(Verification {
        state: format!("{:?}", reader.validation_state()),
        manifest: reader.active_label().map(str::to_string),
        signer,
        signature,
        hard_binding,
        trust,
        log_proof,
        failures,
        provenance,
    })
}

/// The provenance's proof must verify against `log` and prove the named
/// leaf at the named seq.
fn check_log_proof(provenance: &Provenance, log: &NoteVerifier) -> Check {
    if provenance.origin != log.name() {
        return Check::fail(format!(
            "the proof is for log {:?}, not the log checked against ({:?})",
            provenance.origin,
            log.name()
        ));
    }
    let leaf_hash: [u8; 32] = match hex::decode(&provenance.published_leaf_hash)
        .ok()
        .and_then(|b| b.try_into().ok())
    {
        Some(hash) => hash,
        None => return Check::fail("the published leaf hash is not 64 hex digits"),
    };
    let proof = match TlogProof::parse(&provenance.tlog_proof) {
        Ok(proof) => proof,
        Err(e) => return Check::fail(e.to_string()),
    };
    if proof.index != provenance.published_seq {
        return Check::fail(format!(
            "the proof is of leaf {}, but the assertion names seq {}",
            proof.index, provenance.published_seq
        ));
    }
    match proof.verify(log, &leaf_hash) {
        Ok(checkpoint) => Check::pass(format!(
            "seq {} (generation.derivative-published of derivative {}) is in the log {} at size {}",
            provenance.published_seq, provenance.derivative, checkpoint.origin, checkpoint.size
        )),
        Err(e) => Check::fail(e.to_string()),
    }
}
