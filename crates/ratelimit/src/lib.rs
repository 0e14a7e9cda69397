//! The five rate-limiting algorithms, rules on disk, counter stores and a tower layer (ch. 4)
//!
//! (Being built.)
#![warn(missing_docs)]
