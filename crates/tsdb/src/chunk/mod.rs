//! Chunks: runs of up to `chunk_samples_max` samples of one series, compressed
//! as in Facebook's Gorilla paper (and Prometheus's XOR chunks).
//!
//! Why a module: the chapter's storage layer names "encoding and compression" as
//! the first lever on storage cost, and samples are where the bytes go. Metric
//! samples are regular: scrape timestamps advance by an almost constant step, so
//! the *delta of deltas* is mostly 0 and costs one bit; and successive values of
//! a gauge or counter share sign, exponent and high mantissa bits, so XOR with
//! the previous value leaves a short run of meaningful bits, often none. A raw
//! sample is 16 bytes; a chunk of node-exporter-like data is around 1.3 bytes
//! per sample (`tests/it/chunk.rs` measures it).
//!
//! Values are stored bit for bit (`f64::to_bits`), so NaN payloads survive and
//! the Prometheus *stale marker* ([`STALE_NAN_BITS`]), a NaN with a payload,
//! stays distinguishable from an ordinary NaN.

pub mod bits;
pub mod decimal;
pub mod xor;

pub use xor::{XorAppender, XorIter, decode, encode};

/// Prometheus's staleness marker: a signalling NaN written when a series
/// disappears from a scrape; queries treat it as "no value from here on".
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// True if `v` is the staleness marker (not merely a NaN).
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// The staleness marker as a value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}
