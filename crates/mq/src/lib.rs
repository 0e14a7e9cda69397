//! A Kafka-compatible log broker (vol. 2, "distributed message queue").
//!
//! Unmodified Kafka clients (librdkafka/kcat, rskafka, kafka-python) produce
//! to and consume from it: it speaks the Kafka wire protocol, so a system
//! built on it moves to a real Kafka cluster by changing an address.
//!
//! # The chapter's design, as built
//!
//! - **Topics, partitions, brokers.** A topic is split into partitions
//!   (the notes' sharding: capacity grows with the partition count); each
//!   partition is an ordered, append-only log where a message is found by
//!   (topic, partition, offset). One broker may hold them all, or a
//!   cluster of brokers ([`cluster`]) spreads and replicates them: an
//!   elected controller (Raft) holds the metadata, followers pull from
//!   partition leaders, the high watermark is what every in-sync replica
//!   holds, `acks=all` waits for it, and a dead leader is replaced by an
//!   in-sync replica.
//! - **Data store: a write-ahead log, not a database.** Traffic is
//!   sequential reads and writes with no updates or deletes, so each
//!   partition is a directory of segment files appended to in order
//!   ([`log`], written by the storage side), with the fsync policy as the
//!   latency/durability knob (`fsync = always | interval | os`).
//! - **A message format that never changes in transit.** Producers send v2
//!   record batches (key, value, timestamp, headers, CRC-32C, compression);
//!   the broker checks the CRC and stores the batch byte for byte, only
//!   assigning offsets, and consumers receive the same bytes: no
//!   re-encoding, batching end to end (the notes' batching argument).
//! - **Pull with long polling.** Consumers pull at their own pace; a Fetch
//!   that finds nothing waits until data arrives or `max_wait_ms` passes
//!   ([`api::fetch`]).
//! - **Consumer groups.** Within a group each partition is read by one
//!   consumer; the coordinator ([`group`]) runs the join/sync/heartbeat
//!   protocol, the group's leader computes the assignment client-side and
//!   the broker relays it. A member that leaves or stops heartbeating
//!   triggers a rebalance. A group's lag (end offset minus committed
//!   offset, per partition) is what an operator watches: ListGroups and
//!   DescribeGroups ([`api::admin`]) answer `hyperscale mq groups describe`,
//!   and `/metrics` carries it as `mq_consumer_lag`.
//! - **State store and metadata store.** Committed offsets
//!   ([`group::offsets`]) and topic metadata ([`topics`]) are small,
//!   consistency-critical and rarely large: each is kept in small files
//!   replaced atomically ([`durable`]), where the book uses ZooKeeper and
//!   Kafka now uses its own internal topics. In a cluster the metadata is
//!   the controller quorum's replicated log ([`cluster::metadata`]), and
//!   committed offsets are records of the compacted internal topic
//!   `__consumer_offsets` ([`group::offsets_log`],
//!   [`cluster::offsets_topic`]), as in Kafka: a group's coordinator is the
//!   leader of the group's partition of it, commits wait for every in-sync
//!   replica, and a new leader replays the partition into its offsets table
//!   before serving, so a group keeps its position when its coordinator
//!   dies. A single broker keeps the file per group: with no replica to
//!   fail over to, the log would add a load step and an internal topic for
//!   nothing.
//! - **Delivery semantics** come from the clients: `acks=0` is at-most-once
//!   (no answer is even sent), `acks=1`/`all` with retries at-least-once;
//!   committing before or after processing does the same on the consumer
//!   side. Exactly-once produce comes from the idempotent producer
//!   ([`idempotence`]): InitProducerId hands out producer ids, and each
//!   partition drops retried batches and refuses sequence gaps and fenced
//!   epochs. Transactions are not served yet.
//!
//! # Trade-offs
//!
//! - Kafka's protocol, not our own: clients and tools exist in every
//!   language, at the price of its versioned encodings, handled by the
//!   `kafka-protocol` crate (patched: see `vendor/kafka-protocol/PATCHED.md`).
//!   We advertise the non-flexible versions ([`versions`]); clients pick
//!   them through ApiVersions.
//! - One request at a time per connection, in order, as Kafka brokers do:
//!   simple and correct for pipelining clients; parallelism comes from
//!   connections and partitions.
//! - Storage calls (which may fsync) never run on async workers: every one
//!   goes through `spawn_blocking` ([`partition`]).
//! - Everything a client sends is bounded before it is used: frame size
//!   (`socket_request_max_bytes`) and request memory over all connections
//!   (`queued_max_request_bytes`), batch size (`message_max_bytes`), fetch
//!   size and wait, topics, partitions, groups, members, connections.
//! - Authentication (SASL/PLAIN) is not implemented yet: the broker binds
//!   127.0.0.1 by default.
//!
//! # Layers
//!
//! [`frame`] (length-prefixed frames) → [`api`] (decode, dispatch, encode)
//! → [`broker`] (shared state: [`topics`], [`partition`], [`group`], and
//! in a cluster [`cluster`]) → [`log`] (storage). [`server`] runs it all; [`client`] is the small Kafka
//! client of `hyperscale mq topics|produce|consume|groups` and of the `mqclient` crate (over TCP, or
//! in-process straight into [`api::handle`] for an embedded broker); [`config`] and [`metrics`]
//! plug it into the `service` crate like every Hyperscale system.
#![warn(missing_docs)]

pub mod api;
pub mod broker;
pub mod client;
pub mod cluster;
pub mod config;
pub mod durable;
pub mod frame;
pub mod group;
pub mod idempotence;
pub mod log;
pub mod metrics;
pub mod partition;
pub mod server;
pub mod topics;
pub mod versions;

pub use config::Config;
pub use metrics::Metrics;
pub use server::{Server, serve};

/// How `hyperscale up` and the console describe this system.
pub fn info(endpoint: &str) -> service::SystemInfo {
    service::SystemInfo {
        name: "mq".into(),
        title: "Message queue (Kafka protocol)".into(),
        chapter: "vol. 2 distributed message queue".into(),
        protocol: "Kafka".into(),
        endpoint: endpoint.into(),
        link: None,
    }
}
