//! Reconciliation of a label's own statement against ours, party by party
//! (and derivative by derivative where the label sends detail rows).
//!
//! The label's CSV has the header `party,currency,amount` with an optional
//! fourth column `derivative`: rows with an empty derivative are party
//! totals, the others are detail rows for one derivative.

use crate::amount::{format_minor_units, round_half_even_minor_units, ExactSum};
use crate::currency::minor_unit_exponent;
use crate::runner::Projections;
use crate::statement::{checkpoint_for, statements, CheckpointRef, Statement, StatementError};
use ledger::store::EventStore;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

/// The most rows a label statement may hold.
pub const LABEL_ROWS_MAX: usize = 1_000_000;

/// One row of a label's statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRow {
    pub party: String,
    pub currency: String,
    pub amount: Decimal,
    pub derivative: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReconcileError {
    #[error("the label statement is not valid CSV: {0}")]
    Csv(String),
    #[error("the label statement's header is {0:?}; it must be party,currency,amount or party,currency,amount,derivative")]
    Header(String),
    #[error("the label statement has errors: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// Parses a label statement CSV.
pub fn parse_label_statement(bytes: &[u8]) -> Result<Vec<LabelRow>, ReconcileError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| ReconcileError::Csv(e.to_string()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if header != ["party", "currency", "amount"]
        && header != ["party", "currency", "amount", "derivative"]
    {
        return Err(ReconcileError::Header(header.join(",")));
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(|e| ReconcileError::Csv(e.to_string()))?;
        if index >= LABEL_ROWS_MAX {
            return Err(ReconcileError::Invalid(vec![format!(
                "more than {LABEL_ROWS_MAX} rows"
            )]));
        }
        let row = index + 2;
        let field = |i: usize| record.get(i).unwrap_or("").trim();
        let (party, currency, amount) = (field(0), field(1), field(2));
        if party.is_empty() {
            errors.push(format!("line {row}, party: is empty"));
            continue;
        }
        if minor_unit_exponent(currency).is_none() {
            errors.push(format!(
                "line {row}, currency: {currency:?} is not an accepted ISO 4217 code"
            ));
            continue;
        }
        let plain = amount.strip_prefix('-').unwrap_or(amount);
        let amount = match Decimal::from_str(amount) {
            Ok(value)
                if !plain.is_empty() && plain.bytes().all(|b| b.is_ascii_digit() || b == b'.') =>
            {
                value
            }
            _ => {
                errors.push(format!(
                    "line {row}, amount: {amount:?} is not a decimal string like \"12.34\""
                ));
                continue;
            }
        };
        let derivative = Some(field(3)).filter(|d| !d.is_empty()).map(str::to_string);
        rows.push(LabelRow {
            party: party.to_string(),
            currency: currency.to_string(),
            amount,
            derivative,
        });
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(ReconcileError::Invalid(errors))
    }
}

/// How one party (or one party and derivative) compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchStatus {
    Matched,
    Mismatched,
    /// In the label's statement, not in ours.
    MissingHere,
    /// In ours, not in the label's.
    MissingThere,
}

impl MatchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchStatus::Matched => "matched",
            MatchStatus::Mismatched => "mismatched",
            MatchStatus::MissingHere => "missing-here",
            MatchStatus::MissingThere => "missing-there",
        }
    }
}

/// One compared row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comparison {
    pub currency: String,
    pub party: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub derivative: Option<String>,
    pub status: MatchStatus,
    pub ours: Option<String>,
    pub theirs: Option<String>,
    /// theirs - ours, when both exist.
    pub difference: Option<String>,
}

/// Totals per currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CurrencyTotals {
    pub currency: String,
    pub ours: String,
    pub theirs: String,
    pub difference: String,
}

/// Counts by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub matched: usize,
    pub mismatched: usize,
    pub missing_here: usize,
    pub missing_there: usize,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    pub period: String,
    pub checkpoint: CheckpointRef,
    pub all_match: bool,
    pub counts: Counts,
    pub totals: Vec<CurrencyTotals>,
    pub parties: Vec<Comparison>,
    pub derivatives: Vec<Comparison>,
}

