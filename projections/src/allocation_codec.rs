//! The stored form of a usage line's allocations, in two parts:
//! - who is paid: the payee list (`projection_payee_list.payees`), stored
//!   once and shared by every line of the same derivative under the same
//!   split sheets;
//! - how much: the amounts (`projection_usage_line.amounts`), one per payee,
//!   in the same order.
//!
//! A payee list holds, per allocation in order: the component as one byte
//! (its index in [`COMPONENTS`]), then the party and the reference each as
//! a little-endian u16 byte length and their UTF-8 bytes.
//!
//! An amount is one byte holding its scale (0 to 28) with the sign in the
//! top bit, then the magnitude of its mantissa as an unsigned LEB128 varint
//! (at most 14 bytes for 96 bits). The amounts round-trip exactly, scale
//! and the sign of a zero included.
//!
//! Why split and why binary: a line of twelve payees with their names and
//! 16-byte amounts took about 480 bytes, four fifths of its row; a rebuild
//! writes a million rows and a statement reads a quarter of them. The list
//! is stored once, and an amount of ordinary precision takes 4 to 10 bytes.
//! Reading needs no number parsing and, through [`for_each_allocation`], no
//! allocation either.

use crate::allocation::{Allocations, Component, Payee};
use rust_decimal::Decimal;

/// The components in the order of their stored byte.
const COMPONENTS: [Component; 5] = [
    Component::Platform,
    Component::Creator,
    Component::Master,
    Component::Publishing,
    Component::Likeness,
];

/// The sign bit of an amount's first byte; the rest of it is the scale.
const NEGATIVE: u8 = 0x80;
/// The most bytes a 96-bit mantissa takes as a varint.
const MANTISSA_BYTES_MAX: usize = 14;

/// The stored form of the payee list `payees`.
pub fn encode_payees(payees: &[Payee]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payees.len() * 24);
    for a in payees {
        let component = COMPONENTS
            .iter()
            .position(|c| *c == a.component)
            .expect("every component has a byte");
        out.push(component as u8);
        push_text(&mut out, &a.party);
        push_text(&mut out, &a.reference);
    }
    out
}

/// The stored form of `amounts`, in order.
pub fn encode_amounts(amounts: &[Decimal]) -> Vec<u8> {
    let mut out = Vec::with_capacity(amounts.len() * 8);
    for &amount in amounts {
        push_amount(&mut out, amount);
    }
    out
}

fn push_text(out: &mut Vec<u8>, text: &str) {
    // Party ids, ISRCs, ISWCs and voice model ids are short identifiers; the
    // catalog validates them long before they could reach 64 KiB.
    let len = u16::try_from(text.len()).expect("an identifier is shorter than 64 KiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn push_amount(out: &mut Vec<u8>, amount: Decimal) {
    let sign = if amount.is_sign_negative() {
        NEGATIVE
    } else {
        0
    };
    // A Decimal's scale is at most 28: it never reaches the sign bit.
    out.push(sign | amount.scale() as u8);
    let mut magnitude = amount.mantissa().unsigned_abs();
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

/// Calls `visit(component, party, reference, amount)` for each allocation
/// stored as the payee list `payees` and the amounts `amounts`, in order,
/// borrowing the text from `payees`.
pub fn for_each_allocation<'b>(
    payees: &'b [u8],
    amounts: &[u8],
    mut visit: impl FnMut(Component, &'b str, &'b str, Decimal),
) -> Result<(), String> {
    let mut amounts = amounts;
    for_each_payee(payees, |component, party, reference| {
        let (amount, tail) = take_amount(amounts)?;
        amounts = tail;
        visit(component, party, reference, amount);
        Ok(())
    })?;
    if !amounts.is_empty() {
        return Err(MORE_AMOUNTS.into());
    }
    Ok(())
}

/// Calls `visit(component, party, reference)` for each payee of the stored
/// payee list `payees`, in order, borrowing the text; stops at the first
/// error `visit` returns.
pub fn for_each_payee<'b>(
    payees: &'b [u8],
    mut visit: impl FnMut(Component, &'b str, &'b str) -> Result<(), String>,
) -> Result<(), String> {
    let mut rest = payees;
    while let Some((&component, tail)) = rest.split_first() {
        let component = *COMPONENTS
            .get(usize::from(component))
            .ok_or_else(|| format!("a payee list holds an unknown component byte {component}"))?;
        let (party, tail) = take_text(tail)?;
        let (reference, tail) = take_text(tail)?;
        rest = tail;
        visit(component, party, reference)?;
    }
    Ok(())
}

/// Calls `visit(i, amount)` for each stored amount of `amounts`, in order;
/// returns how many there are.
pub fn for_each_amount(
    amounts: &[u8],
    mut visit: impl FnMut(usize, Decimal),
) -> Result<usize, String> {
    let mut rest = amounts;
    let mut count = 0;
    while !rest.is_empty() {
        let (amount, tail) = take_amount(rest)?;
        visit(count, amount);
        count += 1;
        rest = tail;
    }
    Ok(count)
}

const FEWER_AMOUNTS: &str = "a line holds fewer amounts than its payee list has payees";
const MORE_AMOUNTS: &str = "a line holds more amounts than its payee list has payees";

fn take_text(bytes: &[u8]) -> Result<(&str, &[u8]), String> {
    let (len, rest) = bytes
        .split_first_chunk::<2>()
        .ok_or("a payee list ends inside a length")?;
    let len = usize::from(u16::from_le_bytes(*len));
    if rest.len() < len {
        return Err("a payee list ends inside a name".into());
    }
    let (text, rest) = rest.split_at(len);
    let text =
        std::str::from_utf8(text).map_err(|e| format!("a payee list holds bad UTF-8: {e}"))?;
    Ok((text, rest))
}

