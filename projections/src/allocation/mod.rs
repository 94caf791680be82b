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
//! Every split hands what its rounded parts leave over to its largest share,
//! so the allocations of a line sum to its gross exactly;
//! [`AllocationPlan::allocate`] asserts it. Products are exact unless they
//! need more digits than a `Decimal` holds (see `scaled.rs`).

mod plan_codec;

use crate::catalog::SHARE_DECIMALS_MAX;
use crate::scaled::Scaled;
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

/// Who one allocation pays, and why.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Payee {
    pub party: Arc<str>,
    pub component: Component,
    /// The ISRC (master), ISWC (publishing) or voice model id (likeness)
    /// behind the amount; empty for platform and creator.
    pub reference: Arc<str>,
}

/// The exact allocations of one usage line: who is paid, and one amount per
/// payee in the same order.
///
/// The payee list is shared: every line of a derivative under the same
/// split sheets pays the same parties, so a plan makes it once and each
/// line adds only its amounts, rather than owned payees (two shared
/// strings each) for every line.
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

/// A [`ResolvedComponent`] that owns its split sheets: what a fold gathers
/// from the catalog, or a stored plan decodes to, before planning.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedComponent {
    Recording {
        isrc: Arc<str>,
        master_splits: Vec<Share>,
        iswc: Arc<str>,
        publishing_splits: Vec<Share>,
    },
    Voice {
        id: Arc<str>,
        likeness_splits: Vec<Share>,
    },
}

impl OwnedComponent {
    /// `components`, each with its weight in basis points, as a plan reads
    /// them.
    pub fn weighted(components: &[(u32, OwnedComponent)]) -> Vec<WeightedComponent<'_>> {
        components
            .iter()
            .map(|(weight_bp, component)| WeightedComponent {
                weight_bp: *weight_bp,
                component: component.resolved(),
            })
            .collect()
    }

    pub fn resolved(&self) -> ResolvedComponent<'_> {
        match self {
            OwnedComponent::Recording {
                isrc,
                master_splits,
                iswc,
                publishing_splits,
            } => ResolvedComponent::Recording {
                isrc: Arc::clone(isrc),
                master_splits,
                iswc: Arc::clone(iswc),
                publishing_splits,
            },
            OwnedComponent::Voice {
                id,
                likeness_splits,
            } => ResolvedComponent::Voice {
                id: Arc::clone(id),
                likeness_splits,
            },
        }
    }
}

/// The three shares of a royalty policy that allocation reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyShares {
    pub platform: Decimal,
    pub creator: Decimal,
    pub master: Decimal,
}

