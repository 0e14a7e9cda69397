//! A memtable's whole-key filter: a bloom filter that writers set bits in concurrently
//! with readers (RocksDB's `memtable_whole_key_filtering`).
//!
//! Why it exists: a memtable is a skip list of a few hundred thousand nodes, and a
//! search in it is dozens of dependent cache misses: in seek profiles a third of the
//! time. The filter answers "surely not here" from four bits, so a point read of a key
//! the memtable lacks skips the search, and a scan whose start key the memtable lacks
//! leaves the memtable unpositioned until the merge needs it (see `iter`).
//!
//! Fixed size (`FILTER_BITS`): the memtable does not know its capacity when made. At
//! the default 32 MiB memtable of ~100-byte entries that is ~11 bits per key (about 1%
//! false positives); a much larger memtable only raises the false-positive rate, never
//! gives a wrong answer.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bits in a filter (256 KiB).
const FILTER_BITS: u64 = 1 << 21;
/// Bits set per key.
const PROBES: u32 = 4;

/// A concurrent bloom filter over user keys.
pub(crate) struct KeyFilter {
    /// The bits.
    words: Box<[AtomicU64]>,
}

/// The bit positions of `key`: sketch's XXH3-128 double hashing, the same
/// rule as the SSTables' bloom filters.
fn probes(key: &[u8]) -> impl Iterator<Item = u64> {
    sketch::bloom::KeyHash::of(key).probes(PROBES, FILTER_BITS)
}

impl KeyFilter {
    /// An empty filter.
    pub(crate) fn new() -> KeyFilter {
        KeyFilter {
            words: (0..FILTER_BITS / 64).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Records `key`. Call before the key becomes visible: a reader that can see the
    /// key (through the sequence number published after the insert) sees its bits.
    pub(crate) fn insert(&self, key: &[u8]) {
        for bit in probes(key) {
            self.words[(bit / 64) as usize].fetch_or(1 << (bit % 64), Ordering::Relaxed);
        }
    }

    /// False when `key` was surely never inserted.
    pub(crate) fn may_contain(&self, key: &[u8]) -> bool {
        probes(key).all(|bit| {
            self.words[(bit / 64) as usize].load(Ordering::Relaxed) & (1 << (bit % 64)) != 0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_forgets_a_key_and_rarely_claims_an_absent_one() {
        let f = KeyFilter::new();
        let keys: Vec<Vec<u8>> = (0..200_000u32)
            .map(|i| format!("{i:016}").into_bytes())
            .collect();
        for k in &keys {
            f.insert(k);
        }
        assert!(keys.iter().all(|k| f.may_contain(k)));
        assert!(f.may_contain(b"0000000000000007"));
        let false_positives = (200_000..300_000u32)
            .filter(|i| f.may_contain(format!("{i:016}").as_bytes()))
            .count();
        // ~10.5 bits per key, 4 probes: ~1.2% expected.
        assert!(false_positives < 3_000, "{false_positives} of 100000");
        assert!(!KeyFilter::new().may_contain(b""));
    }
}
