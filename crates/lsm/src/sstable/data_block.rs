//! Data block encoding: prefix-compressed keys with restart points (format 2), and the
//! plain entries of format 1 that older tables still hold.
//!
//! Why a module: the layout decides how fast a scan walks a block and how fast a seek
//! lands in one, so encoding, decoding, seeking and the on-read check live together.
//!
//! Format 2 (LevelDB/RocksDB's block layout, internal keys ordered by `cmp_internal`):
//!
//! ```text
//! entry*     varint shared | varint unshared | varint vlen | u64 seq<<8|kind
//!            | [u64 expiry if kind = PutExpiring] | key[shared..] | value
//! restarts   u32 offset of every RESTART_INTERVAL-th entry (its shared = 0)
//! count      u32 number of restarts (≥ 1)
//! ```
//!
//! A key is stored as the length it shares with the previous key plus the rest, so
//! runs of similar keys (a hash's fields, a sorted set's members) cost little. Every
//! 16th entry stores its whole key: a seek binary-searches those restart keys, then
//! walks at most 16 entries. Format 1 blocks are entries of `codec::encode_entry`
//! back to back (no sharing, no restarts): read as one restart at offset 0.

use std::cmp::Ordering;

use crate::cache::Block;
use crate::codec::{Entry, EntryRef, Kind, Reader, cmp_internal, put_varint};

/// Entries between restart points.
pub(crate) const RESTART_INTERVAL: usize = 16;

/// Builds one format-2 data block.
#[derive(Default)]
pub(crate) struct BlockBuilder {
    /// Encoded entries so far.
    buf: Vec<u8>,
    /// Offsets of the restart entries.
    restarts: Vec<u32>,
    /// The previous key (the base of the next entry's shared prefix).
    last_key: Vec<u8>,
    /// Entries since the last restart.
    since_restart: usize,
}

impl BlockBuilder {
    /// Appends an entry (the caller keeps internal order).
    pub(crate) fn add(&mut self, e: &Entry) {
        let shared = if self.since_restart == RESTART_INTERVAL || self.restarts.is_empty() {
            self.restarts.push(self.buf.len() as u32);
            self.since_restart = 0;
            0
        } else {
            shared_prefix_len(&self.last_key, &e.key)
        };
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, (e.key.len() - shared) as u64);
        put_varint(&mut self.buf, e.value.len() as u64);
        self.buf
            .extend_from_slice(&((e.seq << 8) | e.kind as u64).to_le_bytes());
        if e.kind == Kind::PutExpiring {
            self.buf.extend_from_slice(&e.expire_at_ms.to_le_bytes());
        }
        self.buf.extend_from_slice(&e.key[shared..]);
        self.buf.extend_from_slice(&e.value);
        self.last_key.clear();
        self.last_key.extend_from_slice(&e.key);
        self.since_restart += 1;
    }

    /// True when nothing was added since the last `finish`.
    pub(crate) fn is_empty(&self) -> bool {
        self.restarts.is_empty()
    }

    /// Size of the block if finished now.
    pub(crate) fn size_bytes(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4
    }

    /// The finished block payload; the builder is empty again afterwards.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        for r in &self.restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        self.restarts.clear();
        self.since_restart = 0;
        self.last_key.clear();
        self.buf = Vec::with_capacity(out.capacity());
        out
    }
}

/// Length of the common prefix of `a` and `b`.
fn shared_prefix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// A cursor over one data block, holding the block (shared with the cache) and the
/// current entry: its key rebuilt in a reused buffer, its value a range of the block.
pub(crate) struct BlockIter {
    /// The block.
    block: Block,
    /// Format 2 (shared prefixes, restart array) or format 1.
    v2: bool,
    /// End of the entries (start of the restart array; the block's length in format 1).
    data_end: usize,
    /// Number of restart points (1 in format 1: offset 0).
    restarts: usize,
    /// Offset of the entry after the current one.
    next: usize,
    /// Offset of the current entry (for errors and the restart check).
    at: usize,
    /// Whether the fields below describe a current entry.
    valid: bool,
    /// Current key.
    key: Vec<u8>,
    /// Current sequence number.
    seq: u64,
    /// Current kind.
    kind: Kind,
    /// Current expiry.
    expire_at_ms: u64,
    /// Current value: `block[value.0..value.1]`.
    value: (usize, usize),
}

