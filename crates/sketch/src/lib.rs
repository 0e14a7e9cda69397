//! Probabilistic and hashing sketches: the bloom filter of the key-value store chapter,
//! Redis's HyperLogLog (distinct counts in 12 KB, byte-compatible with Redis: see [`hll`]),
//! and the Merkle tree the key-value cluster's anti-entropy compares replicas with (see
//! [`merkle`]).
//!
//! The key-value chapter's read path goes "memory → bloom filter → SSTable": before an
//! SSTable is touched on disk, a small in-memory bit array answers "this table surely does
//! not hold the key" or "it may". A bloom filter never answers "no" for a key that was
//! inserted (no false negatives) and answers "maybe" for an absent key with a tunable
//! probability, the false-positive (FP) rate. See [`bloom`] for the sizing math and the
//! stable on-disk form the `lsm` crate embeds in every SSTable.
//!
//! Everything here is pure and deterministic: no I/O, no clocks, no randomness, so the
//! same inputs give the same bytes on every machine.
#![warn(missing_docs)]

pub mod bloom;
pub mod hll;
pub mod merkle;

pub use bloom::{BloomError, BloomFilter, KeyHash};
pub use hll::{Hll, HllError};
pub use merkle::{MerkleError, MerkleTree};
