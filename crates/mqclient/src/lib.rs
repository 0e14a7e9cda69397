//! The message-queue client applications use, with two implementations.
//!
//! The blueprint's third layer (the notification, chat, metrics and
//! ad-click systems) never touches the `mq` broker directly: it talks to
//! this small trait, [`MqClient`], so each application runs unchanged on an
//! in-process broker, on our broker over the network, or on a real Kafka
//! cluster when a user outgrows ours.
//!
//! - [`Embedded`]: an `mq` broker inside this process, the default. No
//!   socket: requests go straight to the broker's request handler. Its data
//!   directory is a normal broker's, so `hyperscale mq serve --data-dir` can
//!   later serve it, and inside `hyperscale up` it can share the served
//!   broker ([`Embedded::from_broker`]).
//! - [`Kafka`]: the Kafka wire protocol to any broker that speaks it, ours
//!   (`hyperscale mq serve`) or Apache Kafka / Redpanda.
//!
//! # The contract
//!
//! - **Topics** ([`MqClient::ensure_topic`]): created with a partition
//!   count if absent; producing to or subscribing to a missing topic is
//!   [`Error::UnknownTopic`] (no silent auto-creation: a typo should fail).
//! - **Produce** ([`MqClient::produce`], [`MqClient::produce_batch`]): a
//!   [`Record`] (key, value, headers, optional partition) is acknowledged
//!   by every in-sync replica (`acks=all`) and answered with its
//!   [`Delivery`] (partition, offset). A keyed record goes to
//!   `murmur2(key) mod partitions`, Kafka's default partitioner, so the same
//!   key lands in the same partition whichever Kafka client wrote it (Java,
//!   librdkafka with `murmur2_random`, kafka-python); unkeyed records go
//!   round-robin. Order is kept per partition, hence per key.
//! - **Consume** ([`MqClient::subscribe`] → [`Consumer`]): as a member of a
//!   consumer group, each partition read by one member; members split the
//!   partitions (range assignor) and rebalance when one joins, leaves or
//!   goes silent past its session timeout. [`Consumer::poll`] returns a
//!   batch or, after its timeout, nothing; [`Consumer::commit`] records
//!   that everything polled so far is done.
//! - **At-least-once by default**: nothing is committed behind the
//!   application's back. Process a batch, then commit: a crash between the
//!   two redelivers the batch to the next member (so handlers should be
//!   idempotent). Committing *before* processing gives at-most-once.
//!   Without a group ([`ConsumerConfig::group`] `None`) a consumer reads
//!   every partition and commits nothing.
//! - **Failures** ([`retry`]): a record whose processing fails goes to
//!   `<topic>.retry` with an attempt count and a not-before time, is
//!   re-delivered to `<topic>` by a retry worker after the delay, and after
//!   the last attempt lands in `<topic>.dlq` with the error text, so one bad
//!   record never blocks its partition.
//!
//! # Why the embedded broker goes through the request handler
//!
//! The group protocol is client-driven: a member joins, the group's leader
//! computes the assignment and the broker only relays it, and members
//! heartbeat to stay in. An embedded consumer must run that same dance
//! against the same coordinator, or a group could not mix embedded and
//! remote members and `hyperscale mq groups describe` would not see it.
//! So both implementations share one client (`mq::client`: producer,
//! group consumer, admin), and only its transport differs: a TCP socket,
//! or a call into `mq::api::handle` on an `Arc<mq::broker::Broker>` in this
//! process. The encode/decode that costs is microseconds next to an fsync,
//! and it buys one implementation of every rule, tested once by the
//! contract suite (`tests/it`) against both.
//!
//! # Why `mq::client` and not `rskafka`
//!
//! rskafka (the Rust Kafka client without C dependencies) has no consumer
//! groups: no JoinGroup/SyncGroup/Heartbeat and no OffsetCommit, which is
//! the heart of what applications need here. `mq::client` implements the
//! classic group protocol, speaks the broker's own codecs, and answers
//! through ApiVersions with versions real Kafka brokers also serve.
//!
//! # Trade-offs and knobs
//!
//! - One request at a time per client for produces (one connection, like
//!   the Kafka protocol's ordering per connection); use
//!   [`MqClient::produce_batch`] for throughput. Each consumer has its own
//!   connection, so a long poll never delays a produce.
//! - A connection that fails is [`Error::Unavailable`] and is reopened on
//!   the next call; a consumer whose connection failed rejoins its group and
//!   resumes from the committed offsets (records polled but not committed
//!   come again: at-least-once).
//! - [`ClientOptions`]: `acks`, the largest record accepted before sending
//!   (`max_record_bytes`, Kafka's `max.request.size`), request timeouts.
//! - A member that drops its [`Consumer`] without [`Consumer::close`] stays
//!   in the group until its session timeout; `close` leaves at once.
#![warn(missing_docs)]