/// Our exact amount per (currency, party, derivative): what a label's
/// derivative detail rows are compared with, once rounded.
pub type DerivativeAmounts = BTreeMap<(String, String, String), ExactSum>;

/// Compares the label's rows with our statements (one per currency) and, for
/// detail rows, with `derivative_amounts` rounded half-even (the exact sums
/// behind the statements, for at least the parties with detail rows).
pub fn reconcile(
    period: &str,
    checkpoint: CheckpointRef,
    ours: &[Statement],
    derivative_amounts: &DerivativeAmounts,
    theirs: &[LabelRow],
) -> Reconciliation {
    let mut our_parties: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for statement in ours {
        for line in &statement.lines {
            let amount = Decimal::from_str(&line.amount).expect("statement amounts are decimals");
            our_parties.insert((statement.currency.clone(), line.party.clone()), amount);
        }
    }
    let mut their_parties: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    let mut their_details: BTreeMap<(String, String, String), Decimal> = BTreeMap::new();
    for row in theirs {
        match &row.derivative {
            None => {
                *their_parties
                    .entry((row.currency.clone(), row.party.clone()))
                    .or_default() += row.amount
            }
            Some(d) => {
                *their_details
                    .entry((row.currency.clone(), row.party.clone(), d.clone()))
                    .or_default() += row.amount
            }
        }
    }
    let currencies: BTreeSet<String> = our_parties
        .keys()
        .chain(their_parties.keys())
        .map(|(c, _)| c.clone())
        .collect();

    let mut counts = Counts::default();
    let mut count = |status: MatchStatus| match status {
        MatchStatus::Matched => counts.matched += 1,
        MatchStatus::Mismatched => counts.mismatched += 1,
        MatchStatus::MissingHere => counts.missing_here += 1,
        MatchStatus::MissingThere => counts.missing_there += 1,
    };

    let keys: BTreeSet<(String, String)> = our_parties
        .keys()
        .chain(their_parties.keys())
        .cloned()
        .collect();
    let mut parties = Vec::with_capacity(keys.len());
    for (currency, party) in keys {
        let key = (currency.clone(), party.clone());
        let comparison = compare(
            currency,
            party,
            None,
            our_parties.get(&key).copied(),
            their_parties.get(&key).copied(),
        );
        count(comparison.status);
        parties.push(comparison);
    }

    let mut derivatives = Vec::new();
    if !their_details.is_empty() {
        let exact = derivative_amounts;
        let detail_parties: BTreeSet<(String, String)> = their_details
            .keys()
            .map(|(c, p, _)| (c.clone(), p.clone()))
            .collect();
        let keys: BTreeSet<(String, String, String)> = exact
            .keys()
            .filter(|(c, p, _)| detail_parties.contains(&(c.clone(), p.clone())))
            .chain(their_details.keys())
            .cloned()
            .collect();
        for key in keys {
            let ours = exact.get(&key).map(|sum| {
                let exponent = minor_unit_exponent(&key.0).expect("booked currencies are accepted");
                Decimal::from_str(&format_minor_units(
                    round_half_even_minor_units(sum, exponent),
                    exponent,
                ))
                .expect("formatted minor units parse")
            });
            let (currency, party, derivative) = key.clone();
            let comparison = compare(
                currency,
                party,
                Some(derivative),
                ours,
                their_details.get(&key).copied(),
            );
            count(comparison.status);
            derivatives.push(comparison);
        }
    }

    let totals = currencies
        .into_iter()
        .map(|currency| {
            let sum = |map: &BTreeMap<(String, String), Decimal>| -> Decimal {
                map.iter()
                    .filter(|((c, _), _)| *c == currency)
                    .map(|(_, a)| *a)
                    .sum()
            };
            let (o, t) = (sum(&our_parties), sum(&their_parties));
            CurrencyTotals {
                currency,
                ours: o.to_string(),
                theirs: t.to_string(),
                difference: (t - o).to_string(),
            }
        })
        .collect();
    Reconciliation {
        period: period.to_string(),
        checkpoint,
        all_match: counts.mismatched + counts.missing_here + counts.missing_there == 0,
        counts,
        totals,
        parties,
        derivatives,
    }
}

