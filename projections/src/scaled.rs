//! The arithmetic of allocation: decimals as an `i128` mantissa and a
//! scale, products rounded to a number of decimals that keeps every amount
//! of a line inside what a `Decimal` holds, and exact sums.
//!
//! A `Decimal` holds 28 significant digits. Policy v1 multiplies up to five
//! decimals per amount (gross, policy share, weight, master share, party
//! share: up to 6 + 10 + 4 + 10 + 10 decimals), so an exact product can
//! need more. `Decimal` arithmetic then rounds each product to 28
//! significant digits, but a sum or difference of such products can need
//! more again and round too, and a split stops conserving its amount. Here
//! a line of gross G gets a fixed number of decimals, 28 minus the digits
//! of G's integer part ([`Scaled::decimals_beside`]): every amount of the
//! line, and every sum of them (all at most |G| in size), then fits a
//! `Decimal` exactly, so sums and differences are exact, and only products
//! beyond that many decimals are rounded (half to even). Lines of ordinary
//! precision never round: a gross below 10^8 with 6 decimals, policy and
//! master shares of 2 decimals and split shares of 6 make products of at
//! most 20 decimals, and 28 - 8 = 20.

use rust_decimal::Decimal;
use std::cmp::Ordering;

/// The significant digits a `Decimal` always holds (its mantissa is below
/// 2^96, about 7.9 x 10^28).
const DECIMAL_DIGITS: u32 = 28;

/// 10^0 to 10^38: every power of ten an `i128` holds.
const POWERS_OF_TEN: [i128; 39] = {
    let mut powers = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        powers[i] = powers[i - 1] * 10;
        i += 1;
    }
    powers
};

/// `a x b`, with one machine multiply where both fit 64 bits.
fn multiply(a: i128, b: i128) -> Option<i128> {
    match (i64::try_from(a), i64::try_from(b)) {
        (Ok(a), Ok(b)) => Some(i128::from(a) * i128::from(b)),
        _ => a.checked_mul(b),
    }
}

/// `mantissa x 10^-scale`, exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scaled {
    mantissa: i128,
    scale: u32,
}

impl Scaled {
    pub(crate) const ZERO: Scaled = Scaled {
        mantissa: 0,
        scale: 0,
    };

    pub(crate) fn of(value: Decimal) -> Scaled {
        Scaled {
            mantissa: value.mantissa(),
            scale: value.scale(),
        }
    }

    /// The decimals every amount of a line of gross `gross` keeps: 28 minus
    /// the digits of its integer part, so that any amount up to |gross|
    /// with that many decimals has at most 28 digits.
    pub(crate) fn decimals_beside(gross: Decimal) -> u32 {
        let digits = gross
            .mantissa()
            .unsigned_abs()
            .checked_ilog10()
            .map_or(0, |log| log + 1);
        DECIMAL_DIGITS.saturating_sub(digits.saturating_sub(gross.scale()))
    }

    /// This value times `factor`, rounded half to even to at most
    /// `decimals` decimals; `None` beyond `i128`.
    pub(crate) fn times(self, factor: Scaled, decimals: u32) -> Option<Scaled> {
        let product = Scaled {
            mantissa: multiply(self.mantissa, factor.mantissa)?,
            scale: self.scale + factor.scale,
        };
        Some(product.rounded(decimals))
    }

    /// Rounded half to even to at most `decimals` decimals.
    fn rounded(self, decimals: u32) -> Scaled {
        if self.scale <= decimals {
            return self;
        }
        // A mantissa below 2^127 has at most 39 digits: past that, every
        // digit is dropped.
        let Some(&unit) = POWERS_OF_TEN.get((self.scale - decimals) as usize) else {
            return Scaled {
                mantissa: 0,
                scale: decimals,
            };
        };
        let (quotient, remainder) = (self.mantissa / unit, self.mantissa % unit);
        let twice = remainder.unsigned_abs() * 2;
        let away = match twice.cmp(&unit.unsigned_abs()) {
            Ordering::Greater => true,
            Ordering::Equal => quotient % 2 != 0,
            Ordering::Less => false,
        };
        Scaled {
            mantissa: if away {
                quotient + self.mantissa.signum()
            } else {
                quotient
            },
            scale: decimals,
        }
    }

    /// The mantissa of this value at the larger scale `scale`.
    fn mantissa_at(self, scale: u32) -> Option<i128> {
        multiply(
            self.mantissa,
            *POWERS_OF_TEN.get((scale - self.scale) as usize)?,
        )
    }

