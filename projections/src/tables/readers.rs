//! Reading rows of the projection tables back into the fold's types: the
//! small keyed tables (allocation plans, derivative ids), each row decoded
//! once per reader, and usage lines. Nothing here writes.

use crate::allocation::AllocationPlan;
use crate::fold::{LineRecord, LineStatus};
use rusqlite::{params, Connection, OptionalExtension};
use rust_decimal::Decimal;
use schemas::usage::UsageLine;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use uuid::Uuid;

/// Rows of a small table read by integer key, each decoded once: stored
/// allocation plans, derivative ids.
pub(crate) struct KeyedReader<'c, T> {
    conn: &'c Connection,
    /// A `SELECT` of one blob by key `?1`.
    sql: &'static str,
    /// What a row is, for messages.
    what: &'static str,
    decode: fn(&[u8]) -> Result<T, String>,
    decoded: std::cell::RefCell<HashMap<i64, T>>,
}

/// Stored allocation plans, by id.
pub(crate) type PlanReader<'c> = KeyedReader<'c, Arc<AllocationPlan>>;
/// Derivative ids, by the key usage lines store.
pub(crate) type DerivativeReader<'c> = KeyedReader<'c, Uuid>;

impl<'c> PlanReader<'c> {
    pub(crate) fn new(conn: &'c Connection) -> PlanReader<'c> {
        KeyedReader {
            conn,
            sql: "SELECT plan FROM projection_allocation_plan WHERE id = ?1",
            what: "allocation plan",
            decode: |bytes| AllocationPlan::decode(bytes).map(Arc::new),
            decoded: Default::default(),
        }
    }
}

impl<'c> DerivativeReader<'c> {
    pub(crate) fn new(conn: &'c Connection) -> DerivativeReader<'c> {
        KeyedReader {
            conn,
            sql: "SELECT derivative FROM projection_derivative_key WHERE key = ?1",
            what: "derivative key",
            decode: |bytes| Uuid::from_slice(bytes).map_err(|e| e.to_string()),
            decoded: Default::default(),
        }
    }
}

impl<T: Clone> KeyedReader<'_, T> {
    /// The row stored as `key`, or why it cannot be read.
    pub(crate) fn get(&self, key: i64) -> Result<Result<T, String>, rusqlite::Error> {
        if let Some(value) = self.decoded.borrow().get(&key) {
            return Ok(Ok(value.clone()));
        }
        let stored: Option<Vec<u8>> = self
            .conn
            .prepare_cached(self.sql)?
            .query_row(params![key], |row| row.get(0))
            .optional()?;
        let what = self.what;
        let Some(stored) = stored else {
            return Ok(Err(format!("{what} {key} is missing")));
        };
        Ok((self.decode)(&stored)
            .inspect(|value| {
                self.decoded.borrow_mut().insert(key, value.clone());
            })
            .map_err(|e| format!("{what} {key}: {e}")))
    }
}

/// How [`line_from_row`] reads the keys a usage line stores.
pub(crate) struct LineReader<'c> {
    pub(crate) plans: PlanReader<'c>,
    pub(crate) derivatives: DerivativeReader<'c>,
}

impl<'c> LineReader<'c> {
    pub(crate) fn new(conn: &'c Connection) -> LineReader<'c> {
        LineReader {
            plans: PlanReader::new(conn),
            derivatives: DerivativeReader::new(conn),
        }
    }
}

/// What [`line_from_row`] reads: a usage line (`u`).
pub(crate) const LINE_COLUMNS: &str = "u.seq, u.line_id, u.derivative, u.period, u.territory, u.currency, u.streams, u.gross, u.reverses, u.status, u.plan
     FROM projection_usage_line u";

/// A usage line from a `SELECT` of [`LINE_COLUMNS`], its keys read through
/// `reader`.
pub(crate) fn line_from_row(
    row: &rusqlite::Row<'_>,
    reader: &LineReader<'_>,
) -> rusqlite::Result<Result<LineRecord, String>> {
    let seq: i64 = row.get(0)?;
    let corrupt = |e: String| format!("usage line at seq {seq}: {e}");
    let derivative = match reader.derivatives.get(row.get(2)?)? {
        Ok(derivative) => derivative,
        Err(e) => return Ok(Err(corrupt(e))),
    };
    let gross: String = row.get(7)?;
    let status: String = row.get(9)?;
    let plan = match row.get::<_, Option<i64>>(10)? {
        Some(id) => match reader.plans.get(id)? {
            Ok(plan) => Some(plan),
            Err(e) => return Ok(Err(corrupt(e))),
        },
        None => None,
    };
    let status = LineStatus::from_text(&status);
    if (status == LineStatus::Booked) != plan.is_some() {
        return Ok(Err(corrupt(
            "a booked line must have an allocation plan, and only a booked line".into(),
        )));
    }
    let line = UsageLine {
        line_id: row.get(1)?,
        derivative,
        period: row.get(3)?,
        territory: row.get(4)?,
        currency: row.get(5)?,
        streams: row.get::<_, i64>(6)? as u64,
        gross: match Decimal::from_str(&gross) {
            Ok(gross) => gross,
            Err(e) => return Ok(Err(corrupt(format!("gross {gross:?}: {e}")))),
        },
        reverses: row.get(8)?,
    };
    Ok(Ok(LineRecord {
        seq: seq as u64,
        line,
        status,
        plan,
    }))
}
