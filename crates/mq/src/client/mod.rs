//! A small Kafka client: what `hyperscale mq topics|produce|consume|groups`
//! need, over the same codecs (`kafka-protocol`) and framing ([`crate::frame`])
//! as the broker, so the shell tools work against this broker or a real Kafka.
//!
//! Why not `rskafka`: it has no consumer groups (JoinGroup, OffsetCommit),
//! no ListGroups/DescribeGroups and no topic configs on creation, which
//! is most of what an operator's tool does. The client is deliberately
//! simple: one request at a time per connection, a connection per broker,
//! requests routed to the partition leader or group coordinator that
//! Metadata and FindCoordinator name.
//!
//! Versions: on connecting, ApiVersions (v0, which every broker answers)
//! gives the broker's ranges; each request then uses the highest version
//! both sides know, "our side" being [`crate::versions::SUPPORTED`]: the
//! client reads and writes exactly the versions the broker's handlers were
//! written against.
//!
//! Transport: a [`Connection`] is a TCP socket to a broker, or a link to a
//! [`Broker`] in this process ([`Client::local`]): the same encoded
//! requests go through [`crate::api::handle`] without a socket, so an
//! embedded broker is driven by exactly the code remote clients use.
//!
//! Errors: a broker's error code becomes a [`KafkaError`] inside the
//! `anyhow::Error` (callers that must tell "message too large" from "broker
//! down" downcast to it); everything else is a transport or protocol error.
//!
//! Modules: [`admin`] (topics and groups), [`producer`], [`consumer`].

pub mod admin;
pub mod consumer;
pub mod producer;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::{Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::BufStream;
use tokio::net::TcpStream;

use crate::api::Outcome;
use crate::api::meta::topic_name;
use crate::broker::Broker;
use crate::frame::{read_response, write_frame};
use crate::versions::SUPPORTED;

/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request may wait for its answer (on top of any wait it asks for).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response accepted (a fetch asks for much less).
pub const RESPONSE_MAX_BYTES: usize = 128 << 20;
/// The client id this client sends.
pub const CLIENT_ID: &str = "hyperscale-mq";

/// A broker answered with a Kafka error code: what failed and the code
/// (downcast an `anyhow::Error` to it to act on the code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaError {
    /// The Kafka error code (e.g. 10, MESSAGE_TOO_LARGE).
    pub code: i16,
    /// What failed, the error's name and the broker's message if it sent one.
    pub text: String,
}

impl std::fmt::Display for KafkaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for KafkaError {}

/// Turns a Kafka error code into an error naming `what` failed, or Ok for 0.
pub fn check_code(code: i16, what: &str) -> anyhow::Result<()> {
    check_code_with(code, None, what)
}

/// Like [`check_code`], with the broker's `error_message` appended when it sent one.
pub fn check_code_with(code: i16, message: Option<&StrBytes>, what: &str) -> anyhow::Result<()> {
    let Some(error) = ResponseError::try_from_code(code) else {
        return Ok(());
    };
    let mut text = format!("{what}: {error} (Kafka error {code})");
    if let Some(message) = message {
        text.push_str(&format!(": {message}"));
    }
    Err(KafkaError { code, text }.into())
}

/// The Kafka error code inside `error`, if a broker's answer caused it.
pub fn error_code(error: &anyhow::Error) -> Option<i16> {
    error.downcast_ref::<KafkaError>().map(|e| e.code)
}

/// The version to use for an API: the highest both sides speak.
pub fn pick_version(ours: (i16, i16), theirs: (i16, i16)) -> Option<i16> {
    let (low, high) = (ours.0.max(theirs.0), ours.1.min(theirs.1));
    (low <= high).then_some(high)
}

/// How requests reach the broker.
enum Link {
    /// A socket.
    Tcp(BufStream<TcpStream>),
    /// A broker in this process: frames go to its request handler directly.
    Local(Arc<Broker>),
}

/// One connection to one broker.
pub struct Connection {
    addr: String,
    link: Link,
    next_correlation_id: i32,
    versions: HashMap<i16, (i16, i16)>,
}

