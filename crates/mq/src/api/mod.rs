//! Request dispatch: one decoded request in, one encoded response out.
//!
//! A frame starts with api key, api version and correlation id at fixed
//! places, so they are read before anything is decoded. An API or version
//! we do not serve is decided there: ApiVersions of an unknown version gets
//! error 35 (UNSUPPORTED_VERSION) with our ranges, encoded as v0 as KIP-511
//! requires so the client can retry with a version we know; anything else
//! closes the connection, which is what Kafka brokers do. Then the header
//! and body are decoded by `kafka-protocol` (a malformed body also closes
//! the connection) and the handler of that API runs. Handlers live in one
//! module per concern: [`meta`] (ApiVersions, Metadata, topics admin,
//! FindCoordinator, InitProducerId), [`produce`], [`fetch`] (Fetch,
//! ListOffsets), [`groups`] (the group and offset APIs), [`admin`]
//! (ListGroups, DescribeGroups, DescribeLogDirs).

pub mod admin;
pub mod cluster;
pub mod fetch;
pub mod groups;
pub mod meta;
pub mod produce;

use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::broker::Broker;
use crate::versions::{api_versions_response, is_supported};

/// What to do after a request.
#[derive(Debug)]
pub enum Outcome {
    /// Send this frame body.
    Respond(Bytes),
    /// Send nothing (Produce with acks=0).
    Silent,
    /// Close the connection; the reason is logged.
    Close(String),
}

/// A request's fixed prefix.
#[derive(Debug, Clone, Copy)]
pub struct Prefix {
    /// Raw api key.
    pub api_key: i16,
    /// Requested version.
    pub version: i16,
    /// Echoed in the response.
    pub correlation_id: i32,
}

/// Reads the fixed prefix (the frame is at least 8 bytes: see `frame`).
pub fn prefix(frame: &[u8]) -> Option<Prefix> {
    let mut bytes = frame.get(..8)?;
    Some(Prefix {
        api_key: bytes.get_i16(),
        version: bytes.get_i16(),
        correlation_id: bytes.get_i32(),
    })
}

/// Encodes a response: header (its version follows the API's) then body.
pub fn encode<R: Encodable>(key: ApiKey, version: i16, correlation_id: i32, body: &R) -> Outcome {
    let header_version = key.response_header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut buf = BytesMut::new();
    let encoded = header
        .encode(&mut buf, header_version)
        .and_then(|()| body.encode(&mut buf, version));
    match encoded {
        Ok(()) => Outcome::Respond(buf.freeze()),
        // A field we set that this version cannot carry: a bug of ours.
        Err(err) => Outcome::Close(format!("cannot encode {key:?} v{version} response: {err}")),
    }
}

fn decode<T: Decodable>(body: &mut Bytes, version: i16) -> Result<T, String> {
    T::decode(body, version).map_err(|err| format!("malformed request body: {err}"))
}

/// Handles one request frame.
pub async fn handle(broker: &Arc<Broker>, frame: Bytes) -> Outcome {
    let Some(p) = prefix(&frame) else {
        return Outcome::Close("frame shorter than a request header".into());
    };
    let Ok(key) = ApiKey::try_from(p.api_key) else {
        broker.metrics.requests_invalid.inc();
        return Outcome::Close(format!("unknown api key {}", p.api_key));
    };
    if !is_supported(key, p.version) {
        broker.metrics.requests_invalid.inc();
        if key == ApiKey::ApiVersions {
            let body =
                api_versions_response(kafka_protocol::ResponseError::UnsupportedVersion.code());
            return encode(key, 0, p.correlation_id, &body);
        }
        return Outcome::Close(format!("{key:?} v{} is not supported", p.version));
    }
    let mut body = frame;
    let header = match RequestHeader::decode(&mut body, key.request_header_version(p.version)) {
        Ok(header) => header,
        Err(err) => {
            broker.metrics.requests_invalid.inc();
            return Outcome::Close(format!("malformed request header: {err}"));
        }
    };
    let started = Instant::now();
    let outcome = match dispatch(broker, key, p.version, header, body).await {
        Ok(outcome) => outcome,
        Err(reason) => {
            broker.metrics.requests_invalid.inc();
            Outcome::Close(reason)
        }
    };
    if let Some(api) = broker.metrics.api(key) {
        api.requests.inc();
        api.latency.observe(started.elapsed().as_secs_f64());
    }
    outcome
}

async fn dispatch(
    broker: &Arc<Broker>,
    key: ApiKey,
    v: i16,
    header: RequestHeader,
    mut body: Bytes,
) -> Result<Outcome, String> {
    let id = header.correlation_id;
    let body = &mut body;
    Ok(match key {
        ApiKey::ApiVersions => encode(key, v, id, &api_versions_response(0)),
        ApiKey::Metadata => encode(
            key,
            v,
            id,
            &meta::metadata(broker, v, decode(body, v)?).await,
        ),
        ApiKey::CreateTopics => encode(
            key,
            v,
            id,
            &meta::create_topics(broker, v, decode(body, v)?).await,
        ),
        ApiKey::DeleteTopics => encode(
            key,
            v,
            id,
            &meta::delete_topics(broker, v, decode(body, v)?).await,
        ),
        ApiKey::FindCoordinator => encode(
            key,
            v,
            id,
            &meta::find_coordinator(broker, v, decode(body, v)?).await,
        ),
        ApiKey::InitProducerId => encode(
            key,
            v,
            id,
            &meta::init_producer_id(broker, decode(body, v)?),
        ),
        ApiKey::Produce => match produce::produce(broker, v, decode(body, v)?).await {
            Some(response) => encode(key, v, id, &response),
            None => Outcome::Silent,
        },
        ApiKey::Fetch => encode(key, v, id, &fetch::fetch(broker, v, decode(body, v)?).await),
        ApiKey::ListOffsets => encode(
            key,
            v,
            id,
            &fetch::list_offsets(broker, v, decode(body, v)?).await,
        ),
        ApiKey::JoinGroup => encode(
            key,
            v,
            id,
            &groups::join(broker, v, &header, decode(body, v)?).await,
        ),
        ApiKey::SyncGroup => encode(key, v, id, &groups::sync(broker, decode(body, v)?).await),
        ApiKey::Heartbeat => encode(key, v, id, &groups::heartbeat(broker, decode(body, v)?)),
        ApiKey::LeaveGroup => encode(key, v, id, &groups::leave(broker, v, decode(body, v)?)),
        ApiKey::OffsetCommit => encode(
            key,
            v,
            id,
            &groups::offset_commit(broker, v, decode(body, v)?).await,
        ),
        ApiKey::OffsetFetch => encode(
            key,
            v,
            id,
            &groups::offset_fetch(broker, v, decode(body, v)?),
        ),
        ApiKey::ListGroups => encode(key, v, id, &admin::list_groups(broker, decode(body, v)?)),
        ApiKey::DescribeGroups => encode(
            key,
            v,
            id,
            &admin::describe_groups(broker, v, decode(body, v)?),
        ),
        ApiKey::DescribeLogDirs => encode(
            key,
            v,
            id,
            &admin::describe_log_dirs(broker, decode(body, v)?).await,
        ),
        other => return Err(format!("{other:?} is not served")),
    })
}
