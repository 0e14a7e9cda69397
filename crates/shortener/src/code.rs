//! Making short codes: the chapter's two strategies.
//!
//! **Base-62 of a unique ID** (the default). Each new URL takes the next
//! snowflake ID (chapter 7) and writes it in base 62 (`0-9a-zA-Z`). Codes are
//! unique by construction, so no collision check is needed; the cost is that
//! codes grow with the ID (11 characters for a 64-bit snowflake, not 7) and
//! that consecutive codes are guessable, which the chapter names as a drawback.
//!
//! **Hash, then resolve collisions.** Hash the long URL, keep the first 7
//! base-62 characters (62^7 ≈ 3.5 trillion codes, enough for the chapter's
//! 365 billion URLs), and if that code is taken by another URL, append a
//! predefined string to the URL and hash again. Checking the store on every
//! attempt is expensive, so a bloom filter of used codes sits in front: a
//! "definitely not used" answer skips the store read (the chapter's advice).
//! Codes are stable for a URL and not guessable; each new URL costs a store
//! read when the filter says "maybe".

use parking_lot::Mutex;
use sketch::bloom::BloomFilter;

/// Which strategy makes codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Base-62 of a snowflake ID.
    Snowflake,
    /// First 7 base-62 characters of a hash, with collision resolution.
    Hash,
}

/// Characters in a hash code: 62^7 ≈ 3.5 trillion codes.
pub const HASH_CODE_CHARS: usize = 7;

/// Appended to the URL before re-hashing on a collision (the chapter's
/// "predefined string"); never part of the stored URL.
pub const COLLISION_SUFFIX: &str = "#hyperscale-collision";

/// Gives up after this many collisions in a row; with a sparse code space a
/// real URL never gets close, so reaching it means the space is nearly full.
pub const HASH_ATTEMPTS_MAX: usize = 16;

/// What the hash strategy hashes for a link: the URL for a permanent link;
/// the URL and its expiry instant for an expiring one, so links that differ
/// only in expiry get different codes (a code is only shared by identical
/// links, see `app`).
pub fn hash_input(long_url: &str, expires_ms: Option<u64>) -> String {
    match expires_ms {
        None => long_url.to_string(),
        Some(expires_ms) => format!("{long_url}#hyperscale-expires-{expires_ms}"),
    }
}

/// The hash code of `long_url` after `attempt` collisions.
pub fn hash_code(long_url: &str, attempt: usize) -> String {
    let mut input = long_url.to_string();
    for _ in 0..attempt {
        input.push_str(COLLISION_SUFFIX);
    }
    let digest = xxhash_rust::xxh3::xxh3_64(input.as_bytes());
    let mut code = idgen::base62::encode_padded(digest, 11);
    code.truncate(HASH_CODE_CHARS);
    code
}

/// The base-62 code of a snowflake ID.
pub fn snowflake_code(id: u64) -> String {
    idgen::base62::encode(id)
}

/// Bloom filter of codes known to be in use, consulted before the store.
pub struct UsedCodes {
    filter: Mutex<BloomFilter>,
}

impl UsedCodes {
    /// A filter sized for `expected` codes at a 1% false-positive rate.
    pub fn new(expected: usize) -> Self {
        Self {
            filter: Mutex::new(BloomFilter::with_rate(expected.max(1), 0.01)),
        }
    }

    /// Records that `code` is taken.
    pub fn insert(&self, code: &str) {
        self.filter.lock().insert(code.as_bytes());
    }

    /// False means certainly unused; true means "ask the store".
    pub fn may_be_used(&self, code: &str) -> bool {
        self.filter.lock().may_contain(code.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn hash_codes_are_seven_base62_chars_and_stable(url in "https://[a-z]{1,20}\\.com/[a-z0-9]{0,40}") {
            let code = hash_code(&url, 0);
            prop_assert_eq!(code.len(), HASH_CODE_CHARS);
            prop_assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()));
            prop_assert_eq!(&code, &hash_code(&url, 0));
            prop_assert_ne!(&code, &hash_code(&url, 1), "a collision attempt changes the code");
        }

        #[test]
        fn snowflake_codes_round_trip(id in any::<u64>()) {
            prop_assert_eq!(idgen::base62::decode(&snowflake_code(id)).unwrap(), id);
        }
    }

    #[test]
    fn hash_input_separates_expiry() {
        let url = "https://example.com/";
        assert_eq!(
            hash_input(url, None),
            url,
            "permanent codes are the chapter's hash"
        );
        assert_ne!(hash_code(&hash_input(url, Some(1)), 0), hash_code(url, 0));
        assert_ne!(hash_input(url, Some(1)), hash_input(url, Some(2)));
    }

    #[test]
    fn used_codes_never_forget() {
        let used = UsedCodes::new(1000);
        for n in 0..1000 {
            used.insert(&format!("c{n}"));
        }
        assert!((0..1000).all(|n| used.may_be_used(&format!("c{n}"))));
    }
}
