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
//! Modules: [`admin`] (topics and groups), [`producer`], [`consumer`].

pub mod admin;
pub mod consumer;
pub mod producer;

use std::collections::HashMap;
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

use crate::api::meta::topic_name;
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

/// Turns a Kafka error code into an error naming `what` failed, or Ok for 0.
pub fn check_code(code: i16, what: &str) -> anyhow::Result<()> {
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(error) => Err(anyhow!("{what}: {error} (Kafka error {code})")),
    }
}

/// Like [`check_code`], with the broker's `error_message` appended when it sent one.
pub fn check_code_with(code: i16, message: Option<&StrBytes>, what: &str) -> anyhow::Result<()> {
    check_code(code, what).map_err(|err| match message {
        Some(message) => anyhow!("{err}: {message}"),
        None => err,
    })
}

/// The version to use for an API: the highest both sides speak.
pub fn pick_version(ours: (i16, i16), theirs: (i16, i16)) -> Option<i16> {
    let (low, high) = (ours.0.max(theirs.0), ours.1.min(theirs.1));
    (low <= high).then_some(high)
}

/// One connection to one broker.
pub struct Connection {
    addr: String,
    stream: BufStream<TcpStream>,
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
        let mut connection = Connection {
            addr: addr.to_string(),
            stream: BufStream::new(stream),
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
        self.write(key, version, request).await.map(|_| ())
    }

    async fn write<T: Encodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        request: &T,
    ) -> anyhow::Result<i32> {
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
        write_frame(&mut self.stream, &buf)
            .await
            .with_context(|| format!("lost the connection to {}", self.addr))?;
        Ok(correlation_id)
    }

    async fn exchange<T: Encodable, A: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        request: &T,
    ) -> anyhow::Result<A> {
        let correlation_id = self.write(key, version, request).await?;
        let mut body: Bytes = read_response(&mut self.stream, RESPONSE_MAX_BYTES)
            .await
            .with_context(|| {
                format!(
                    "the broker at {} closed the connection on {key:?} v{version}",
                    self.addr
                )
            })?;
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

/// Connections to a cluster, found from one bootstrap address.
pub struct Client {
    bootstrap: Connection,
    brokers: HashMap<i32, String>,
    connections: HashMap<i32, Connection>,
    /// The controller (admin requests go there), when known.
    pub controller: Option<i32>,
}

impl Client {
    /// Connects to `bootstrap` and reads the cluster's brokers.
    pub async fn connect(bootstrap: &str) -> anyhow::Result<Client> {
        let mut client = Client {
            bootstrap: Connection::connect(bootstrap).await?,
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
            bail!(
                "topic {topic} does not exist (create it with `hyperscale mq topics create {topic}`)"
            );
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