/// What one decoded entry header says, before its key is rebuilt.
struct Header {
    shared: usize,
    suffix: (usize, usize),
    seq: u64,
    kind: Kind,
    expire_at_ms: u64,
    value: (usize, usize),
    end: usize,
}

impl BlockIter {
    /// A cursor before the first entry of `block` (format 2 when `v2`); `None` when the
    /// restart array is malformed.
    pub(crate) fn new(block: Block, v2: bool) -> Option<BlockIter> {
        let (data_end, restarts) = if v2 {
            let len = block.len();
            let count_at = len.checked_sub(4)?;
            let count = u32::from_le_bytes(block[count_at..].try_into().ok()?) as usize;
            let data_end = count_at.checked_sub(count.checked_mul(4)?)?;
            if count == 0 {
                return None;
            }
            (data_end, count)
        } else {
            (block.len(), 1)
        };
        Some(BlockIter {
            block,
            v2,
            data_end,
            restarts,
            next: 0,
            at: 0,
            valid: false,
            key: Vec::with_capacity(32),
            seq: 0,
            kind: Kind::Put,
            expire_at_ms: 0,
            value: (0, 0),
        })
    }

    /// Offset of restart point `i`.
    fn restart(&self, i: usize) -> usize {
        if !self.v2 {
            return 0;
        }
        let at = self.data_end + 4 * i;
        u32::from_le_bytes(self.block[at..at + 4].try_into().expect("4 bytes")) as usize
    }

    /// Decodes the header of the entry at `at` (bounds-checked; `None` if malformed).
    fn header(&self, at: usize) -> Option<Header> {
        let data = self.block.get(..self.data_end)?;
        let mut r = Reader::new(data.get(at..)?);
        let shared = if self.v2 {
            usize::try_from(r.varint()?).ok()?
        } else {
            0
        };
        let unshared = usize::try_from(r.varint()?).ok()?;
        let vlen = usize::try_from(r.varint()?).ok()?;
        let trailer = r.u64()?;
        let kind = Kind::from_u8((trailer & 0xff) as u8)?;
        let expire_at_ms = if kind == Kind::PutExpiring {
            r.u64()?
        } else {
            0
        };
        let suffix_at = self.data_end - r.buf.len();
        r.bytes(unshared)?;
        let value_at = suffix_at + unshared;
        r.bytes(vlen)?;
        Some(Header {
            shared,
            suffix: (suffix_at, value_at),
            seq: trailer >> 8,
            kind,
            expire_at_ms,
            value: (value_at, value_at + vlen),
            end: self.data_end - r.buf.len(),
        })
    }

    /// Decodes the entry at `self.next` into the current entry; returns its shared
    /// length. `None` when malformed (a shared prefix longer than the previous key).
    fn decode_next(&mut self) -> Option<usize> {
        let h = self.header(self.next)?;
        self.apply(h)
    }

    /// Makes the entry `h` (at `self.next`) the current one.
    fn apply(&mut self, h: Header) -> Option<usize> {
        if h.shared > self.key.len() || (!self.valid && h.shared > 0) {
            return None;
        }
        self.key.truncate(h.shared);
        self.key
            .extend_from_slice(&self.block[h.suffix.0..h.suffix.1]);
        self.seq = h.seq;
        self.kind = h.kind;
        self.expire_at_ms = h.expire_at_ms;
        self.value = h.value;
        self.at = self.next;
        self.next = h.end;
        self.valid = true;
        Some(h.shared)
    }

