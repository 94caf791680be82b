//! Royalty policy v1: how one usage line's gross is allocated to parties.
//!
//! For a line of derivative D with gross G, under the policy and split sheets
//! in force at the line's seq:
//! 1. platform = G x platform_share; creator = G x creator_share (to the party
//!    who requested D); pool = G - platform - creator.
//! 2. For each attribution component c of D, A_c = pool x weight_bp / 10000:
//!    a recording component pays master = A_c x master_share over the
//!    recording's master splits and publishing = A_c - master over its work's
//!    publishing splits; a voice component pays A_c over the voice model's
//!    likeness splits.
//!
//! Every step is an exact [`split`], so the allocations of a line sum to its
//! gross exactly; [`allocate`] asserts it.

use crate::amount::split;
use rust_decimal::Decimal;
use schemas::catalog::{Policy, Split, PLATFORM_PARTY};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Why a party receives part of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    Platform,
    Creator,
    Master,
    Publishing,
    Likeness,
}

impl Component {
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Platform => "platform",
            Component::Creator => "creator",
            Component::Master => "master",
            Component::Publishing => "publishing",
            Component::Likeness => "likeness",
        }
    }
}

/// One party's exact share of one usage line.
///
/// The party and reference are shared strings: a fold makes about ten
/// allocations per line, and copying two strings into each was a fifth of
/// a rebuild's folding time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub party: Arc<str>,
    pub component: Component,
    /// The ISRC (master), ISWC (publishing) or voice model id (likeness)
    /// behind the amount; empty for platform and creator.
    pub reference: Arc<str>,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
}

/// One party's share of a split sheet, as allocation reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    pub party: Arc<str>,
    pub share: Decimal,
}

impl Share {
    /// The shares of a split sheet, in its order.
    pub fn all(splits: &[Split]) -> Vec<Share> {
        splits
            .iter()
            .map(|s| Share {
                party: s.party.as_str().into(),
                share: s.share,
            })
            .collect()
    }
}

/// An attribution component with the split sheets in force.
#[derive(Debug, Clone, PartialEq)]
pub enum ResolvedComponent<'a> {
    Recording {
        isrc: Arc<str>,
        master_splits: &'a [Share],
        iswc: Arc<str>,
        publishing_splits: &'a [Share],
    },
    Voice {
        id: Arc<str>,
        likeness_splits: &'a [Share],
    },
}

/// A weighted component of a derivative (weights in basis points).
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedComponent<'a> {
    pub weight_bp: u32,
    pub component: ResolvedComponent<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocationError {
    #[error("attribution weights sum to {0} basis points; they must sum to exactly 10000")]
    WeightsNotWhole(u64),
    #[error("gross {0} is too large to allocate exactly; the limit is 10^12 per line")]
    Overflow(Decimal),
}

