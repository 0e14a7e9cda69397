//! `WriteBatch`: several writes applied atomically, in order, under one sequence range.
//!
//! Why it exists: a batch is the unit of the commit log (one checksummed record), so after
//! a crash either all of its writes are recovered or none are. Single `put`/`delete` calls
//! are one-entry batches.
//!
//! Log payload of a batch: `u64 first_seq | u32 count | count × op`, where an op is
//! `u8 kind | [u64 expiry] | varint klen | key | varint vlen | value`.

use crate::codec::{Kind, Reader, put_len_prefixed};

/// A group of writes committed atomically.
#[derive(Clone, Debug, Default)]
pub struct WriteBatch {
    /// Encoded ops, without the 12-byte header (filled in at commit time).
    pub(crate) ops: Vec<u8>,
    /// Number of ops.
    pub(crate) count: u32,
    /// Sum of key and value lengths: the "user bytes" of write amplification.
    pub(crate) user_bytes: u64,
    /// Longest key and value seen, checked against the limits at commit time.
    pub(crate) key_len_max: usize,
    /// See `key_len_max`.
    pub(crate) value_len_max: usize,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value` with no expiry.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> &mut Self {
        self.push(Kind::Put, 0, key, value)
    }

    /// Sets `key` to `value`, expiring at `expire_at_ms` (unix milliseconds). An expiry in
    /// the past makes the key invisible at once (like a delete).
    pub fn put_with_expiry(&mut self, key: &[u8], value: &[u8], expire_at_ms: u64) -> &mut Self {
        self.push(Kind::PutExpiring, expire_at_ms, key, value)
    }

    /// Deletes `key` (writes a tombstone).
    pub fn delete(&mut self, key: &[u8]) -> &mut Self {
        self.push(Kind::Delete, 0, key, &[])
    }

    /// Number of writes in the batch.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when the batch holds no writes.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Removes all writes.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    fn push(&mut self, kind: Kind, expire_at_ms: u64, key: &[u8], value: &[u8]) -> &mut Self {
        self.ops.push(kind as u8);
        if kind == Kind::PutExpiring {
            self.ops.extend_from_slice(&expire_at_ms.to_le_bytes());
        }
        put_len_prefixed(&mut self.ops, key);
        put_len_prefixed(&mut self.ops, value);
        self.count += 1;
        self.user_bytes += (key.len() + value.len()) as u64;
        self.key_len_max = self.key_len_max.max(key.len());
        self.value_len_max = self.value_len_max.max(value.len());
        self
    }

    /// The log payload with `first_seq` in its header.
    pub(crate) fn encode(&self, first_seq: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.ops.len());
        out.extend_from_slice(&first_seq.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.ops);
        out
    }
}

/// One decoded op of a logged batch.
pub(crate) struct Op<'a> {
    /// Kind of write.
    pub kind: Kind,
    /// Expiry (0 unless `PutExpiring`).
    pub expire_at_ms: u64,
    /// Key bytes.
    pub key: &'a [u8],
    /// Value bytes.
    pub value: &'a [u8],
}

/// Decodes a log payload into `(first_seq, ops)`; `None` if malformed.
pub(crate) fn decode(payload: &[u8]) -> Option<(u64, Vec<Op<'_>>)> {
    let mut r = Reader::new(payload);
    let first_seq = r.u64()?;
    let count = r.u32()?;
    let mut ops = Vec::with_capacity(count.min(1 << 16) as usize);
    for _ in 0..count {
        ops.push(decode_op(&mut r)?);
    }
    r.is_empty().then_some((first_seq, ops))
}

/// Decodes one op.
pub(crate) fn decode_op<'a>(r: &mut Reader<'a>) -> Option<Op<'a>> {
    let kind = Kind::from_u8(r.u8()?)?;
    let expire_at_ms = if kind == Kind::PutExpiring {
        r.u64()?
    } else {
        0
    };
    let key = r.len_prefixed()?;
    let value = r.len_prefixed()?;
    Some(Op {
        kind,
        expire_at_ms,
        key,
        value,
    })
}

/// Iterates the ops of an unencoded batch (for the memtable insert).
pub(crate) fn ops(batch: &WriteBatch) -> impl Iterator<Item = Op<'_>> {
    let mut r = Reader::new(&batch.ops);
    std::iter::from_fn(move || {
        if r.is_empty() {
            None
        } else {
            decode_op(&mut r)
        }
    })
}
