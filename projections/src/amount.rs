//! Exact money arithmetic on `rust_decimal`: summing without overflow, and
//! rounding a set of exact totals to minor units by the largest-remainder
//! method. (Splitting one line's gross is [`crate::allocation`]'s, in the
//! arithmetic of `scaled.rs`.)
//!
//! A `Decimal` holds 28 significant digits, and sums of many allocations
//! of up to 28 digits each can need more, so [`ExactSum`] keeps the whole
//! and the fractional part apart.

use rust_decimal::Decimal;
use std::cmp::Ordering;
use std::fmt;

/// An exact sum of decimals of any scale up to 28: an integer part and a
/// fractional part of the same sign, `|fraction| < 1`. Addition is exact and
/// associative, so a total does not depend on the order of its terms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExactSum {
    whole: Decimal,
    fraction: Decimal,
}

impl ExactSum {
    pub const ZERO: ExactSum = ExactSum {
        whole: Decimal::ZERO,
        fraction: Decimal::ZERO,
    };

    pub fn of(value: Decimal) -> ExactSum {
        let mut sum = ExactSum::ZERO;
        sum.add(value);
        sum
    }

    /// Adds `value` exactly.
    pub fn add(&mut self, value: Decimal) {
        let whole = value.trunc();
        self.whole += whole;
        self.fraction += value - whole;
        self.normalize();
    }

    /// Adds another sum exactly.
    pub fn add_sum(&mut self, other: &ExactSum) {
        self.whole += other.whole;
        self.fraction += other.fraction;
        self.normalize();
    }

    pub fn negated(&self) -> ExactSum {
        ExactSum {
            whole: -self.whole,
            fraction: -self.fraction,
        }
    }

    fn normalize(&mut self) {
        let carry = self.fraction.trunc();
        self.whole += carry;
        self.fraction -= carry;
        // Same sign for both parts, so that the text form is one number.
        if self.whole.is_sign_positive()
            && !self.whole.is_zero()
            && self.fraction.is_sign_negative()
            && !self.fraction.is_zero()
        {
            self.whole -= Decimal::ONE;
            self.fraction += Decimal::ONE;
        } else if self.whole.is_sign_negative()
            && !self.whole.is_zero()
            && self.fraction.is_sign_positive()
            && !self.fraction.is_zero()
        {
            self.whole += Decimal::ONE;
            self.fraction -= Decimal::ONE;
        }
        self.whole = self.whole.normalize();
        self.fraction = self.fraction.normalize();
        debug_assert!(self.fraction.abs() < Decimal::ONE);
    }

    pub fn is_zero(&self) -> bool {
        self.whole.is_zero() && self.fraction.is_zero()
    }

    pub fn is_negative(&self) -> bool {
        (self.whole.is_sign_negative() && !self.whole.is_zero())
            || (self.fraction.is_sign_negative() && !self.fraction.is_zero())
    }

    /// The value as one `Decimal`, when it fits in 28 digits.
    pub fn to_decimal(&self) -> Option<Decimal> {
        self.whole
            .checked_add(self.fraction)
            .filter(|d| d - self.whole == self.fraction)
    }

    /// Splits `value x 10^exponent` into `floor` (an integer count of minor
    /// units, rounded toward minus infinity) and the remainder in [0, 1).
    pub fn floor_minor_units(&self, exponent: u32) -> (i128, Decimal) {
        let scale = Decimal::from(10i64.pow(exponent));
        let whole_units = self.whole * scale;
        let mut scaled_fraction = self.fraction;
        if scaled_fraction.scale() >= exponent {
            // Multiplying by 10^e only moves the decimal point: no digit is lost.
            scaled_fraction
                .set_scale(scaled_fraction.scale() - exponent)
                .expect("a smaller scale is valid");
        } else {
            scaled_fraction *= scale;
        }
        let fraction_floor = scaled_fraction.floor();
        let remainder = scaled_fraction - fraction_floor;
        let units = decimal_to_i128(whole_units) + decimal_to_i128(fraction_floor);
        debug_assert!(remainder >= Decimal::ZERO && remainder < Decimal::ONE);
        (units, remainder)
    }
}

/// An integer-valued `Decimal` as `i128`.
fn decimal_to_i128(value: Decimal) -> i128 {
    let mut integer = value;
    integer.rescale(0);
    assert_eq!(integer, value, "value is an integer");
    integer.mantissa()
}

