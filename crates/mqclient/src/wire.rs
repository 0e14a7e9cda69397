//! The one implementation behind both [`crate::Kafka`] and
//! [`crate::Embedded`]: `mq::client` (producer, group consumer, admin) over
//! a [`Connector`], a TCP bootstrap address or a broker in this process.
//!
//! Producing shares one session (a `Client` and a `Producer` per topic,
//! behind an async lock) per [`Wire`]; each consumer has its own session,
//! so a long poll never holds up a produce. A session that fails with
//! anything but bad input is dropped and reopened on the next call: a
//! producer's topic metadata is refreshed, and a consumer rejoins its group
//! and resumes from the committed offsets.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use mq::broker::Broker;
use mq::client::consumer::{ConsumeOptions, Consumer as GroupConsumer};
use mq::client::producer::Producer;
use mq::client::{Client, error_code};
use tokio::sync::Mutex;

use crate::validate::{self, classify};
use crate::{
    BoxFuture, ClientOptions, Consumer, ConsumerConfig, Delivery, Error, Message, POLL_TIMEOUT_MAX,
    Record, Result, StartFrom,
};

/// UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, TOPIC_ALREADY_EXISTS.
const UNKNOWN_TOPIC: i16 = 3;
const LEADER_NOT_AVAILABLE: i16 = 5;
const TOPIC_ALREADY_EXISTS: i16 = 36;
/// How long a new topic may take to show up with leaders in the metadata.
const TOPIC_READY_WAIT: Duration = Duration::from_secs(10);
/// How long a consumer that failed may take to leave its group.
const LEAVE_WAIT: Duration = Duration::from_secs(2);

/// How a session reaches its broker.
#[derive(Clone)]
pub(crate) enum Connector {
    /// A bootstrap address (HOST:PORT) of any Kafka-protocol broker.
    Tcp(String),
    /// A broker in this process.
    Local(Arc<Broker>),
}

impl Connector {
    async fn connect(&self) -> Result<Client> {
        let connected = match self {
            Connector::Tcp(addr) => Client::connect(addr).await,
            Connector::Local(broker) => Client::local(broker.clone()).await,
        };
        connected.map_err(|err| classify(&err))
    }
}

struct Session {
    client: Client,
    producers: HashMap<String, Producer>,
}

/// The shared producing session and what consumers are made from.
pub(crate) struct Wire {
    connector: Connector,
    options: ClientOptions,
    session: Mutex<Option<Session>>,
}

/// Implements [`crate::MqClient`] for a type with a `wire: Wire` field:
/// [`crate::Kafka`] and [`crate::Embedded`] differ only in their connector.
macro_rules! delegate_to_wire {
    ($client:ty) => {
        impl $crate::MqClient for $client {
            fn ensure_topic<'a>(
                &'a self,
                topic: &'a str,
                partitions: i32,
            ) -> $crate::BoxFuture<'a, $crate::Result<i32>> {
                Box::pin(self.wire.ensure_topic(topic, partitions))
            }

            fn produce_batch<'a>(
                &'a self,
                topic: &'a str,
                records: Vec<$crate::Record>,
            ) -> $crate::BoxFuture<'a, $crate::Result<Vec<$crate::Delivery>>> {
                Box::pin(self.wire.produce_batch(topic, records))
            }

            fn subscribe(
                &self,
                config: $crate::ConsumerConfig,
            ) -> $crate::BoxFuture<'_, $crate::Result<Box<dyn $crate::Consumer>>> {
                Box::pin(self.wire.subscribe(config))
            }
        }
    };
}
pub(crate) use delegate_to_wire;

/// Keeps `session` unless `outcome` failed for a reason other than bad input.
fn settle<T>(session: &mut Option<Session>, outcome: Result<T>) -> Result<T> {
    if matches!(&outcome, Err(err) if !matches!(err, Error::InvalidInput(_))) {
        *session = None;
    }
    outcome
}

