//! The integration tests of `hyperscale`, one binary: each module was a test binary
//! of its own; one link instead of 6 keeps CI's disk and build time small.
// Tests may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

mod bench_metrics;
mod bench_mq;
mod closed_pipe;
mod crawler_cli;
mod hotel_cli;
mod hotel_saga;
mod id_serve;
mod kv_busy;
mod kv_cluster;
mod kv_cluster_crdt;
mod kv_cluster_membership;
mod kv_locked_dir;
mod metrics_config;
mod metrics_scrape;
mod mq_cli;
mod mq_retry;
mod s3_bench;
mod s3_clients;
mod s3_copy_vhost;
mod s3_crash;
mod s3_datanodes;
mod s3_harness;
mod s3_policy;
mod up;
mod up_alerting;
mod up_hotel;
mod up_metrics;
mod up_scale;
