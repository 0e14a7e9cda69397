//! The data model every engine stores: a typed value plus an optional expiry.
//!
//! A key holds either a string (the whole value, one engine entry) or a
//! *collection* (hash, list, set, sorted set, stream). A collection is never
//! stored as one value: the key holds only its [`Meta`] (type, version,
//! length, a few type-specific fields), and every field, member, element or
//! stream entry is a separate *subkey* the engine stores next to it
//! ([`crate::engine::Engine::sub_put`]). This is how Kvrocks lays Redis types
//! out on RocksDB, and it is what lets the lsm engine change one field of a
//! million-field hash by writing two small entries, and delete the hash in
//! O(1): the subkeys are addressed by (key, *version*), so a new collection
//! under the same key gets a new version and never sees the old subkeys,
//! which compaction drops.
//!
//! ```text
//!  key "user:1"  ──▶  Meta { kind: Hash, version: 17, len: 2 }       (the key's entry)
//!  (user:1, 17, "name")  ──▶  "ada"                                   (subkeys)
//!  (user:1, 17, "born")  ──▶  "1815"
//! ```
//!
//! Keeping the model here, apart from both engines and from the commands,
//! is what lets one command layer run on the memory engine and on the LSM
//! engine alike. [`Entry::encode`] is the on-disk form the durable engine
//! writes: a type tag, flags, the expiry, the payload.

use bytes::{BufMut, Bytes};

/// The longest header [`Entry::encode`] writes: tag, flags, expiry.
pub const ENCODED_HEADER_BYTES_MAX: usize = 10;

/// The collection types (a string is not a collection: see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Field → value.
    Hash,
    /// Index → element.
    List,
    /// Member → nothing.
    Set,
    /// Member → score, plus a score index.
    ZSet,
    /// Entry id → fields, plus consumer groups.
    Stream,
}

impl Kind {
    /// The name `TYPE` reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Hash => "hash",
            Kind::List => "list",
            Kind::Set => "set",
            Kind::ZSet => "zset",
            Kind::Stream => "stream",
        }
    }

    fn tag(self) -> u8 {
        match self {
            Kind::Hash => 1,
            Kind::List => 2,
            Kind::Set => 3,
            Kind::ZSet => 4,
            Kind::Stream => 5,
        }
    }

    fn from_tag(tag: u8) -> Option<Kind> {
        Some(match tag {
            1 => Kind::Hash,
            2 => Kind::List,
            3 => Kind::Set,
            4 => Kind::ZSet,
            5 => Kind::Stream,
            _ => return None,
        })
    }
}

/// What a key holding a collection stores (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The collection's type.
    pub kind: Kind,
    /// Names this incarnation of the key: subkeys are stored under
    /// (key, version), so a collection deleted and created again never sees
    /// its predecessor's subkeys. Unique per key over the store's life.
    pub version: u64,
    /// Number of elements (`HLEN`, `LLEN`, `SCARD`, `ZCARD`, `XLEN`).
    pub len: u64,
    /// Type-specific fields (a list's head and tail, a stream's last id...),
    /// encoded by the type's own module; empty for most types.
    pub extra: Extra,
}

/// Most bytes of [`Extra`] kept inline: a list's head and tail.
pub const EXTRA_INLINE_MAX: usize = 16;

/// A collection's type-specific fields ([`Meta::extra`]). Up to
/// [`EXTRA_INLINE_MAX`] bytes live inline, so a list push that rewrites its
/// bounds allocates nothing and copying a list's metadata is a memcpy (both
/// showed in profiles of pipelined `LPUSH`); longer ones (a stream's) are
/// shared bytes.
#[derive(Clone)]
pub enum Extra {
    /// Short fields, stored in place.
    Inline {
        /// How many of `bytes` are used.
        len: u8,
        /// The fields, then zeros.
        bytes: [u8; EXTRA_INLINE_MAX],
    },
    /// Longer fields.
    Shared(Bytes),
}

impl Extra {
    /// No fields.
    pub const fn new() -> Extra {
        Extra::Inline {
            len: 0,
            bytes: [0; EXTRA_INLINE_MAX],
        }
    }

    /// A copy of `fields`.
    pub fn from_slice(fields: &[u8]) -> Extra {
        if fields.len() <= EXTRA_INLINE_MAX {
            let mut bytes = [0; EXTRA_INLINE_MAX];
            bytes[..fields.len()].copy_from_slice(fields);
            Extra::Inline {
                len: fields.len() as u8,
                bytes,
            }
        } else {
            Extra::Shared(Bytes::copy_from_slice(fields))
        }
    }
}

impl Default for Extra {
    fn default() -> Self {
        Extra::new()
    }
}

