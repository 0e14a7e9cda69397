//! Back-of-the-envelope estimation: QPS, storage, the nines and latency numbers (ch. 2)
//!
//! (Being built.)
#![warn(missing_docs)]
