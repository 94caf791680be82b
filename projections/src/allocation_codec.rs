//! The stored form of a usage line's allocations (the
//! `projection_usage_line.allocations` BLOB).
//!
//! Per allocation, in order: the component as one byte (its index in
//! [`COMPONENTS`]), the party and the reference each as a little-endian u16
//! byte length and their UTF-8 bytes, and the exact amount as the 16 bytes
//! of `Decimal::serialize`. Binary rather than JSON text because a statement
//! reads every allocation of a period: this decodes with no number parsing
//! and, through [`for_each_allocation`], no allocation either. The amounts
//! round-trip exactly, scale included.

use crate::allocation::{Allocation, Component};
use rust_decimal::Decimal;

/// The components in the order of their stored byte.
const COMPONENTS: [Component; 5] = [
    Component::Platform,
    Component::Creator,
    Component::Master,
    Component::Publishing,
    Component::Likeness,
];

/// The stored bytes of `allocations`.
pub fn encode(allocations: &[Allocation]) -> Vec<u8> {
    let mut out = Vec::with_capacity(allocations.len() * 48);
    for a in allocations {
        let component = COMPONENTS
            .iter()
            .position(|c| *c == a.component)
            .expect("every component has a byte");
        out.push(component as u8);
        push_text(&mut out, &a.party);
        push_text(&mut out, &a.reference);
        out.extend_from_slice(&a.amount.serialize());
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

/// Calls `visit(component, party, reference, amount)` for each stored
/// allocation, in order, borrowing the text from `bytes`.
pub fn for_each_allocation<'b>(
    bytes: &'b [u8],
    mut visit: impl FnMut(Component, &'b str, &'b str, Decimal),
) -> Result<(), String> {
    let mut rest = bytes;
    while let Some((&component, tail)) = rest.split_first() {
        let component = *COMPONENTS
            .get(usize::from(component))
            .ok_or_else(|| format!("allocations hold an unknown component byte {component}"))?;
        let (party, tail) = take_text(tail)?;
        let (reference, tail) = take_text(tail)?;
        let (amount, tail) = tail
            .split_first_chunk::<16>()
            .ok_or("allocations end inside an amount")?;
        visit(component, party, reference, Decimal::deserialize(*amount));
        rest = tail;
    }
    Ok(())
}

fn take_text(bytes: &[u8]) -> Result<(&str, &[u8]), String> {
    let (len, rest) = bytes
        .split_first_chunk::<2>()
        .ok_or("allocations end inside a length")?;
    let len = usize::from(u16::from_le_bytes(*len));
    if rest.len() < len {
        return Err("allocations end inside a name".into());
    }
    let (text, rest) = rest.split_at(len);
    let text = std::str::from_utf8(text).map_err(|e| format!("allocations hold bad UTF-8: {e}"))?;
    Ok((text, rest))
}

/// The allocations stored in `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Vec<Allocation>, String> {
    let mut allocations = Vec::new();
    for_each_allocation(bytes, |component, party, reference, amount| {
        allocations.push(Allocation {
            party: party.into(),
            component,
            reference: reference.into(),
            amount,
        })
    })?;
    Ok(allocations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn allocation(party: &str, component: Component, reference: &str, amount: &str) -> Allocation {
        Allocation {
            party: party.into(),
            component,
            reference: reference.into(),
            amount: Decimal::from_str(amount).unwrap(),
        }
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
            allocation("p3", Component::Likeness, "vm-1", "0"),
        ];
        let bytes = encode(&allocations);
        let decoded = decode(&bytes).unwrap();
        assert_eq!(decoded, allocations);
        // Equal decimals of different scale stay distinguishable, as the text form was.
        assert_eq!(decoded[0].amount.to_string(), "0.300000");
        assert!(decode(&[]).unwrap().is_empty());
    }

    #[test]
    fn truncated_or_foreign_bytes_are_refused() {
        let bytes = encode(&[allocation("p1", Component::Master, "GBAYE2600001", "1.25")]);
        for cut in 1..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut} is refused");
        }
        let mut foreign = bytes.clone();
        foreign[0] = 9;
        assert_eq!(
            decode(&foreign).unwrap_err(),
            "allocations hold an unknown component byte 9"
        );
    }
}