impl Wire {
    pub(crate) fn new(connector: Connector, options: ClientOptions) -> Wire {
        Wire {
            connector,
            options,
            session: Mutex::new(None),
        }
    }

    async fn open<'s>(&self, slot: &'s mut Option<Session>) -> Result<&'s mut Session> {
        if slot.is_none() {
            let client = self.connector.connect().await?;
            *slot = Some(Session {
                client,
                producers: HashMap::new(),
            });
        }
        slot.as_mut()
            .ok_or_else(|| Error::Unavailable("no session".into()))
    }

    /// Opens the producing session now (to fail early when unreachable).
    pub(crate) async fn check(&self) -> Result<()> {
        let mut slot = self.session.lock().await;
        self.open(&mut slot).await.map(|_| ())
    }

    pub(crate) async fn ensure_topic(&self, topic: &str, partitions: i32) -> Result<i32> {
        validate::topic(topic)?;
        validate::partitions(partitions)?;
        let mut slot = self.session.lock().await;
        let session = self.open(&mut slot).await?;
        session.producers.remove(topic);
        let outcome = ensure(&mut session.client, topic, partitions).await;
        settle(&mut slot, outcome)
    }

    pub(crate) async fn produce_batch(
        &self,
        topic: &str,
        records: Vec<Record>,
    ) -> Result<Vec<Delivery>> {
        validate::topic(topic)?;
        validate::records(&records, &self.options)?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut slot = self.session.lock().await;
        let session = self.open(&mut slot).await?;
        let outcome = produce(session, topic, records, self.options.acks).await;
        if outcome.is_err() {
            // Metadata may be stale (a moved leader, a recreated topic).
            session.producers.remove(topic);
        }
        settle(&mut slot, outcome)
    }

    pub(crate) async fn subscribe(&self, config: ConsumerConfig) -> Result<Box<dyn Consumer>> {
        validate::consumer(&config)?;
        let mut consumer = WireConsumer {
            connector: self.connector.clone(),
            config,
            live: None,
        };
        consumer.live().await?;
        Ok(Box::new(consumer))
    }
}

