//! The inverted index: label pair → postings list (the sorted ids of the series
//! that carry the pair), and label matchers evaluated over it.
//!
//! Why a module: the chapter asks for fast queries by label over many series.
//! Scanning every series' labels per query is linear in the series count; with
//! postings a query `{job="api", code=~"5.."}` reads two short sorted lists
//! (the union of `code`'s matching values, and `job=api`) and intersects them.
//! The head and every block keep one [`Postings`]; the block writes it to disk
//! and reads it back. Selecting series from matchers is a pure function
//! ([`select`]) of the index, so it is tested once for both.

pub mod matcher;
pub mod postings;

pub use matcher::{MatchType, Matcher};
pub use postings::{Postings, intersect, select, subtract, union};