/// A fast exact accumulator for many decimals, for sums over millions of
/// allocations (a statement): per scale, the `i128` sum of the mantissas,
/// turned into an [`ExactSum`] once at the end. A mantissa is below 2^96,
/// so 2^31 terms of one scale cannot overflow; a term that would goes to
/// an `ExactSum` instead. The total is the same exact value as adding every
/// term to an `ExactSum`, which carries and normalizes on each addition.
#[derive(Debug, Clone, Default)]
pub struct MantissaSums {
    /// (scale, sum of the mantissas of the terms of that scale).
    by_scale: Vec<(u32, i128)>,
    overflow: ExactSum,
}

impl MantissaSums {
    /// Adds `value` exactly.
    pub fn add(&mut self, value: Decimal) {
        let (scale, mantissa) = (value.scale(), value.mantissa());
        // Amounts of one kind share a few scales, so this scan is short.
        match self.by_scale.iter_mut().find(|(s, _)| *s == scale) {
            Some((_, sum)) => match sum.checked_add(mantissa) {
                Some(total) => *sum = total,
                None => self.overflow.add(value),
            },
            None => self.by_scale.push((scale, mantissa)),
        }
    }

    /// The exact total.
    pub fn total(&self) -> ExactSum {
        let mut total = self.overflow;
        for &(scale, sum) in &self.by_scale {
            // scale <= 28, so 10^scale < 2^94 and the fraction fits a Decimal.
            let unit = 10i128.pow(scale);
            let whole = Decimal::try_from_i128_with_scale(sum / unit, 0)
                .expect("a total beyond 7.9e28 does not fit an exact sum");
            total.add(whole);
            total.add(Decimal::from_i128_with_scale(sum % unit, scale));
        }
        total
    }
}

impl PartialOrd for ExactSum {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ExactSum {
    fn cmp(&self, other: &Self) -> Ordering {
        let mut difference = *self;
        difference.add_sum(&other.negated());
        if difference.is_zero() {
            Ordering::Equal
        } else if difference.is_negative() {
            Ordering::Less
        } else {
            Ordering::Greater
        }
    }
}

impl fmt::Display for ExactSum {
    /// The exact value with no trailing zeros, e.g. `-12.3333333333`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.whole.is_zero() {
            return write!(f, "{}", self.fraction);
        }
        let sign = if self.is_negative() { "-" } else { "" };
        let fraction = self.fraction.abs().to_string();
        let fraction_digits = fraction.strip_prefix('0').unwrap_or("");
        write!(f, "{sign}{}{fraction_digits}", self.whole.abs())
    }
}

/// An integer count of minor units, formatted with the currency's decimals
/// (`1234` at exponent 2 is `12.34`; at exponent 0 it is `1234`).
pub fn format_minor_units(units: i128, exponent: u32) -> String {
    let mut value = Decimal::from_i128_with_scale(units, exponent);
    value.rescale(exponent);
    value.to_string()
}

/// Rounds `value` to `exponent` decimals, half to even, as minor units.
pub fn round_half_even_minor_units(value: &ExactSum, exponent: u32) -> i128 {
    let (floor, remainder) = value.floor_minor_units(exponent);
    let half = Decimal::new(5, 1);
    match remainder.cmp(&half) {
        Ordering::Less => floor,
        Ordering::Greater => floor + 1,
        Ordering::Equal if floor % 2 == 0 => floor,
        Ordering::Equal => floor + 1,
    }
}

