//! The values that cross the [`crate::MqClient`] trait: what an application
//! sends ([`Record`], `mq`'s own record type), what it is told back ([`Delivery`]), how a consumer
//! is set up ([`ConsumerConfig`]) and the client's knobs ([`ClientOptions`]).

/// A record to produce: key (records with one key keep their order in one
/// partition), value, headers (metadata beside the value: trace ids, retry
/// counts) and an optional partition chosen by the caller. Build it with
/// `Record::new(value).key(k).header(name, v).partition(p)`.
pub use mq::client::producer::Outgoing as Record;

/// Where a produced record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Delivery {
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition (-1 when `acks = 0`: nobody said).
    pub offset: i64,
}

/// Where a group starts reading a partition it has no committed offset for
/// (Kafka's `auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartFrom {
    /// The oldest record kept: a new group sees what was produced before it
    /// first joined (the default here: an application's queue should not
    /// skip work produced while it was being deployed).
    #[default]
    Earliest,
    /// Only records produced from now on (Kafka's default).
    Latest,
}

/// How to consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// The consumer group (`None`: read every partition, commit nothing).
    pub group: Option<String>,
    /// The topics (at least one).
    pub topics: Vec<String>,
    /// Where to start without a committed offset.
    pub start: StartFrom,
    /// A member silent this long (no poll) is dropped and its partitions
    /// go to the others (the broker allows 6 s to 30 min).
    pub session_timeout_ms: u32,
}

impl ConsumerConfig {
    /// A member of `group` reading `topics`, from the earliest record.
    pub fn group(group: impl Into<String>, topics: &[&str]) -> ConsumerConfig {
        ConsumerConfig {
            group: Some(group.into()),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            start: StartFrom::Earliest,
            session_timeout_ms: 10_000,
        }
    }

    /// A reader of every partition of `topics`, without a group.
    pub fn no_group(topics: &[&str]) -> ConsumerConfig {
        ConsumerConfig {
            group: None,
            ..ConsumerConfig::group("", topics)
        }
    }
}

/// Knobs of both implementations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Acknowledgements a produce waits for: 0, 1 or -1 (all in-sync replicas).
    pub acks: i16,
    /// Largest record sent (`Record::size_bytes`); bigger ones are
    /// [`crate::Error::InvalidInput`] before anything is sent (Kafka's
    /// `max.request.size`, 1 MiB). The broker has its own limit
    /// (`message_max_bytes`), answered the same way.
    pub max_record_bytes: usize,
    /// Most records in one [`crate::MqClient::produce_batch`].
    pub max_batch_records: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            acks: -1,
            max_record_bytes: 1 << 20,
            max_batch_records: 10_000,
        }
    }
}
