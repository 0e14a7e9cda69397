//! Properties the book's read path relies on: no false negatives, and a false-positive
//! rate close to what the filter was sized for.

use proptest::prelude::*;
use sketch::BloomFilter;

proptest! {
    #[test]
    fn never_a_false_negative(
        keys in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..500),
        fp_rate in 0.0001f64..0.5,
    ) {
        let mut filter = BloomFilter::with_rate(keys.len(), fp_rate);
        for key in &keys {
            filter.insert(key);
        }
        let restored = BloomFilter::from_bytes(&filter.to_bytes()).unwrap();
        for key in &keys {
            prop_assert!(filter.may_contain(key));
            prop_assert!(restored.may_contain(key));
        }
    }

    #[test]
    fn from_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = BloomFilter::from_bytes(&bytes);
    }
}

/// Measured FP rate over 1M absent probes stays within 1.5x of the target.
#[test]
fn false_positive_rate_within_1_5x_of_target() {
    for &(items, target) in &[(100_000usize, 0.01f64), (20_000, 0.001)] {
        let mut filter = BloomFilter::with_rate(items, target);
        for i in 0..items as u64 {
            filter.insert(format!("present-{i}").as_bytes());
        }
        let probes = 1_000_000u64;
        let false_positives = (0..probes)
            .filter(|i| filter.may_contain(&i.to_le_bytes()))
            .count();
        let measured = false_positives as f64 / probes as f64;
        assert!(
            measured <= target * 1.5,
            "target {target}, measured {measured} ({false_positives} of {probes})"
        );
        assert!(measured > 0.0, "suspiciously perfect filter: {measured}");
    }
}