impl Connection {
    /// Connects to `addr` (HOST:PORT) and learns its API versions.
    pub async fn connect(addr: &str) -> anyhow::Result<Connection> {
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => bail!(
                "cannot reach a Kafka broker at {addr}: {err} (start one with `hyperscale mq serve`, or give --bootstrap HOST:PORT)"
            ),
            Err(_) => bail!("no answer from {addr} within {CONNECT_TIMEOUT:?}"),
        };
        let _ = stream.set_nodelay(true);
        Connection::open(addr, Link::Tcp(BufStream::new(stream))).await
    }

    /// A connection to `broker`, in this process (no socket).
    pub async fn local(broker: Arc<Broker>) -> anyhow::Result<Connection> {
        let addr = format!("in-process broker {}", broker.config.broker_id);
        Connection::open(&addr, Link::Local(broker)).await
    }

    async fn open(addr: &str, link: Link) -> anyhow::Result<Connection> {
        let mut connection = Connection {
            addr: addr.to_string(),
            link,
            next_correlation_id: 0,
            versions: HashMap::new(),
        };
        let answer: ApiVersionsResponse = connection
            .exchange(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default())
            .await?;
        check_code(answer.error_code, &format!("ApiVersions at {addr}"))?;
        connection.versions = answer
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(connection)
    }

    /// The broker's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The version this connection uses for `key`, if both sides speak one.
    pub fn version(&self, key: ApiKey) -> Option<i16> {
        let ours = SUPPORTED
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|&(_, min, max)| (min, max))?;
        pick_version(ours, *self.versions.get(&(key as i16))?)
    }

    fn version_or_error(&self, key: ApiKey) -> anyhow::Result<i16> {
        self.version(key).ok_or_else(|| {
            anyhow!(
                "the broker at {} speaks no version of {key:?} this client knows",
                self.addr
            )
        })
    }

    /// Sends `request` and waits for its answer (at most `extra_wait` more
    /// than [`REQUEST_TIMEOUT`]).
    pub async fn send<R: Request>(
        &mut self,
        request: &R,
        extra_wait: Duration,
    ) -> anyhow::Result<R::Response> {
        let key = ApiKey::try_from(R::KEY).map_err(|()| anyhow!("unknown api key {}", R::KEY))?;
        let version = self.version_or_error(key)?;
        tokio::time::timeout(
            REQUEST_TIMEOUT + extra_wait,
            self.exchange(key, version, request),
        )
        .await
        .map_err(|_| anyhow!("{key:?} to {} timed out", self.addr))?
    }

    /// Sends `request` without waiting for an answer (Produce with acks=0).
    pub async fn send_only<R: Request>(&mut self, request: &R) -> anyhow::Result<()> {
        let key = ApiKey::try_from(R::KEY).map_err(|()| anyhow!("unknown api key {}", R::KEY))?;
        let version = self.version_or_error(key)?;
        let (_, frame) = self.encode(key, version, request)?;
        match &mut self.link {
            Link::Tcp(stream) => write_frame(stream, &frame)
                .await
                .with_context(|| format!("lost the connection to {}", self.addr)),
            Link::Local(broker) => match crate::api::handle(broker, frame.freeze()).await {
                Outcome::Close(reason) => bail!("{} refused the request: {reason}", self.addr),
                Outcome::Respond(_) | Outcome::Silent => Ok(()),
            },
        }
    }

    /// A request frame (header and body) and its correlation id.
    fn encode<T: Encodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        request: &T,
    ) -> anyhow::Result<(i32, BytesMut)> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, key.request_header_version(version))
            .and_then(|()| request.encode(&mut buf, version))
            .with_context(|| format!("cannot encode {key:?} v{version}"))?;
        Ok((correlation_id, buf))
    }

    /// Sends a frame and returns the answer's frame.
    async fn round_trip(
        &mut self,
        key: ApiKey,
        version: i16,
        frame: BytesMut,
    ) -> anyhow::Result<Bytes> {
        let closed = || {
            format!(
                "the broker at {} closed the connection on {key:?} v{version}",
                self.addr
            )
        };
        match &mut self.link {
            Link::Tcp(stream) => {
                write_frame(stream, &frame)
                    .await
                    .with_context(|| format!("lost the connection to {}", self.addr))?;
                read_response(stream, RESPONSE_MAX_BYTES)
                    .await
                    .with_context(closed)
            }
            Link::Local(broker) => match crate::api::handle(broker, frame.freeze()).await {
                Outcome::Respond(body) => Ok(body),
                Outcome::Silent => bail!("{}: no answer", closed()),
                Outcome::Close(reason) => bail!("{}: {reason}", closed()),
            },
        }
    }

    async fn exchange<T: Encodable, A: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        request: &T,
    ) -> anyhow::Result<A> {
        let (correlation_id, frame) = self.encode(key, version, request)?;
        let mut body = self.round_trip(key, version, frame).await?;
        let header = ResponseHeader::decode(&mut body, key.response_header_version(version))
            .with_context(|| format!("malformed {key:?} response header"))?;
        if header.correlation_id != correlation_id {
            bail!(
                "{} answered request {} instead of {correlation_id}",
                self.addr,
                header.correlation_id
            );
        }
        A::decode(&mut body, version)
            .with_context(|| format!("malformed {key:?} v{version} response"))
    }
}

/// A partition of a topic as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Its index.
    pub index: i32,
    /// The broker that leads it.
    pub leader: i32,
    /// Brokers holding a copy.
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
}

/// Connections to a cluster, found from one bootstrap address (or to one
/// broker in this process).
pub struct Client {
    bootstrap: Connection,
    local: Option<Arc<Broker>>,
    brokers: HashMap<i32, String>,
    connections: HashMap<i32, Connection>,
    /// The controller (admin requests go there), when known.
    pub controller: Option<i32>,
}