fn take_amount(bytes: &[u8]) -> Result<(Decimal, &[u8]), String> {
    let (&first, mut rest) = bytes
        .split_first()
        .ok_or_else(|| FEWER_AMOUNTS.to_string())?;
    let scale = u32::from(first & !NEGATIVE);
    let mut magnitude: u128 = 0;
    for i in 0..MANTISSA_BYTES_MAX {
        let (&byte, tail) = rest.split_first().ok_or("amounts end inside a mantissa")?;
        rest = tail;
        magnitude |= u128::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let mantissa = i128::try_from(magnitude).map_err(|_| "an amount is out of range")?;
            let mut amount = Decimal::try_from_i128_with_scale(mantissa, scale)
                .map_err(|e| format!("an amount is out of range: {e}"))?;
            amount.set_sign_negative(first & NEGATIVE != 0);
            return Ok((amount, rest));
        }
    }
    Err("an amount's mantissa is longer than 96 bits".into())
}

/// The allocations stored as the payee list `payees` and the amounts
/// `amounts`.
pub fn decode(payees: &[u8], amounts: &[u8]) -> Result<Allocations, String> {
    let mut list = Vec::new();
    let mut values = Vec::new();
    for_each_allocation(payees, amounts, |component, party, reference, amount| {
        list.push(Payee {
            party: party.into(),
            component,
            reference: reference.into(),
        });
        values.push(amount);
    })?;
    Ok(Allocations::new(list.into(), values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocation::Allocation;
    use std::str::FromStr;

    fn allocation(party: &str, component: Component, reference: &str, amount: &str) -> Allocation {
        Allocation {
            party: party.into(),
            component,
            reference: reference.into(),
            amount: Decimal::from_str(amount).unwrap(),
        }
    }

    fn encode(allocations: &[Allocation]) -> (Vec<u8>, Vec<u8>) {
        let allocations = Allocations::of(allocations);
        (
            encode_payees(allocations.payees()),
            encode_amounts(allocations.amounts()),
        )
    }

    fn round_trip(allocations: &[Allocation]) -> Vec<Allocation> {
        let (payees, amounts) = encode(allocations);
        decode(&payees, &amounts).unwrap().to_vec()
    }

    #[test]
    fn allocations_round_trip_exactly_with_their_scale() {
        let allocations = vec![
            allocation("platform", Component::Platform, "", "0.300000"),
            allocation("créateur", Component::Creator, "", "-1.5"),
            allocation(
                "p1",
                Component::Master,
                "GBAYE2600001",
                "0.0000000000000000000000000001",
            ),
            allocation(
                "p2",
                Component::Publishing,
                "T-123456789-4",
                "79228162514264337593543950335",
            ),
            allocation(
                "p2",
                Component::Publishing,
                "T-123456789-4",
                "-7.9228162514264337593543950335",
            ),
            allocation("p3", Component::Likeness, "vm-1", "0"),
        ];
        let decoded = round_trip(&allocations);
        assert_eq!(decoded, allocations);
        // Equal decimals of different scale stay distinguishable, as the text form was.
        assert_eq!(decoded[0].amount.to_string(), "0.300000");
        assert_eq!(decoded[3].amount, Decimal::MAX);
        assert!(decode(&[], &[]).unwrap().is_empty());
    }

    #[test]
    fn a_negative_zero_keeps_its_sign() {
        // A reversal negates every amount, zeros included.
        let mut zero = allocation("p1", Component::Master, "GBAYE2600001", "0.00");
        zero.amount = -zero.amount;
        let decoded = round_trip(std::slice::from_ref(&zero));
        assert_eq!(
            decoded[0].amount.is_sign_negative(),
            zero.amount.is_sign_negative()
        );
        assert_eq!(decoded[0].amount.to_string(), zero.amount.to_string());
    }

    #[test]
    fn an_ordinary_amount_takes_a_few_bytes() {
        let line = [
            allocation("p1", Component::Master, "GBAYE2600001", "0.370370"),
            allocation("p2", Component::Master, "GBAYE2600001", "0.0740740740741"),
        ];
        assert_eq!(encode(&line).1.len(), 1 + 3 + 1 + 6);
    }

    #[test]
    fn truncated_or_foreign_bytes_are_refused() {
        let line = [allocation("p1", Component::Master, "GBAYE2600001", "1.25")];
        let (payees, amounts) = encode(&line);
        for cut in 1..payees.len() {
            assert!(
                decode(&payees[..cut], &amounts).is_err(),
                "payees cut at {cut}"
            );
        }
        for cut in 0..amounts.len() {
            assert!(
                decode(&payees, &amounts[..cut]).is_err(),
                "amounts cut at {cut}"
            );
        }
        let twice = [amounts.clone(), amounts.clone()].concat();
        assert_eq!(
            decode(&payees, &twice).unwrap_err(),
            "a line holds more amounts than its payee list has payees"
        );
        let mut foreign = payees.clone();
        foreign[0] = 9;
        assert_eq!(
            decode(&foreign, &amounts).unwrap_err(),
            "a payee list holds an unknown component byte 9"
        );
        // Scale 29 is beyond a Decimal; 15 varint bytes beyond 96 bits.
        assert!(decode(&payees, &[29, 1]).is_err());
        let long = [[0u8].as_slice(), &[0xff; 14], &[1]].concat();
        assert!(decode(&payees, &long).is_err());
    }
}
