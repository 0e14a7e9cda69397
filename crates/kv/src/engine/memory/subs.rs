//! The subkeys of one collection in the memory engine, in byte order.
//!
//! Two shapes, chosen by the keys themselves (the engine knows nothing of
//! lists or hashes; like Redis's compact encodings, the shape is an
//! invisible storage choice):
//! - **dense**: every key is 8 bytes and, read as a big-endian number, they
//!   form one run `first, first + 1, ...` with no gap. A list's element
//!   indexes always do (pushes and pops at the ends, `LINSERT`/`LREM` shift
//!   by one), so a list is a `VecDeque`: a push or pop at either end, a read
//!   by index, is O(1) with no key comparison at all;
//! - **tree**: anything else, a B-tree of [`SubKey`]s (hash fields, set
//!   members, sorted-set entries, a list made sparse by hand).
//!
//! A dense collection that gets a key breaking the run becomes a tree, once
//! (O(n)); a tree never goes back. In profiles of pipelined `RPUSH`/`RPOP` the
//! B-tree walk to its right end (every key of every node on the way
//! compared) was the largest single cost before the dense shape.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;

use bytes::{Bytes, BytesMut};

use super::SUBKEY_OVERHEAD_BYTES;
use super::subkey::{SubKey, cmp_bytes};
use crate::engine::SubRange;

/// Estimated bytes of one subkey (see [`super::KEY_OVERHEAD_BYTES`]).
pub fn sub_size(sub: &[u8], value: &[u8]) -> u64 {
    (sub.len() + value.len()) as u64 + SUBKEY_OVERHEAD_BYTES
}

/// One collection's subkeys (see the module docs).
#[derive(Debug)]
pub struct Subs {
    /// The collection version they belong to.
    pub version: u64,
    /// Their estimated size (bytes plus [`SUBKEY_OVERHEAD_BYTES`] each).
    pub bytes: u64,
    map: Shape,
}

#[derive(Debug)]
enum Shape {
    /// 8-byte keys `first..first + values.len()` (big-endian numbers).
    Dense { first: u64, values: VecDeque<Bytes> },
    /// Any keys.
    Tree(BTreeMap<SubKey, Bytes>),
}

/// A dense key's number, if `sub` can be one.
fn number(sub: &[u8]) -> Option<u64> {
    sub.try_into().ok().map(u64::from_be_bytes)
}

/// A range bound on subkeys as a [`SubKey`] bound, if its key fits inline.
fn inline_bound(bound: Bound<&[u8]>) -> Option<Bound<SubKey>> {
    Some(match bound {
        Bound::Included(key) => Bound::Included(SubKey::inline(key)?),
        Bound::Excluded(key) => Bound::Excluded(SubKey::inline(key)?),
        Bound::Unbounded => Bound::Unbounded,
    })
}

