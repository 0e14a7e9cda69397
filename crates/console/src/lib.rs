//! The web console of hyperscale up: every system with its health and endpoint
//!
//! (Being built.)
#![warn(missing_docs)]
