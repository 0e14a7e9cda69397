//! Redis's RDB serialization: one value (`DUMP`/`RESTORE` payloads) and a
//! whole dataset (the snapshot a full resynchronization sends).
//!
//! Replication with real Redis servers in both directions needs Redis's own
//! format: a `redis-server --replicaof` of ours loads what we send, and we
//! load what a Redis primary sends. We write RDB version 10 (Redis 7.0) with
//! the plain object types (string, list, set, sorted set with binary
//! scores, hash), which every Redis since 2.x loads and re-encodes compactly
//! itself; we read those and the compact encodings Redis writes
//! ([`compact`]: listpacks, quicklists, ziplists, intsets, zipmaps, LZF
//! strings). Streams have no plain form: [`stream`] reads the listpack
//! forms of Redis 5 to 7.2 and writes Redis 7.0's. Module types are refused
//! with [`RdbError::Unsupported`].
//!
//! This module is a leaf: it maps bytes to [`RdbValue`]s and back and knows
//! nothing of the keyspace (`command::dump` and `replication` move values in
//! and out of it). Every length read from the input is checked against the
//! bytes left before anything is allocated for it, and both forms carry
//! Redis's CRC-64 (Jones polynomial), so a corrupt payload or snapshot is
//! refused, never half-loaded.
//!
//! Hand-written rather than a crate: the Rust RDB parsers on crates.io read
//! files only (no writer, no DUMP payloads) and panic or allocate on
//! corrupt lengths; the format is small and Redis's `rdb.c` is its spec.

pub mod compact;
pub mod file;
pub mod stream;

use bytes::Bytes;

/// The RDB version we write (Redis 7.0's); we read any version up to it.
pub const RDB_VERSION: u16 = 10;

/// Redis's CRC-64 (Jones, reflected), over a payload or a whole file.
pub fn crc64(data: &[u8]) -> u64 {
    const CRC: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);
    CRC.checksum(data)
}

/// A value in the neutral form both sides of the format use.
#[derive(Debug, Clone, PartialEq)]
pub enum RdbValue {
    /// A string.
    String(Bytes),
    /// A list's elements, head first.
    List(Vec<Bytes>),
    /// A set's members.
    Set(Vec<Bytes>),
    /// A sorted set's members and scores.
    ZSet(Vec<(Bytes, f64)>),
    /// A hash's fields and values.
    Hash(Vec<(Bytes, Bytes)>),
    /// A stream: entries, ids, counters, consumer groups.
    Stream(Box<stream::RdbStream>),
}

/// Why RDB bytes were refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RdbError {
    /// The input ended early.
    #[error("RDB data is truncated")]
    Truncated,
    /// The bytes do not follow the format.
    #[error("bad RDB data format: {0}")]
    Format(&'static str),
    /// A value type this server does not load (modules).
    #[error("RDB value type {0} is not supported (module types cannot be loaded)")]
    Unsupported(u8),
    /// The CRC-64 does not match.
    #[error("RDB checksum mismatch")]
    Checksum,
    /// Written by a newer Redis.
    #[error("RDB version {0} is newer than the {RDB_VERSION} this server reads")]
    Version(u16),
}

// Value types (`rdb.h`).
const TYPE_STRING: u8 = 0;
const TYPE_LIST: u8 = 1;
const TYPE_SET: u8 = 2;
const TYPE_ZSET: u8 = 3;
const TYPE_HASH: u8 = 4;
const TYPE_ZSET_2: u8 = 5;
const TYPE_HASH_ZIPMAP: u8 = 9;
const TYPE_LIST_ZIPLIST: u8 = 10;
const TYPE_SET_INTSET: u8 = 11;
const TYPE_ZSET_ZIPLIST: u8 = 12;
const TYPE_HASH_ZIPLIST: u8 = 13;
const TYPE_LIST_QUICKLIST: u8 = 14;
const TYPE_HASH_LISTPACK: u8 = 16;
const TYPE_ZSET_LISTPACK: u8 = 17;
const TYPE_LIST_QUICKLIST_2: u8 = 18;
const TYPE_SET_LISTPACK: u8 = 20;

