//! A Redis-compatible key-value server on a memory or LSM engine (ch. 6, cache tier of ch. 1)
//!
//! (Being built.)
#![warn(missing_docs)]
