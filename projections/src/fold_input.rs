//! The fold's input, decoded from leaf bytes with no more work than the
//! fold needs.
//!
//! Almost every event of a large log is a usage line. Decoding its leaf to
//! an [`Envelope`] builds the payload as a `serde_json::Value` (a map of
//! owned strings) only for the fold to convert it to a [`UsageLine`] and
//! drop the map; here the line is parsed from the leaf's bytes to its type
//! directly. Events the fold ignores are not decoded past their header, and
//! the rest (catalog entries, generation jobs' requests, steps and ends: a
//! few per derivative) become envelopes.

use crate::fold::{catalog_kind, Change, Fold, LineBook};
use ledger::envelope::EnvelopeError;
use ledger::Envelope;
use schemas::generation::{
    CREDENTIALS_ISSUED, DERIVATIVE_PUBLISHED, GENERATION_ABANDONED, GENERATION_REQUESTED,
    GENERATION_STEP,
};
use schemas::usage::{UsageLine, LINE_IMPORTED};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use uuid::Uuid;

/// One event of the log as the fold reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum FoldInput {
    /// A usage line event; `line` is `None` when its payload is not a valid
    /// usage line (the fold skips it, as it skips any invalid payload).
    UsageLine { seq: u64, line: Option<UsageLine> },
    /// A catalog entry, or an event of a generation job the fold follows.
    Envelope(Envelope),
    /// An event of a type the fold does not read.
    Ignored { seq: u64 },
}

/// Every envelope field, as `Envelope` requires them, borrowed from the
/// leaf; the payload stays unparsed.
#[derive(Deserialize)]
#[allow(dead_code)] // Parsed so that a malformed leaf is refused as `Envelope::from_leaf` would.
struct LeafParts<'a> {
    seq: u64,
    #[serde(borrow)]
    stream: Cow<'a, str>,
    version: u64,
    id: Uuid,
    #[serde(rename = "type", borrow)]
    event_type: Cow<'a, str>,
    schema: u32,
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(borrow)]
    prev: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: &'a RawValue,
}

impl FoldInput {
    /// Decodes the exact leaf bytes of one event.
    pub fn from_leaf(leaf: &[u8]) -> Result<FoldInput, EnvelopeError> {
        let parts: LeafParts<'_> =
            serde_json::from_slice(leaf).map_err(|e| EnvelopeError::BadLeaf(e.to_string()))?;
        let event_type = parts.event_type.as_ref();
        if event_type == LINE_IMPORTED {
            Ok(FoldInput::UsageLine {
                seq: parts.seq,
                line: serde_json::from_str(parts.data.get()).ok(),
            })
        } else if catalog_kind(event_type).is_some()
            || matches!(
                event_type,
                DERIVATIVE_PUBLISHED
                    | CREDENTIALS_ISSUED
                    | GENERATION_REQUESTED
                    | GENERATION_STEP
                    | GENERATION_ABANDONED
            )
        {
            Envelope::from_leaf(leaf).map(FoldInput::Envelope)
        } else {
            Ok(FoldInput::Ignored { seq: parts.seq })
        }
    }

    /// The input of an envelope at hand (a usage line is read from it;
    /// any other event is copied).
    pub fn from_envelope(envelope: &Envelope) -> FoldInput {
        if envelope.event_type == LINE_IMPORTED {
            FoldInput::UsageLine {
                seq: envelope.seq,
                line: UsageLine::deserialize(&envelope.data).ok(),
            }
        } else {
            FoldInput::Envelope(envelope.clone())
        }
    }

    pub fn seq(&self) -> u64 {
        match self {
            FoldInput::UsageLine { seq, .. } | FoldInput::Ignored { seq } => *seq,
            FoldInput::Envelope(envelope) => envelope.seq,
        }
    }

    /// Folds this event: exactly what [`Fold::apply`] does with its envelope.
    pub fn fold_into<B: LineBook>(
        self,
        fold: &mut Fold,
        book: &mut B,
    ) -> Result<Option<Change>, B::Error> {
        match self {
            FoldInput::UsageLine { seq, line } => fold.apply_line(seq, line, book),
            FoldInput::Envelope(envelope) => fold.apply(&envelope, book),
            FoldInput::Ignored { .. } => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::tests::envelope;
    use crate::fold::MemoryBook;
    use serde_json::json;

    /// The leaf path and the envelope path must fold to the same changes,
    /// including for payloads that are not valid usage lines.
    #[test]
    fn a_leaf_folds_as_its_envelope_does() {
        let line = json!({"line_id": "L1", "period": "2026-01",
            "derivative": "6f1c1c1e-1111-4a4a-8b8b-000000000001", "territory": "US",
            "currency": "USD", "streams": 3, "gross": "1.5"});
        let events = [
            envelope(0, LINE_IMPORTED, line.clone()),
            envelope(1, LINE_IMPORTED, json!({"line_id": "L2"})),
            envelope(2, LINE_IMPORTED, {
                let mut extra = line.clone();
                extra["unknown"] = json!(1);
                extra
            }),
            envelope(3, "generation.step-completed", json!({"step": "mix"})),
            envelope(
                4,
                "catalog.party-registered",
                json!({"id": "p1", "name": "P", "role": "artist"}),
            ),
        ];
        let (mut by_envelope, mut by_leaf) = (Fold::default(), Fold::default());
        let (mut book_e, mut book_l) = (MemoryBook::new(), MemoryBook::new());
        for event in &events {
            let leaf = event.to_leaf().unwrap();
            let input = FoldInput::from_leaf(&leaf).unwrap();
            assert_eq!(input.seq(), event.seq);
            assert_eq!(
                input.fold_into(&mut by_leaf, &mut book_l).unwrap(),
                by_envelope.apply(event, &mut book_e).unwrap(),
                "event {}",
                event.seq
            );
        }
        assert_eq!(by_leaf, by_envelope);
        assert_eq!(book_l.changes, book_e.changes);
        assert_eq!(book_l.changes.len(), 2, "one rejected line and one party");
    }

    #[test]
    fn a_malformed_leaf_is_refused() {
        let mut leaf = envelope(0, "generation.step-completed", json!({}))
            .to_leaf()
            .unwrap();
        leaf.truncate(leaf.len() - 1);
        assert!(matches!(
            FoldInput::from_leaf(&leaf),
            Err(EnvelopeError::BadLeaf(_))
        ));
        let no_id = br#"{"data":{},"prev":null,"schema":1,"seq":0,"stream":"s","time":"t","type":"x","version":0}"#;
        assert!(FoldInput::from_leaf(no_id).is_err());
    }
}
