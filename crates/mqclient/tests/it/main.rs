//! The integration tests of `mqclient`, one binary: the contract suite run
//! against both implementations ([`harness`] starts each), the retry
//! pattern end to end, and key routing checked against a real Kafka client.
// Tests may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod harness;

mod contract;
mod contract_groups;
mod retry;
mod routing;