/// Allocates gross `gross` of one usage line by policy v1. The result lists
/// platform, creator, then each component's parties in attribution and
/// split-sheet order; amounts sum to `gross` exactly.
pub fn allocate(
    gross: Decimal,
    policy: &Policy,
    creator: &Arc<str>,
    components: &[WeightedComponent<'_>],
) -> Result<Vec<Allocation>, AllocationError> {
    let weight_sum: u64 = components.iter().map(|c| u64::from(c.weight_bp)).sum();
    if weight_sum != 10_000 {
        return Err(AllocationError::WeightsNotWhole(weight_sum));
    }
    let overflow = || AllocationError::Overflow(gross);
    let platform = gross
        .checked_mul(policy.platform_share)
        .ok_or_else(overflow)?;
    let creator_amount = gross
        .checked_mul(policy.creator_share)
        .ok_or_else(overflow)?;
    let pool = gross - platform - creator_amount;

    let mut allocations = Vec::with_capacity(2 + components.len() * 4);
    allocations.push(Allocation {
        party: PLATFORM_PARTY.into(),
        component: Component::Platform,
        reference: "".into(),
        amount: platform,
    });
    allocations.push(Allocation {
        party: Arc::clone(creator),
        component: Component::Creator,
        reference: "".into(),
        amount: creator_amount,
    });

    let weights: Vec<(usize, Decimal)> = components
        .iter()
        .enumerate()
        .map(|(i, c)| (i, Decimal::new(i64::from(c.weight_bp), 4)))
        .collect();
    let component_amounts = split(pool, &weights).ok_or_else(overflow)?;
    for (weighted, amount) in components.iter().zip(component_amounts) {
        match &weighted.component {
            ResolvedComponent::Recording {
                isrc,
                master_splits,
                iswc,
                publishing_splits,
            } => {
                let master = amount
                    .checked_mul(policy.master_share)
                    .ok_or_else(overflow)?;
                let publishing = amount - master;
                push_split(
                    &mut allocations,
                    master,
                    master_splits,
                    Component::Master,
                    isrc,
                )
                .ok_or_else(overflow)?;
                push_split(
                    &mut allocations,
                    publishing,
                    publishing_splits,
                    Component::Publishing,
                    iswc,
                )
                .ok_or_else(overflow)?;
            }
            ResolvedComponent::Voice {
                id,
                likeness_splits,
            } => {
                push_split(
                    &mut allocations,
                    amount,
                    likeness_splits,
                    Component::Likeness,
                    id,
                )
                .ok_or_else(overflow)?;
            }
        }
    }
    let total: Decimal = allocations.iter().map(|a| a.amount).sum();
    assert_eq!(total, gross, "policy v1 conserves the gross");
    // The same value always has the same text: no trailing zeros.
    for allocation in &mut allocations {
        allocation.amount = allocation.amount.normalize();
    }
    Ok(allocations)
}

fn push_split(
    allocations: &mut Vec<Allocation>,
    amount: Decimal,
    splits: &[Share],
    component: Component,
    reference: &Arc<str>,
) -> Option<()> {
    let shares: Vec<(&str, Decimal)> = splits.iter().map(|s| (&*s.party, s.share)).collect();
    let parts = split(amount, &shares)?;
    for (split, part) in splits.iter().zip(parts) {
        allocations.push(Allocation {
            party: Arc::clone(&split.party),
            component,
            reference: Arc::clone(reference),
            amount: part,
        });
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn splits(pairs: &[(&str, &str)]) -> Vec<Share> {
        pairs
            .iter()
            .map(|(p, s)| Share {
                party: (*p).into(),
                share: d(s),
            })
            .collect()
    }

    #[test]
    fn policy_v1_by_hand() {
        let policy = Policy {
            id: "v1".into(),
            platform_share: d("0.30"),
            creator_share: d("0.20"),
            master_share: d("0.5"),
        };
        let master = splits(&[("label", "1")]);
        let publishing = splits(&[("pub", "0.6"), ("writer", "0.4")]);
        let likeness = splits(&[("singer", "1")]);
        let components = [
            WeightedComponent {
                weight_bp: 7500,
                component: ResolvedComponent::Recording {
                    isrc: "GBAYE0601498".into(),
                    master_splits: &master,
                    iswc: "T-034524680-1".into(),
                    publishing_splits: &publishing,
                },
            },
            WeightedComponent {
                weight_bp: 2500,
                component: ResolvedComponent::Voice {
                    id: "vm1".into(),
                    likeness_splits: &likeness,
                },
            },
        ];
        // G = 100: platform 30, creator 20, pool 50; recording 37.5 (master
        // 18.75, publishing 18.75 = 11.25 + 7.5); voice 12.5.
        let got = allocate(d("100"), &policy, &"u1".into(), &components).unwrap();
        let amounts: Vec<(&str, Component, Decimal)> = got
            .iter()
            .map(|a| (&*a.party, a.component, a.amount))
            .collect();
        assert_eq!(
            amounts,
            vec![
                ("platform", Component::Platform, d("30")),
                ("u1", Component::Creator, d("20")),
                ("label", Component::Master, d("18.75")),
                ("pub", Component::Publishing, d("11.25")),
                ("writer", Component::Publishing, d("7.5")),
                ("singer", Component::Likeness, d("12.5")),
            ]
        );
        assert_eq!(&*got[2].reference, "GBAYE0601498");
        assert_eq!(&*got[3].reference, "T-034524680-1");
    }

    #[test]
    fn weights_must_be_whole() {
        let policy = Policy {
            id: "v1".into(),
            platform_share: d("0.3"),
            creator_share: d("0.2"),
            master_share: d("0.5"),
        };
        let likeness = splits(&[("singer", "1")]);
        let components = [WeightedComponent {
            weight_bp: 9999,
            component: ResolvedComponent::Voice {
                id: "vm1".into(),
                likeness_splits: &likeness,
            },
        }];
        assert_eq!(
            allocate(d("1"), &policy, &"u1".into(), &components),
            Err(AllocationError::WeightsNotWhole(9999))
        );
    }
}
