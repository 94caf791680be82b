//! The stored form of an allocation plan (`projection_allocation_plan.plan`):
//! what policy v1 allocates a derivative's lines by, under the split sheets
//! in force. A booked usage line is stored with its plan's id and its gross,
//! and reading it allocates it again (see [`AllocationPlan`]).
//!
//! Layout (integers little-endian):
//!
//! ```text
//! plan      := share(platform) share(creator) share(master) text(creator party)
//!              u16(component count) component*
//! component := u16(weight in basis points) kind
//! kind      := 0x00 text(ISRC) sheet(master splits) text(ISWC) sheet(publishing splits)
//!            | 0x01 text(voice model id) sheet(likeness splits)
//! sheet     := u16(share count) (text(party) share)*
//! text      := u16(byte length) UTF-8 bytes
//! share     := one byte holding the scale (0 to 28) with the sign in the top
//!              bit, then the mantissa's magnitude as an unsigned LEB128 varint
//! ```
//!
//! Shares are written normalized (without trailing zeros), so that one plan
//! has one stored form: lines of the same plan share one row, and
//! [`AllocationPlan::decode`] refuses any other form.
//!
//! Why not store each line's amounts: a rebuild would make and write the
//! amounts of every line (a line of twelve payees has 60 to 70 bytes of
//! them), while a statement reads only the lines of one period and
//! currency (`docs/decisions.md`, "Royalties", has the measurements).

use super::{OwnedComponent, PolicyShares, ResolvedComponent, Share, WeightedComponent};
use rust_decimal::Decimal;
use std::sync::Arc;

/// The sign bit of a share's first byte; the rest of it is the scale.
const NEGATIVE: u8 = 0x80;
/// The most bytes a 96-bit mantissa takes as a varint.
const MANTISSA_BYTES_MAX: usize = 14;
/// The kind bytes of a component.
const RECORDING: u8 = 0;
const VOICE: u8 = 1;

/// A plan as stored: what [`AllocationPlan::decode`] plans again.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredPlan {
    pub(crate) shares: PolicyShares,
    pub(crate) creator: Arc<str>,
    /// Each component with its weight in basis points.
    pub(crate) components: Vec<(u32, OwnedComponent)>,
}

