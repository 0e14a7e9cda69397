//! Byte-level encoding shared by the commit log, SSTables and the manifest.
//!
//! Why a module: one place defines what an entry *is* on disk (kind, sequence number,
//! expiry, key, value) and the little-endian / varint primitives, so every file format
//! agrees and every decoder is bounds-checked (bad bytes give `None`, never a panic).

use std::cmp::Ordering;

/// What a versioned entry says about its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A tombstone: the key is deleted as of this sequence number.
    Delete = 0,
    /// A value without expiry.
    Put = 1,
    /// A value with an absolute expiry time (unix milliseconds).
    PutExpiring = 2,
}

impl Kind {
    /// Decodes the kind byte.
    pub(crate) fn from_u8(b: u8) -> Option<Kind> {
        match b {
            0 => Some(Kind::Delete),
            1 => Some(Kind::Put),
            2 => Some(Kind::PutExpiring),
            _ => None,
        }
    }
}

/// One version of a key: the unit stored in memtables and SSTables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The user key.
    pub key: Vec<u8>,
    /// Sequence number: the global write order; newer versions win.
    pub seq: u64,
    /// Put, put with expiry, or tombstone.
    pub kind: Kind,
    /// Expiry in unix ms; 0 unless `kind == PutExpiring`.
    pub expire_at_ms: u64,
    /// The value (empty for tombstones).
    pub value: Vec<u8>,
}

impl Entry {
    /// True when this version hides the key from readers at time `now_ms`: a tombstone,
    /// or a value whose expiry has passed (an expired value shadows older versions too,
    /// as `SET k v EX n` replaces any older value in Redis).
    pub(crate) fn is_deletion_at(&self, now_ms: u64) -> bool {
        self.as_ref().is_deletion_at(now_ms)
    }

    /// A borrowed view.
    pub(crate) fn as_ref(&self) -> EntryRef<'_> {
        EntryRef {
            key: &self.key,
            seq: self.seq,
            kind: self.kind,
            expire_at_ms: self.expire_at_ms,
            value: &self.value,
        }
    }
}

/// Internal key order: user key ascending, then sequence number descending, so the
/// newest version of a key comes first.
#[inline]
pub(crate) fn cmp_internal(a_key: &[u8], a_seq: u64, b_key: &[u8], b_seq: u64) -> Ordering {
    cmp_keys(a_key, b_key).then(b_seq.cmp(&a_seq))
}

/// Byte order of two keys (as `<[u8]>::cmp`), short keys compared 8 bytes at a time
/// inline: the merge of a scan compares keys at every step, and for keys of a few
/// dozen bytes the call into `memcmp` cost more than the comparison.
#[inline]
pub(crate) fn cmp_keys(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    if n > 64 {
        return a.cmp(b);
    }
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_be_bytes(a[i..i + 8].try_into().expect("8 bytes"));
        let y = u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        if x != y {
            return x.cmp(&y);
        }
        i += 8;
    }
    while i < n {
        if a[i] != b[i] {
            return a[i].cmp(&b[i]);
        }
        i += 1;
    }
    a.len().cmp(&b.len())
}

/// Appends `v` as a LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A bounds-checked reader over a byte slice.
pub(crate) struct Reader<'a> {
    /// Remaining bytes.
    pub buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from the start of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// True when all bytes were consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }

    /// Takes one byte.
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }

    /// Takes a little-endian u32.
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.bytes(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    /// Takes a little-endian u64.
    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.bytes(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// Takes a LEB128 varint (at most 10 bytes).
    #[inline]
    pub(crate) fn varint(&mut self) -> Option<u64> {
        // Fast path: the lengths in data blocks almost always fit one byte. Reads decode
        // every entry of a block they load (to check its order), so this is hot.
        if let Some((&b, rest)) = self.buf.split_first()
            && b < 0x80
        {
            self.buf = rest;
            return Some(u64::from(b));
        }
        self.varint_multi_byte()
    }

    /// [`Reader::varint`] for two bytes or more.
    fn varint_multi_byte(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// Takes a varint length followed by that many bytes.
    pub(crate) fn len_prefixed(&mut self) -> Option<&'a [u8]> {
        let n = self.varint()?;
        self.bytes(usize::try_from(n).ok()?)
    }
}

/// Appends a varint length and the bytes.
pub(crate) fn put_len_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Encodes one entry: `varint klen | varint vlen | u64 seq<<8|kind | [u64 expiry] | key | value`:
/// the entries of format-1 SSTable data blocks (now only read; tests write them).
#[cfg(test)]
pub(crate) fn encode_entry(out: &mut Vec<u8>, e: &Entry) {
    put_varint(out, e.key.len() as u64);
    put_varint(out, e.value.len() as u64);
    out.extend_from_slice(&((e.seq << 8) | e.kind as u64).to_le_bytes());
    if e.kind == Kind::PutExpiring {
        out.extend_from_slice(&e.expire_at_ms.to_le_bytes());
    }
    out.extend_from_slice(&e.key);
    out.extend_from_slice(&e.value);
}

/// A decoded entry that borrows its key and value from the block.
#[derive(Clone, Copy)]
pub(crate) struct EntryRef<'a> {
    /// The user key.
    pub key: &'a [u8],
    /// Sequence number.
    pub seq: u64,
    /// Kind.
    pub kind: Kind,
    /// Expiry (0 unless `PutExpiring`).
    pub expire_at_ms: u64,
    /// Value bytes.
    pub value: &'a [u8],
}

impl EntryRef<'_> {
    /// [`Entry::is_deletion_at`] without a copy.
    pub(crate) fn is_deletion_at(&self, now_ms: u64) -> bool {
        match self.kind {
            Kind::Delete => true,
            Kind::Put => false,
            Kind::PutExpiring => self.expire_at_ms <= now_ms,
        }
    }

    /// An owned copy.
    pub(crate) fn to_entry(self) -> Entry {
        Entry {
            key: self.key.to_vec(),
            seq: self.seq,
            kind: self.kind,
            expire_at_ms: self.expire_at_ms,
            value: self.value.to_vec(),
        }
    }
}

/// Current wall-clock time in unix milliseconds (the clock TTLs are measured
/// against): the workspace's one clock, shared with the kv server that
/// stores its key deadlines here.
pub(crate) use clock::now_ms;

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn key_order_is_byte_order(
            a in proptest::collection::vec(0u8..4, 0..80),
            b in proptest::collection::vec(0u8..4, 0..80),
        ) {
            proptest::prop_assert_eq!(cmp_keys(&a, &b), a.cmp(&b));
            proptest::prop_assert_eq!(cmp_keys(&a, &a), std::cmp::Ordering::Equal);
            let longer = [&a[..], &b[..]].concat();
            proptest::prop_assert_eq!(cmp_keys(&a, &longer), a.cmp(&longer));
        }
    }

    #[test]
    fn varint_round_trips() {
        for v in [0, 1, 127, 128, 300, u64::MAX] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            assert_eq!(Reader::new(&buf).varint(), Some(v));
        }
    }
}
