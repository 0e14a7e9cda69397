//! The data model every engine stores: a typed value plus an optional expiry.
//!
//! Only strings exist today; later issues add lists, hashes, sets and sorted
//! sets as new [`Value`] variants. Keeping the model here, apart from both
//! engines and from the commands, is what lets one command layer run on the
//! memory engine and on the LSM engine alike. [`Entry::encode`] is the on-disk
//! form the durable engine writes: a type tag, flags, the expiry, the payload.

use bytes::{BufMut, Bytes};

/// The longest header [`Entry::encode`] writes: tag, flags, expiry.
pub const ENCODED_HEADER_BYTES_MAX: usize = 10;

/// A stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A binary-safe string (also integers and floats, as Redis stores them).
    String(Bytes),
}

impl Value {
    /// The name `TYPE` reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
        }
    }

    /// Payload size in bytes, for memory accounting.
    pub fn size_bytes(&self) -> usize {
        match self {
            Value::String(b) => b.len(),
        }
    }
}

/// A value with its expiry time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// Absolute expiry in Unix milliseconds; `None` = lives until deleted.
    pub expire_at_ms: Option<u64>,
}

/// Tag byte of a string value in the encoded form.
const TAG_STRING: u8 = 1;
/// Flag bit: an 8-byte expiry follows the flags.
const FLAG_EXPIRES: u8 = 1;

/// Why stored bytes could not be decoded into an [`Entry`].
#[derive(Debug, thiserror::Error)]
#[error("stored value is corrupt: {0}")]
pub struct DecodeError(&'static str);

impl Entry {
    /// A string entry without expiry.
    pub fn string(value: Bytes) -> Entry {
        Entry {
            value: Value::String(value),
            expire_at_ms: None,
        }
    }

    /// Whether the entry has expired at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at_ms.is_some_and(|at| at <= now_ms)
    }

    /// The encoded form: `tag, flags, [expire_at_ms u64 LE], payload`.
    pub fn encode(&self) -> Vec<u8> {
        let Value::String(payload) = &self.value;
        let mut out = Vec::with_capacity(payload.len() + ENCODED_HEADER_BYTES_MAX);
        out.put_u8(TAG_STRING);
        match self.expire_at_ms {
            Some(at) => {
                out.put_u8(FLAG_EXPIRES);
                out.put_u64_le(at);
            }
            None => out.put_u8(0),
        }
        out.extend_from_slice(payload);
        out
    }

    /// The length of [`Entry::encode`]'s header for this entry.
    pub fn encoded_header_bytes(&self) -> usize {
        if self.expire_at_ms.is_some() {
            ENCODED_HEADER_BYTES_MAX
        } else {
            2
        }
    }

    /// Decodes what [`Entry::encode`] wrote.
    pub fn decode(bytes: Bytes) -> Result<Entry, DecodeError> {
        if bytes.len() < 2 {
            return Err(DecodeError("shorter than its header"));
        }
        if bytes[0] != TAG_STRING {
            return Err(DecodeError("unknown type tag"));
        }
        let (expire_at_ms, start) = if bytes[1] & FLAG_EXPIRES != 0 {
            let raw = bytes.get(2..10).ok_or(DecodeError("truncated expiry"))?;
            (
                Some(u64::from_le_bytes(raw.try_into().expect("8 bytes"))),
                10,
            )
        } else {
            (None, 2)
        };
        Ok(Entry {
            value: Value::String(bytes.slice(start..)),
            expire_at_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn entries_roundtrip(payload in proptest::collection::vec(any::<u8>(), 0..64), at in any::<Option<u64>>()) {
            let entry = Entry { value: Value::String(Bytes::from(payload)), expire_at_ms: at };
            prop_assert_eq!(Entry::decode(Bytes::from(entry.encode())).unwrap(), entry);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [&b""[..], b"\x01", b"\x09\x00", b"\x01\x01\x00"] {
            assert!(Entry::decode(Bytes::copy_from_slice(bad)).is_err());
        }
    }
}
