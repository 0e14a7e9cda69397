//! Consistent hashing: the hash ring, virtual nodes and preference lists (System Design Interview, ch. 5)
//!
//! (Being built.)
#![warn(missing_docs)]
