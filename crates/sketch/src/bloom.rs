//! A bloom filter sized from (expected items, target false-positive rate).
//!
//! Why it exists: an LSM tree keeps many SSTables on disk and a point lookup would
//! otherwise read one block from each. A per-table filter of ~10 bits per key turns almost
//! every miss into a memory-only check (the book's read path: memory → bloom → SSTable).
//!
//! Sizing (the textbook formulas): for `n` expected items and FP rate `p`,
//! `m = -n·ln(p) / ln(2)²` bits and `k = (m/n)·ln(2)` hash functions. 1% costs ~9.6 bits
//! and 7 probes per key; every halving of `p` adds ~1.44 bits per key.
//!
//! Hashing: one 128-bit XXH3 hash of the key, split into two 64-bit halves `h1`, `h2`, and
//! probe `i` is `h1 + i·h2 mod m` (Kirsch–Mitzenmacher double hashing), which keeps the
//! FP rate of `k` independent hashes at the cost of one hash computation.
//!
//! Stable serialized form (little-endian), stored inside SSTables, so it must never change
//! without a new magic:
//! `"BLM1"` | `k: u32` | `m (bits): u64` | `words: m.div_ceil(64) × u64`.

use xxhash_rust::xxh3::xxh3_128;

/// Magic bytes that open the serialized form (version 1 of the layout).
const MAGIC: &[u8; 4] = b"BLM1";
/// Header length: magic + k + m.
const HEADER_BYTES: usize = 4 + 4 + 8;
/// Upper bound on probes per key; beyond ~30 the filter is mis-sized, not more accurate.
const HASHES_MAX: u32 = 30;

/// Why a serialized filter could not be read back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BloomError {
    /// The bytes do not start with the expected magic: not a filter, or a newer format.
    #[error("not a bloom filter (bad magic); the data is corrupt or from a newer version")]
    BadMagic,
    /// The header or body length does not match what the header declares.
    #[error("bloom filter is truncated or has trailing bytes: {0}")]
    BadLength(String),
    /// The header declares impossible parameters.
    #[error("bloom filter header is invalid: {0}")]
    BadHeader(String),
}

/// A bloom filter over byte-string keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BloomFilter {
    /// The bit array, 64 bits per word; bit `b` lives in `words[b / 64]`.
    words: Vec<u64>,
    /// Number of addressable bits `m` (not rounded up to a word), the probe modulus.
    bits: u64,
    /// Number of probes `k` per key.
    hashes: u32,
}

impl BloomFilter {
    /// A filter sized for `expected_items` keys at `fp_rate` false positives
    /// (clamped to `[1e-9, 0.5]`); at least 64 bits, so an empty table still gets a
    /// valid filter.
    pub fn with_rate(expected_items: usize, fp_rate: f64) -> Self {
        let p = if fp_rate.is_finite() {
            fp_rate.clamp(1e-9, 0.5)
        } else {
            0.01
        };
        let n = expected_items.max(1) as f64;
        let ln2 = std::f64::consts::LN_2;
        let bits = ((-n * p.ln()) / (ln2 * ln2)).ceil().max(64.0) as u64;
        let hashes = ((bits as f64 / n) * ln2)
            .round()
            .clamp(1.0, HASHES_MAX as f64) as u32;
        Self::with_params(bits, hashes)
    }

    /// A filter with exactly `bits` bits (at least 1) and `hashes` probes (1..=30).
    pub fn with_params(bits: u64, hashes: u32) -> Self {
        let bits = bits.max(1);
        let words = vec![0u64; bits.div_ceil(64) as usize];
        Self {
            words,
            bits,
            hashes: hashes.clamp(1, HASHES_MAX),
        }
    }

    /// Number of bits `m`.
    pub fn bits(&self) -> u64 {
        self.bits
    }

    /// Number of probes `k` per key.
    pub fn hashes(&self) -> u32 {
        self.hashes
    }

    /// Adds a key. Afterwards [`Self::may_contain`] returns true for it, always.
    pub fn insert(&mut self, key: &[u8]) {
        self.insert_hash(KeyHash::of(key));
    }

