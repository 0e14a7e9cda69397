//! A Kafka-compatible log broker (vol. 2, "distributed message queue").
//!
//! (The design overview is written as the crate grows: storage in [`log`].)
#![warn(missing_docs)]

pub mod log;