    /// The exact sum; `None` beyond `i128`.
    pub(crate) fn plus(self, other: Scaled) -> Option<Scaled> {
        if self.scale == other.scale {
            return Some(Scaled {
                mantissa: self.mantissa.checked_add(other.mantissa)?,
                scale: self.scale,
            });
        }
        let scale = self.scale.max(other.scale);
        Some(Scaled {
            mantissa: self
                .mantissa_at(scale)?
                .checked_add(other.mantissa_at(scale)?)?,
            scale,
        })
    }

    /// The exact difference; `None` beyond `i128`.
    pub(crate) fn minus(self, other: Scaled) -> Option<Scaled> {
        self.plus(Scaled {
            mantissa: -other.mantissa,
            scale: other.scale,
        })
    }

    pub(crate) fn is_zero(self) -> bool {
        self.mantissa == 0
    }

    /// The value as a `Decimal` without trailing zeros, as
    /// `Decimal::normalize` writes it (zero is positive, of scale 0);
    /// `None` when a `Decimal` cannot hold it.
    pub(crate) fn to_normalized_decimal(self) -> Option<Decimal> {
        debug_assert!(self.scale <= 31, "strip_zeros strips at most 31 zeros");
        if self.mantissa == 0 {
            return Some(Decimal::ZERO);
        }
        if self.scale == 0 || last_digit(self.mantissa) != 0 {
            // Most amounts end in a digit other than 0.
            return Decimal::try_from_i128_with_scale(self.mantissa, self.scale).ok();
        }
        // Strips up to 31 trailing zeros, but no more than the scale, in at
        // most five divisions: 16, 8, 4, 2, then 1 zero at a time, each
        // where it fits (the binary digits of the count stripped). Most
        // amounts fit 64 bits, where dividing by a constant is a multiply.
        let (mantissa, stripped) = match i64::try_from(self.mantissa) {
            Ok(small) => {
                let (small, stripped) = strip_zeros(small, self.scale, |m, p| {
                    let p = p as i64;
                    (m % p == 0).then(|| m / p)
                });
                (i128::from(small), stripped)
            }
            Err(_) => strip_zeros(self.mantissa, self.scale, |m, p| {
                (m % p == 0).then(|| m / p)
            }),
        };
        Decimal::try_from_i128_with_scale(mantissa, self.scale - stripped).ok()
    }
}

/// The last decimal digit of `mantissa`'s magnitude, in 64-bit arithmetic
/// (a 128-bit remainder is a library call): 2^64 leaves 6 over by 10.
fn last_digit(mantissa: i128) -> u64 {
    let magnitude = mantissa.unsigned_abs();
    let (high, low) = ((magnitude >> 64) as u64, magnitude as u64);
    (high % 10 * 6 + low % 10) % 10
}

