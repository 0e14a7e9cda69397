//! How the engine's keys are laid out in the one LSM key space.
//!
//! Why a module: every other part of the engine (the staged batch, SCAN, the
//! subkey reads, the garbage filter, the format migration) must agree on these
//! bytes, and the garbage filter's decision must be a plain function of them.
//!
//! Two namespaces, told apart by the first byte, so they can never collide and
//! a scan of one never sees the other (plus one lone key, the version
//! reserve of [`super::versions`]):
//!
//! ```text
//!  top-level key  'k' key                                 → Entry::encode (string or Meta)
//!  subkey         's' len(key) u32 BE  key  version u64 BE  sub  → the subkey's value
//!  reserve        'v'                                     → u64 BE
//! ```
//!
//! The length prefix makes a (key, version) pair a prefix no other pair
//! shares (without it, key "a" + version bytes could equal key "a\0..."), so
//! one collection's subkeys are contiguous and in `sub` byte order: a range
//! read is one LSM range scan. The big-endian version keeps a key's
//! collections apart in the same way.

use std::ops::Bound;

use bytes::Bytes;

use crate::engine::prefix_end;
use crate::value::{Entry, Value};

/// First byte of a top-level key (a string, or a collection's metadata).
pub(super) const TOP: u8 = b'k';
/// First byte of a subkey.
pub(super) const SUB: u8 = b's';
/// The one key of the collection-version reserve (see [`super::versions`]).
pub(super) const RESERVE: u8 = b'v';
/// Bytes a subkey adds around the user key and the subkey bytes: tag,
/// length, version.
pub(super) const SUB_OVERHEAD_BYTES: usize = 1 + 4 + 8;

/// The LSM key of top-level key `key`.
pub(super) fn top(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + key.len());
    out.push(TOP);
    out.extend_from_slice(key);
    out
}

/// The user key of a top-level LSM key, or `None` if it is not one.
pub(super) fn user_key(raw: &[u8]) -> Option<&[u8]> {
    raw.split_first()
        .and_then(|(tag, key)| (*tag == TOP).then_some(key))
}

/// The LSM range of every top-level key at or after `start` (a user key).
pub(super) fn top_range(start: Bound<&[u8]>) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let lower = match start {
        Bound::Included(k) => Bound::Included(top(k)),
        Bound::Excluded(k) => Bound::Excluded(top(k)),
        Bound::Unbounded => Bound::Included(vec![TOP]),
    };
    (lower, Bound::Excluded(vec![TOP + 1]))
}

/// The prefix every subkey of collection (`key`, `version`) starts with.
pub(super) fn sub_prefix(key: &[u8], version: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(SUB_OVERHEAD_BYTES + key.len());
    out.push(SUB);
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&version.to_be_bytes());
    out
}

/// The LSM key of subkey `sub` of collection (`key`, `version`).
pub(super) fn sub(key: &[u8], version: u64, sub: &[u8]) -> Vec<u8> {
    let mut out = sub_prefix(key, version);
    out.extend_from_slice(sub);
    out
}

/// The LSM range of the subkeys of one collection between `lower` and
/// `upper` (subkey bytes).
pub(super) fn sub_range(
    prefix: &[u8],
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let with = |s: &[u8]| [prefix, s].concat();
    let lower = match lower {
        Bound::Included(s) => Bound::Included(with(s)),
        Bound::Excluded(s) => Bound::Excluded(with(s)),
        Bound::Unbounded => Bound::Included(prefix.to_vec()),
    };
    let upper = match upper {
        Bound::Included(s) => Bound::Included(with(s)),
        Bound::Excluded(s) => Bound::Excluded(with(s)),
        // A prefix starts with `SUB`, not 0xff: it always has an end.
        Bound::Unbounded => Bound::Excluded(prefix_end(prefix).expect("starts with SUB")),
    };
    (lower, upper)
}

/// An owned range, borrowed (what `lsm::Db::scan` and `BTreeMap::range` take).
pub(super) fn slices(range: &(Bound<Vec<u8>>, Bound<Vec<u8>>)) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (
        range.0.as_ref().map(Vec::as_slice),
        range.1.as_ref().map(Vec::as_slice),
    )
}

