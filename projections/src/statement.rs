//! Royalty statements: per (period, currency), each party's exact total
//! rounded to the currency's minor unit by the largest-remainder method, so
//! the payouts sum exactly to the period's gross rounded half-even. Every
//! statement cites the checkpoint (tree size and root hash) it was computed
//! from.

use crate::amount::{format_minor_units, largest_remainder, round_half_even_minor_units, ExactSum};
use crate::currency::{accepted_currencies, minor_unit_exponent};
use crate::fold::LineRecord;
use crate::identifiers::is_valid_period;
pub use crate::queries::PeriodTotals;
use crate::runner::Projections;
use crate::tables::ProjectionError;
use ledger::store::EventStore;
use serde::Serialize;
use std::collections::BTreeMap;

/// The checkpoint a statement cites: the log prefix `0..size` and its RFC 6962 root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointRef {
    pub size: u64,
    /// Lowercase hex of the Merkle tree hash of the first `size` events.
    pub root_hash: String,
}

/// One party's payout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementLine {
    pub party: String,
    pub name: String,
    /// Rounded to the currency's minor unit, e.g. `12.34` (USD) or `1234` (JPY).
    pub amount: String,
    /// The exact sum of the party's allocations.
    pub exact: String,
}

/// A royalty statement for one period and currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    pub period: String,
    pub currency: String,
    pub checkpoint: CheckpointRef,
    /// The period's gross, rounded half-even to the minor unit: the sum of `lines`.
    pub total: String,
    pub lines: Vec<StatementLine>,
}

/// One usage line component behind a party's amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementDetail {
    pub seq: u64,
    pub line_id: String,
    pub derivative: String,
    pub component: String,
    pub reference: String,
    pub amount: String,
    /// Set when the derivative's licence or consent ended on or before the
    /// period's last day: the line is still paid (the streams happened),
    /// and marked as earned after withdrawal so the label sees it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_takedown: Option<crate::takedowns::TakedownMark>,
}

#[derive(Debug, thiserror::Error)]
pub enum StatementError {
    #[error("period {0:?} is not valid: use YYYY-MM")]
    BadPeriod(String),
    #[error("currency {0:?} is not accepted; accepted: {1}")]
    BadCurrency(String, String),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error("no checkpoint is signed yet; append an event first")]
    NoCheckpoint,
}

/// Computes the statement of `period` and `currency` from booked lines (all
/// in that period and currency), naming parties with `names`.
pub fn compute_statement(
    period: &str,
    currency: &str,
    checkpoint: CheckpointRef,
    lines: &[LineRecord],
    names: &BTreeMap<String, String>,
) -> Result<Statement, StatementError> {
    let totals = PeriodTotals::of_lines(period, currency, lines)?;
    statement_from_totals(period, currency, checkpoint, &totals, names)
}

/// Computes the statement of `period` and `currency` from its totals.
///
/// Asserts the two invariants: the exact allocations sum to the exact gross,
/// and the rounded payouts sum to the rounded gross.
pub fn statement_from_totals(
    period: &str,
    currency: &str,
    checkpoint: CheckpointRef,
    totals: &PeriodTotals,
    names: &BTreeMap<String, String>,
) -> Result<Statement, StatementError> {
    let exponent = minor_unit_exponent(currency)
        .ok_or_else(|| StatementError::BadCurrency(currency.to_string(), accepted_currencies()))?;
    let mut allocated = ExactSum::ZERO;
    for total in totals.parties.values() {
        allocated.add_sum(total);
    }
    assert_eq!(
        allocated, totals.gross,
        "exact allocations of {period} {currency} sum to its gross"
    );

    let total_units = round_half_even_minor_units(&totals.gross, exponent);
    let parties: Vec<(&str, ExactSum)> = totals
        .parties
        .iter()
        .map(|(p, t)| (p.as_str(), *t))
        .collect();
    let payouts = largest_remainder(&parties, exponent, total_units);
    let lines = parties
        .iter()
        .zip(payouts)
        .map(|((party, exact), units)| StatementLine {
            party: party.to_string(),
            name: party_name(names, party),
            amount: format_minor_units(units, exponent),
            exact: exact.to_string(),
        })
        .collect();
    Ok(Statement {
        period: period.to_string(),
        currency: currency.to_string(),
        checkpoint,
        total: format_minor_units(total_units, exponent),
        lines,
    })
}

