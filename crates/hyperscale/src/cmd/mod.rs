//! One module per verb of the binary. Each exposes `Args` (clap) and `run`.

pub mod bench;
pub mod estimate;
pub mod gateway;
pub mod id;
pub mod kv;
pub mod mq;
pub mod ratelimit;
pub mod ring;
pub mod shortener;
pub mod up;