    /// Moves to the next entry (the first one on a fresh cursor). `Ok(false)` at the
    /// end; `Err(())` on a malformed entry.
    pub(crate) fn advance(&mut self) -> Result<bool, ()> {
        if self.next >= self.data_end {
            self.valid = false;
            return Ok(false);
        }
        self.decode_next().map(|_| true).ok_or(())
    }

    /// True while positioned on an entry.
    pub(crate) fn valid(&self) -> bool {
        self.valid
    }

    /// The current entry (the cursor must be valid).
    pub(crate) fn entry(&self) -> EntryRef<'_> {
        debug_assert!(self.valid);
        EntryRef {
            key: &self.key,
            seq: self.seq,
            kind: self.kind,
            expire_at_ms: self.expire_at_ms,
            value: &self.block[self.value.0..self.value.1],
        }
    }

    /// Compares the whole key stored at restart `i` with `(key, seq)`.
    fn cmp_restart(&self, i: usize, key: &[u8], seq: u64) -> Option<Ordering> {
        let h = self.header(self.restart(i))?;
        (h.shared == 0).then(|| cmp_internal(&self.block[h.suffix.0..h.suffix.1], h.seq, key, seq))
    }

    /// Positions at the first entry at or after `(key, seq)` in internal order (invalid
    /// when there is none). `Err(())` on a malformed block.
    pub(crate) fn seek(&mut self, key: &[u8], seq: u64) -> Result<(), ()> {
        // The last restart whose key is below the target: the answer is at or after it.
        let (mut lo, mut hi) = (0, self.restarts - 1);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if self.cmp_restart(mid, key, seq).ok_or(())?.is_lt() {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        self.next = self.restart(lo);
        self.valid = false;
        self.key.clear();
        while self.advance()? {
            if cmp_internal(&self.key, self.seq, key, seq).is_ge() {
                break;
            }
        }
        Ok(())
    }
}

/// The first and last internal keys of a block, as [`verify`] finds them.
#[derive(Debug)]
pub(crate) struct Bounds {
    /// First key and its sequence number.
    pub first: (Vec<u8>, u64),
    /// Last key and its sequence number.
    pub last: (Vec<u8>, u64),
}

/// Checks what seeks and scans rely on in a block fresh from the disk: every entry
/// decodes, keys strictly increase in internal order, and (format 2) every restart
/// offset is the start of an entry that stores its whole key, in increasing order,
/// the first at offset 0. Returns the block's first and last keys, or what is wrong.
pub(crate) fn verify(block: &Block, v2: bool) -> Result<Bounds, &'static str> {
    let mut it = BlockIter::new(block.clone(), v2).ok_or("malformed restart array")?;
    if it.restart(0) != 0 {
        return Err("first restart point is not at offset 0");
    }
    let mut first = None;
    let mut restart = 0;
    while it.next < it.data_end {
        let h = it.header(it.next).ok_or("malformed entry")?;
        // Against the previous key without copying it: both share `h.shared` bytes, so
        // the rest decides (then the sequence number, descending).
        if it.valid {
            let rest = it.key.get(h.shared..).ok_or("malformed entry")?;
            let suffix = &block[h.suffix.0..h.suffix.1];
            if !suffix.cmp(rest).then(it.seq.cmp(&h.seq)).is_gt() {
                return Err("entries out of order");
            }
        }
        let shared = it.apply(h).ok_or("malformed entry")?;
        if restart < it.restarts && it.restart(restart) == it.at {
            if shared != 0 {
                return Err("restart point at an entry with a shared prefix");
            }
            restart += 1;
        } else if restart < it.restarts && it.restart(restart) < it.at {
            return Err("restart point inside an entry or out of order");
        }
        if first.is_none() {
            first = Some((it.key.clone(), it.seq));
        }
    }
    if v2 && restart != it.restarts {
        return Err("restart point past the last entry");
    }
    let first = first.ok_or("empty block")?;
    Ok(Bounds {
        first,
        last: (it.key, it.seq),
    })
}

#[cfg(test)]
#[path = "data_block_tests.rs"]
mod tests;
