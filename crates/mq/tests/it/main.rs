//! The integration tests of `mq`, one binary: each module was a test binary
//! of its own; one link instead of 15 keeps CI's disk and build time small.
// Tests may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod broker_support;
mod cluster_support;
mod log_support;

mod broker_bad_input;
mod broker_groups_admin;
mod broker_kcat;
mod broker_rskafka;
mod broker_versions;
mod cluster_failover;
mod cluster_kcat;
mod cluster_offsets;
mod cluster_replicas;
mod example;
mod log_basic;
mod log_compaction;
mod log_crash;
mod log_model;
mod log_recovery;
mod log_segments;
