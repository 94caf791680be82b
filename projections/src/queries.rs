//! The read model's queries, as methods of [`Projections`]: booked lines,
//! statement totals, derivatives by id, hash or fingerprint, catalog
//! versions and party names, each as of a log prefix `0..size`.
//!
//! They read the committed tables only; catching up first is the caller's
//! choice (statements and lineage do). Turning their answers into
//! statements, reconciliations or lineage is left to those modules.

use crate::allocation::AllocationPlan;
use crate::amount::{ExactSum, MantissaSums};
use crate::fold::{DerivativeRecord, LineBook, LineRecord, KIND_PARTY};
use crate::runner::Projections;
use crate::tables::{
    line_from_row, LineReader, PlanReader, ProjectionError, SqlBook, LINE_COLUMNS,
};
use rusqlite::{params, OptionalExtension};
use rust_decimal::Decimal;
use schemas::generation::DerivativePublished;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::Arc;
use uuid::Uuid;

/// What a statement of one period and currency is computed from: the exact
/// gross of its booked lines and each party's exact total, by party id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeriodTotals {
    pub gross: ExactSum,
    pub parties: BTreeMap<String, ExactSum>,
}

impl PeriodTotals {
    /// Sums booked `lines`, all of `period` and `currency`.
    pub fn of_lines(
        period: &str,
        currency: &str,
        lines: &[LineRecord],
    ) -> Result<PeriodTotals, ProjectionError> {
        let mut totals = PeriodTotals::default();
        for record in lines {
            assert!(record.line.period == period && record.line.currency == currency);
            totals.gross.add(record.line.gross);
            for allocation in record.stored_allocations()?.iter() {
                totals
                    .parties
                    .entry(allocation.party.to_string())
                    .or_default()
                    .add(allocation.amount);
            }
        }
        Ok(totals)
    }
}

