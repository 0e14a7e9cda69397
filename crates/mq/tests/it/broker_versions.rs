//! Every advertised API at every advertised version gets a decodable answer
//! (a response field set in a version that cannot carry it would make the
//! codec refuse to encode it, and the connection would close instead).
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is the test failing

use crate::broker_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use broker_support::TestBroker;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// Sends `request` at `version` and decodes the answer as `Resp`.
fn roundtrip<Resp: Decodable>(
    stream: &mut TcpStream,
    key: ApiKey,
    version: i16,
    request: &impl Encodable,
) {
    exchange::<Resp>(stream, key, version, request);
}

/// [`roundtrip`], returning the answer.
fn exchange<Resp: Decodable>(
    stream: &mut TcpStream,
    key: ApiKey,
    version: i16,
    request: &impl Encodable,
) -> Resp {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(i32::from(version) + 1000 * key as i32);
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    request.encode(&mut buf, version).unwrap();
    stream.write_all(&(buf.len() as i32).to_be_bytes()).unwrap();
    stream.write_all(&buf).unwrap();

    let mut prefix = [0u8; 4];
    stream
        .read_exact(&mut prefix)
        .unwrap_or_else(|e| panic!("{key:?} v{version}: no answer ({e})"));
    let mut body = vec![0u8; i32::from_be_bytes(prefix) as usize];
    stream.read_exact(&mut body).unwrap();
    let mut body = Bytes::from(body);
    let answer = ResponseHeader::decode(&mut body, key.response_header_version(version)).unwrap();
    assert_eq!(
        answer.correlation_id, header.correlation_id,
        "{key:?} v{version}"
    );
    let decoded = Resp::decode(&mut body, version)
        .unwrap_or_else(|e| panic!("{key:?} v{version}: undecodable answer ({e})"));
    assert!(body.is_empty(), "{key:?} v{version}: trailing bytes");
    decoded
}

#[test]
fn clients_are_told_the_advertised_address() {
    let broker = TestBroker::start_with(|c| c.advertised_address = "mq.example.test:19092".into());
    let mut stream = TcpStream::connect(broker.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    let metadata: MetadataResponse = exchange(
        &mut stream,
        ApiKey::Metadata,
        8,
        &MetadataRequest::default(),
    );
    let me = &metadata.brokers[0];
    assert_eq!((me.host.as_str(), me.port), ("mq.example.test", 19092));
    let request = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"));
    let coordinator: FindCoordinatorResponse =
        exchange(&mut stream, ApiKey::FindCoordinator, 2, &request);
    assert_eq!(
        (coordinator.host.as_str(), coordinator.port),
        ("mq.example.test", 19092)
    );
}

#[test]
fn every_supported_version_is_answered() {
    let broker = TestBroker::start();
    let mut stream = TcpStream::connect(broker.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // Two writes per request (prefix, body): without this, Nagle and delayed
    // ACKs add ~40 ms to each.
    stream.set_nodelay(true).unwrap();
    let s = &mut stream;
    for &(key, min, max) in mq::versions::SUPPORTED {
        for v in min..=max {
            match key {
                ApiKey::Produce => {
                    roundtrip::<ProduceResponse>(s, key, v, &ProduceRequest::default().with_acks(1))
                }
                ApiKey::Fetch => roundtrip::<FetchResponse>(s, key, v, &FetchRequest::default()),
                ApiKey::ListOffsets => {
                    roundtrip::<ListOffsetsResponse>(s, key, v, &ListOffsetsRequest::default())
                }
                ApiKey::Metadata => {
                    roundtrip::<MetadataResponse>(s, key, v, &MetadataRequest::default())
                }
                ApiKey::OffsetCommit => {
                    roundtrip::<OffsetCommitResponse>(s, key, v, &OffsetCommitRequest::default())
                }
                ApiKey::OffsetFetch => {
                    roundtrip::<OffsetFetchResponse>(s, key, v, &OffsetFetchRequest::default())
                }
                ApiKey::FindCoordinator => roundtrip::<FindCoordinatorResponse>(
                    s,
                    key,
                    v,
                    &FindCoordinatorRequest::default(),
                ),
                ApiKey::JoinGroup => {
                    roundtrip::<JoinGroupResponse>(s, key, v, &JoinGroupRequest::default())
                }
                ApiKey::Heartbeat => {
                    roundtrip::<HeartbeatResponse>(s, key, v, &HeartbeatRequest::default())
                }
                ApiKey::LeaveGroup => {
                    roundtrip::<LeaveGroupResponse>(s, key, v, &LeaveGroupRequest::default())
                }
                ApiKey::SyncGroup => {
                    roundtrip::<SyncGroupResponse>(s, key, v, &SyncGroupRequest::default())
                }
                ApiKey::ApiVersions => {
                    roundtrip::<ApiVersionsResponse>(s, key, v, &ApiVersionsRequest::default())
                }
                ApiKey::CreateTopics => {
                    roundtrip::<CreateTopicsResponse>(s, key, v, &CreateTopicsRequest::default())
                }
                ApiKey::DeleteTopics => {
                    roundtrip::<DeleteTopicsResponse>(s, key, v, &DeleteTopicsRequest::default())
                }
                ApiKey::InitProducerId => roundtrip::<InitProducerIdResponse>(
                    s,
                    key,
                    v,
                    &InitProducerIdRequest::default(),
                ),
                ApiKey::ListGroups => {
                    roundtrip::<ListGroupsResponse>(s, key, v, &ListGroupsRequest::default())
                }
                ApiKey::DescribeGroups => roundtrip::<DescribeGroupsResponse>(
                    s,
                    key,
                    v,
                    &DescribeGroupsRequest::default()
                        .with_groups(vec![GroupId(StrBytes::from_static_str("g"))]),
                ),
                ApiKey::DescribeLogDirs => roundtrip::<DescribeLogDirsResponse>(
                    s,
                    key,
                    v,
                    &DescribeLogDirsRequest::default(),
                ),
                other => panic!("{other:?} is advertised but this test does not know it"),
            }
        }
    }
}
