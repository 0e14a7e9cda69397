//! The compact binary form the cluster's versions travel in: LEB128
//! varints and length-prefixed byte strings, read back with a bounds check
//! on every step.
//!
//! Why it exists: vector clocks and sibling sets cross the network on every
//! replicated write and are handed to clients as opaque causal contexts, so
//! their form must be small (a clock entry is three varints, usually 8-10
//! bytes) and their decoder must treat every input as hostile: a length is
//! checked against the bytes that are actually left and against a limit
//! before anything is allocated, and trailing bytes are an error, so one
//! value has exactly one encoding and a digest of the bytes is a digest of
//! the value.

/// Why bytes could not be decoded. Every variant means "refuse the
/// message": nothing partial is ever applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside a value.
    #[error("truncated: the input ends inside a value")]
    Truncated,
    /// A varint ran past 10 bytes or past 64 bits.
    #[error("a varint is longer than 64 bits")]
    VarintOverflow,
    /// A count or length is above its limit.
    #[error("{what} is {found}, above the limit of {max}")]
    TooLarge {
        /// What was counted.
        what: &'static str,
        /// The count found in the input.
        found: u64,
        /// The limit.
        max: u64,
    },
    /// The value is well-formed bytes but not a valid value (order,
    /// zero counters, an unknown tag or version).
    #[error("invalid: {0}")]
    Invalid(&'static str),
    /// Bytes are left after the value.
    #[error("{0} trailing bytes after the value")]
    Trailing(usize),
}

/// Appends `value` as an unsigned LEB128 varint (1 to 10 bytes).
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a length-prefixed byte string.
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A cursor over untrusted bytes.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    /// One byte.
    pub fn byte(&mut self) -> Result<u8, DecodeError> {
        let byte = *self.bytes.get(self.at).ok_or(DecodeError::Truncated)?;
        self.at += 1;
        Ok(byte)
    }

    /// One LEB128 varint.
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(DecodeError::VarintOverflow);
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                if byte == 0 && shift > 0 {
                    // `0x80 0x00` spells 0 in two bytes: one value, one encoding.
                    return Err(DecodeError::Invalid("overlong varint"));
                }
                return Ok(value);
            }
        }
        Err(DecodeError::VarintOverflow)
    }

    /// A count, refused above `max` (checked before the caller allocates
    /// for it).
    pub fn count(&mut self, what: &'static str, max: usize) -> Result<usize, DecodeError> {
        let found = self.varint()?;
        if found > max as u64 {
            return Err(DecodeError::TooLarge {
                what,
                found,
                max: max as u64,
            });
        }
        Ok(found as usize)
    }

    /// A length-prefixed byte string of at most `max` bytes.
    pub fn bytes(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.count(what, max)?;
        if len > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        let slice = &self.bytes[self.at..self.at + len];
        self.at += len;
        Ok(slice)
    }

    /// Fails unless every byte was read.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            left => Err(DecodeError::Trailing(left)),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn varints_have_their_usual_bytes() {
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        out.clear();
        put_varint(&mut out, u64::MAX);
        assert_eq!(out.len(), 10);
        assert_eq!(Reader::new(&out).varint(), Ok(u64::MAX));
        // An 11th byte, or bits past 64, are refused.
        let long = [0xff; 11];
        assert_eq!(
            Reader::new(&long).varint(),
            Err(DecodeError::VarintOverflow)
        );
        let wide = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(
            Reader::new(&wide).varint(),
            Err(DecodeError::VarintOverflow)
        );
        assert!(matches!(
            Reader::new(&[0x80, 0x00]).varint(),
            Err(DecodeError::Invalid(_))
        ));
    }

    #[test]
    fn lengths_are_checked_before_use() {
        let mut out = Vec::new();
        put_varint(&mut out, 1 << 40);
        assert!(matches!(
            Reader::new(&out).bytes("value", 1 << 20),
            Err(DecodeError::TooLarge { .. })
        ));
        let short = [5u8, b'a'];
        assert_eq!(
            Reader::new(&short).bytes("value", 10),
            Err(DecodeError::Truncated)
        );
        assert_eq!(Reader::new(&[1u8]).finish(), Err(DecodeError::Trailing(1)));
    }

    proptest! {
        #[test]
        fn varints_round_trip(value in any::<u64>(), tail in any::<u8>()) {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            out.push(tail);
            let mut reader = Reader::new(&out);
            prop_assert_eq!(reader.varint(), Ok(value));
            prop_assert_eq!(reader.byte(), Ok(tail));
            prop_assert_eq!(reader.finish(), Ok(()));
        }
    }
}