impl From<Bytes> for Extra {
    fn from(fields: Bytes) -> Self {
        if fields.len() <= EXTRA_INLINE_MAX {
            Extra::from_slice(&fields)
        } else {
            Extra::Shared(fields)
        }
    }
}

impl std::ops::Deref for Extra {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Extra::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Extra::Shared(fields) => fields,
        }
    }
}

impl PartialEq for Extra {
    fn eq(&self, other: &Self) -> bool {
        self[..] == other[..]
    }
}

impl Eq for Extra {}

impl std::fmt::Debug for Extra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&Bytes::copy_from_slice(self), f)
    }
}

/// A stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A binary-safe string (also integers and floats, as Redis stores them).
    String(Bytes),
    /// A collection's metadata; its elements are subkeys.
    Collection(Meta),
}

impl Value {
    /// The name `TYPE` reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Collection(meta) => meta.kind.name(),
        }
    }

    /// Bytes of the key's own entry, for memory accounting and size limits
    /// (a collection's elements are accounted where they are stored).
    pub fn size_bytes(&self) -> usize {
        match self {
            Value::String(b) => b.len(),
            Value::Collection(meta) => 17 + meta.extra.len(),
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
/// Tag byte of a collection's metadata.
const TAG_COLLECTION: u8 = 2;
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

    /// The collection metadata, if the entry is one.
    pub fn meta(&self) -> Option<&Meta> {
        match &self.value {
            Value::Collection(meta) => Some(meta),
            Value::String(_) => None,
        }
    }

    /// The encoded form: `tag, flags, [expire_at_ms u64 LE], payload`; a
    /// collection's payload is `kind u8, version u64 LE, len u64 LE, extra`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.value.size_bytes() + ENCODED_HEADER_BYTES_MAX);
        out.put_u8(match self.value {
            Value::String(_) => TAG_STRING,
            Value::Collection(_) => TAG_COLLECTION,
        });
        match self.expire_at_ms {
            Some(at) => {
                out.put_u8(FLAG_EXPIRES);
                out.put_u64_le(at);
            }
            None => out.put_u8(0),
        }
        match &self.value {
            Value::String(payload) => out.extend_from_slice(payload),
            Value::Collection(meta) => {
                out.put_u8(meta.kind.tag());
                out.put_u64_le(meta.version);
                out.put_u64_le(meta.len);
                out.extend_from_slice(&meta.extra);
            }
        }
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
        let tag = bytes[0];
        if tag != TAG_STRING && tag != TAG_COLLECTION {
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
        let value = if tag == TAG_STRING {
            Value::String(bytes.slice(start..))
        } else {
            let body = bytes
                .get(start..start + 17)
                .ok_or(DecodeError("truncated collection"))?;
            let kind = Kind::from_tag(body[0]).ok_or(DecodeError("unknown collection kind"))?;
            let version = u64::from_le_bytes(body[1..9].try_into().expect("8 bytes"));
            let len = u64::from_le_bytes(body[9..17].try_into().expect("8 bytes"));
            Value::Collection(Meta {
                kind,
                version,
                len,
                extra: Extra::from(bytes.slice(start + 17..)),
            })
        };
        Ok(Entry {
            value,
            expire_at_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kind() -> impl Strategy<Value = Kind> {
        prop_oneof![
            Just(Kind::Hash),
            Just(Kind::List),
            Just(Kind::Set),
            Just(Kind::ZSet),
            Just(Kind::Stream)
        ]
    }

    proptest! {
        #[test]
        fn entries_roundtrip(payload in proptest::collection::vec(any::<u8>(), 0..64), at in any::<Option<u64>>()) {
            let entry = Entry { value: Value::String(Bytes::from(payload)), expire_at_ms: at };
            prop_assert_eq!(Entry::decode(Bytes::from(entry.encode())).unwrap(), entry);
        }

        #[test]
        fn collections_roundtrip(kind in kind(), version in any::<u64>(), len in any::<u64>(),
                                 extra in proptest::collection::vec(any::<u8>(), 0..32), at in any::<Option<u64>>()) {
            let meta = Meta { kind, version, len, extra: Extra::from(Bytes::from(extra)) };
            let entry = Entry { value: Value::Collection(meta), expire_at_ms: at };
            prop_assert_eq!(Entry::decode(Bytes::from(entry.encode())).unwrap(), entry);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"\x01",
            b"\x09\x00",
            b"\x01\x01\x00",
            b"\x02\x00\x01",
            b"\x02\x00\x09aaaaaaaabbbbbbbb",
        ] {
            assert!(Entry::decode(Bytes::copy_from_slice(bad)).is_err());
        }
    }
}
