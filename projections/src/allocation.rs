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
//! Every step is an exact [`crate::amount::split`], so the allocations of a
//! line sum to its gross exactly; [`AllocationPlan::allocate`] asserts it.

use crate::amount::split_into;
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

/// Who one allocation pays, and why.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Payee {
    pub party: Arc<str>,
    pub component: Component,
    /// As [`Allocation::reference`].
    pub reference: Arc<str>,
}

/// The exact allocations of one usage line: who is paid, and one amount per
/// payee in the same order.
///
/// The payee list is shared: every line of a derivative under the same
/// split sheets pays the same parties, so a fold makes it once per
/// derivative and each line adds only its amounts. Building ten
/// [`Allocation`]s per line, two shared strings in each, was a third of a
/// rebuild's folding time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allocations {
    payees: Arc<[Payee]>,
    amounts: Vec<Decimal>,
}

/// One allocation of [`Allocations`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocationRef<'a> {
    pub party: &'a str,
    pub component: Component,
    pub reference: &'a str,
    pub amount: Decimal,
}

impl Allocations {
    /// `amounts[i]` paid to `payees[i]`.
    pub fn new(payees: Arc<[Payee]>, amounts: Vec<Decimal>) -> Allocations {
        assert_eq!(payees.len(), amounts.len(), "one amount per payee");
        Allocations { payees, amounts }
    }

    /// The allocations `allocations`, in order.
    pub fn of(allocations: &[Allocation]) -> Allocations {
        let payees = allocations
            .iter()
            .map(|a| Payee {
                party: Arc::clone(&a.party),
                component: a.component,
                reference: Arc::clone(&a.reference),
            })
            .collect();
        Allocations::new(payees, allocations.iter().map(|a| a.amount).collect())
    }

    pub fn payees(&self) -> &Arc<[Payee]> {
        &self.payees
    }

    pub fn amounts(&self) -> &[Decimal] {
        &self.amounts
    }

