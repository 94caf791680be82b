//! A recording's licence terms as of a seq (`ledgerline licence show ISRC
//! [--as-of SEQ]`): the terms in force, and every catalog event that set
//! them, so an auditor sees what was allowed when, and since which event.

use ledger::store::payloads::read_payloads;
use ledger::store::{EventStore, StoreError};
use schemas::catalog::{self, Recording};
use schemas::licence::LicenceTerms;
use serde::Serialize;

/// One catalog event that stated the recording's terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TermsVersion {
    pub seq: u64,
    #[serde(rename = "type")]
    pub event_type: String,
    /// RFC 3339 time the log accepted the event.
    pub time: String,
    /// `None`: no terms, so the recording is not participating.
    pub licence: Option<LicenceTerms>,
}

/// The terms of a recording in the log prefix `0..as_of`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TermsHistory {
    pub isrc: String,
    pub as_of: u64,
    /// Whether requests may use the recording (its terms in force say
    /// `participating`); windows and bounds still apply.
    pub participating: bool,
    /// The version in force: the last of `versions`.
    pub in_force: TermsVersion,
    /// Every version, oldest first.
    pub versions: Vec<TermsVersion>,
}

#[derive(Debug, thiserror::Error)]
pub enum TermsHistoryError {
    #[error("recording {isrc} is not in the catalog as of seq {as_of}")]
    UnknownRecording { isrc: String, as_of: u64 },
    #[error("--as-of {as_of} is beyond the log, which holds {size} events")]
    AsOfBeyondLog { as_of: u64, size: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The terms of recording `isrc` in the first `as_of` events (the whole
/// log when `None`).
pub async fn terms_history(
    store: &dyn EventStore,
    isrc: &str,
    as_of: Option<u64>,
) -> Result<TermsHistory, TermsHistoryError> {
    let size = store.size().await?;
    let as_of = as_of.unwrap_or(size);
    if as_of > size {
        return Err(TermsHistoryError::AsOfBeyondLog { as_of, size });
    }
    let stream = catalog::recording_stream(isrc);
    let types = [catalog::RECORDING_REGISTERED, catalog::RECORDING_AMENDED];
    let versions: Vec<TermsVersion> = read_payloads::<Recording>(store, &stream, &types, as_of)
        .await?
        .into_iter()
        .map(|p| TermsVersion {
            seq: p.seq,
            event_type: p.event_type,
            time: p.time,
            licence: p.data.licence,
        })
        .collect();
    let Some(in_force) = versions.last().cloned() else {
        return Err(TermsHistoryError::UnknownRecording {
            isrc: isrc.to_string(),
            as_of,
        });
    };
    Ok(TermsHistory {
        isrc: isrc.to_string(),
        as_of,
        participating: in_force.licence.as_ref().is_some_and(|l| l.participating),
        in_force,
        versions,
    })
}

/// The plain-text form: the verdict, then one line per version.
pub fn render_text(history: &TermsHistory) -> String {
    let mut out = format!(
        "recording {} as of seq {}: {} (terms of seq {})\n",
        history.isrc,
        history.as_of,
        if history.participating {
            "participating"
        } else {
            "not participating"
        },
        history.in_force.seq
    );
    for version in &history.versions {
        let terms = match &version.licence {
            Some(licence) => serde_json::to_string(licence).unwrap_or_default(),
            None => "no terms".to_string(),
        };
        out.push_str(&format!(
            "  seq {} {} {}: {terms}\n",
            version.seq, version.event_type, version.time
        ));
    }
    out
}
