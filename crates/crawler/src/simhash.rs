//! Near-duplicate detection: Charikar's SimHash. The chapter says ~29-30% of
//! the web is duplicate; exact copies are caught by a hash of the body, but a
//! copy with another date or ad in it is not. SimHash maps a document to 64
//! bits such that similar documents differ in few bits: each feature (a
//! word, weighted by its count) votes ±1 per bit by its own hash; the sign of the sum is
//! the bit. Two pages within `HAMMING_NEAR` bits are near duplicates.
//!
//! Finding a fingerprint within 3 bits among millions without comparing to
//! all: split the 64 bits into 4 bands of 16; by pigeonhole two fingerprints
//! within 3 bits agree exactly on at least one band, so each fingerprint is
//! indexed under its 4 band values and only those buckets are compared
//! ([`bands`]).

use xxhash_rust::xxh3::xxh3_64;

/// Bits two fingerprints may differ in and still be near duplicates.
pub const HAMMING_NEAR: u32 = 3;

/// The 64-bit SimHash of `text` over its lowercased words. Words rather than
/// shingles: one edited word then moves one feature's weight by one, so a
/// small edit stays within a few bits even on short pages.
pub fn simhash(text: &str) -> u64 {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let mut votes = [0i64; 64];
    let mut add = |feature: &str| {
        let hash = xxh3_64(feature.as_bytes());
        for (bit, vote) in votes.iter_mut().enumerate() {
            if hash >> bit & 1 == 1 {
                *vote += 1;
            } else {
                *vote -= 1;
            }
        }
    };
    for word in &words {
        add(word);
    }
    votes.iter().enumerate().fold(
        0u64,
        |acc, (bit, vote)| if *vote > 0 { acc | 1 << bit } else { acc },
    )
}

/// Bits in which `a` and `b` differ.
pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// The 4 band values of a fingerprint (band index, 16 bits).
pub fn bands(fingerprint: u64) -> [(u8, u16); 4] {
    [0u8, 1, 2, 3].map(|band| (band, (fingerprint >> (16 * band)) as u16))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn doc(seed: u64, words: usize) -> Vec<String> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..words)
            .map(|_| format!("w{}", rng.u32(0..5000)))
            .collect()
    }

    #[test]
    fn a_small_edit_is_near_and_another_text_is_far() {
        let base = doc(1, 400);
        let mut edited = base.clone();
        edited[200] = "changed".into();
        let other = doc(2, 400);
        let (a, b, c) = (
            simhash(&base.join(" ")),
            simhash(&edited.join(" ")),
            simhash(&other.join(" ")),
        );
        assert!(hamming(a, b) <= HAMMING_NEAR, "{}", hamming(a, b));
        assert!(hamming(a, c) > 10, "{}", hamming(a, c));
    }

    proptest! {
        #[test]
        fn hamming_is_a_metric(a in any::<u64>(), b in any::<u64>(), c in any::<u64>()) {
            prop_assert_eq!(hamming(a, a), 0);
            prop_assert_eq!(hamming(a, b), hamming(b, a));
            prop_assert!(hamming(a, c) <= hamming(a, b) + hamming(b, c));
        }

        #[test]
        fn near_fingerprints_share_a_band(a in any::<u64>(), flips in proptest::collection::vec(0u32..64, 0..=3)) {
            let mut b = a;
            for bit in flips { b ^= 1 << bit; }
            prop_assert!(hamming(a, b) <= HAMMING_NEAR);
            let shared = bands(a).iter().zip(bands(b).iter()).any(|(x, y)| x == y);
            prop_assert!(shared);
        }

        #[test]
        fn identical_text_identical_fingerprint(seed in any::<u64>()) {
            let text = doc(seed, 50).join(" ");
            prop_assert_eq!(simhash(&text), simhash(&text.to_uppercase()));
        }
    }
}