/// The stored form of the plan made of `policy`, `creator` and `components`.
pub(crate) fn encode(
    policy: PolicyShares,
    creator: &str,
    components: &[WeightedComponent<'_>],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + components.len() * 96);
    for share in [policy.platform, policy.creator, policy.master] {
        push_share(&mut out, share);
    }
    push_text(&mut out, creator);
    push_count(&mut out, components.len());
    for component in components {
        // Weights are basis points; the fold refuses a plan whose weights
        // do not sum to 10000 before it gets here.
        let weight = u16::try_from(component.weight_bp).expect("a weight is at most 10000 bp");
        out.extend_from_slice(&weight.to_le_bytes());
        match &component.component {
            ResolvedComponent::Recording {
                isrc,
                master_splits,
                iswc,
                publishing_splits,
            } => {
                out.push(RECORDING);
                push_text(&mut out, isrc);
                push_sheet(&mut out, master_splits);
                push_text(&mut out, iswc);
                push_sheet(&mut out, publishing_splits);
            }
            ResolvedComponent::Voice {
                id,
                likeness_splits,
            } => {
                out.push(VOICE);
                push_text(&mut out, id);
                push_sheet(&mut out, likeness_splits);
            }
        }
    }
    out
}

/// The plan stored as `bytes`.
pub(crate) fn decode(bytes: &[u8]) -> Result<StoredPlan, String> {
    let mut reader = Reader(bytes);
    let shares = PolicyShares {
        platform: reader.share()?,
        creator: reader.share()?,
        master: reader.share()?,
    };
    let creator = reader.text()?.into();
    let mut components = Vec::new();
    for _ in 0..reader.count()? {
        let weight_bp = u32::from(u16::from_le_bytes(reader.array()?));
        let component = match reader.array::<1>()?[0] {
            RECORDING => OwnedComponent::Recording {
                isrc: reader.text()?.into(),
                master_splits: reader.sheet()?,
                iswc: reader.text()?.into(),
                publishing_splits: reader.sheet()?,
            },
            VOICE => OwnedComponent::Voice {
                id: reader.text()?.into(),
                likeness_splits: reader.sheet()?,
            },
            other => {
                return Err(format!(
                    "a stored plan holds an unknown component kind {other}"
                ))
            }
        };
        components.push((weight_bp, component));
    }
    if !reader.0.is_empty() {
        return Err("a stored plan has bytes after its last component".into());
    }
    Ok(StoredPlan {
        shares,
        creator,
        components,
    })
}

fn push_count(out: &mut Vec<u8>, count: usize) {
    // Components and split sheets hold a few entries; the catalog never
    // comes near 65536.
    let count = u16::try_from(count).expect("fewer than 65536 entries");
    out.extend_from_slice(&count.to_le_bytes());
}

fn push_text(out: &mut Vec<u8>, text: &str) {
    // Party ids, ISRCs, ISWCs and voice model ids are short identifiers; the
    // catalog validates them long before they could reach 64 KiB.
    let len = u16::try_from(text.len()).expect("an identifier is shorter than 64 KiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn push_sheet(out: &mut Vec<u8>, sheet: &[Share]) {
    push_count(out, sheet.len());
    for share in sheet {
        push_text(out, &share.party);
        push_share(out, share.share);
    }
}

fn push_share(out: &mut Vec<u8>, share: Decimal) {
    let share = share.normalize();
    let sign = if share.is_sign_negative() {
        NEGATIVE
    } else {
        0
    };
    // A Decimal's scale is at most 28: it never reaches the sign bit.
    out.push(sign | share.scale() as u8);
    let mut magnitude = share.mantissa().unsigned_abs();
    loop {
        let low = (magnitude & 0x7f) as u8;
        magnitude >>= 7;
        if magnitude == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// The unread rest of a stored plan.
struct Reader<'b>(&'b [u8]);

impl<'b> Reader<'b> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or("a stored plan ends early")?;
        self.0 = rest;
        Ok(*head)
    }

    fn count(&mut self) -> Result<usize, String> {
        Ok(usize::from(u16::from_le_bytes(self.array()?)))
    }

    fn text(&mut self) -> Result<&'b str, String> {
        let len = self.count()?;
        if self.0.len() < len {
            return Err("a stored plan ends inside a name".into());
        }
        let (text, rest) = self.0.split_at(len);
        self.0 = rest;
        std::str::from_utf8(text).map_err(|e| format!("a stored plan holds bad UTF-8: {e}"))
    }

    fn sheet(&mut self) -> Result<Vec<Share>, String> {
        (0..self.count()?)
            .map(|_| {
                Ok(Share {
                    party: self.text()?.into(),
                    share: self.share()?,
                })
            })
            .collect()
    }

    fn share(&mut self) -> Result<Decimal, String> {
        let [first] = self.array::<1>()?;
        let scale = u32::from(first & !NEGATIVE);
        let mut magnitude: u128 = 0;
        for i in 0..MANTISSA_BYTES_MAX {
            let [byte] = self.array::<1>()?;
            magnitude |= u128::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                let mantissa = i128::try_from(magnitude).map_err(|_| "a share is out of range")?;
                let mut share = Decimal::try_from_i128_with_scale(mantissa, scale)
                    .map_err(|e| format!("a share is out of range: {e}"))?;
                share.set_sign_negative(first & NEGATIVE != 0);
                return Ok(share);
            }
        }
        Err("a share's mantissa is longer than 96 bits".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocation::tests::{d, splits as sheet};
    use crate::allocation::AllocationPlan;

    fn stored() -> StoredPlan {
        StoredPlan {
            shares: PolicyShares {
                platform: d("0.3"),
                creator: d("0.1"),
                master: d("0.5"),
            },
            creator: "créateur".into(),
            components: vec![
                (
                    7000,
                    OwnedComponent::Recording {
                        isrc: "GBAYE2600001".into(),
                        master_splits: sheet(&[
                            ("label", "0.3333333334"),
                            ("band", "0.6666666666"),
                        ]),
                        iswc: "T-034524680-1".into(),
                        publishing_splits: sheet(&[("writer", "1")]),
                    },
                ),
                (
                    3000,
                    OwnedComponent::Voice {
                        id: "vm-1".into(),
                        likeness_splits: sheet(&[("singer", "0.5"), ("estate", "0.5")]),
                    },
                ),
            ],
        }
    }

    fn plan_of(stored: &StoredPlan) -> AllocationPlan {
        let components = OwnedComponent::weighted(&stored.components);
        AllocationPlan::new(
            &schemas::catalog::Policy {
                id: "v1".into(),
                platform_share: stored.shares.platform,
                creator_share: stored.shares.creator,
                master_share: stored.shares.master,
            },
            &stored.creator,
            &components,
        )
        .unwrap()
    }

    #[test]
    fn a_plan_round_trips_and_allocates_as_before() {
        let plan = plan_of(&stored());
        assert_eq!(decode(plan.encoded()).unwrap(), stored());
        let decoded = AllocationPlan::decode(plan.encoded()).unwrap();
        assert_eq!(decoded, plan);
        assert_eq!(decoded.payees(), plan.payees());
        for gross in ["100", "-0.000001", "999999999999.999999", "0"] {
            assert_eq!(
                decoded.allocate(d(gross)).unwrap(),
                plan.allocate(d(gross)).unwrap(),
                "{gross}"
            );
        }
    }

    #[test]
    fn equal_shares_of_other_scales_store_alike() {
        let mut padded = stored();
        padded.shares.platform = d("0.300");
        if let OwnedComponent::Voice {
            likeness_splits, ..
        } = &mut padded.components[1].1
        {
            likeness_splits[0].share = d("0.5000000000");
        }
        let (plan, padded) = (plan_of(&stored()), plan_of(&padded));
        assert_eq!(plan.encoded(), padded.encoded());
        // Scale 1 and mantissa 3: two bytes for "0.3".
        assert_eq!(&plan.encoded()[..2], &[1, 3]);
        assert!(plan.encoded().len() < 140, "{}", plan.encoded().len());
    }

    #[test]
    fn truncated_or_foreign_bytes_are_refused() {
        let encoded = plan_of(&stored()).encoded().to_vec();
        for cut in 0..encoded.len() {
            assert!(
                AllocationPlan::decode(&encoded[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let longer = [encoded.as_slice(), &[0]].concat();
        assert_eq!(
            AllocationPlan::decode(&longer).unwrap_err(),
            "a stored plan has bytes after its last component"
        );
        // The first component's kind byte follows the three shares, the
        // creator and the counts.
        let kind_at = 2 + 2 + 2 + (2 + "créateur".len()) + 2 + 2;
        let mut foreign = encoded.clone();
        assert_eq!(foreign[kind_at], RECORDING);
        foreign[kind_at] = 9;
        assert_eq!(
            AllocationPlan::decode(&foreign).unwrap_err(),
            "a stored plan holds an unknown component kind 9"
        );
        // "0.3" written as "0.30": the same plan, but not its stored form.
        let padded = [&[2, 30][..], &encoded[2..]].concat();
        assert_eq!(
            AllocationPlan::decode(&padded).unwrap_err(),
            "a stored plan is not in its canonical form"
        );
        // Weights that do not sum to 10000 are not a plan.
        let mut heavy = encoded.clone();
        heavy[kind_at - 2] = 0xff;
        assert!(AllocationPlan::decode(&heavy)
            .unwrap_err()
            .contains("must sum to exactly 10000"));
    }
}
