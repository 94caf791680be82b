//! Which of the fold's changes concern one party: what a label's monitor
//! reports as its mirror of the log grows (`ledgerline monitor --party P`).
//!
//! The rule is the one a label's API key is held to: the party's own
//! catalog entry, every catalog entry whose split sheets name it (the
//! works, recordings and voice models it is paid for), and every booked
//! usage line that allocates it something (a reversal included). A
//! derivative's publication concerns the party once its usage pays it,
//! as [`crate::lineage::lineage_for_party`] finds derivatives.

use crate::allocation::AllocationError;
use crate::fold::{Change, LineStatus, KIND_PARTY};
use crate::lineage::SPLIT_FIELDS;

/// True when `change` concerns `party` (see the module documentation).
pub fn concerns(change: &Change, party: &str) -> Result<bool, AllocationError> {
    Ok(match change {
        Change::CatalogEntry { kind, id, data, .. } => {
            (*kind == KIND_PARTY && id == party)
                || SPLIT_FIELDS.iter().any(|field| {
                    data.get(field)
                        .and_then(|splits| splits.as_array())
                        .is_some_and(|splits| {
                            splits.iter().any(|split| {
                                split.get("party").and_then(|p| p.as_str()) == Some(party)
                            })
                        })
                })
        }
        Change::UsageLine(record) => {
            record.status == LineStatus::Booked
                && record
                    .allocations()?
                    .payees()
                    .iter()
                    .any(|payee| &*payee.party == party)
        }
        Change::Derivative(_)
        | Change::Credentialed { .. }
        | Change::JobProgress { .. }
        | Change::JobAbandoned { .. } => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(kind: &'static str, id: &str, data: serde_json::Value) -> Change {
        Change::CatalogEntry {
            kind,
            id: id.into(),
            seq: 0,
            data,
        }
    }

    #[test]
    fn a_party_is_concerned_by_its_own_entry_and_the_split_sheets_that_name_it() {
        assert!(concerns(&entry(KIND_PARTY, "p1", json!({})), "p1").unwrap());
        assert!(!concerns(&entry(KIND_PARTY, "p2", json!({})), "p1").unwrap());
        let recording = json!({"master_splits": [{"party": "p2", "share": "1"}],
                               "publishing_splits": [{"party": "p1", "share": "1"}]});
        assert!(concerns(&entry("recording", "r1", recording.clone()), "p1").unwrap());
        assert!(concerns(&entry("recording", "r1", recording.clone()), "p2").unwrap());
        assert!(!concerns(&entry("recording", "r1", recording), "p3").unwrap());
        let job = Change::JobAbandoned {
            job: uuid::Uuid::nil(),
        };
        assert!(!concerns(&job, "p1").unwrap());
    }
}