/// The first `i` in `0..len` for which `pred` is false (`pred` is true on a
/// prefix of `0..len`, false after).
fn partition(len: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut low, mut high) = (0, len);
    while low < high {
        let mid = low + (high - low) / 2;
        if pred(mid) {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    low
}

impl Subs {
    /// No subkeys yet, for collection `version`.
    pub fn new(version: u64) -> Subs {
        Subs {
            version,
            bytes: 0,
            map: Shape::Dense {
                first: 0,
                values: VecDeque::new(),
            },
        }
    }

    /// Number of subkeys.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        match &self.map {
            Shape::Dense { values, .. } => values.len(),
            Shape::Tree(tree) => tree.len(),
        }
    }

    /// The value of `sub`.
    pub fn get(&self, sub: &[u8]) -> Option<&Bytes> {
        match &self.map {
            Shape::Dense { first, values } => {
                let at = number(sub)?.checked_sub(*first)?;
                values.get(usize::try_from(at).ok()?)
            }
            // A short key is looked up as a `SubKey` (cheaper comparisons),
            // a long one by slice.
            Shape::Tree(tree) => match SubKey::inline(sub) {
                Some(key) => tree.get(&key),
                None => tree.get(sub),
            },
        }
    }

    /// Inserts or replaces `sub`; returns the old value.
    pub fn insert(&mut self, sub: &[u8], value: Bytes) -> Option<Bytes> {
        self.bytes += sub_size(sub, &value);
        let old = self.insert_unaccounted(sub, value);
        if let Some(old) = &old {
            self.bytes -= sub_size(sub, old);
        }
        old
    }

    fn insert_unaccounted(&mut self, sub: &[u8], value: Bytes) -> Option<Bytes> {
        if let Shape::Dense { first, values } = &mut self.map {
            match number(sub) {
                Some(n) if values.is_empty() => {
                    *first = n;
                    values.push_back(value);
                    return None;
                }
                Some(n) => {
                    let end = u128::from(*first) + values.len() as u128;
                    if n >= *first && u128::from(n) < end {
                        let slot = &mut values[(n - *first) as usize];
                        return Some(std::mem::replace(slot, value));
                    }
                    if u128::from(n) == end {
                        values.push_back(value);
                        return None;
                    }
                    if n.checked_add(1) == Some(*first) {
                        *first = n;
                        values.push_front(value);
                        return None;
                    }
                }
                None => {}
            }
        }
        self.tree().insert(SubKey::new(sub), value)
    }

    /// Removes `sub`; returns its value.
    pub fn remove(&mut self, sub: &[u8]) -> Option<Bytes> {
        let old = match &mut self.map {
            Shape::Dense { first, values } => {
                let at = usize::try_from(number(sub)?.checked_sub(*first)?).ok()?;
                if at >= values.len() {
                    return None;
                }
                if at == 0 {
                    *first += 1;
                    let old = values.pop_front();
                    shrink(values);
                    old
                } else if at == values.len() - 1 {
                    let old = values.pop_back();
                    shrink(values);
                    old
                } else {
                    // A hole breaks the run.
                    self.tree().remove(sub)
                }
            }
            Shape::Tree(tree) => match SubKey::inline(sub) {
                Some(key) => tree.remove(&key),
                None => tree.remove(sub),
            },
        }?;
        self.bytes -= sub_size(sub, &old);
        Some(old)
    }

    /// The tree shape, converting a dense one.
    fn tree(&mut self) -> &mut BTreeMap<SubKey, Bytes> {
        if let Shape::Dense { first, values } = &mut self.map {
            let first = *first;
            let tree = std::mem::take(values)
                .into_iter()
                .enumerate()
                .map(|(i, v)| (SubKey::new(&(first + i as u64).to_be_bytes()), v))
                .collect();
            self.map = Shape::Tree(tree);
        }
        match &mut self.map {
            Shape::Tree(tree) => tree,
            Shape::Dense { .. } => unreachable!("converted above"),
        }
    }

    /// Calls `f` with each subkey in `range` and its value, in order (or
    /// in reverse), up to `range.limit`.
    pub fn each(&self, range: &SubRange<'_>, mut f: impl FnMut(&[u8], &Bytes)) {
        match &self.map {
            Shape::Dense { first, values } => {
                let key = |i: usize| (first + i as u64).to_be_bytes();
                let at_least = |bound: &[u8], i: usize| cmp_bytes(&key(i), bound);
                let low = match range.lower {
                    Bound::Included(l) => partition(values.len(), |i| at_least(l, i).is_lt()),
                    Bound::Excluded(l) => partition(values.len(), |i| at_least(l, i).is_le()),
                    Bound::Unbounded => 0,
                };
                let high = match range.upper {
                    Bound::Included(u) => partition(values.len(), |i| at_least(u, i).is_le()),
                    Bound::Excluded(u) => partition(values.len(), |i| at_least(u, i).is_lt()),
                    Bound::Unbounded => values.len(),
                };
                let count = high.saturating_sub(low).min(range.limit);
                if range.reverse {
                    let start = high - count;
                    for (i, value) in values.range(start..high).enumerate().rev() {
                        f(&key(start + i), value);
                    }
                } else {
                    for (i, value) in values.range(low..low + count).enumerate() {
                        f(&key(low + i), value);
                    }
                }
            }
            Shape::Tree(tree) => {
                let mut f = |(k, v): (&SubKey, &Bytes)| f(k.as_bytes(), v);
                match (inline_bound(range.lower), inline_bound(range.upper)) {
                    (Some(lower), Some(upper)) => {
                        let items = tree.range((lower, upper));
                        if range.reverse {
                            items.rev().take(range.limit).for_each(&mut f);
                        } else {
                            items.take(range.limit).for_each(&mut f);
                        }
                    }
                    _ => {
                        let items = tree.range::<[u8], _>((range.lower, range.upper));
                        if range.reverse {
                            items.rev().take(range.limit).for_each(&mut f);
                        } else {
                            items.take(range.limit).for_each(&mut f);
                        }
                    }
                }
            }
        }
    }

    /// Appends the subkeys in `range` with their values (see
    /// [`crate::engine::Engine::sub_range`]). The keys are copied into one
    /// buffer and handed out as slices of it: one allocation per call, not
    /// one per key.
    pub fn range(&self, range: &SubRange<'_>, out: &mut Vec<(Bytes, Bytes)>) {
        let first_out = out.len();
        let expected = match &self.map {
            Shape::Dense { values, .. } => values.len(),
            Shape::Tree(tree) => tree.len(),
        };
        let mut arena = BytesMut::with_capacity(range.limit.min(expected).min(128) * 16);
        self.each(range, |key, value| {
            arena.extend_from_slice(&(key.len() as u32).to_le_bytes());
            arena.extend_from_slice(key);
            out.push((Bytes::new(), value.clone()));
        });
        let arena = arena.freeze();
        let mut at = 0;
        for (k, _) in &mut out[first_out..] {
            let len = u32::from_le_bytes(arena[at..at + 4].try_into().expect("4 bytes")) as usize;
            *k = arena.slice(at + 4..at + 4 + len);
            at += 4 + len;
        }
    }
}