/// A party's registered name; the platform is "Platform" unless registered;
/// anyone else unregistered (a subscriber) is named by id.
pub fn party_name(names: &BTreeMap<String, String>, party: &str) -> String {
    match names.get(party) {
        Some(name) => name.clone(),
        None if party == schemas::catalog::PLATFORM_PARTY => "Platform".to_string(),
        None => party.to_string(),
    }
}

/// The components behind one party's amount: each usage line and component,
/// with its seq.
pub fn statement_detail(
    lines: &[LineRecord],
    party: &str,
) -> Result<Vec<StatementDetail>, ProjectionError> {
    let mut details = Vec::new();
    for record in lines {
        let allocations = record.stored_allocations()?;
        details.extend(
            allocations
                .iter()
                .filter(|a| a.party == party)
                .map(|a| StatementDetail {
                    seq: record.seq,
                    line_id: record.line.line_id.clone(),
                    derivative: record.line.derivative.to_string(),
                    component: a.component.as_str().to_string(),
                    reference: a.reference.to_string(),
                    amount: a.amount.to_string(),
                    after_takedown: None,
                }),
        );
    }
    Ok(details)
}

/// Marks the detail lines of derivatives taken down on or before the last
/// day of `period` by the first `size` events (see
/// [`crate::takedowns::marks`]): one fold of the log for all the lines.
pub async fn mark_takedowns<'a>(
    store: &dyn EventStore,
    size: u64,
    period: &str,
    details: impl IntoIterator<Item = &'a mut StatementDetail>,
) -> Result<(), StatementError> {
    let last_day = crate::identifiers::period_last_day(period)
        .ok_or_else(|| StatementError::BadPeriod(period.to_string()))?;
    let marks = crate::takedowns::marks(store, size, last_day)
        .await
        .map_err(ProjectionError::from)?;
    for detail in details {
        detail.after_takedown = uuid::Uuid::parse_str(&detail.derivative)
            .ok()
            .and_then(|d| marks.get(&d).cloned());
    }
    Ok(())
}

/// The checkpoint for log prefix `0..size`: the latest signed checkpoint
/// (signed now if events were appended since) when `as_of` is absent, otherwise the root of the first `as_of` events, proven
/// consistent with the latest checkpoint by the store.
pub async fn checkpoint_for(
    store: &dyn EventStore,
    as_of: Option<u64>,
    policy: Option<&ledger::witness_policy::WitnessPolicy>,
) -> Result<CheckpointRef, StatementError> {
    // A log whose newest events are not signed yet gets its checkpoint now, so
    // that a statement covers everything imported before it was asked for.
    let size = store.size().await.map_err(ProjectionError::from)?;
    let wanted = as_of.unwrap_or(size);
    if wanted > size {
        return Err(ProjectionError::AsOfBeyondLog {
            as_of: wanted,
            size,
        }
        .into());
    }
    // The latest witnessed checkpoint when it covers them, under a policy.
    let latest = match ledger::witnessed::covering(store, wanted, policy)
        .await
        .map_err(ProjectionError::from)?
    {
        Some(covering) => covering,
        None => store
            .checkpoint_now()
            .await
            .map_err(ProjectionError::from)?,
    };
    root_of(
        store,
        if as_of.is_some() { wanted } else { latest.size },
        &latest,
    )
    .await
}

async fn root_of(
    store: &dyn EventStore,
    size: u64,
    signed: &ledger::store::SignedCheckpoint,
) -> Result<CheckpointRef, StatementError> {
    let root = if size == signed.size {
        signed.root
    } else if let Some(stored) = store
        .checkpoint(size)
        .await
        .map_err(ProjectionError::from)?
    {
        stored.root
    } else if size == 0 {
        ledger::merkle::tree_hash(0, &ledger::merkle::MemoryHashes(Vec::new()))
            .map_err(|e| ProjectionError::Store(e.into()))?
    } else {
        store
            .prove_consistency(size, signed.size)
            .await
            .map_err(ProjectionError::from)?
            .from_root
    };
    Ok(CheckpointRef {
        size,
        root_hash: hex::encode(root),
    })
}

