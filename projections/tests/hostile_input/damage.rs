//! Byte-level damage to valid documents, for the parsers' property tests:
//! a valid document reaches deep into a parser before it breaks, where
//! random bytes are refused at the first character.

/// Byte-level damage to a valid document: each edit replaces, inserts or
/// removes a byte, or repeats a span of up to 64 bytes where it stands.
pub fn mutate(valid: &[u8], edits: &[(usize, u8, u8, usize)]) -> Vec<u8> {
    let mut bytes = valid.to_vec();
    for &(position, byte, kind, span) in edits {
        if bytes.is_empty() {
            bytes.push(byte);
            continue;
        }
        let at = position % bytes.len();
        match kind % 4 {
            0 => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            2 => {
                bytes.remove(at);
            }
            _ => {
                let end = (at + span.max(1)).min(bytes.len());
                let repeated = bytes[at..end].to_vec();
                bytes.splice(at..at, repeated);
            }
        }
    }
    bytes
}
