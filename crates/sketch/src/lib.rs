//! Probabilistic and hashing sketches: bloom filter, later Merkle trees
//!
//! (Being built.)
#![warn(missing_docs)]
