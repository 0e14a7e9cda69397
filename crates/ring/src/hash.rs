//! The ring's hash function: where keys and virtual nodes land.
//!
//! Consistent hashing only works if every process that looks at the ring puts
//! the same key at the same place, today, tomorrow and on another CPU. That
//! makes the hash function part of the on-the-wire contract of every system
//! built on this crate (the `kv` cluster stores data by it), so it lives in
//! one module and is pinned by test vectors.
//!
//! The function is **XXH3-64 with seed 0 and the default secret**
//! (`xxhash_rust::xxh3::xxh3_64`). XXH3's output is frozen by its
//! specification since xxHash 0.8.0 (2020) and is defined on bytes, little-endian
//! arithmetic included, so it is identical on every platform and in every
//! implementation (C, Rust, Go, Java). It is not cryptographic: a client that
//! can pick keys can aim them at one server. The book's SHA-1 would resist
//! that, but costs ~10x more per lookup, and the systems here place keys their
//! own users choose only behind authentication.
//!
//! - A **key** lands at `xxh3_64(key bytes)`.
//! - Virtual node `i` of server `s` lands at `xxh3_64(format!("{s}#{i}"))`,
//!   the server's `Display` text as UTF-8, a `#`, and `i` in decimal (the
//!   labelling scheme of the notes' Python example and of Ketama-style rings).

use std::fmt::{Display, Write};

use xxhash_rust::xxh3::xxh3_64;

/// Position on the ring of a key: XXH3-64 of its bytes.
pub fn key_position(key: &[u8]) -> u64 {
    xxh3_64(key)
}

/// Position on the ring of virtual node `vnode` of server `id`:
/// XXH3-64 of the UTF-8 text `"{id}#{vnode}"`.
///
/// `label` is a scratch buffer so placing thousands of virtual nodes does not
/// allocate once per node; its previous content is discarded.
pub fn vnode_position<S: Display + ?Sized>(id: &S, vnode: u32, label: &mut String) -> u64 {
    label.clear();
    // Writing into a String cannot fail.
    let _ = write!(label, "{id}#{vnode}");
    xxh3_64(label.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference XXH3-64 value of the empty input, from the xxHash
    /// specification's test vectors: proves we use the standard function.
    #[test]
    fn matches_the_xxh3_reference_vector() {
        assert_eq!(key_position(b""), 0x2D06_8005_38D3_94C2);
    }

    /// Pinned positions, cross-checked against the C reference
    /// implementation (python-xxhash's `xxh3_64_intdigest`). If these change,
    /// every ring built by an older version disagrees with this one about
    /// where data lives.
    #[test]
    fn positions_are_pinned() {
        let mut label = String::new();
        assert_eq!(key_position(b"key0"), PINNED_KEY0);
        assert_eq!(vnode_position("server-a", 0, &mut label), PINNED_SERVER_A_0);
        assert_eq!(label, "server-a#0");
        assert_eq!(
            vnode_position("server-a", 0, &mut label),
            key_position(b"server-a#0")
        );
        assert_eq!(vnode_position(&42u64, 7, &mut label), key_position(b"42#7"));
    }

    const PINNED_KEY0: u64 = 8_419_820_270_403_067_590;
    const PINNED_SERVER_A_0: u64 = 4_020_980_472_236_879_204;
}