fn compare(
    currency: String,
    party: String,
    derivative: Option<String>,
    ours: Option<Decimal>,
    theirs: Option<Decimal>,
) -> Comparison {
    let status = match (ours, theirs) {
        (Some(o), Some(t)) if o == t => MatchStatus::Matched,
        (Some(_), Some(_)) => MatchStatus::Mismatched,
        (None, _) => MatchStatus::MissingHere,
        (Some(_), None) => MatchStatus::MissingThere,
    };
    Comparison {
        currency,
        party,
        derivative,
        status,
        ours: ours.map(|o| o.to_string()),
        theirs: theirs.map(|t| t.to_string()),
        difference: ours.zip(theirs).map(|(o, t)| (t - o).to_string()),
    }
}

/// Reconciles a label's rows for `period` against our statements computed
/// from the log prefix `as_of` (the whole log when `None`), as the CLI and
/// the HTTP API both answer it.
///
/// `currency` limits the comparison to one currency (the label's rows in
/// others are dropped). `party` limits ours to that party's lines, for a
/// label reconciling its own statement: the report then names no other
/// party. Currencies the label reports that we have no usage in still get a
/// (possibly empty) statement of ours to compare with.
pub async fn reconcile_with_log(
    store: &dyn EventStore,
    projections: &mut Projections,
    period: &str,
    currency: Option<&str>,
    party: Option<&str>,
    as_of: Option<u64>,
    mut theirs: Vec<LabelRow>,
) -> Result<Reconciliation, StatementError> {
    if let Some(currency) = currency {
        theirs.retain(|row| row.currency == currency);
    }
    let mut ours = statements(store, projections, period, currency, as_of).await?;
    let checkpoint = match ours.first() {
        Some(statement) => statement.checkpoint.clone(),
        None => checkpoint_for(store, as_of, projections.witness_policy()).await?,
    };
    if currency.is_none() {
        let mut missing: Vec<String> = theirs
            .iter()
            .map(|row| row.currency.clone())
            .filter(|c| !ours.iter().any(|s| &s.currency == c))
            .collect();
        missing.sort();
        missing.dedup();
        for currency in missing {
            let more = statements(
                store,
                projections,
                period,
                Some(&currency),
                Some(checkpoint.size),
            )
            .await?;
            ours.extend(more);
        }
    }
    if let Some(party) = party {
        for statement in &mut ours {
            statement.lines.retain(|line| line.party == party);
        }
    }
    // Per-derivative amounts only for the parties the label sent detail
    // rows for: a period can hold millions of allocations.
    let detail_parties: BTreeSet<&str> = theirs
        .iter()
        .filter(|row| row.derivative.is_some())
        .map(|row| row.party.as_str())
        .collect();
    let mut derivative_amounts = DerivativeAmounts::new();
    if !detail_parties.is_empty() {
        for statement in &ours {
            for ((party, derivative), sum) in projections.derivative_totals(
                &statement.period,
                &statement.currency,
                checkpoint.size,
                &detail_parties,
            )? {
                derivative_amounts.insert((statement.currency.clone(), party, derivative), sum);
            }
        }
    }
    Ok(reconcile(
        period,
        checkpoint,
        &ours,
        &derivative_amounts,
        &theirs,
    ))
}

