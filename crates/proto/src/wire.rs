//! Protobuf wire primitives: varints, field keys and length-delimited payloads, read with
//! bounds checks so that hostile or truncated input yields an error, never a panic.

/// Wire types of the protobuf encoding.
pub(crate) const VARINT: u8 = 0;
pub(crate) const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;
pub(crate) const FIXED32: u8 = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    #[error("unexpected end of data")]
    Truncated,
    #[error("varint longer than 10 bytes")]
    VarintOverflow,
    #[error("invalid field key (field number {0}, wire type {1})")]
    BadKey(u64, u8),
}

#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// One field occurrence: its number, wire type and raw value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    /// Kubernetes defines no 32-bit fixed fields; read only to be skipped.
    Fixed32,
    Bytes(&'a [u8]),
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for shift in 0..10 {
            let byte = *self.buf.get(self.pos).ok_or(WireError::Truncated)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (shift * 7);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::VarintOverflow)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::Truncated)?;
        let slice = self.buf.get(self.pos..end).ok_or(WireError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    /// Reads the next field: number and value.
    pub(crate) fn field(&mut self) -> Result<(u32, Value<'a>), WireError> {
        let key = self.varint()?;
        let wire_type = (key & 7) as u8;
        let number = key >> 3;
        let number = u32::try_from(number)
            .ok()
            .filter(|n| *n > 0 && *n < (1 << 29))
            .ok_or(WireError::BadKey(number, wire_type))?;
        let value = match wire_type {
            VARINT => Value::Varint(self.varint()?),
            FIXED64 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Fixed64(u64::from_le_bytes(a))
            }
            LEN => {
                let len = usize::try_from(self.varint()?).map_err(|_| WireError::Truncated)?;
                Value::Bytes(self.take(len)?)
            }
            FIXED32 => {
                self.take(4)?;
                Value::Fixed32
            }
            other => return Err(WireError::BadKey(u64::from(number), other)),
        };
        Ok((number, value))
    }
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(crate) fn put_key(out: &mut Vec<u8>, number: u32, wire_type: u8) {
    put_varint(out, (u64::from(number) << 3) | u64::from(wire_type));
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_key(out, number, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub(crate) fn put_varint_field(out: &mut Vec<u8>, number: u32, value: u64) {
    put_key(out, number, VARINT);
    put_varint(out, value);
}

pub(crate) fn put_fixed64_field(out: &mut Vec<u8>, number: u32, value: u64) {
    put_key(out, number, FIXED64);
    out.extend_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_including_negative_int32() {
        for value in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), (-1i64) as u64] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(Reader::new(&out).varint(), Ok(value));
        }
        let mut out = Vec::new();
        put_varint(&mut out, (-1i64) as u64);
        assert_eq!(out.len(), 10);
    }

    #[test]
    fn malformed_input_is_an_error() {
        let cases: [(&[u8], WireError); 5] = [
            (&[0x08], WireError::Truncated),
            (&[0x0a, 0x05, 1, 2], WireError::Truncated),
            (
                &[
                    0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                ],
                WireError::VarintOverflow,
            ),
            (&[0x00, 0x01], WireError::BadKey(0, 0)),
            (&[0x0b], WireError::BadKey(1, 3)),
        ];
        for (input, want) in cases {
            assert_eq!(
                Reader::new(input).field().map(|_| ()),
                Err(want),
                "{input:?}"
            );
        }
    }

    #[test]
    fn huge_length_prefix_is_truncation_not_overflow() {
        let mut input = vec![0x0a];
        put_varint(&mut input, u64::MAX >> 1);
        assert_eq!(
            Reader::new(&input).field().map(|_| ()),
            Err(WireError::Truncated)
        );
    }
}