impl Client {
    /// Connects to `bootstrap` and reads the cluster's brokers.
    pub async fn connect(bootstrap: &str) -> anyhow::Result<Client> {
        Client::start(Connection::connect(bootstrap).await?, None).await
    }

    /// A client of `broker`, in this process: every broker id the metadata
    /// names is that broker, reached without a socket.
    pub async fn local(broker: Arc<Broker>) -> anyhow::Result<Client> {
        let bootstrap = Connection::local(broker.clone()).await?;
        Client::start(bootstrap, Some(broker)).await
    }

    async fn start(bootstrap: Connection, local: Option<Arc<Broker>>) -> anyhow::Result<Client> {
        let mut client = Client {
            bootstrap,
            local,
            brokers: HashMap::new(),
            connections: HashMap::new(),
            controller: None,
        };
        client.metadata(Some(&[])).await?;
        Ok(client)
    }

    /// The bootstrap connection (any broker answers metadata).
    pub fn any(&mut self) -> &mut Connection {
        &mut self.bootstrap
    }

    /// Metadata of `topics` (all when None), never auto-creating them;
    /// remembers the brokers it names.
    pub async fn metadata(&mut self, topics: Option<&[&str]>) -> anyhow::Result<MetadataResponse> {
        let version = self.bootstrap.version_or_error(ApiKey::Metadata)?;
        let topics = match topics {
            // v0 has no null: an empty list means every topic.
            None if version == 0 => Some(Vec::new()),
            None => None,
            Some(names) => Some(
                names
                    .iter()
                    .map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n))))
                    .collect(),
            ),
        };
        let request = MetadataRequest::default()
            .with_topics(topics)
            .with_allow_auto_topic_creation(false);
        let response = self.bootstrap.send(&request, Duration::ZERO).await?;
        for broker in &response.brokers {
            self.brokers.insert(
                broker.node_id.0,
                format!("{}:{}", broker.host.as_str(), broker.port),
            );
        }
        self.controller = (response.controller_id.0 >= 0).then_some(response.controller_id.0);
        Ok(response)
    }

    /// The partitions of `topic` and their leaders; an error if it does not exist.
    pub async fn partitions(&mut self, topic: &str) -> anyhow::Result<Vec<PartitionInfo>> {
        let response = self.metadata(Some(&[topic])).await?;
        let found = response
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
            .ok_or_else(|| anyhow!("topic {topic}: not in the broker's metadata answer"))?;
        if found.error_code == ResponseError::UnknownTopicOrPartition.code() {
            return Err(KafkaError {
                code: found.error_code,
                text: format!(
                    "topic {topic} does not exist (create it with `hyperscale mq topics create {topic}`)"
                ),
            }
            .into());
        }
        check_code(found.error_code, &format!("topic {topic}"))?;
        let mut partitions: Vec<PartitionInfo> = found
            .partitions
            .iter()
            .map(|p| PartitionInfo {
                index: p.partition_index,
                leader: p.leader_id.0,
                replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                isr: p.isr_nodes.iter().map(|b| b.0).collect(),
            })
            .collect();
        partitions.sort_by_key(|p| p.index);
        Ok(partitions)
    }

    /// A connection to broker `node` (opened on first use).
    pub async fn broker(&mut self, node: i32) -> anyhow::Result<&mut Connection> {
        if !self.connections.contains_key(&node)
            && let Some(broker) = &self.local
        {
            let connection = Connection::local(broker.clone()).await?;
            self.connections.insert(node, connection);
        }
        if !self.connections.contains_key(&node) {
            let addr = self
                .brokers
                .get(&node)
                .cloned()
                .ok_or_else(|| anyhow!("broker {node} is not in the cluster's metadata"))?;
            let connection = if addr == self.bootstrap.addr {
                Connection::connect(&addr).await?
            } else {
                Connection::connect(&addr)
                    .await
                    .with_context(|| format!("broker {node} (advertised as {addr})"))?
            };
            self.connections.insert(node, connection);
        }
        self.connections
            .get_mut(&node)
            .ok_or_else(|| anyhow!("broker {node} connection lost"))
    }

    /// Sends `request` to broker `node` and waits for the answer.
    pub async fn send_to<R: Request>(
        &mut self,
        node: i32,
        request: &R,
    ) -> anyhow::Result<R::Response> {
        self.broker(node).await?.send(request, Duration::ZERO).await
    }

    /// Every broker id the last metadata named.
    pub fn broker_ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.brokers.keys().copied().collect();
        ids.sort_unstable();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_meet_at_the_highest_common_one() {
        assert_eq!(pick_version((0, 8), (0, 12)), Some(8));
        assert_eq!(pick_version((3, 8), (0, 5)), Some(5));
        assert_eq!(pick_version((4, 11), (0, 3)), None);
    }

    #[test]
    fn error_codes_become_named_errors() {
        assert!(check_code(0, "x").is_ok());
        let err = check_code(3, "topic t").unwrap_err().to_string();
        assert!(err.starts_with("topic t: "), "{err}");
        assert!(err.contains("Kafka error 3"), "{err}");
    }
}
