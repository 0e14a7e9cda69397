//! Snowflake unique IDs for distributed systems (ch. 7)
//!
//! (Being built.)
#![warn(missing_docs)]