/// Largest-remainder rounding (the Hamilton method): each exact total gets
/// its floor in minor units; the `target - sum(floors)` leftover units go one
/// each to the totals with the largest remainders, ties to the lowest key in
/// byte order. Returns minor units in input order; they sum to `target`.
///
/// Panics if the leftover is negative or exceeds the number of totals, which
/// cannot happen when `target` is the half-even rounding of their exact sum.
pub fn largest_remainder(
    totals: &[(&str, ExactSum)],
    exponent: u32,
    target_units: i128,
) -> Vec<i128> {
    let floored: Vec<(i128, Decimal)> = totals
        .iter()
        .map(|(_, t)| t.floor_minor_units(exponent))
        .collect();
    let floor_sum: i128 = floored.iter().map(|(units, _)| units).sum();
    let leftover = target_units - floor_sum;
    assert!(
        leftover >= 0 && leftover <= totals.len() as i128,
        "largest remainder: leftover {leftover} units for {} totals",
        totals.len()
    );
    let mut order: Vec<usize> = (0..totals.len()).collect();
    order.sort_by(|&a, &b| {
        floored[b]
            .1
            .cmp(&floored[a].1)
            .then_with(|| totals[a].0.as_bytes().cmp(totals[b].0.as_bytes()))
    });
    let mut units: Vec<i128> = floored.iter().map(|(u, _)| *u).collect();
    for &index in order.iter().take(leftover as usize) {
        units[index] += 1;
    }
    assert_eq!(
        units.iter().sum::<i128>(),
        target_units,
        "payouts sum to the rounded gross"
    );
    units
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn exact_sum_keeps_digits_beyond_28() {
        let mut sum = ExactSum::ZERO;
        for _ in 0..3 {
            sum.add(d("1000000000000000.0000000000001"));
        }
        sum.add(d("-0.0000000000003"));
        assert_eq!(sum.to_string(), "3000000000000000");
        let mut tiny = ExactSum::of(d("123456789012345678"));
        tiny.add(d("0.0000000000000000000000000001"));
        assert_eq!(
            tiny.to_string(),
            "123456789012345678.0000000000000000000000000001"
        );
        assert_eq!(tiny.to_decimal(), None);
        let mut negative = ExactSum::of(d("-5.25"));
        negative.add(d("2.5"));
        assert_eq!(negative.to_string(), "-2.75");
        assert_eq!(ExactSum::of(d("-0.75")).to_string(), "-0.75");
    }

    #[test]
    fn floor_is_toward_minus_infinity() {
        assert_eq!(
            ExactSum::of(d("-2.755")).floor_minor_units(2),
            (-276, d("0.5"))
        );
        assert_eq!(
            ExactSum::of(d("2.755")).floor_minor_units(2),
            (275, d("0.5"))
        );
        assert_eq!(ExactSum::of(d("-3")).floor_minor_units(0), (-3, d("0")));
        assert_eq!(ExactSum::of(d("1.5")).floor_minor_units(3), (1500, d("0")));
    }

    #[test]
    fn half_even_and_largest_remainder() {
        assert_eq!(
            round_half_even_minor_units(&ExactSum::of(d("0.125")), 2),
            12
        );
        assert_eq!(
            round_half_even_minor_units(&ExactSum::of(d("0.135")), 2),
            14
        );
        assert_eq!(
            round_half_even_minor_units(&ExactSum::of(d("-0.125")), 2),
            -12
        );
        let totals = [
            ("b", ExactSum::of(d("3.333333"))),
            ("a", ExactSum::of(d("3.333333"))),
            ("c", ExactSum::of(d("3.333334"))),
        ];
        // 10.00: floors 333 each, one leftover cent: largest remainder is c.
        assert_eq!(largest_remainder(&totals, 2, 1000), vec![333, 333, 334]);
        let tied = [("b", ExactSum::of(d("0.5"))), ("a", ExactSum::of(d("0.5")))];
        assert_eq!(largest_remainder(&tied, 0, 1), vec![0, 1]);
        assert_eq!(format_minor_units(-1234, 2), "-12.34");
        assert_eq!(format_minor_units(5, 2), "0.05");
        assert_eq!(format_minor_units(1234, 0), "1234");
    }

    #[test]
    fn mantissa_sums_equal_exact_sums_term_by_term() {
        let terms: Vec<Decimal> = [
            "0.0000000000000000000000000001",
            "7922816251426433759354395033",
            "-7922816251426433759354395033",
            "12.345678",
            "-0.333333333333333333333333333",
            "1.5",
            "0.0000000000000000000000000009",
            "-7.25",
        ]
        .iter()
        .map(|t| Decimal::from_str(t).unwrap())
        .cycle()
        .take(10_000)
        .collect();
        let mut fast = MantissaSums::default();
        let mut exact = ExactSum::ZERO;
        for term in &terms {
            fast.add(*term);
            exact.add(*term);
        }
        assert_eq!(fast.total(), exact);
        assert_eq!(fast.total().to_string(), exact.to_string());
        // Mantissas near 2^96 of one scale overflow i128 only after 2^31
        // terms; force the overflow path with the extremes of i128 itself.
        let mut edge = MantissaSums {
            by_scale: vec![(0, i128::MAX - 1)],
            overflow: ExactSum::ZERO,
        };
        edge.add(Decimal::from(5));
        assert_eq!(edge.by_scale, [(0, i128::MAX - 1)]);
        assert_eq!(edge.overflow, ExactSum::of(Decimal::from(5)));
        assert_eq!(MantissaSums::default().total(), ExactSum::ZERO);
    }
}