/// A plain-text report: one line per compared row, then totals.
pub fn render_text(r: &Reconciliation) -> String {
    let mut out = format!(
        "reconciliation of {} against checkpoint {} ({})\n",
        r.period, r.checkpoint.size, r.checkpoint.root_hash
    );
    for c in r.parties.iter().chain(&r.derivatives) {
        let what = match &c.derivative {
            Some(d) => format!("{} {} derivative {d}", c.currency, c.party),
            None => format!("{} {}", c.currency, c.party),
        };
        let dash = || "-".to_string();
        out.push_str(&format!(
            "{:<13} {what}: ours {}, theirs {}, difference {}\n",
            c.status.as_str(),
            c.ours.clone().unwrap_or_else(dash),
            c.theirs.clone().unwrap_or_else(dash),
            c.difference.clone().unwrap_or_else(dash)
        ));
    }
    for t in &r.totals {
        out.push_str(&format!(
            "total {}: ours {}, theirs {}, difference {}\n",
            t.currency, t.ours, t.theirs, t.difference
        ));
    }
    out.push_str(&format!(
        "{} matched, {} mismatched, {} missing here, {} missing there\n",
        r.counts.matched, r.counts.mismatched, r.counts.missing_here, r.counts.missing_there
    ));
    out
}

impl ReconcileError {
    /// True for errors caused by the request rather than the ledger; every
    /// one is, since each says what is wrong with the label's statement. The
    /// CLI maps these to exit code 2 and the API to 4xx.
    pub fn is_client_error(&self) -> bool {
        match self {
            ReconcileError::Csv(_) | ReconcileError::Header(_) | ReconcileError::Invalid(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statement::StatementLine;

    fn statement(lines: &[(&str, &str)]) -> Statement {
        Statement {
            period: "2026-03".into(),
            currency: "USD".into(),
            checkpoint: CheckpointRef {
                size: 9,
                root_hash: "ab".into(),
            },
            total: "0".into(),
            lines: lines
                .iter()
                .map(|(p, a)| StatementLine {
                    party: p.to_string(),
                    name: p.to_string(),
                    amount: a.to_string(),
                    exact: a.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn reports_matched_mismatched_and_missing() {
        let ours = [statement(&[
            ("label", "1.13"),
            ("singer", "2.39"),
            ("w1", "0.50"),
        ])];
        let theirs = parse_label_statement(
            b"party,currency,amount\nlabel,USD,1.130\nsinger,USD,2.40\nghost,USD,0.01\n",
        )
        .unwrap();
        let r = reconcile(
            "2026-03",
            ours[0].checkpoint.clone(),
            &ours,
            &DerivativeAmounts::new(),
            &theirs,
        );
        let statuses: Vec<(&str, MatchStatus, Option<&str>)> = r
            .parties
            .iter()
            .map(|c| (c.party.as_str(), c.status, c.difference.as_deref()))
            .collect();
        assert_eq!(
            statuses,
            vec![
                ("ghost", MatchStatus::MissingHere, None),
                ("label", MatchStatus::Matched, Some("0.000")),
                ("singer", MatchStatus::Mismatched, Some("0.01")),
                ("w1", MatchStatus::MissingThere, None),
            ]
        );
        assert!(!r.all_match);
        assert_eq!(r.totals[0].ours, "4.02");
        assert_eq!(r.totals[0].theirs, "3.540");
        assert!(render_text(&r)
            .contains("mismatched    USD singer: ours 2.39, theirs 2.40, difference 0.01"));
    }

    #[test]
    fn all_match_and_bad_rows() {
        let ours = [statement(&[("label", "1.13")])];
        let theirs = parse_label_statement(b"party,currency,amount\nlabel,USD,1.13\n").unwrap();
        assert!(
            reconcile(
                "2026-03",
                ours[0].checkpoint.clone(),
                &ours,
                &DerivativeAmounts::new(),
                &theirs
            )
            .all_match
        );
        let error = parse_label_statement(b"party,currency,amount\nlabel,XYZ,1\nlabel,USD,1e3\n")
            .unwrap_err();
        assert_eq!(error.to_string(), "the label statement has errors: line 2, currency: \"XYZ\" is not an accepted ISO 4217 code; line 3, amount: \"1e3\" is not a decimal string like \"12.34\"");
        assert!(matches!(
            parse_label_statement(b"who,what\n"),
            Err(ReconcileError::Header(_))
        ));
    }
}