    /// False means the key was surely never inserted; true means it may have been.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.may_contain_hash(KeyHash::of(key))
    }

    /// [`Self::insert`] with a precomputed hash (lets a caller hash a key once and
    /// probe many filters, or remember hashes instead of keys while building).
    pub fn insert_hash(&mut self, hash: KeyHash) {
        let (h1, h2) = (hash.h1, hash.h2);
        for i in 0..self.hashes as u64 {
            let bit = probe(h1, h2, i, self.bits);
            self.words[(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }

    /// [`Self::may_contain`] with a precomputed hash.
    pub fn may_contain_hash(&self, hash: KeyHash) -> bool {
        let (h1, h2) = (hash.h1, hash.h2);
        (0..self.hashes as u64).all(|i| {
            let bit = probe(h1, h2, i, self.bits);
            self.words[(bit / 64) as usize] & (1 << (bit % 64)) != 0
        })
    }

    /// Size of [`Self::to_bytes`] in bytes.
    pub fn serialized_len(&self) -> usize {
        HEADER_BYTES + self.words.len() * 8
    }

    /// The stable serialized form (see the module doc).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.serialized_len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.hashes.to_le_bytes());
        out.extend_from_slice(&self.bits.to_le_bytes());
        for word in &self.words {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out
    }

    /// Reads back [`Self::to_bytes`]; never panics on arbitrary input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BloomError> {
        if bytes.len() < HEADER_BYTES {
            return Err(BloomError::BadLength(format!(
                "{} bytes < header",
                bytes.len()
            )));
        }
        if &bytes[..4] != MAGIC {
            return Err(BloomError::BadMagic);
        }
        let hashes = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
        let bits = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        if hashes == 0 || hashes > HASHES_MAX || bits == 0 {
            return Err(BloomError::BadHeader(format!("k={hashes} m={bits}")));
        }
        let body = &bytes[HEADER_BYTES..];
        let words_expected = bits.div_ceil(64);
        if body.len() as u64 != words_expected.saturating_mul(8) {
            return Err(BloomError::BadLength(format!(
                "body has {} bytes, header declares {} bits",
                body.len(),
                bits
            )));
        }
        let words = body
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        Ok(Self {
            words,
            bits,
            hashes,
        })
    }
}

/// The hash of a key as the filter uses it: the two 64-bit halves of XXH3-128.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyHash {
    /// Low half: the first probe position.
    h1: u64,
    /// High half, forced odd so the probe sequence never collapses to a single bit
    /// when `h2 mod m == 0`: the probe stride.
    h2: u64,
}

impl KeyHash {
    /// Hashes `key`.
    pub fn of(key: &[u8]) -> Self {
        let h = xxh3_128(key);
        Self {
            h1: h as u64,
            h2: ((h >> 64) as u64) | 1,
        }
    }

    /// The bit positions of this key in a filter of `bits` bits probed
    /// `hashes` times (the one double-hashing rule, also used by filters
    /// that keep their bits elsewhere, such as the LSM's concurrent memtable
    /// filter).
    pub fn probes(self, hashes: u32, bits: u64) -> impl Iterator<Item = u64> {
        (0..u64::from(hashes)).map(move |i| probe(self.h1, self.h2, i, bits))
    }
}

/// Bit index of probe `i`.
fn probe(h1: u64, h2: u64, i: u64, bits: u64) -> u64 {
    h1.wrapping_add(i.wrapping_mul(h2)) % bits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizing_matches_the_textbook_formula() {
        let f = BloomFilter::with_rate(1000, 0.01);
        // 9585.06 bits, 7 probes.
        assert_eq!(f.bits(), 9586);
        assert_eq!(f.hashes(), 7);
    }

    #[test]
    fn serialized_form_is_stable() {
        let mut f = BloomFilter::with_params(64, 2);
        f.insert(b"a");
        let bytes = f.to_bytes();
        assert_eq!(&bytes[..4], b"BLM1");
        assert_eq!(bytes.len(), 16 + 8);
        assert_eq!(BloomFilter::from_bytes(&bytes).unwrap(), f);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(
            BloomFilter::from_bytes(b"xx"),
            Err(BloomError::BadLength("2 bytes < header".into()))
        );
        let mut bytes = BloomFilter::with_rate(10, 0.01).to_bytes();
        bytes[0] = b'X';
        assert_eq!(BloomFilter::from_bytes(&bytes), Err(BloomError::BadMagic));
        let mut bytes = BloomFilter::with_rate(10, 0.01).to_bytes();
        bytes.pop();
        assert!(matches!(
            BloomFilter::from_bytes(&bytes),
            Err(BloomError::BadLength(_))
        ));
    }
}
