//! Importing a usage report: every line checked against the catalog,
//! derivatives and lines already in the log (through the read model, caught
//! up first), then all new lines appended as one atomic append of
//! `usage.line-imported` events, or nothing if any line is wrong.
//!
//! A `line_id` already in the log is skipped and reported, never counted
//! twice: its event id is derived from the line id
//! ([`line_event_id`]), so even a concurrent second import cannot append it
//! again. Parsing the CSV is [`crate::usage`]'s.

use crate::fold::{Change, LineBook, LineRecord, LineStatus, MemoryBook};
use crate::runner::Projections;
use crate::tables::ProjectionError;
use crate::usage::{line_event_id, UsageError, USAGE_LINES_MAX};
use ledger::store::{AppendRequest, ExpectedVersion};
use schemas::usage::UsageLine;
use sha2::{Digest, Sha256};

/// What one usage import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageImport {
    /// Lines appended, with their seqs, in file order.
    pub imported: Vec<(String, u64)>,
    /// Line ids already in the log, skipped.
    pub skipped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UsageImportError {
    #[error(transparent)]
    Usage(#[from] UsageError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error(transparent)]
    Store(#[from] ledger::store::StoreError),
}

/// The stream a batch of new lines is appended to: named by a hash of their
/// line ids, so that the same file always goes to the same stream.
pub fn usage_stream(line_ids: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for id in line_ids {
        hasher.update(id.as_bytes());
        hasher.update(b"\n");
    }
    format!("usage-{}", hex::encode(&hasher.finalize()[..8]))
}

/// Imports parsed usage lines: catches the projection up, checks every line
/// against the catalog, derivatives and lines in force (a reversal may refund
/// a line earlier in the same file), then appends all new lines in one
/// atomic append, or nothing if any line is wrong. Lines whose id is already
/// in the log with the same content are skipped and reported.
pub async fn import_usage(
    store: &dyn ledger::store::EventStore,
    projections: &mut Projections,
    lines: Vec<UsageLine>,
) -> Result<UsageImport, UsageImportError> {
    if lines.len() > USAGE_LINES_MAX {
        return Err(UsageError::TooManyLines { count: lines.len() }.into());
    }
    projections.catch_up(store).await?;
    let mut summary = UsageImport::default();
    let mut errors = Vec::new();
    let mut new_lines = Vec::new();
    {
        let committed = projections.book();
        let mut overlay = MemoryBook::over(&committed);
        for (index, line) in lines.into_iter().enumerate() {
            let row = index + 2;
            if let Some(existing) = committed
                .line(&line.line_id)
                .map_err(ProjectionError::from)?
            {
                if let LineStatus::Rejected(why) = &existing.status {
                    errors.push(format!(
                        "line {row} (line_id {:?}): this line id is in the log at seq {} but was not booked ({why}); a line id is used once, so report the line under a new id",
                        line.line_id, existing.seq
                    ));
                } else if existing.line == line {
                    summary.skipped.push(line.line_id);
                } else {
                    errors.push(format!(
                        "line {row} (line_id {:?}): a different line with this id was imported at seq {}; a line id is used once",
                        line.line_id, existing.seq
                    ));
                }
                continue;
            }
            match projections
                .fold()
                .book_line(&line, &overlay)
                .map_err(ProjectionError::from)?
            {
                Ok(plan) => {
                    let record = LineRecord {
                        seq: u64::MAX,
                        line: line.clone(),
                        status: LineStatus::Booked,
                        plan: Some(plan),
                    };
                    overlay
                        .record(&Change::UsageLine(record))
                        .map_err(ProjectionError::from)?;
                    new_lines.push(line);
                }
                Err(why) => errors.push(format!("line {row} (line_id {:?}): {why}", line.line_id)),
            }
        }
    }
    if !errors.is_empty() {
        return Err(UsageError::Invalid(errors).into());
    }
    if new_lines.is_empty() {
        return Ok(summary);
    }
    let ids: Vec<&str> = new_lines.iter().map(|l| l.line_id.as_str()).collect();
    let stream = usage_stream(&ids);
    let events = new_lines
        .iter()
        .map(|line| {
            let mut event = ledger::NewEvent::new(
                schemas::usage::LINE_IMPORTED,
                serde_json::to_value(line).expect("a usage line serializes"),
            )
            .with_id(line_event_id(&line.line_id));
            event.schema = schemas::usage::USAGE_SCHEMA_VERSION;
            event
        })
        .collect();
    let appended = store
        .append_all(vec![AppendRequest::new(
            stream,
            ExpectedVersion::Any,
            events,
        )])
        .await?;
    summary.imported = new_lines
        .into_iter()
        .zip(appended.into_iter().flatten())
        .map(|(line, appended)| (line.line_id, appended.seq))
        .collect();
    Ok(summary)
}
