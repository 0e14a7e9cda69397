//! crawler (temporary header)
#![warn(missing_docs)]

pub mod crawl;
pub mod dns;
pub mod fetch;
pub mod frontier;
pub mod normalize;
pub mod parse;
pub mod politeness;
pub mod prioritize;
pub mod robots;
pub mod seen;
pub mod simhash;
pub mod state;
pub mod stats;
pub mod store;
pub mod testweb;
pub mod traps;