/// Whether `byte` is a value type (as opposed to a file opcode).
pub fn is_value_type(byte: u8) -> bool {
    byte <= 7 || (9..=21).contains(&byte)
}

/// A length or a special string encoding (`rdbLoadLenByRef`).
enum Len {
    Plain(u64),
    Encoded(u8),
}

/// A bounds-checked reader over RDB bytes.
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], RdbError> {
        if n > self.remaining() {
            return Err(RdbError::Truncated);
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, RdbError> {
        Ok(self.take(1)?[0])
    }

    /// A little-endian `u64`.
    pub fn u64_le(&mut self) -> Result<u64, RdbError> {
        let raw = self.take(8)?;
        Ok(u64::from_le_bytes(
            raw.try_into().map_err(|_| RdbError::Truncated)?,
        ))
    }

    fn len_or_encoding(&mut self) -> Result<Len, RdbError> {
        let first = self.u8()?;
        Ok(match first >> 6 {
            0 => Len::Plain(u64::from(first & 0x3f)),
            1 => Len::Plain((u64::from(first & 0x3f) << 8) | u64::from(self.u8()?)),
            2 if first == 0x80 => {
                let raw = self.take(4)?;
                Len::Plain(u64::from(u32::from_be_bytes([
                    raw[0], raw[1], raw[2], raw[3],
                ])))
            }
            2 if first == 0x81 => {
                let raw = self.take(8)?;
                Len::Plain(u64::from_be_bytes(
                    raw.try_into().map_err(|_| RdbError::Truncated)?,
                ))
            }
            2 => return Err(RdbError::Format("length encoding")),
            _ => Len::Encoded(first & 0x3f),
        })
    }

    /// A length (`rdbLoadLen`).
    pub fn length(&mut self) -> Result<u64, RdbError> {
        match self.len_or_encoding()? {
            Len::Plain(n) => Ok(n),
            Len::Encoded(_) => Err(RdbError::Format("encoded string where a length belongs")),
        }
    }

    /// A count of items each at least `min_item_bytes` long: refused if the
    /// input cannot hold that many, so it may size an allocation.
    pub fn count(&mut self, min_item_bytes: usize) -> Result<usize, RdbError> {
        let n = self.length()?;
        let fits = (self.remaining() / min_item_bytes.max(1)) as u64;
        if n > fits {
            return Err(RdbError::Format("count larger than the data"));
        }
        Ok(n as usize)
    }

    /// A string (`rdbGenericLoadStringObject`): raw, integer or LZF.
    pub fn string(&mut self) -> Result<Bytes, RdbError> {
        match self.len_or_encoding()? {
            Len::Plain(n) => {
                let n = usize::try_from(n).map_err(|_| RdbError::Truncated)?;
                Ok(Bytes::copy_from_slice(self.take(n)?))
            }
            Len::Encoded(0) => Ok(Bytes::from((self.u8()? as i8).to_string())),
            Len::Encoded(1) => {
                let raw = self.take(2)?;
                Ok(Bytes::from(
                    i16::from_le_bytes([raw[0], raw[1]]).to_string(),
                ))
            }
            Len::Encoded(2) => {
                let raw = self.take(4)?;
                Ok(Bytes::from(
                    i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]).to_string(),
                ))
            }
            Len::Encoded(3) => {
                let compressed =
                    usize::try_from(self.length()?).map_err(|_| RdbError::Truncated)?;
                let expanded = usize::try_from(self.length()?).map_err(|_| RdbError::Truncated)?;
                let blob = self.take(compressed)?;
                Ok(Bytes::from(compact::lzf_decompress(blob, expanded)?))
            }
            Len::Encoded(_) => Err(RdbError::Format("unknown string encoding")),
        }
    }

    /// A score of the old `ZSET` type: length-prefixed ASCII, or 253/254/255
    /// for NaN, +inf, -inf.
    fn ascii_double(&mut self) -> Result<f64, RdbError> {
        match self.u8()? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            len => parse_score(self.take(usize::from(len))?),
        }
    }
}

fn parse_score(text: &[u8]) -> Result<f64, RdbError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or(RdbError::Format("score is not a number"))
}