/// `mantissa` without up to `scale` of its trailing zeros, and how many it
/// lost; `divide(m, 10^n)` is `m / 10^n` where that leaves no remainder.
fn strip_zeros<M: Copy>(
    mut mantissa: M,
    scale: u32,
    divide: impl Fn(M, i128) -> Option<M>,
) -> (M, u32) {
    let mut stripped = 0;
    for zeros in [16u32, 8, 4, 2, 1] {
        if stripped + zeros <= scale {
            if let Some(quotient) = divide(mantissa, POWERS_OF_TEN[zeros as usize]) {
                mantissa = quotient;
                stripped += zeros;
            }
        }
    }
    (mantissa, stripped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn s(text: &str) -> Scaled {
        Scaled::of(d(text))
    }

    /// The exact representation: mantissa and scale, so that `1.50` and
    /// `1.5` differ.
    fn parts(value: Decimal) -> (i128, u32) {
        (value.mantissa(), value.scale())
    }

    fn text(value: Scaled) -> String {
        value.to_normalized_decimal().unwrap().to_string()
    }

    #[test]
    fn decimals_leave_room_for_the_integer_part() {
        assert_eq!(Scaled::decimals_beside(d("0.5")), 28);
        assert_eq!(Scaled::decimals_beside(d("-9.999999")), 27);
        assert_eq!(Scaled::decimals_beside(d("10")), 26);
        assert_eq!(Scaled::decimals_beside(d("-1000000000000")), 15);
        assert_eq!(Scaled::decimals_beside(Decimal::MAX), 0);
        assert_eq!(Scaled::decimals_beside(d("999.990")), 25);
        assert_eq!(Scaled::decimals_beside(d("0.000")), 28);
    }

    #[test]
    fn the_last_digit_is_found_beyond_64_bits() {
        for value in [
            0i128,
            7,
            -13,
            i128::from(u64::MAX),
            i128::from(u64::MAX) + 1,
            (1i128 << 96) - 1,
            -(1i128 << 100) - 3,
            i128::MAX,
            i128::MIN + 1,
        ] {
            assert_eq!(
                last_digit(value),
                (value.unsigned_abs() % 10) as u64,
                "{value}"
            );
        }
    }

    #[test]
    fn products_are_exact_within_the_decimals() {
        let product = s("12.345678").times(s("0.333333"), 28).unwrap();
        assert_eq!(text(product), "4.115221884774");
        let difference = s("12.345678").minus(product).unwrap();
        assert_eq!(text(difference), "8.230456115226");
        assert_eq!(text(product.plus(difference).unwrap()), "12.345678");
    }

    #[test]
    fn products_round_half_to_even_beyond_the_decimals() {
        let cases = [
            ("0.125", "1", 2, "0.12"),
            ("0.135", "1", 2, "0.14"),
            ("-0.125", "1", 2, "-0.12"),
            ("-0.135", "1", 2, "-0.14"),
            ("0.1251", "1", 2, "0.13"),
            ("-0.1249", "1", 2, "-0.12"),
            ("2.5", "0.1", 0, "0"),
            ("3.5", "0.1", 0, "0"),
            ("0.35", "10", 0, "4"),
            ("0.45", "10", 0, "4"),
        ];
        for (a, b, decimals, expected) in cases {
            let product = s(a).times(s(b), decimals).unwrap();
            assert_eq!(text(product), expected, "{a} x {b} to {decimals}");
        }
        // Far more digits dropped than an i128 holds: zero.
        let tiny = Scaled {
            mantissa: 1,
            scale: 60,
        };
        assert!(tiny.rounded(2).is_zero());
    }

    #[test]
    fn normalizing_strips_trailing_zeros_and_the_sign_of_zero() {
        let cases = [
            ("1.500", "1.5"),
            ("-2.000", "-2"),
            ("0.000", "0"),
            ("-0.00", "0"),
            ("1000", "1000"),
            (
                "79228162514264337593543950335",
                "79228162514264337593543950335",
            ),
            (
                "-7922816251426433759354395.0000",
                "-7922816251426433759354395",
            ),
        ];
        for (written, normalized) in cases {
            let value = s(written).to_normalized_decimal().unwrap();
            assert_eq!(parts(value), parts(d(normalized)), "{written}");
            assert_eq!(parts(value), parts(d(written).normalize()), "{written}");
            assert!(!value.is_sign_negative() || !value.is_zero(), "{written}");
        }
    }

    #[test]
    fn values_beyond_decimal_or_i128_are_refused() {
        let big = s("79228162514264337593543950335");
        assert_eq!(big.plus(s("1")).unwrap().to_normalized_decimal(), None);
        let huge = big.times(big, 0);
        assert_eq!(huge, None);
        assert_eq!(big.plus(s("0.00000000001")), None);
    }

    fn decimal() -> impl Strategy<Value = Decimal> {
        (any::<i64>(), 0u32..=14).prop_map(|(m, s)| Decimal::new(m, s))
    }

    proptest! {
        /// Exact products, sums and differences are `Decimal`'s wherever
        /// `Decimal` holds them without rounding.
        #[test]
        fn agrees_with_decimal_where_it_is_exact(a in decimal(), b in decimal()) {
            let (x, y) = (Scaled::of(a), Scaled::of(b));
            let product = x.times(y, 28).unwrap();
            if let Some(exact) = a.checked_mul(b).filter(|p| p.scale() == a.scale() + b.scale()) {
                prop_assert_eq!(product.to_normalized_decimal().map(parts), Some(parts(exact.normalize())));
            }
            // Where a Decimal holds the exact result (else Decimal rounds).
            if let Some(sum) = x.plus(y).unwrap().to_normalized_decimal() {
                prop_assert_eq!(parts(sum), parts((a + b).normalize()));
            }
            if let Some(difference) = x.minus(y).unwrap().to_normalized_decimal() {
                prop_assert_eq!(parts(difference), parts((a - b).normalize()));
            }
        }

        /// Rounding to fewer decimals is `Decimal`'s banker's rounding.
        #[test]
        fn rounds_as_decimal_does(a in decimal(), decimals in 0u32..=14) {
            let rounded = Scaled::of(a).rounded(decimals).to_normalized_decimal().unwrap();
            let expected = a.round_dp_with_strategy(decimals, rust_decimal::RoundingStrategy::MidpointNearestEven);
            prop_assert_eq!(parts(rounded), parts(expected.normalize()));
        }
    }
}