/// Catches the projection up to the checkpoint and computes the statements
/// of `period`: for `currency`, or for every currency with usage in it.
pub async fn statements(
    store: &dyn EventStore,
    projections: &mut Projections,
    period: &str,
    currency: Option<&str>,
    as_of: Option<u64>,
) -> Result<Vec<Statement>, StatementError> {
    if !is_valid_period(period) {
        return Err(StatementError::BadPeriod(period.to_string()));
    }
    if let Some(currency) = currency {
        if minor_unit_exponent(currency).is_none() {
            return Err(StatementError::BadCurrency(
                currency.to_string(),
                accepted_currencies(),
            ));
        }
    }
    let checkpoint = checkpoint_for(store, as_of, projections.witness_policy()).await?;
    if projections.position() < checkpoint.size {
        projections.catch_up_to(store, checkpoint.size).await?;
    }
    let currencies = match currency {
        Some(currency) => vec![currency.to_string()],
        None => projections.currencies(period, checkpoint.size)?,
    };
    let names = projections.party_names(checkpoint.size)?;
    let mut statements = Vec::with_capacity(currencies.len());
    for currency in currencies {
        let totals = projections.period_totals(period, &currency, checkpoint.size)?;
        statements.push(statement_from_totals(
            period,
            &currency,
            checkpoint.clone(),
            &totals,
            &names,
        )?);
    }
    Ok(statements)
}

/// The CSV form: a header, then one row per party and statement.
pub fn render_csv(statements: &[Statement]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record([
            "period",
            "currency",
            "checkpoint_size",
            "checkpoint_root_hash",
            "total",
            "party",
            "name",
            "amount",
            "exact",
        ])
        .expect("writing to memory succeeds");
    for s in statements {
        for line in &s.lines {
            writer
                .write_record([
                    s.period.as_str(),
                    &s.currency,
                    &s.checkpoint.size.to_string(),
                    &s.checkpoint.root_hash,
                    &s.total,
                    &line.party,
                    &line.name,
                    &line.amount,
                    &line.exact,
                ])
                .expect("writing to memory succeeds");
        }
    }
    String::from_utf8(writer.into_inner().expect("flushing to memory succeeds"))
        .expect("CSV of UTF-8 fields is UTF-8")
}

impl StatementError {
    /// True for errors caused by the request rather than the ledger (a bad
    /// period or currency, an `as_of` beyond the log, nothing signed yet to
    /// cite, a store error the request caused): the CLI maps these to exit
    /// code 2 and the API to 4xx.
    pub fn is_client_error(&self) -> bool {
        match self {
            StatementError::BadPeriod(_)
            | StatementError::BadCurrency(..)
            | StatementError::NoCheckpoint
            | StatementError::Projection(ProjectionError::AsOfBeyondLog { .. }) => true,
            StatementError::Projection(ProjectionError::Store(store)) => store.is_client_error(),
            StatementError::Projection(_) => false,
        }
    }
}

/// The CSV form of [`statement_detail`] for `party`: a header, then one row
/// per usage line and component behind the party's amount in each statement.
pub fn render_detail_csv<'a>(
    party: &str,
    statements: impl IntoIterator<Item = (&'a Statement, &'a [StatementDetail])>,
) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record([
            "period",
            "currency",
            "checkpoint_size",
            "party",
            "seq",
            "line_id",
            "derivative",
            "component",
            "reference",
            "amount",
            "after_takedown",
            "takedown_seq",
            "takedown_effective",
        ])
        .expect("writing to memory succeeds");
    for (s, details) in statements {
        for d in details {
            writer
                .write_record([
                    s.period.as_str(),
                    &s.currency,
                    &s.checkpoint.size.to_string(),
                    party,
                    &d.seq.to_string(),
                    &d.line_id,
                    &d.derivative,
                    &d.component,
                    &d.reference,
                    &d.amount,
                    d.after_takedown.as_ref().map_or("", |m| m.reason.code()),
                    &d.after_takedown
                        .as_ref()
                        .map_or(String::new(), |m| m.event_seq.to_string()),
                    &d.after_takedown
                        .as_ref()
                        .map_or(String::new(), |m| m.effective.to_string()),
                ])
                .expect("writing to memory succeeds");
        }
    }
    String::from_utf8(writer.into_inner().expect("flushing to memory succeeds"))
        .expect("CSV of UTF-8 fields is UTF-8")
}
