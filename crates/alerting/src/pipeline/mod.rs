//! The queue-backed collection pipeline of the notes: collectors publish
//! samples to a `metrics` topic of the message queue (through `mqclient`,
//! so it runs on our broker, embedded or served, or on Kafka), and
//! ingesters consume them into the time-series database, committing their
//! offsets only once the samples are durable. A database outage then loses
//! nothing: the samples wait in the queue and the ingesters catch up.
//!
//! ```text
//!  collector ──Publisher──▶ topic `metrics` (key: metric name, or chosen labels)
//!                      └──▶ topic `metrics.priority` (important metrics)
//!                                   │ consumer group `ingest`
//!                                   ▼
//!            Ingester: poll priority first ─▶ Db::append + wait (WAL fsync) ─▶ commit
//! ```
//!
//! Why no duplicates after a crash: a batch polled but not committed is
//! delivered again (at-least-once), and tsdb ignores a sample identical to
//! one it holds, so replaying is idempotent; the result is exactly the
//! published samples, no gap and no double.

pub mod codec;
pub mod ingest;
pub mod publish;

/// The default topic.
pub const TOPIC: &str = "metrics";
/// The default priority topic.
pub const PRIORITY_TOPIC: &str = "metrics.priority";