    pub fn len(&self) -> usize {
        self.amounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.amounts.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = AllocationRef<'_>> + '_ {
        self.payees
            .iter()
            .zip(&self.amounts)
            .map(|(payee, &amount)| AllocationRef {
                party: &payee.party,
                component: payee.component,
                reference: &payee.reference,
                amount,
            })
    }

    /// The same payees, every amount negated: what a reversal books.
    pub fn negated(&self) -> Allocations {
        Allocations {
            payees: Arc::clone(&self.payees),
            amounts: self.amounts.iter().map(|a| -*a).collect(),
        }
    }

    /// Each allocation as an owned [`Allocation`].
    pub fn to_vec(&self) -> Vec<Allocation> {
        self.payees
            .iter()
            .zip(&self.amounts)
            .map(|(payee, &amount)| Allocation {
                party: Arc::clone(&payee.party),
                component: payee.component,
                reference: Arc::clone(&payee.reference),
                amount,
            })
            .collect()
    }
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
) -> Result<Allocations, AllocationError> {
    AllocationPlan::new(policy, creator, components)?.allocate(gross)
}

/// How policy v1 allocates the lines of one derivative under the split
/// sheets in force: the payees and every share, resolved once, so that
/// allocating a line is arithmetic only.
#[derive(Debug, Clone)]
pub struct AllocationPlan {
    platform_share: Decimal,
    creator_share: Decimal,
    master_share: Decimal,
    payees: Arc<[Payee]>,
    /// Each component's weight as a fraction, keyed by position (the ties
    /// of [`crate::amount::split`] go to the lowest key).
    weights: Vec<(usize, Decimal)>,
    components: Vec<PlannedShares>,
}

/// One component's split sheets, in the order of its payees.
#[derive(Debug, Clone)]
enum PlannedShares {
    Recording {
        master: Vec<(Arc<str>, Decimal)>,
        publishing: Vec<(Arc<str>, Decimal)>,
    },
    Voice {
        likeness: Vec<(Arc<str>, Decimal)>,
    },
}

impl AllocationPlan {
    /// The plan of a derivative with attribution `components`, requested by
    /// `creator`, under `policy`.
    pub fn new(
        policy: &Policy,
        creator: &Arc<str>,
        components: &[WeightedComponent<'_>],
    ) -> Result<AllocationPlan, AllocationError> {
        let weight_sum: u64 = components.iter().map(|c| u64::from(c.weight_bp)).sum();
        if weight_sum != 10_000 {
            return Err(AllocationError::WeightsNotWhole(weight_sum));
        }
        let mut payees = vec![
            Payee {
                party: PLATFORM_PARTY.into(),
                component: Component::Platform,
                reference: "".into(),
            },
            Payee {
                party: Arc::clone(creator),
                component: Component::Creator,
                reference: "".into(),
            },
        ];
        let mut push = |splits: &[Share], component: Component, reference: &Arc<str>| {
            payees.extend(splits.iter().map(|s| Payee {
                party: Arc::clone(&s.party),
                component,
                reference: Arc::clone(reference),
            }));
            splits
                .iter()
                .map(|s| (Arc::clone(&s.party), s.share))
                .collect::<Vec<_>>()
        };
        let planned = components
            .iter()
            .map(|weighted| match &weighted.component {
                ResolvedComponent::Recording {
                    isrc,
                    master_splits,
                    iswc,
                    publishing_splits,
                } => PlannedShares::Recording {
                    master: push(master_splits, Component::Master, isrc),
                    publishing: push(publishing_splits, Component::Publishing, iswc),
                },
                ResolvedComponent::Voice {
                    id,
                    likeness_splits,
                } => PlannedShares::Voice {
                    likeness: push(likeness_splits, Component::Likeness, id),
                },
            })
            .collect();
        Ok(AllocationPlan {
            platform_share: policy.platform_share,
            creator_share: policy.creator_share,
            master_share: policy.master_share,
            payees: payees.into(),
            weights: components
                .iter()
                .enumerate()
                .map(|(i, c)| (i, Decimal::new(i64::from(c.weight_bp), 4)))
                .collect(),
            components: planned,
        })
    }

    /// Allocates gross `gross` of one usage line: amounts in the order of
    /// the plan's payees, summing to `gross` exactly.
    pub fn allocate(&self, gross: Decimal) -> Result<Allocations, AllocationError> {
        let overflow = || AllocationError::Overflow(gross);
        let platform = gross
            .checked_mul(self.platform_share)
            .ok_or_else(overflow)?;
        let creator = gross.checked_mul(self.creator_share).ok_or_else(overflow)?;
        let pool = gross - platform - creator;

        let mut amounts = Vec::with_capacity(self.payees.len());
        amounts.extend([platform, creator]);
        let mut components = Vec::with_capacity(self.weights.len());
        split_into(pool, &self.weights, &mut components).ok_or_else(overflow)?;
        for (shares, amount) in self.components.iter().zip(components) {
            match shares {
                PlannedShares::Recording { master, publishing } => {
                    let master_amount =
                        amount.checked_mul(self.master_share).ok_or_else(overflow)?;
                    split_into(master_amount, master, &mut amounts).ok_or_else(overflow)?;
                    split_into(amount - master_amount, publishing, &mut amounts)
                        .ok_or_else(overflow)?;
                }
                PlannedShares::Voice { likeness } => {
                    split_into(amount, likeness, &mut amounts).ok_or_else(overflow)?;
                }
            }
        }
        debug_assert_eq!(amounts.len(), self.payees.len());
        let total: Decimal = amounts.iter().sum();
        assert_eq!(total, gross, "policy v1 conserves the gross");
        // The same value always has the same text: no trailing zeros.
        for amount in &mut amounts {
            *amount = amount.normalize();
        }
        Ok(Allocations::new(Arc::clone(&self.payees), amounts))
    }
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
            .map(|a| (a.party, a.component, a.amount))
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
        let references: Vec<&str> = got.iter().map(|a| a.reference).collect();
        assert_eq!(references[2], "GBAYE0601498");
        assert_eq!(references[3], "T-034524680-1");
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