/// Creates `topic` unless it exists, then waits until every partition has
/// a leader; returns the partition count.
async fn ensure(client: &mut Client, topic: &str, partitions: i32) -> Result<i32> {
    let count =
        |found: &[mq::client::PartitionInfo]| i32::try_from(found.len()).unwrap_or(i32::MAX);
    match client.partitions(topic).await {
        Ok(found) if found.iter().all(|p| p.leader >= 0) => return Ok(count(&found)),
        Ok(_) => {}
        Err(err) if error_code(&err) == Some(UNKNOWN_TOPIC) => {
            match client
                .create_topic(topic, partitions, &BTreeMap::new())
                .await
            {
                Ok(()) => {}
                Err(err) if error_code(&err) == Some(TOPIC_ALREADY_EXISTS) => {}
                Err(err) => return Err(classify(&err)),
            }
        }
        Err(err) => return Err(classify(&err)),
    }
    // A cluster's metadata may trail the creation by a moment.
    let deadline = tokio::time::Instant::now() + TOPIC_READY_WAIT;
    loop {
        match client.partitions(topic).await {
            Ok(found) if !found.is_empty() && found.iter().all(|p| p.leader >= 0) => {
                return Ok(count(&found));
            }
            Ok(_) => {}
            Err(err) if matches!(error_code(&err), Some(UNKNOWN_TOPIC | LEADER_NOT_AVAILABLE)) => {}
            Err(err) => return Err(classify(&err)),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Unavailable(format!(
                "topic {topic} has no leader for every partition after {TOPIC_READY_WAIT:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn produce(
    session: &mut Session,
    topic: &str,
    records: Vec<Record>,
    acks: i16,
) -> Result<Vec<Delivery>> {
    if !session.producers.contains_key(topic) {
        let producer = Producer::new(&mut session.client, topic, acks)
            .await
            .map_err(|err| classify(&err))?;
        session.producers.insert(topic.to_string(), producer);
    }
    let producer = session
        .producers
        .get_mut(topic)
        .ok_or_else(|| Error::Unavailable("producer lost".into()))?;
    let count = producer.partition_count();
    if let Some(p) = records
        .iter()
        .filter_map(|r| r.partition)
        .find(|&p| usize::try_from(p).map_or(true, |p| p >= count))
    {
        return Err(Error::InvalidInput(format!(
            "partition {p} does not exist: topic {topic} has {count}"
        )));
    }
    let placed = producer
        .send_each(&mut session.client, &records, None)
        .await
        .map_err(|err| classify(&err))?;
    Ok(placed
        .into_iter()
        .map(|(partition, offset)| Delivery { partition, offset })
        .collect())
}

/// A [`Consumer`] over `mq::client`'s group consumer, with its own session.
struct WireConsumer {
    connector: Connector,
    config: ConsumerConfig,
    live: Option<(Client, GroupConsumer)>,
}

impl WireConsumer {
    /// The running consumer, (re)joining first if the last call failed.
    async fn live(&mut self) -> Result<&mut (Client, GroupConsumer)> {
        if self.live.is_none() {
            let mut client = self.connector.connect().await?;
            let options = ConsumeOptions {
                topics: self.config.topics.clone(),
                group: self.config.group.clone(),
                from_beginning: self.config.start == StartFrom::Earliest,
                session_timeout_ms: i32::try_from(self.config.session_timeout_ms)
                    .unwrap_or(i32::MAX),
                ..ConsumeOptions::default()
            };
            let consumer = GroupConsumer::start(&mut client, options)
                .await
                .map_err(|err| classify(&err))?;
            self.live = Some((client, consumer));
        }
        self.live
            .as_mut()
            .ok_or_else(|| Error::Unavailable("consumer lost".into()))
    }

    /// After a failure: leave the group if the broker still listens (so
    /// the rejoin does not wait out the old membership), then forget it.
    async fn fail(&mut self, err: Error) -> Error {
        if matches!(err, Error::InvalidInput(_)) {
            return err;
        }
        if let Some((mut client, consumer)) = self.live.take() {
            let _ = tokio::time::timeout(LEAVE_WAIT, consumer.leave(&mut client)).await;
        }
        err
    }
}

impl Consumer for WireConsumer {
    fn poll(&mut self, timeout: Duration) -> BoxFuture<'_, Result<Vec<Message>>> {
        Box::pin(async move {
            let timeout = timeout.min(POLL_TIMEOUT_MAX);
            let (client, consumer) = self.live().await?;
            match consumer.poll_for(client, timeout).await {
                Ok(messages) => Ok(messages),
                Err(err) => Err(self.fail(classify(&err)).await),
            }
        })
    }

    fn commit(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let Some((client, consumer)) = self.live.as_mut() else {
                return Err(Error::Unavailable(
                    "the consumer lost its group after an error: poll again to rejoin".into(),
                ));
            };
            match consumer.commit(client).await {
                Ok(()) => Ok(()),
                Err(err) => Err(self.fail(classify(&err)).await),
            }
        })
    }

    fn seek(&mut self, topic: &str, partition: i32, offset: i64) -> Result<()> {
        let Some((_, consumer)) = self.live.as_mut() else {
            return Err(Error::Unavailable(
                "the consumer lost its group after an error: poll again to rejoin".into(),
            ));
        };
        consumer
            .seek(topic, partition, offset)
            .map_err(|err| Error::InvalidInput(err.to_string()))
    }

    fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.live.as_ref()?.1.position(topic, partition)
    }

    fn assignment(&self) -> Vec<(String, i32)> {
        self.live
            .as_ref()
            .map(|(_, consumer)| consumer.assigned())
            .unwrap_or_default()
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move {
            let Some((mut client, consumer)) = self.live else {
                return Ok(());
            };
            consumer
                .leave(&mut client)
                .await
                .map_err(|err| classify(&err))
        })
    }
}
