//! The memory engine's subkey: a byte string ordered like `[u8]`, stored
//! inline when short and compared a word at a time.
//!
//! A collection's subkeys (list indexes, hash fields, set members, sorted-set
//! index entries) sit in one B-tree per key. With `Bytes` keys every insert
//! allocated the key and every comparison called `memcmp`: in profiles of
//! pipelined `RPUSH` the B-tree search (an insert at the right end compares
//! against every key of each node on the way down) and those allocations were
//! a third of the server's instructions. Most subkeys are short (hash fields,
//! set members), so a [`SubKey`] keeps up to [`INLINE_MAX`] bytes in place and
//! compares 8 bytes per step as big-endian words, which orders exactly like
//! `memcmp`. (A list's indexes do not even get here: see `subs`.)

use std::borrow::Borrow;
use std::cmp::Ordering;

/// Longest subkey stored inline (the enum stays 32 bytes).
pub const INLINE_MAX: usize = 30;

/// A subkey (see the module docs).
#[derive(Clone)]
pub enum SubKey {
    /// Up to [`INLINE_MAX`] bytes, in place.
    Inline {
        /// How many bytes of `bytes` are the key.
        len: u8,
        /// The key, then zeros.
        bytes: [u8; INLINE_MAX],
    },
    /// A longer key.
    Heap(Box<[u8]>),
}

impl SubKey {
    /// A copy of `key`.
    pub fn new(key: &[u8]) -> SubKey {
        SubKey::inline(key).unwrap_or_else(|| SubKey::Heap(key.into()))
    }

    /// A copy of `key` if it fits inline (a lookup key built without
    /// allocating).
    pub fn inline(key: &[u8]) -> Option<SubKey> {
        (key.len() <= INLINE_MAX).then(|| {
            let mut bytes = [0; INLINE_MAX];
            bytes[..key.len()].copy_from_slice(key);
            SubKey::Inline {
                len: key.len() as u8,
                bytes,
            }
        })
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            SubKey::Inline { len, bytes } => &bytes[..usize::from(*len)],
            SubKey::Heap(key) => key,
        }
    }
}

/// `a.cmp(b)` for byte strings (the order of `[u8]`), 8 bytes at a time.
pub fn cmp_bytes(a: &[u8], b: &[u8]) -> Ordering {
    let common = a.len().min(b.len());
    let (mut x, mut y) = (a[..common].chunks_exact(8), b[..common].chunks_exact(8));
    for (wa, wb) in (&mut x).zip(&mut y) {
        let wa = u64::from_be_bytes(wa.try_into().expect("8 bytes"));
        let wb = u64::from_be_bytes(wb.try_into().expect("8 bytes"));
        if wa != wb {
            return wa.cmp(&wb);
        }
    }
    // The tails have the same length (< 8): compare them as padded words.
    let tail = |rest: &[u8]| {
        rest.iter().enumerate().fold(0u64, |word, (i, &byte)| {
            word | u64::from(byte) << (56 - 8 * i)
        })
    };
    match tail(x.remainder()).cmp(&tail(y.remainder())) {
        Ordering::Equal => a.len().cmp(&b.len()),
        unequal => unequal,
    }
}

impl PartialEq for SubKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for SubKey {}

impl PartialOrd for SubKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SubKey {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            // Zero-padded in place: comparing the padded arrays a word at a
            // time, then the lengths, is the byte order (a shorter key equal
            // to a longer one's start, padding included, is its prefix).
            (SubKey::Inline { len: la, bytes: a }, SubKey::Inline { len: lb, bytes: b }) => {
                let word = |k: &[u8; INLINE_MAX], at: usize| {
                    let mut w = [0u8; 8];
                    let end = (at + 8).min(INLINE_MAX);
                    w[..end - at].copy_from_slice(&k[at..end]);
                    u64::from_be_bytes(w)
                };
                for at in (0..INLINE_MAX).step_by(8) {
                    let (x, y) = (word(a, at), word(b, at));
                    if x != y {
                        return x.cmp(&y);
                    }
                }
                la.cmp(lb)
            }
            _ => cmp_bytes(self.as_bytes(), other.as_bytes()),
        }
    }
}

/// Lets a long key be looked up by slice (ordered by `memcmp`, the same
/// order) without building a `SubKey`.
impl Borrow<[u8]> for SubKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::fmt::Debug for SubKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&bytes::Bytes::copy_from_slice(self.as_bytes()), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stays_small() {
        assert_eq!(std::mem::size_of::<SubKey>(), 32);
    }

    proptest! {
        /// The order is `[u8]`'s, inline, on the heap and mixed, including
        /// keys that differ only by trailing zeros.
        #[test]
        fn orders_like_slices(
            a in proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), any::<u8>()], 0..40),
            b in proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), any::<u8>()], 0..40),
        ) {
            prop_assert_eq!(cmp_bytes(&a, &b), a.cmp(&b));
            prop_assert_eq!(SubKey::new(&a).cmp(&SubKey::new(&b)), a.cmp(&b));
            prop_assert_eq!(SubKey::new(&a) == SubKey::new(&b), a == b);
            let key = SubKey::new(&a);
            prop_assert_eq!(key.as_bytes(), &a[..]);
        }
    }

    #[test]
    fn prefixes_and_zero_padding() {
        let keys: [&[u8]; 6] = [b"", b"\0", b"a", b"a\0", b"a\0\0\0\0\0\0\0\0", b"ab"];
        for a in keys {
            for b in keys {
                assert_eq!(cmp_bytes(a, b), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }
}