/// Appends a length (`rdbSaveLen`).
pub fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Appends a raw string.
pub fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Appends a value's type byte and body (`rdbSaveObjectType` + `rdbSaveObject`).
pub fn encode_value(out: &mut Vec<u8>, value: &RdbValue) {
    match value {
        RdbValue::String(s) => {
            out.push(TYPE_STRING);
            put_string(out, s);
        }
        RdbValue::List(items) | RdbValue::Set(items) => {
            out.push(if matches!(value, RdbValue::List(_)) {
                TYPE_LIST
            } else {
                TYPE_SET
            });
            put_len(out, items.len() as u64);
            for item in items {
                put_string(out, item);
            }
        }
        RdbValue::ZSet(members) => {
            out.push(TYPE_ZSET_2);
            put_len(out, members.len() as u64);
            for (member, score) in members {
                put_string(out, member);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
        RdbValue::Hash(fields) => {
            out.push(TYPE_HASH);
            put_len(out, fields.len() as u64);
            for (field, value) in fields {
                put_string(out, field);
                put_string(out, value);
            }
        }
        RdbValue::Stream(s) => {
            out.push(stream::TYPE_STREAM_2);
            stream::encode(out, s);
        }
    }
}

/// Reads a value of type `kind` (already read) from `cur`.
pub fn decode_value(kind: u8, cur: &mut Cursor<'_>) -> Result<RdbValue, RdbError> {
    let strings = |cur: &mut Cursor<'_>| -> Result<Vec<Bytes>, RdbError> {
        let n = cur.count(1)?;
        (0..n).map(|_| cur.string()).collect()
    };
    let value = match kind {
        TYPE_STRING => RdbValue::String(cur.string()?),
        TYPE_LIST => RdbValue::List(strings(cur)?),
        TYPE_SET => RdbValue::Set(strings(cur)?),
        TYPE_ZSET | TYPE_ZSET_2 => {
            let n = cur.count(2)?;
            let mut members = Vec::with_capacity(n);
            for _ in 0..n {
                let member = cur.string()?;
                let score = if kind == TYPE_ZSET_2 {
                    f64::from_le_bytes(cur.take(8)?.try_into().map_err(|_| RdbError::Truncated)?)
                } else {
                    cur.ascii_double()?
                };
                if score.is_nan() {
                    return Err(RdbError::Format("NaN score"));
                }
                members.push((member, score));
            }
            RdbValue::ZSet(members)
        }
        TYPE_HASH => {
            let n = cur.count(2)?;
            let mut fields = Vec::with_capacity(n);
            for _ in 0..n {
                fields.push((cur.string()?, cur.string()?));
            }
            RdbValue::Hash(fields)
        }
        TYPE_HASH_ZIPMAP => RdbValue::Hash(compact::zipmap_pairs(&cur.string()?)?),
        TYPE_LIST_ZIPLIST => RdbValue::List(compact::ziplist_entries(&cur.string()?)?),
        TYPE_SET_INTSET => RdbValue::Set(compact::intset_members(&cur.string()?)?),
        TYPE_SET_LISTPACK => RdbValue::Set(compact::listpack_entries(&cur.string()?)?),
        TYPE_ZSET_ZIPLIST | TYPE_ZSET_LISTPACK => {
            let blob = cur.string()?;
            let flat = if kind == TYPE_ZSET_ZIPLIST {
                compact::ziplist_entries(&blob)?
            } else {
                compact::listpack_entries(&blob)?
            };
            let mut members = Vec::with_capacity(flat.len() / 2);
            for (member, score) in compact::pairs(flat)? {
                members.push((member, parse_score(&score)?));
            }
            RdbValue::ZSet(members)
        }
        TYPE_HASH_ZIPLIST => {
            RdbValue::Hash(compact::pairs(compact::ziplist_entries(&cur.string()?)?)?)
        }
        TYPE_HASH_LISTPACK => {
            RdbValue::Hash(compact::pairs(compact::listpack_entries(&cur.string()?)?)?)
        }
        TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => {
            let nodes = cur.count(1)?;
            let mut items = Vec::new();
            for _ in 0..nodes {
                if kind == TYPE_LIST_QUICKLIST {
                    items.extend(compact::ziplist_entries(&cur.string()?)?);
                    continue;
                }
                match cur.length()? {
                    // PLAIN: one big element stored as is.
                    1 => items.push(cur.string()?),
                    // PACKED: a listpack of elements.
                    2 => items.extend(compact::listpack_entries(&cur.string()?)?),
                    _ => return Err(RdbError::Format("quicklist node container")),
                }
            }
            RdbValue::List(items)
        }
        stream::TYPE_STREAM_1 | stream::TYPE_STREAM_2 | stream::TYPE_STREAM_3 => {
            RdbValue::Stream(Box::new(stream::decode(kind, cur)?))
        }
        other => return Err(RdbError::Unsupported(other)),
    };
    Ok(value)
}

/// A `DUMP` payload: the value, the RDB version (2 bytes LE) and the
/// CRC-64 of both (8 bytes LE), as `dump.c`'s `createDumpPayload` builds it.
pub fn dump_payload(value: &RdbValue) -> Vec<u8> {
    let mut out = Vec::new();
    encode_value(&mut out, value);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Reads a `DUMP` payload, checking its version and checksum first.
pub fn parse_dump_payload(payload: &[u8]) -> Result<RdbValue, RdbError> {
    // Redis checks the footer before anything else: too short is a bad footer.
    if payload.len() < 10 {
        return Err(RdbError::Checksum);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > RDB_VERSION {
        return Err(RdbError::Version(version));
    }
    let crc = u64::from_le_bytes(footer[2..].try_into().map_err(|_| RdbError::Truncated)?);
    if crc64(&payload[..payload.len() - 8]) != crc {
        return Err(RdbError::Checksum);
    }
    let mut cur = Cursor::new(body);
    let kind = cur.u8()?;
    let value = decode_value(kind, &mut cur)?;
    if cur.remaining() != 0 {
        return Err(RdbError::Format("bytes after the value"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Vec<RdbValue> {
        let big = Bytes::from(vec![b'x'; 70_000]);
        vec![
            RdbValue::String(Bytes::from_static(b"hello")),
            RdbValue::String(big.clone()),
            RdbValue::List(vec![Bytes::from("a"), big, Bytes::new()]),
            RdbValue::Set((0..300).map(|i| Bytes::from(format!("m{i}"))).collect()),
            RdbValue::ZSet(vec![
                (Bytes::from("a"), 1.5),
                (Bytes::from("b"), f64::INFINITY),
                (Bytes::from("c"), -0.0),
            ]),
            RdbValue::Hash(vec![(Bytes::from("f"), Bytes::from("v"))]),
        ]
    }

    #[test]
    fn dump_payloads_round_trip() {
        for value in values() {
            let payload = dump_payload(&value);
            assert_eq!(parse_dump_payload(&payload).unwrap(), value);
        }
    }

    #[test]
    fn corrupt_payloads_are_refused() {
        let payload = dump_payload(&RdbValue::List(vec![Bytes::from("a"), Bytes::from("b")]));
        for i in 0..payload.len() {
            let mut bad = payload.clone();
            bad[i] ^= 0x41;
            assert!(
                parse_dump_payload(&bad).is_err(),
                "flipped byte {i} accepted"
            );
        }
        for cut in 0..payload.len() {
            assert!(parse_dump_payload(&payload[..cut]).is_err());
        }
    }

    #[test]
    fn a_huge_claimed_count_allocates_nothing() {
        let mut body = vec![TYPE_LIST, 0x81];
        body.extend_from_slice(&u64::MAX.to_be_bytes());
        let mut cur = Cursor::new(&body[1..]);
        assert_eq!(
            decode_value(TYPE_LIST, &mut cur),
            Err(RdbError::Format("count larger than the data"))
        );
    }

    #[test]
    fn lengths_use_every_width() {
        for n in [
            0u64,
            63,
            64,
            16383,
            16384,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
        ] {
            let mut out = Vec::new();
            put_len(&mut out, n);
            assert_eq!(Cursor::new(&out).length().unwrap(), n);
        }
    }
}
