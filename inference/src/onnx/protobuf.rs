//! The protobuf wire format (<https://protobuf.dev/programming-guides/encoding/>),
//! read only, as far as an ONNX model needs: varints, 64- and 32-bit
//! scalars and length-delimited fields. Every read is bounds-checked, so a
//! truncated or hostile file is an error, never a panic.

/// What is wrong with the bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("the protobuf message ends inside a field")]
    Truncated,
    #[error("a protobuf varint is longer than 10 bytes")]
    VarintTooLong,
    #[error("protobuf wire type {0} is not one ONNX uses")]
    UnknownWireType(u8),
}

/// One field's value as it is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

impl<'a> Value<'a> {
    /// The value of a varint field.
    pub fn varint(self) -> Option<u64> {
        match self {
            Value::Varint(v) => Some(v),
            _ => None,
        }
    }

    /// The bytes of a length-delimited field (a string, bytes, an embedded
    /// message or a packed repeated scalar).
    pub fn bytes(self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

/// The fields of one message, in order: `(field number, value)`.
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    pub fn new(message: &'a [u8]) -> Fields<'a> {
        Fields { rest: message }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let field = read_field(&mut self.rest);
        if field.is_err() {
            // Stop after the first error: what follows cannot be framed.
            self.rest = &[];
        }
        Some(field)
    }
}

fn read_field<'a>(rest: &mut &'a [u8]) -> Result<(u32, Value<'a>), WireError> {
    let key = read_varint(rest)?;
    let number = (key >> 3) as u32;
    let value = match (key & 7) as u8 {
        0 => Value::Varint(read_varint(rest)?),
        1 => Value::Fixed64(u64::from_le_bytes(take(rest, 8)?.try_into().unwrap())),
        2 => {
            let length = read_varint(rest)?;
            let length = usize::try_from(length).map_err(|_| WireError::Truncated)?;
            Value::Bytes(take(rest, length)?)
        }
        5 => Value::Fixed32(u32::from_le_bytes(take(rest, 4)?.try_into().unwrap())),
        other => return Err(WireError::UnknownWireType(other)),
    };
    Ok((number, value))
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], WireError> {
    if rest.len() < n {
        return Err(WireError::Truncated);
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

/// A base-128 varint, least significant group first.
pub fn read_varint(rest: &mut &[u8]) -> Result<u64, WireError> {
    let mut value = 0u64;
    for i in 0..10 {
        let [byte, tail @ ..] = *rest else {
            return Err(WireError::Truncated);
        };
        *rest = tail;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(WireError::VarintTooLong)
}

/// The varints of a packed repeated field.
pub fn packed_varints(mut bytes: &[u8]) -> Result<Vec<u64>, WireError> {
    let mut values = Vec::new();
    while !bytes.is_empty() {
        values.push(read_varint(&mut bytes)?);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_read_as_the_encoding_guide_shows() {
        assert_eq!(read_varint(&mut &[0x96, 0x01][..]), Ok(150));
        assert_eq!(read_varint(&mut &[0x01][..]), Ok(1));
        // -1 as an int64: ten bytes.
        let minus_one = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(read_varint(&mut &minus_one[..]), Ok(u64::MAX));
        assert_eq!(read_varint(&mut &[0x80][..]), Err(WireError::Truncated));
        assert_eq!(
            read_varint(&mut &[0x80; 11][..]),
            Err(WireError::VarintTooLong)
        );
    }

    #[test]
    fn fields_are_framed_and_truncation_is_an_error() {
        // field 1 varint 150; field 2 bytes "hi"; field 3 fixed32 1.0f.
        let message = [
            0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i', 0x1d, 0x00, 0x00, 0x80, 0x3f,
        ];
        let fields: Vec<_> = Fields::new(&message).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            fields,
            [
                (1, Value::Varint(150)),
                (2, Value::Bytes(b"hi")),
                (3, Value::Fixed32(1.0f32.to_bits())),
            ]
        );
        let cut: Vec<_> = Fields::new(&message[..6]).collect();
        assert_eq!(cut.last(), Some(&Err(WireError::Truncated)));
        assert_eq!(
            Fields::new(&[0x0b]).next(),
            Some(Err(WireError::UnknownWireType(3)))
        );
    }
}
