//! The integration tests of `tsdb`, one binary (see ARCHITECTURE.md, "Tests").
// Tests may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod api_errors;
mod basic;
mod blocks;
mod chunk;
mod cold;
mod corruption;
mod crash;
mod downsampling;
mod promql_diff;
mod scrape;
mod support;