pub mod embedded;
pub mod kafka;
pub mod retry;
mod types;
mod validate;
mod wire;

pub use embedded::Embedded;
pub use kafka::Kafka;
pub use mq::client::consumer::Message;
pub use types::{ClientOptions, ConsumerConfig, Delivery, Record, StartFrom};

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future, so [`MqClient`] can be used as `Arc<dyn MqClient>` and an
/// application can pick the implementation at run time.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a queue operation can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The caller's input is wrong (a bad topic or group name, a record
    /// larger than allowed, a partition that does not exist): retrying the
    /// same call fails again.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The topic does not exist (create it with [`MqClient::ensure_topic`]).
    #[error("unknown topic: {0}")]
    UnknownTopic(String),
    /// The broker cannot be reached or did not answer in time; try later.
    #[error("message queue unavailable: {0}")]
    Unavailable(String),
    /// The broker answered with another Kafka error code.
    #[error("broker error {code}: {message}")]
    Broker {
        /// The Kafka error code.
        code: i16,
        /// What failed.
        message: String,
    },
}

/// Result of a queue operation.
pub type Result<T> = std::result::Result<T, Error>;

/// The operations applications need from a message queue. See the crate doc.
pub trait MqClient: Send + Sync {
    /// Creates `topic` with `partitions` partitions if it does not exist;
    /// returns how many partitions it has (an existing topic keeps its own
    /// count).
    fn ensure_topic<'a>(&'a self, topic: &'a str, partitions: i32) -> BoxFuture<'a, Result<i32>>;

    /// Appends one record to `topic` and returns where it landed.
    fn produce<'a>(&'a self, topic: &'a str, record: Record) -> BoxFuture<'a, Result<Delivery>> {
        Box::pin(async move {
            let mut placed = self.produce_batch(topic, vec![record]).await?;
            placed
                .pop()
                .ok_or_else(|| Error::Unavailable("the broker placed no record".into()))
        })
    }

    /// Appends records to `topic` (one request per partition leader) and
    /// returns where each landed, in the order given.
    fn produce_batch<'a>(
        &'a self,
        topic: &'a str,
        records: Vec<Record>,
    ) -> BoxFuture<'a, Result<Vec<Delivery>>>;

    /// Joins `config.group` (if any) reading `config.topics`, and returns
    /// the consumer once it has its partitions and start offsets.
    fn subscribe(&self, config: ConsumerConfig) -> BoxFuture<'_, Result<Box<dyn Consumer>>>;
}

/// A member of a consumer group (or a group-less reader of whole topics).
pub trait Consumer: Send {
    /// The next records of the assigned partitions, in offset order per
    /// partition, waiting up to `timeout` for some: empty when none came.
    /// Also keeps the membership alive (poll at least once per session
    /// timeout) and follows rebalances.
    fn poll(&mut self, timeout: Duration) -> BoxFuture<'_, Result<Vec<Message>>>;

    /// Commits the current positions (past everything polled, unless
    /// [`Consumer::seek`] moved them): call it after processing. It fails
    /// when the group rebalanced meanwhile ([`Error::Broker`]); the member
    /// then rejoins on its next poll and the uncommitted records come again
    /// (to it or to their partition's new owner): keep polling.
    fn commit(&mut self) -> BoxFuture<'_, Result<()>>;

    /// Moves the position of an assigned partition: the next poll reads
    /// from `offset` (an offset past the log is reset like a missing commit).
    fn seek(&mut self, topic: &str, partition: i32, offset: i64) -> Result<()>;

    /// The next offset to read from an assigned partition.
    fn position(&self, topic: &str, partition: i32) -> Option<i64>;

    /// The (topic, partition) pairs assigned to this member now.
    fn assignment(&self) -> Vec<(String, i32)>;

    /// Leaves the group so the others take over at once. It commits
    /// nothing: [`Consumer::commit`] what was processed first.
    fn close(self: Box<Self>) -> BoxFuture<'static, Result<()>>;
}

/// How long [`Consumer::poll`] may be asked to wait at most (the broker's
/// `fetch_max_wait_ms` bounds it too).
pub const POLL_TIMEOUT_MAX: Duration = Duration::from_secs(30);