impl Projections {
    /// A [`LineBook`] reading the committed usage lines.
    pub fn book(&self) -> impl LineBook<Error = rusqlite::Error> + '_ {
        SqlBook::new(self.connection())
    }

    /// The booked lines of one period and currency with seq < `size`: each
    /// line's gross and exact allocations, in seq order.
    pub fn booked_lines(
        &self,
        period: &str,
        currency: &str,
        size: u64,
    ) -> Result<Vec<LineRecord>, ProjectionError> {
        let mut statement = self.connection().prepare_cached(&format!(
            "SELECT {LINE_COLUMNS}
             WHERE u.period = ?1 AND u.currency = ?2 AND u.seq < ?3 AND u.status = 'booked' ORDER BY u.seq"
        ))?;
        let reader = LineReader::new(self.connection());
        let rows = statement.query_map(params![period, currency, size as i64], |row| {
            line_from_row(row, &reader)
        })?;
        rows.map(|row| row?.map_err(ProjectionError::Corrupt))
            .collect()
    }

    /// The statement inputs of one period and currency below seq `size`:
    /// the exact gross and each party's exact total of the booked lines,
    /// each line allocated by its plan and added by position (a period can
    /// hold millions of lines, so none is materialized).
    pub fn period_totals(
        &self,
        period: &str,
        currency: &str,
        size: u64,
    ) -> Result<PeriodTotals, ProjectionError> {
        let mut statement = self.connection().prepare_cached(
            "SELECT seq, gross, plan FROM projection_usage_line
             WHERE period = ?1 AND currency = ?2 AND seq < ?3 AND status = 'booked'",
        )?;
        let mut rows = statement.query(params![period, currency, size as i64])?;
        let plans = PlanReader::new(self.connection());
        let mut gross = MantissaSums::default();
        // Each party's sums, and where each plan's amounts go: a line adds
        // its amounts by position, without looking up a party name.
        let mut parties = PartySums::default();
        let mut slots_of_plan: HashMap<i64, (Arc<AllocationPlan>, Vec<usize>)> = HashMap::new();
        while let Some(row) = rows.next()? {
            let line = BookedRow::read(row)?;
            gross.add(line.gross);
            let (plan, slots) = match slots_of_plan.entry(line.plan) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(new) => {
                    let plan = plans.get(line.plan)?.map_err(|e| line.corrupt(e))?;
                    let slots = parties.slots_of(&plan);
                    new.insert((plan, slots))
                }
            };
            let allocations = plan
                .allocate(line.gross)
                .map_err(|e| line.corrupt(e.to_string()))?;
            for (&slot, &amount) in slots.iter().zip(allocations.amounts()) {
                parties.sums[slot].1.add(amount);
            }
        }
        Ok(PeriodTotals {
            gross: gross.total(),
            parties: parties
                .sums
                .into_iter()
                .map(|(party, sums)| (party, sums.total()))
                .collect(),
        })
    }

    /// Each of `parties`' exact total per derivative over the booked lines
    /// of one period and currency below seq `size`, keyed (party,
    /// derivative id): what a label's derivative detail rows reconcile with.
    pub fn derivative_totals(
        &self,
        period: &str,
        currency: &str,
        size: u64,
        parties: &BTreeSet<&str>,
    ) -> Result<BTreeMap<(String, String), ExactSum>, ProjectionError> {
        let mut statement = self.connection().prepare_cached(
            "SELECT seq, gross, plan, derivative FROM projection_usage_line
             WHERE period = ?1 AND currency = ?2 AND seq < ?3 AND status = 'booked'",
        )?;
        let mut rows = statement.query(params![period, currency, size as i64])?;
        let reader = LineReader::new(self.connection());
        let mut totals: BTreeMap<(String, String), ExactSum> = BTreeMap::new();
        while let Some(row) = rows.next()? {
            let line = BookedRow::read(row)?;
            let derivative = reader
                .derivatives
                .get(row.get(3)?)?
                .map_err(|e| line.corrupt(e))?
                .to_string();
            let plan = reader.plans.get(line.plan)?.map_err(|e| line.corrupt(e))?;
            let allocations = plan
                .allocate(line.gross)
                .map_err(|e| line.corrupt(e.to_string()))?;
            for allocation in allocations.iter() {
                if parties.contains(allocation.party) {
                    totals
                        .entry((allocation.party.to_string(), derivative.clone()))
                        .or_default()
                        .add(allocation.amount);
                }
            }
        }
        Ok(totals)
    }

    /// The currencies with booked lines in `period` below seq `size`.
    pub fn currencies(&self, period: &str, size: u64) -> Result<Vec<String>, ProjectionError> {
        let mut statement = self.connection().prepare_cached(
            "SELECT DISTINCT currency FROM projection_usage_line
             WHERE period = ?1 AND seq < ?2 AND status = 'booked' ORDER BY currency",
        )?;
        let rows = statement.query_map(params![period, size as i64], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every usage line of a derivative below seq `size`, booked or not.
    pub fn lines_of_derivative(
        &self,
        derivative: Uuid,
        size: u64,
    ) -> Result<Vec<LineRecord>, ProjectionError> {
        let key: Option<i64> = self
            .connection()
            .prepare_cached("SELECT key FROM projection_derivative_key WHERE derivative = ?1")?
            .query_row(params![&derivative.as_bytes()[..]], |row| row.get(0))
            .optional()?;
        let Some(key) = key else {
            return Ok(Vec::new()); // No usage line names it.
        };
        let mut statement = self.connection().prepare_cached(&format!(
            "SELECT {LINE_COLUMNS} WHERE u.derivative = ?1 AND u.seq < ?2 ORDER BY u.seq"
        ))?;
        let reader = LineReader::new(self.connection());
        let rows =
            statement.query_map(params![key, size as i64], |row| line_from_row(row, &reader))?;
        rows.map(|row| row?.map_err(ProjectionError::Corrupt))
            .collect()
    }

    /// Party names in force below seq `size`, by id.
    pub fn party_names(&self, size: u64) -> Result<BTreeMap<String, String>, ProjectionError> {
        let mut statement = self.connection().prepare_cached(
            "SELECT id, data FROM projection_catalog_entry WHERE kind = ?1 AND seq < ?2 ORDER BY seq",
        )?;
        let rows = statement.query_map(params![KIND_PARTY, size as i64], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut names = BTreeMap::new();
        for row in rows {
            let (id, data) = row?;
            let value: serde_json::Value =
                serde_json::from_str(&data).map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
            if let Some(name) = value.get("name").and_then(|n| n.as_str()) {
                names.insert(id, name.to_string());
            }
        }
        Ok(names)
    }

    /// The version of a catalog entity in force below seq `size`: its seq and payload.
    pub fn catalog_entry(
        &self,
        kind: &str,
        id: &str,
        size: u64,
    ) -> Result<Option<(u64, serde_json::Value)>, ProjectionError> {
        let row: Option<(i64, String)> = self
            .connection()
            .prepare_cached(
                "SELECT seq, data FROM projection_catalog_entry
                 WHERE kind = ?1 AND id = ?2 AND seq < ?3 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row(params![kind, id, size as i64], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        row.map(|(seq, data)| {
            serde_json::from_str(&data)
                .map(|value| (seq as u64, value))
                .map_err(|e| ProjectionError::Corrupt(e.to_string()))
        })
        .transpose()
    }

    /// A derivative published below seq `size`.
    pub fn derivative(
        &self,
        derivative: Uuid,
        size: u64,
    ) -> Result<Option<DerivativeRecord>, ProjectionError> {
        self.derivatives_where("derivative = ?1", &derivative.to_string(), size)
            .map(|mut found| found.pop())
    }

    /// Derivatives published below seq `size` whose file bytes hash to `hash`.
    pub fn derivatives_by_output(
        &self,
        hash: &str,
        size: u64,
    ) -> Result<Vec<DerivativeRecord>, ProjectionError> {
        self.derivatives_where("output_hash = ?1", hash, size)
    }

    /// Derivatives whose output, credentialed below seq `size`, was
    /// distributed as the file hashing to `hash`.
    pub fn derivatives_by_credentialed_file(
        &self,
        hash: &str,
        size: u64,
    ) -> Result<Vec<DerivativeRecord>, ProjectionError> {
        self.derivatives_where(
            "derivative IN (SELECT derivative FROM projection_credentialed_file WHERE file_hash = ?1 AND seq < ?2)",
            hash,
            size,
        )
    }

    /// Derivatives published below seq `size` whose decoded PCM hashes to `hash`.
    pub fn derivatives_by_pcm(
        &self,
        hash: &str,
        size: u64,
    ) -> Result<Vec<DerivativeRecord>, ProjectionError> {
        self.derivatives_where("pcm_hash = ?1", hash, size)
    }

    /// Derivatives published below seq `size` that share the most index
    /// keys with a query fingerprint (see [`crate::fingerprint`]), at most
    /// `candidates_max`, with their number of shared keys, most first. Keys
    /// listed for more than [`crate::fingerprint::KEY_POSTINGS_MAX`]
    /// derivatives do not vote.
    pub fn derivatives_by_fingerprint_keys(
        &self,
        keys: &[u32],
        size: u64,
        candidates_max: usize,
    ) -> Result<Vec<(DerivativeRecord, u32)>, ProjectionError> {
        let postings_max = crate::fingerprint::KEY_POSTINGS_MAX;
        let mut postings = self.connection().prepare_cached(
            "SELECT derivative_seq FROM projection_fingerprint_key
             WHERE key = ?1 AND derivative_seq < ?2 LIMIT ?3",
        )?;
        let mut votes: std::collections::HashMap<i64, u32> = Default::default();
        let mut listed = Vec::with_capacity(postings_max + 1);
        for key in keys {
            listed.clear();
            let rows = postings
                .query_map(params![key, size as i64, postings_max as i64 + 1], |row| {
                    row.get::<_, i64>(0)
                })?;
            for seq in rows {
                listed.push(seq?);
            }
            if listed.len() <= postings_max {
                for seq in &listed {
                    *votes.entry(*seq).or_default() += 1;
                }
            }
        }
        let mut ranked: Vec<(i64, u32)> = votes.into_iter().collect();
        ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(candidates_max);
        let mut by_seq = self
            .connection()
            .prepare_cached("SELECT stream, data FROM projection_derivative WHERE seq = ?1")?;
        let mut found = Vec::with_capacity(ranked.len());
        for (seq, count) in ranked {
            let (stream, data) = by_seq.query_row(params![seq], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
            let published: DerivativePublished =
                serde_json::from_str(&data).map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
            found.push((
                DerivativeRecord {
                    seq: seq as u64,
                    stream,
                    published,
                },
                count,
            ));
        }
        Ok(found)
    }

    fn derivatives_where(
        &self,
        condition: &str,
        value: &str,
        size: u64,
    ) -> Result<Vec<DerivativeRecord>, ProjectionError> {
        let sql = format!(
            "SELECT seq, stream, data FROM projection_derivative WHERE {condition} AND seq < ?2 ORDER BY seq"
        );
        let mut statement = self.connection().prepare_cached(&sql)?;
        let rows = statement.query_map(params![value, size as i64], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        let mut found = Vec::new();
        for row in rows {
            let (seq, stream, data) = row?;
            let published: DerivativePublished =
                serde_json::from_str(&data).map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
            found.push(DerivativeRecord {
                seq: seq as u64,
                stream,
                published,
            });
        }
        Ok(found)
    }
}

/// Exact sums per party, in the order the parties were first met.
#[derive(Default)]
struct PartySums {
    sums: Vec<(String, MantissaSums)>,
    slot_of_party: HashMap<String, usize>,
}

impl PartySums {
    /// The slot in `sums` of each payee of `plan`.
    fn slots_of(&mut self, plan: &AllocationPlan) -> Vec<usize> {
        plan.payees()
            .iter()
            .map(|payee| match self.slot_of_party.get(&*payee.party) {
                Some(&slot) => slot,
                None => {
                    self.sums
                        .push((payee.party.to_string(), MantissaSums::default()));
                    self.slot_of_party
                        .insert(payee.party.to_string(), self.sums.len() - 1);
                    self.sums.len() - 1
                }
            })
            .collect()
    }
}

/// The columns of a booked line that a statement reads: `seq, gross, plan`
/// first in a `SELECT`.
struct BookedRow {
    seq: i64,
    gross: Decimal,
    plan: i64,
}

impl BookedRow {
    fn read(row: &rusqlite::Row<'_>) -> Result<BookedRow, ProjectionError> {
        let seq: i64 = row.get(0)?;
        let corrupt = |e: String| ProjectionError::Corrupt(format!("usage line at seq {seq}: {e}"));
        let gross = row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
        let gross =
            Decimal::from_str(gross).map_err(|e| corrupt(format!("gross {gross:?}: {e}")))?;
        let plan: Option<i64> = row.get(2)?;
        let plan = plan.ok_or_else(|| corrupt("a booked line has no allocation plan".into()))?;
        Ok(BookedRow { seq, gross, plan })
    }

    fn corrupt(&self, error: String) -> ProjectionError {
        ProjectionError::Corrupt(format!("usage line at seq {}: {error}", self.seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::tests::{booked_line, plan_paying};

    fn line(seq: u64, plan: &Arc<AllocationPlan>) -> LineRecord {
        booked_line(
            seq,
            &format!("L{seq}"),
            None,
            Decimal::new(seq as i64 + 1, 2),
            Arc::clone(plan),
        )
    }

    /// Each derivative id is stored once, under a key that its lines store;
    /// a derivative's lines are found by its id, and one no line names has
    /// none.
    #[test]
    fn derivative_ids_are_stored_once_and_lines_found_by_them() {
        let dir = tempfile::tempdir().unwrap();
        let projections = Projections::open(&dir.path().join("p.db")).unwrap();
        let plan = plan_paying("c", &["a"]);
        let lines: Vec<LineRecord> = (0..5)
            .map(|seq| {
                let mut record = line(seq, &plan);
                record.line.derivative = Uuid::from_u128(u128::from(seq % 2) + 1);
                record
            })
            .collect();
        SqlBook::new(projections.connection())
            .insert_lines(&lines[..3])
            .unwrap();
        SqlBook::new(projections.connection())
            .insert_lines(&lines[3..])
            .unwrap();
        let keys: i64 = projections
            .connection()
            .query_row("SELECT count(*) FROM projection_derivative_key", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(keys, 2);
        let seqs = |derivative: u128, size: u64| -> Vec<u64> {
            projections
                .lines_of_derivative(Uuid::from_u128(derivative), size)
                .unwrap()
                .iter()
                .map(|r| r.seq)
                .collect()
        };
        assert_eq!(seqs(1, 5), [0, 2, 4]);
        assert_eq!(seqs(2, 5), [1, 3]);
        assert_eq!(seqs(1, 4), [0, 2]);
        assert!(seqs(3, 5).is_empty());
        let read = projections
            .lines_of_derivative(Uuid::from_u128(2), 5)
            .unwrap();
        assert_eq!(read, [lines[1].clone(), lines[3].clone()]);
    }

    /// A statement allocates each line by its stored plan: the totals are
    /// the sums of the lines' allocations.
    #[test]
    fn period_totals_sum_each_line_allocated_by_its_plan() {
        let dir = tempfile::tempdir().unwrap();
        let projections = Projections::open(&dir.path().join("p.db")).unwrap();
        let (ab, ba) = (plan_paying("c", &["a", "b"]), plan_paying("c", &["b", "a"]));
        let lines = [line(0, &ab), line(1, &ba), line(2, &ab)];
        SqlBook::new(projections.connection())
            .insert_lines(&lines)
            .unwrap();
        let totals = projections.period_totals("2026-01", "USD", 3).unwrap();
        let mut expected: BTreeMap<String, ExactSum> = BTreeMap::new();
        for record in &lines {
            for a in record.allocations().unwrap().iter() {
                expected
                    .entry(a.party.to_string())
                    .or_default()
                    .add(a.amount);
            }
        }
        assert_eq!(totals.parties, expected);
        // Gross 0.01 + 0.02 + 0.03; the voice pool is 0.6 of it, paid 0.9
        // to "a" under a-b and 0.1 under b-a.
        assert_eq!(totals.gross, ExactSum::of(Decimal::new(6, 2)));
        let a = Decimal::new(6, 1)
            * (Decimal::new(9, 1) * Decimal::new(4, 2) + Decimal::new(1, 1) * Decimal::new(2, 2));
        assert_eq!(totals.parties["a"], ExactSum::of(a));
        assert_eq!(
            totals.parties["platform"],
            ExactSum::of(Decimal::new(18, 3))
        );
    }

    /// A line whose plan is missing or does not decode is reported, not
    /// read as something else.
    #[test]
    fn a_line_with_a_bad_plan_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let projections = Projections::open(&dir.path().join("p.db")).unwrap();
        let conn = projections.connection();
        SqlBook::new(conn)
            .insert_line(&line(0, &plan_paying("c", &["a", "b"])))
            .unwrap();
        conn.execute(
            "UPDATE projection_allocation_plan SET plan = substr(plan, 1, 9)",
            [],
        )
        .unwrap();
        let error = projections.period_totals("2026-01", "USD", 1).unwrap_err();
        assert_eq!(
            error.to_string(),
            "projection tables are inconsistent: usage line at seq 0: allocation plan 1: a stored plan ends early"
        );
        let error = SqlBook::new(conn).line_at(0).unwrap_err().to_string();
        assert!(error.contains("a stored plan ends early"), "{error}");
        conn.execute_batch("PRAGMA foreign_keys = OFF; DELETE FROM projection_allocation_plan;")
            .unwrap();
        let error = projections.period_totals("2026-01", "USD", 1).unwrap_err();
        assert!(
            error.to_string().ends_with("allocation plan 1 is missing"),
            "{error}"
        );
    }
}
