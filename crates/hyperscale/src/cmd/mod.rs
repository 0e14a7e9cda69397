//! One module per verb of the binary. Each exposes `Args` (clap) and `run`;
//! `serve` holds what the systems' `serve` subcommands share.

pub mod alerts;
pub mod bench;
pub mod crawler;
pub mod estimate;
pub mod gateway;
pub mod hotel;
pub mod id;
pub mod kv;
pub mod kv_cluster;
pub mod metrics;
pub mod metrics_config;
pub mod metrics_pipeline;
pub mod metrics_query;
pub mod mq;
pub mod ratelimit;
pub mod ring;
pub mod s3;
pub mod s3_cluster;
pub mod serve;
pub mod shortener;
pub mod up;
pub mod up_hotel;
pub mod up_scale;
pub mod up_scale_plan;
pub mod up_scale_switch;
pub mod up_scale_web;