/// Gives back a dense collection's spare room once it is mostly empty.
fn shrink(values: &mut VecDeque<Bytes>) {
    if values.capacity() > 64 && values.len() < values.capacity() / 4 {
        values.shrink_to(values.len() * 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One operation of the model test.
    #[derive(Debug, Clone)]
    enum Op {
        Insert(Vec<u8>, u8),
        Remove(Vec<u8>),
        Range(Option<Vec<u8>>, Option<Vec<u8>>, bool, bool, usize),
    }

    /// Keys that are mostly dense 8-byte numbers near each other, sometimes
    /// not (so both shapes and the conversion are exercised).
    fn key() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            6 => (0u64..12).prop_map(|n| (100 + n).to_be_bytes().to_vec()),
            1 => proptest::collection::vec(any::<u8>(), 0..12),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (key(), any::<u8>()).prop_map(|(k, v)| Op::Insert(k, v)),
            3 => key().prop_map(Op::Remove),
            2 => (proptest::option::of(key()), proptest::option::of(key()), any::<bool>(), any::<bool>(), 0usize..20)
                .prop_map(|(l, u, excl, rev, limit)| Op::Range(l, u, excl, rev, limit)),
        ]
    }

    proptest! {
        /// Against a `BTreeMap<Vec<u8>, _>`: same reads, ranges and sizes
        /// whatever the shape.
        #[test]
        fn behaves_like_a_sorted_map(ops in proptest::collection::vec(op(), 0..80)) {
            let mut subs = Subs::new(1);
            let mut model: BTreeMap<Vec<u8>, Bytes> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        let v = Bytes::from(vec![v]);
                        prop_assert_eq!(subs.insert(&k, v.clone()), model.insert(k, v));
                    }
                    Op::Remove(k) => prop_assert_eq!(subs.remove(&k), model.remove(&k)),
                    Op::Range(l, u, excl, reverse, limit) => {
                        let bound = |b: &Option<Vec<u8>>, excl: bool| match b {
                            None => Bound::Unbounded,
                            Some(b) if excl => Bound::Excluded(b.clone()),
                            Some(b) => Bound::Included(b.clone()),
                        };
                        let (lower, upper) = (bound(&l, excl), bound(&u, !excl));
                        if let (Some(l), Some(u)) = (&l, &u) && (l > u || (l == u && matches!((&lower, &upper), (Bound::Excluded(_), _) | (_, Bound::Excluded(_))))) {
                            continue; // BTreeMap::range panics on an inverted range
                        }
                        let range = SubRange {
                            lower: lower.as_ref().map(|b| &b[..]),
                            upper: upper.as_ref().map(|b| &b[..]),
                            reverse,
                            limit,
                        };
                        let mut got = Vec::new();
                        subs.range(&range, &mut got);
                        let items = model.range((lower.clone(), upper.clone())).map(|(k, v)| (Bytes::from(k.clone()), v.clone()));
                        let want: Vec<_> = if reverse { items.rev().take(limit).collect() } else { items.take(limit).collect() };
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(subs.len(), model.len());
                let bytes: u64 = model.iter().map(|(k, v)| sub_size(k, v)).sum();
                prop_assert_eq!(subs.bytes, bytes);
                for (k, v) in &model {
                    prop_assert_eq!(subs.get(k), Some(v));
                }
            }
        }
    }

    #[test]
    fn a_list_stays_dense() {
        let mut subs = Subs::new(1);
        let middle = 1u64 << 63;
        for i in 0..100u64 {
            subs.insert(&(middle + i).to_be_bytes(), Bytes::from_static(b"r"));
            subs.insert(&(middle - 1 - i).to_be_bytes(), Bytes::from_static(b"l"));
        }
        subs.remove(&(middle - 100).to_be_bytes());
        subs.remove(&(middle + 99).to_be_bytes());
        subs.insert(&middle.to_be_bytes(), Bytes::from_static(b"x"));
        assert!(matches!(subs.map, Shape::Dense { .. }));
        subs.remove(&middle.to_be_bytes());
        assert!(matches!(subs.map, Shape::Tree(_)), "a hole makes it a tree");
        assert_eq!(subs.len(), 197);
    }
}