impl PolicyShares {
    pub fn of(policy: &Policy) -> PolicyShares {
        PolicyShares {
            platform: policy.platform_share,
            creator: policy.creator_share,
            master: policy.master_share,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocationError {
    #[error("attribution weights sum to {0} basis points; they must sum to exactly 10000")]
    WeightsNotWhole(u64),
    #[error("gross {0} cannot be allocated: an amount needs more than 38 digits (a usage line's gross has at most 12 integer digits and 6 decimals, a share at most 10 decimals)")]
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
///
/// A booked usage line is stored with its plan and its gross, not its
/// amounts: allocation is exact and deterministic, so reading a line
/// allocates it again to the same amounts. A plan is stored in the form
/// `plan_codec.rs` writes, which it keeps, and two plans
/// are equal when their stored forms are.
#[derive(Debug, Clone)]
pub struct AllocationPlan {
    encoded: Vec<u8>,
    /// Whether every gross that a usage line may have (see
    /// [`AllocationPlan::allocates_every_valid_gross`]) allocates.
    allocates_every_valid_gross: bool,
    platform_share: Scaled,
    creator_share: Scaled,
    master_share: Scaled,
    payees: Arc<[Payee]>,
    /// Each component's weight as a fraction; a residual goes to the
    /// first of the largest.
    weights: SplitSheet,
    components: Vec<PlannedShares>,
}

/// One component's split sheets, in the order of its payees.
#[derive(Debug, Clone)]
enum PlannedShares {
    Recording {
        master: SplitSheet,
        publishing: SplitSheet,
    },
    Voice {
        likeness: SplitSheet,
    },
}

/// The shares of one split, in order, and which part takes what rounding
/// leaves over: the largest share's (ties: the lowest party id).
///
/// Shares are kept without trailing zeros, so that their products carry
/// none of the shares' own (each amount is normalized when it is stored).
#[derive(Debug, Clone)]
struct SplitSheet {
    shares: Vec<Scaled>,
    residual_to: usize,
}

impl PartialEq for AllocationPlan {
    fn eq(&self, other: &AllocationPlan) -> bool {
        self.encoded == other.encoded
    }
}

impl Eq for AllocationPlan {}

impl SplitSheet {
    /// The sheet of `shares`, each with its key for ties (a party id, or
    /// a component's position).
    fn new<K: Ord>(shares: impl Iterator<Item = (K, Decimal)>) -> SplitSheet {
        let shares: Vec<(K, Decimal)> = shares.collect();
        assert!(!shares.is_empty(), "a split needs at least one share");
        let residual_to = (0..shares.len())
            .max_by(|&a, &b| {
                shares[a]
                    .1
                    .cmp(&shares[b].1)
                    .then_with(|| shares[b].0.cmp(&shares[a].0))
            })
            .expect("shares is not empty");
        SplitSheet {
            shares: shares
                .iter()
                .map(|(_, share)| Scaled::of(share.normalize()))
                .collect(),
            residual_to,
        }
    }

    /// What the parts of `amount` (each `amount x share` rounded to
    /// `decimals` decimals) leave over: the difference between `amount`
    /// and their sum, from rounding or from shares that do not sum to 1.
    fn residual(&self, amount: Scaled, decimals: u32) -> Option<Scaled> {
        let mut sum = Scaled::ZERO;
        for share in &self.shares {
            sum = sum.plus(amount.times(*share, decimals)?)?;
        }
        amount.minus(sum)
    }

    /// Part `index` of `amount`, the residual's part taking `residual` too.
    fn part(
        &self,
        amount: Scaled,
        index: usize,
        decimals: u32,
        residual: Scaled,
    ) -> Option<Scaled> {
        let part = amount.times(self.shares[index], decimals)?;
        if index == self.residual_to {
            part.plus(residual)
        } else {
            Some(part)
        }
    }

    /// Splits `amount` into parts that sum to it exactly, appending each
    /// part to `amounts`, normalized, and adding it to `total`. Each product
    /// is computed twice (for the residual, then for its part) rather than
    /// kept in a vector allocated per split: a multiply costs less.
    fn split(
        &self,
        amount: Scaled,
        decimals: u32,
        amounts: &mut Vec<Decimal>,
        total: &mut Scaled,
    ) -> Option<()> {
        let residual = self.residual(amount, decimals)?;
        for index in 0..self.shares.len() {
            let part = self.part(amount, index, decimals, residual)?;
            *total = total.plus(part)?;
            amounts.push(part.to_normalized_decimal()?);
        }
        Some(())
    }
}

impl AllocationPlan {
    /// The plan of a derivative with attribution `components`, requested by
    /// `creator`, under `policy`.
    pub fn new(
        policy: &Policy,
        creator: &Arc<str>,
        components: &[WeightedComponent<'_>],
    ) -> Result<AllocationPlan, AllocationError> {
        AllocationPlan::with_shares(PolicyShares::of(policy), creator, components)
    }

    /// The plan stored as `encoded` (by [`AllocationPlan::encoded`]).
    pub fn decode(encoded: &[u8]) -> Result<AllocationPlan, String> {
        let stored = plan_codec::decode(encoded)?;
        let components = OwnedComponent::weighted(&stored.components);
        let plan = AllocationPlan::with_shares(stored.shares, &stored.creator, &components)
            .map_err(|e| format!("a stored plan is invalid: {e}"))?;
        if plan.encoded != encoded {
            return Err("a stored plan is not in its canonical form".into());
        }
        Ok(plan)
    }

    /// The plan's stored form.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// Who the plan pays, in the order of the amounts it allocates.
    pub fn payees(&self) -> &Arc<[Payee]> {
        &self.payees
    }

    /// Whether every gross a usage line may have (at most 10^12 in size,
    /// at most 6 decimals, as `usage::check_line` requires) is sure to
    /// allocate under this plan: true when its policy shares and every
    /// split share lie in [0, 1] with at most 10 decimals (as the catalog
    /// requires), platform and creator shares sum to at most 1, and each
    /// split sheet sums to 1. Every amount is then at most the gross in
    /// size and fits the arithmetic of `scaled.rs`. A fold books a line of
    /// such a plan without allocating it; a line of any other plan is
    /// allocated once, to find out.
    pub fn allocates_every_valid_gross(&self) -> bool {
        self.allocates_every_valid_gross
    }

    fn with_shares(
        policy: PolicyShares,
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
            SplitSheet::new(splits.iter().map(|s| (Arc::clone(&s.party), s.share)))
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
            encoded: plan_codec::encode(policy, creator, components),
            allocates_every_valid_gross: within_proven_bounds(policy, components),
            platform_share: Scaled::of(policy.platform),
            creator_share: Scaled::of(policy.creator),
            master_share: Scaled::of(policy.master),
            payees: payees.into(),
            // Ties go to the first component.
            weights: SplitSheet::new(
                components
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (i, Decimal::new(i64::from(c.weight_bp), 4))),
            ),
            components: planned,
        })
    }

    /// Allocates gross `gross` of one usage line: amounts in the order of
    /// the plan's payees, summing to `gross` exactly.
    ///
    /// Every amount keeps at most 28 minus (the digits of the gross's
    /// integer part) decimals, a product with more rounded half to even:
    /// none of ordinary precision is rounded, and every sum and difference
    /// is exact.
    pub fn allocate(&self, gross: Decimal) -> Result<Allocations, AllocationError> {
        self.allocate_scaled(gross)
            .map(|amounts| Allocations::new(Arc::clone(&self.payees), amounts))
            .ok_or(AllocationError::Overflow(gross))
    }

    fn allocate_scaled(&self, gross: Decimal) -> Option<Vec<Decimal>> {
        let decimals = Scaled::decimals_beside(gross);
        let gross = Scaled::of(gross);
        let platform = gross.times(self.platform_share, decimals)?;
        let creator = gross.times(self.creator_share, decimals)?;
        let pool = gross.minus(platform)?.minus(creator)?;
        let mut amounts = Vec::with_capacity(self.payees.len());
        amounts.push(platform.to_normalized_decimal()?);
        amounts.push(creator.to_normalized_decimal()?);
        // Every amount, summed as it is made: the conservation check.
        let mut total = platform.plus(creator)?;
        let residual = self.weights.residual(pool, decimals)?;
        for (index, shares) in self.components.iter().enumerate() {
            let amount = self.weights.part(pool, index, decimals, residual)?;
            match shares {
                PlannedShares::Recording { master, publishing } => {
                    let master_amount = amount.times(self.master_share, decimals)?;
                    master.split(master_amount, decimals, &mut amounts, &mut total)?;
                    let publishing_amount = amount.minus(master_amount)?;
                    publishing.split(publishing_amount, decimals, &mut amounts, &mut total)?;
                }
                PlannedShares::Voice { likeness } => {
                    likeness.split(amount, decimals, &mut amounts, &mut total)?
                }
            }
        }
        debug_assert_eq!(amounts.len(), self.payees.len());
        assert!(
            total.minus(gross)?.is_zero(),
            "policy v1 conserves the gross"
        );
        Some(amounts)
    }
}

/// See [`AllocationPlan::allocates_every_valid_gross`].
fn within_proven_bounds(policy: PolicyShares, components: &[WeightedComponent<'_>]) -> bool {
    let share_ok = |share: Decimal| {
        share.scale() <= SHARE_DECIMALS_MAX && (Decimal::ZERO..=Decimal::ONE).contains(&share)
    };
    let sheet_ok = |sheet: &[Share]| {
        !sheet.is_empty()
            && sheet.iter().all(|s| share_ok(s.share))
            && sheet.iter().map(|s| s.share).sum::<Decimal>() == Decimal::ONE
    };
    share_ok(policy.platform)
        && share_ok(policy.creator)
        && share_ok(policy.master)
        && policy.platform + policy.creator <= Decimal::ONE
        && components.iter().all(|c| match &c.component {
            ResolvedComponent::Recording {
                master_splits,
                publishing_splits,
                ..
            } => sheet_ok(master_splits) && sheet_ok(publishing_splits),
            ResolvedComponent::Voice {
                likeness_splits, ..
            } => sheet_ok(likeness_splits),
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::amount::ExactSum;
    use std::str::FromStr;

    pub(crate) fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    /// A split sheet of (party, share) pairs.
    pub(crate) fn splits(pairs: &[(&str, &str)]) -> Vec<Share> {
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

    /// A split sheet of shares with `decimals` decimals summing to 1: one
    /// share per cut (in units of the last decimal, while they fit), the
    /// rest to a party `last`.
    fn sheet(prefix: &str, cuts: &[u64], decimals: u32) -> Vec<Share> {
        let mut left = Decimal::ONE;
        let mut shares = Vec::new();
        for (i, cut) in cuts.iter().enumerate() {
            let share = Decimal::new(*cut as i64, decimals).min(left);
            left -= share;
            shares.push(Share {
                party: format!("{prefix}{i}").into(),
                share,
            });
        }
        shares.push(Share {
            party: format!("{prefix}last").into(),
            share: left,
        });
        shares
    }

    fn policy(platform: Decimal, creator: Decimal, master: Decimal) -> Policy {
        Policy {
            id: "v1".into(),
            platform_share: platform,
            creator_share: creator,
            master_share: master,
        }
    }

    /// A recording and a voice component, weighted `recording_bp` and the rest.
    fn remix<'a>(
        recording_bp: u32,
        master: &'a [Share],
        publishing: &'a [Share],
        likeness: &'a [Share],
    ) -> [WeightedComponent<'a>; 2] {
        [
            WeightedComponent {
                weight_bp: recording_bp,
                component: ResolvedComponent::Recording {
                    isrc: "GBAYE0601498".into(),
                    master_splits: master,
                    iswc: "T-034524680-1".into(),
                    publishing_splits: publishing,
                },
            },
            WeightedComponent {
                weight_bp: 10_000 - recording_bp,
                component: ResolvedComponent::Voice {
                    id: "vm1".into(),
                    likeness_splits: likeness,
                },
            },
        ]
    }

    fn share_cuts(decimals: u32) -> impl proptest::strategy::Strategy<Value = Vec<u64>> {
        proptest::collection::vec(0..10u64.pow(decimals) / 2, 0..4)
    }

    /// A gross of `micros` millionths, written with `decimals` decimals
    /// (the rest truncated).
    fn gross(micros: i64, decimals: u32) -> Decimal {
        Decimal::new(micros, 6).trunc_with_scale(decimals)
    }

    /// A policy whose (platform, creator, master) shares are `units` of
    /// their last decimal, with `decimals` decimals each.
    fn policy_in(units: (u64, u64, u64), decimals: (u32, u32, u32)) -> Policy {
        let share = |units: u64, decimals: u32| Decimal::new(units as i64, decimals);
        policy(
            share(units.0, decimals.0),
            share(units.1, decimals.1),
            share(units.2, decimals.2),
        )
    }

    /// The master, publishing and likeness sheets of `cuts`, with
    /// `decimals` decimals each.
    fn sheets(
        cuts: (Vec<u64>, Vec<u64>, Vec<u64>),
        decimals: (u32, u32, u32),
    ) -> (Vec<Share>, Vec<Share>, Vec<Share>) {
        (
            sheet("m", &cuts.0, decimals.0),
            sheet("p", &cuts.1, decimals.1),
            sheet("v", &cuts.2, decimals.2),
        )
    }

    /// Any gross a usage line may have (at most 10^12, 6 decimals), with
    /// the plan of a remix under any policy and split sheets of up to 10
    /// decimals: where allocation is proven to succeed.
    fn any_valid_line() -> impl proptest::strategy::Strategy<Value = (Decimal, AllocationPlan)> {
        use proptest::strategy::Strategy;
        (
            -1_000_000_000_000_000_000i64..=1_000_000_000_000_000_000,
            0u32..=6,
            (
                0u64..=4_000_000_000,
                0u64..=4_000_000_000,
                0u64..=10_000_000_000,
            ),
            0u32..=10_000,
            (share_cuts(10), share_cuts(7), share_cuts(3)),
        )
            .prop_map(|(micros, decimals, policy_shares, recording_bp, cuts)| {
                let policy = policy_in(policy_shares, (10, 10, 10));
                let (master, publishing, likeness) = sheets(cuts, (10, 7, 3));
                let components = remix(recording_bp, &master, &publishing, &likeness);
                let plan = AllocationPlan::new(&policy, &"u1".into(), &components).unwrap();
                (gross(micros, decimals), plan)
            })
    }

    proptest::proptest! {
        /// Any gross a usage line may have (at most 10^12, 6 decimals),
        /// under any policy and split sheets of up to 10 decimals, is
        /// allocated, and its amounts sum to it exactly, though exact
        /// products would need up to 52 digits.
        #[test]
        fn every_valid_line_conserves_its_gross(
            (gross, plan) in any_valid_line(),
        ) {
            // The fold books lines of such plans without allocating them.
            proptest::prop_assert!(plan.allocates_every_valid_gross());
            let amounts = plan.allocate(gross).unwrap();
            let mut total = ExactSum::ZERO;
            for amount in amounts.amounts() {
                // Normalized: the same value always has the same text.
                let normalized = amount.normalize();
                proptest::prop_assert_eq!(
                    (amount.mantissa(), amount.scale()),
                    (normalized.mantissa(), normalized.scale())
                );
                total.add(*amount);
            }
            proptest::prop_assert_eq!(total, ExactSum::of(gross));
        }

        /// Allocation is odd: a negated gross allocates to every amount
        /// negated, value and scale, rounded products included. A
        /// reversal is stored with its original's plan and its own
        /// (negated) gross, so this is what makes it book exactly the
        /// original's allocations negated.
        #[test]
        fn a_negated_gross_allocates_each_amount_negated(
            (gross, plan) in any_valid_line(),
        ) {
            let original = plan.allocate(gross).unwrap();
            let reversal = plan.allocate(-gross).unwrap();
            proptest::prop_assert_eq!(original.len(), reversal.len());
            for (a, r) in original.amounts().iter().zip(reversal.amounts()) {
                proptest::prop_assert_eq!(*r, -*a);
                proptest::prop_assert_eq!(r.scale(), a.scale());
            }
        }

        /// Where the exact products fit the digits a line keeps (here a
        /// gross below 10^4 by shares of up to 6 decimals), every amount
        /// is the exact product of the rules, with nothing rounded.
        #[test]
        fn products_of_ordinary_precision_are_exact(
            micros in -9_999_999_999i64..=9_999_999_999,
            decimals in 0u32..=6,
            policy_shares in (0u64..=4_000, 0u64..=4_000, 0u64..=100),
            recording_bp in 0u32..=10_000,
            cuts in (share_cuts(6), share_cuts(4), share_cuts(2)),
        ) {
            let gross = gross(micros, decimals);
            let policy = policy_in(policy_shares, (4, 4, 2));
            let (master, publishing, likeness) = sheets(cuts, (6, 4, 2));
            let components = remix(recording_bp, &master, &publishing, &likeness);
            let amounts = allocate(gross, &policy, &"u1".into(), &components).unwrap();
            // Decimal is exact here: at most 4 + 22 digits.
            let exact = |a: Decimal, b: Decimal| {
                let product = a * b;
                assert!(product.is_zero() || product.scale() == a.scale() + b.scale(), "{a} x {b} is exact");
                product
            };
            let pool = gross - exact(gross, policy.platform_share) - exact(gross, policy.creator_share);
            let recording = exact(pool, Decimal::new(i64::from(recording_bp), 4));
            let master_amount = exact(recording, policy.master_share);
            let mut expected = vec![exact(gross, policy.platform_share), exact(gross, policy.creator_share)];
            expected.extend(master.iter().map(|s| exact(master_amount, s.share)));
            expected.extend(publishing.iter().map(|s| exact(recording - master_amount, s.share)));
            expected.extend(likeness.iter().map(|s| exact(pool - recording, s.share)));
            // Value and representation (normalized), so compare the parts.
            let parts = |amounts: &[Decimal]| -> Vec<(i128, u32)> {
                amounts.iter().map(|a| (a.mantissa(), a.scale())).collect()
            };
            let expected: Vec<Decimal> = expected.into_iter().map(|a| a.normalize()).collect();
            proptest::prop_assert_eq!(parts(amounts.amounts()), parts(&expected));
        }
    }

    /// A line whose exact products need more digits than a `Decimal`
    /// holds: products are rounded half to even to 16 decimals beside its
    /// 12 integer digits, and each split's residual goes to its largest
    /// share (ties: the lowest party id). Worked out with Python's
    /// `decimal` at 80 digits.
    #[test]
    fn products_beyond_28_digits_round_and_conserve() {
        let policy = policy(d("0.2222333333"), d("0.1855"), d("0.3333333333"));
        let master = splits(&[("m1", "0.3333333"), ("m2", "0.6666667")]);
        let publishing = splits(&[("p2", "0.5"), ("p1", "0.5")]);
        let likeness = splits(&[("v1", "1")]);
        let components = remix(6284, &master, &publishing, &likeness);
        let gross = d("-999999999999.999999");
        let got = allocate(gross, &policy, &"u1".into(), &components).unwrap();
        let amounts: Vec<String> = got.amounts().iter().map(|a| a.to_string()).collect();
        assert_eq!(
            amounts,
            [
                "-222233333299.9999997777666667",
                "-185499999999.9999998145",
                // Master: -124060124439.02065409746387554573934578
                // rounded to -124060124439.0206540974638755.
                "-41353370677.6694033984661553",
                "-82706753761.3512506989977202",
                // Publishing: its two halves, rounded, leave 0.0000000000000001
                // over, which goes to p1, listed second.
                "-124060124457.6296727651778756",
                "-124060124457.6296727651778755",
                "-220086293345.7199997799137067",
            ]
        );
        let mut total = ExactSum::ZERO;
        for amount in got.amounts() {
            total.add(*amount);
        }
        assert_eq!(total, ExactSum::of(gross));
    }

    #[test]
    fn the_residual_of_a_sheet_that_is_not_whole_goes_to_its_largest_share() {
        let policy = policy(d("0.3"), d("0.2"), d("0.5"));
        // 0.3 + 0.3 = 0.6: the residual 0.4 of each split goes to the
        // largest share (ties: the lowest party id).
        let likeness = splits(&[("b", "0.3"), ("a", "0.3")]);
        let components = [WeightedComponent {
            weight_bp: 10_000,
            component: ResolvedComponent::Voice {
                id: "vm1".into(),
                likeness_splits: &likeness,
            },
        }];
        assert_eq!(
            allocate(d("10"), &policy, &"u1".into(), &components)
                .unwrap()
                .amounts(),
            &[d("3"), d("2"), d("1.5"), d("3.5")]
        );
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