/// A subkey's parts.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct SubKey<'a> {
    /// The collection's user key.
    pub key: &'a [u8],
    /// The collection's version.
    pub version: u64,
    /// The subkey bytes.
    pub sub: &'a [u8],
}

/// Splits a subkey's LSM key; `None` if `raw` is not one.
pub(super) fn parse_sub(raw: &[u8]) -> Option<SubKey<'_>> {
    let (&tag, rest) = raw.split_first()?;
    if tag != SUB || rest.len() < 4 {
        return None;
    }
    let len = u32::from_be_bytes(rest[..4].try_into().ok()?) as usize;
    let rest = &rest[4..];
    if rest.len() < len + 8 {
        return None;
    }
    let (key, rest) = rest.split_at(len);
    let (version, sub) = rest.split_at(8);
    Some(SubKey {
        key,
        version: u64::from_be_bytes(version.try_into().ok()?),
        sub,
    })
}

/// The version of the collection stored in a top-level key's value, if it
/// holds one (`None` for a string; `Err` if the value does not decode).
pub(super) fn meta_version(value: &[u8]) -> Result<Option<u64>, ()> {
    let entry = Entry::decode(Bytes::copy_from_slice(value)).map_err(|_| ())?;
    Ok(match entry.value {
        Value::Collection(meta) => Some(meta.version),
        Value::String(_) => None,
    })
}

/// The garbage rule (see `garbage`): whether the LSM entry `raw` is still
/// wanted, given what its collection's top-level key holds now (`meta`: the
/// key's value, `None` if absent or expired). Everything that is not a
/// well-formed subkey is wanted; a subkey is wanted while its key holds a
/// collection of its version (or a value that does not decode: never drop
/// what cannot be judged).
pub(super) fn subkey_wanted(raw: &[u8], meta: Option<&[u8]>) -> bool {
    let Some(sub) = parse_sub(raw) else {
        return true;
    };
    match meta.map(meta_version) {
        None => false,
        Some(Ok(version)) => version == Some(sub.version),
        Some(Err(())) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::lsm::test_meta as meta;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn subkeys_roundtrip_and_order_by_collection_then_sub(
            k1 in proptest::collection::vec(any::<u8>(), 0..8),
            k2 in proptest::collection::vec(any::<u8>(), 0..8),
            v1 in any::<u64>(), v2 in any::<u64>(),
            s1 in proptest::collection::vec(any::<u8>(), 0..8),
            s2 in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let (a, b) = (sub(&k1, v1, &s1), sub(&k2, v2, &s2));
            prop_assert_eq!(parse_sub(&a), Some(SubKey { key: &k1, version: v1, sub: &s1 }));
            // Same collection: the LSM order is the subkeys' order, and
            // each lies in its collection's range; no other's does.
            let range = sub_range(&sub_prefix(&k1, v1), Bound::Unbounded, Bound::Unbounded);
            let inside = |raw: &Vec<u8>| {
                std::ops::RangeBounds::<[u8]>::contains(&slices(&range), raw.as_slice())
            };
            prop_assert!(inside(&a));
            prop_assert_eq!(inside(&b), k1 == k2 && v1 == v2);
            if k1 == k2 && v1 == v2 {
                prop_assert_eq!(a.cmp(&b), s1.cmp(&s2));
            }
            // Never a top-level key.
            prop_assert_eq!(user_key(&a), None);
            let top_key = top(&k1);
            prop_assert_eq!(user_key(&top_key), Some(&k1[..]));
        }
    }

    #[test]
    fn a_subkey_is_garbage_once_its_key_holds_no_collection_of_its_version() {
        let raw = sub(b"h", 7, b"field");
        assert!(subkey_wanted(&raw, Some(&meta(7, 1).encode())));
        assert!(
            !subkey_wanted(&raw, Some(&meta(8, 1).encode())),
            "recreated"
        );
        assert!(!subkey_wanted(&raw, None), "deleted or expired");
        let string = Entry::string(Bytes::from_static(b"v")).encode();
        assert!(
            !subkey_wanted(&raw, Some(&string)),
            "overwritten by a string"
        );
        // What cannot be judged stays.
        assert!(subkey_wanted(&raw, Some(b"\xff")));
        assert!(subkey_wanted(&top(b"h"), None));
        assert!(subkey_wanted(b"s\x00\x00\x00\x09short", None));
    }
}
