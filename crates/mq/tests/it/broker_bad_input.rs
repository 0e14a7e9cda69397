//! Hostile and broken input over raw TCP: every case gets a Kafka error or a
//! closed connection, and the broker keeps serving everyone else.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is the test failing

use crate::broker_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use broker_support::TestBroker;
use bytes::{Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use mq::log::Compression;
use mq::log::records::{NewRecord, encode_batch};

const WAIT: Duration = Duration::from_secs(20);

fn connect(broker: &TestBroker) -> TcpStream {
    let stream = TcpStream::connect(broker.addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

fn send_frame(stream: &mut TcpStream, body: &[u8]) {
    stream
        .write_all(&(body.len() as i32).to_be_bytes())
        .unwrap();
    stream.write_all(body).unwrap();
}

fn request<R: Encodable>(stream: &mut TcpStream, key: ApiKey, version: i16, body: &R) {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("bad-input-test")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    send_frame(stream, &buf);
}

fn read_frame(stream: &mut TcpStream) -> Option<Bytes> {
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(prefix) as usize];
    stream.read_exact(&mut body).ok()?;
    Some(Bytes::from(body))
}

fn response<R: Decodable>(stream: &mut TcpStream, key: ApiKey, version: i16) -> R {
    let mut frame = read_frame(stream).expect("a response");
    let header = ResponseHeader::decode(&mut frame, key.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 7);
    R::decode(&mut frame, version).unwrap()
}

/// The broker closed this connection (EOF, or reset) without answering.
fn assert_closed(stream: &mut TcpStream) {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => {}
        Ok(_) => panic!("expected the connection to be closed, got data"),
        Err(err) => assert_ne!(
            err.kind(),
            std::io::ErrorKind::WouldBlock,
            "no close within {WAIT:?}"
        ),
    }
}

/// A fresh connection still gets ApiVersions answered.
fn assert_serving(broker: &TestBroker) {
    let mut stream = connect(broker);
    request(
        &mut stream,
        ApiKey::ApiVersions,
        0,
        &ApiVersionsRequest::default(),
    );
    let answer: ApiVersionsResponse = response(&mut stream, ApiKey::ApiVersions, 0);
    assert_eq!(answer.error_code, 0);
    assert!(
        answer
            .api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::Fetch as i16 && k.max_version == 11)
    );
}

#[test]
fn malformed_frames_close_the_connection_and_others_are_served() {
    let broker = TestBroker::start();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "length above socket_request_max_bytes",
            0x7fff_ffffi32.to_be_bytes().to_vec(),
        ),
        ("negative length", (-1i32).to_be_bytes().to_vec()),
        (
            "length shorter than a header",
            [0, 0, 0, 3, 0, 3, 0].to_vec(),
        ),
        (
            "unknown api key",
            [&[0, 0, 0, 8][..], &[0x03, 0xe7, 0, 0, 0, 0, 0, 1]].concat(),
        ),
        (
            "unsupported Metadata version",
            [&[0, 0, 0, 10][..], &[0, 3, 0, 50, 0, 0, 0, 1, 0xff, 0xff]].concat(),
        ),
        // Metadata v1 declaring 2^31-16 topics in a 16-byte frame: the codec
        // once pre-allocated that many and aborted the whole process.
        (
            "array count far beyond the frame",
            [
                &[0, 0, 0, 16][..],
                &[0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff],
                &[0x7f, 0xff, 0xff, 0xf0],
                &[0, 1],
            ]
            .concat(),
        ),
        (
            "garbage body",
            [
                &[0, 0, 0, 12][..],
                &[0, 0, 0, 5, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef],
            ]
            .concat(),
        ),
    ];
    for (what, bytes) in cases {
        let mut stream = connect(&broker);
        stream.write_all(&bytes).unwrap();
        assert_closed(&mut stream);
        assert_serving(&broker);
        eprintln!("ok: {what}");
    }
    // A frame cut short by the client: the broker just waits, then sees EOF.
    let mut stream = connect(&broker);
    stream.write_all(&[0, 0, 0, 100, 0, 18, 0, 0]).unwrap();
    drop(stream);
    assert_serving(&broker);
}

#[test]
fn an_unsupported_api_versions_version_gets_error_35_and_our_ranges() {
    let broker = TestBroker::start();
    let mut stream = connect(&broker);
    // v9 does not exist; the body is whatever a future client would send.
    send_frame(&mut stream, &[0, 18, 0, 9, 0, 0, 0, 7, 0, 0, 1, 2, 3]);
    // Always answered with a v0 response header and a v0 body.
    let answer: ApiVersionsResponse = response(&mut stream, ApiKey::ApiVersions, 0);
    assert_eq!(answer.error_code, ResponseError::UnsupportedVersion.code());
    let api_versions = answer
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
        .unwrap();
    assert_eq!((api_versions.min_version, api_versions.max_version), (0, 3));
    // The connection stays usable: the client retries with a version we know.
    request(
        &mut stream,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
    );
    let answer: ApiVersionsResponse = response(&mut stream, ApiKey::ApiVersions, 3);
    assert_eq!(answer.error_code, 0);
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn batch(value: &[u8]) -> Vec<u8> {
    let record = NewRecord {
        key: None,
        value: Some(value),
        timestamp_ms: now_ms(),
        headers: &[],
    };
    encode_batch(&[record], Compression::None).unwrap()
}

fn produce(stream: &mut TcpStream, topic: &str, records: Vec<u8>) -> i16 {
    produce_at(stream, topic, records).0
}

/// Produces one partition's records; returns (error code, base offset).
fn produce_at(stream: &mut TcpStream, topic: &str, records: Vec<u8>) -> (i16, i64) {
    let body = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.into())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records.into())),
                ]),
        ]);
    request(stream, ApiKey::Produce, 7, &body);
    let answer: ProduceResponse = response(stream, ApiKey::Produce, 7);
    let partition = &answer.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

fn create_topic(stream: &mut TcpStream, name: &str) {
    let create = kafka_protocol::messages::CreateTopicsRequest::default().with_topics(vec![
        kafka_protocol::messages::create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.into())))
            .with_num_partitions(1)
            .with_replication_factor(1),
    ]);
    request(stream, ApiKey::CreateTopics, 4, &create);
    let created: kafka_protocol::messages::CreateTopicsResponse =
        response(stream, ApiKey::CreateTopics, 4);
    assert_eq!(created.topics[0].error_code, 0);
}

/// A batch of an idempotent producer: `records` records from `sequence`.
fn idempotent_batch(producer_id: i64, epoch: i16, sequence: i32, records: usize) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..records).map(|i| format!("r{i}").into_bytes()).collect();
    let list: Vec<NewRecord<'_>> = values
        .iter()
        .map(|v| NewRecord {
            key: None,
            value: Some(v),
            timestamp_ms: now_ms(),
            headers: &[],
        })
        .collect();
    let plain = encode_batch(&list, Compression::None).unwrap();
    let (mut header, raw) = mq::log::records::batch_payload(&plain).unwrap();
    header.producer_id = producer_id;
    header.producer_epoch = epoch;
    header.base_sequence = sequence;
    mq::log::records::build_batch(&header, &raw, header.records_count).unwrap()
}

#[test]
fn an_idempotent_producer_retry_is_not_appended_twice() {
    let broker = TestBroker::start();
    let mut stream = connect(&broker);
    create_topic(&mut stream, "idem");
    assert_eq!(
        produce_at(&mut stream, "idem", idempotent_batch(42, 0, 0, 3)),
        (0, 0)
    );
    assert_eq!(
        produce_at(&mut stream, "idem", idempotent_batch(42, 0, 3, 2)),
        (0, 3)
    );
    // The first batch again (a retry after a lost answer): its original offset, no new copy.
    assert_eq!(
        produce_at(&mut stream, "idem", idempotent_batch(42, 0, 0, 3)),
        (0, 0)
    );
    assert_eq!(broker_partition_end(&broker, "idem"), 5);
    // A gap (sequence 9 after 4) would lose data: refused.
    let (error, _) = produce_at(&mut stream, "idem", idempotent_batch(42, 0, 9, 1));
    assert_eq!(error, ResponseError::OutOfOrderSequenceNumber.code());
    // A newer epoch of the producer fences the old one.
    assert_eq!(
        produce_at(&mut stream, "idem", idempotent_batch(42, 1, 0, 1)),
        (0, 5)
    );
    let (error, _) = produce_at(&mut stream, "idem", idempotent_batch(42, 0, 5, 1));
    assert_eq!(error, ResponseError::InvalidProducerEpoch.code());
    assert_eq!(broker_partition_end(&broker, "idem"), 6);
}

#[test]
fn bad_batches_get_per_partition_errors() {
    let broker = TestBroker::start_with(|c| {
        c.message_max_bytes = 4096;
        c.auto_create_topics = false;
    });
    let mut stream = connect(&broker);
    assert_eq!(
        produce(&mut stream, "absent", batch(b"x")),
        ResponseError::UnknownTopicOrPartition.code()
    );
    // Auto-creation is off: create the topic explicitly.
    create_topic(&mut stream, "t");

    assert_eq!(produce(&mut stream, "t", batch(b"fine")), 0);
    let mut damaged = batch(b"damaged in transit");
    let last = damaged.len() - 3;
    damaged[last] ^= 0xff;
    assert_eq!(
        produce(&mut stream, "t", damaged),
        ResponseError::CorruptMessage.code()
    );
    assert_eq!(
        produce(&mut stream, "t", batch(&[7u8; 8000])),
        ResponseError::MessageTooLarge.code()
    );
    let mut truncated = batch(b"cut");
    truncated.truncate(30);
    assert_eq!(
        produce(&mut stream, "t", truncated),
        ResponseError::CorruptMessage.code()
    );
    // Nothing bad was stored: the one good batch is all there is.
    request(
        &mut stream,
        ApiKey::Metadata,
        8,
        &MetadataRequest::default().with_topics(None),
    );
    let metadata: MetadataResponse = response(&mut stream, ApiKey::Metadata, 8);
    assert_eq!(metadata.topics.len(), 1);
    let partition = broker_partition_end(&broker, "t");
    assert_eq!(partition, 1);
}

fn broker_partition_end(broker: &TestBroker, topic: &str) -> i64 {
    let mut stream = connect(broker);
    let body = kafka_protocol::messages::ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_topics(vec![
            kafka_protocol::messages::list_offsets_request::ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.into())))
                .with_partitions(vec![
                    kafka_protocol::messages::list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1),
                ]),
        ]);
    request(&mut stream, ApiKey::ListOffsets, 5, &body);
    let answer: kafka_protocol::messages::ListOffsetsResponse =
        response(&mut stream, ApiKey::ListOffsets, 5);
    answer.topics[0].partitions[0].offset
}

#[test]
fn connections_beyond_the_limit_are_closed() {
    let broker = TestBroker::start_with(|c| c.connections_max = 2);
    let mut kept: Vec<TcpStream> = (0..2).map(|_| connect(&broker)).collect();
    for stream in &mut kept {
        request(
            stream,
            ApiKey::ApiVersions,
            0,
            &ApiVersionsRequest::default(),
        );
        let _: ApiVersionsResponse = response(stream, ApiKey::ApiVersions, 0);
    }
    let mut extra = connect(&broker);
    assert_closed(&mut extra);
    drop(kept);
    // Slots free up once the broker notices the closes.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let mut stream = connect(&broker);
        request(
            &mut stream,
            ApiKey::ApiVersions,
            0,
            &ApiVersionsRequest::default(),
        );
        if read_frame(&mut stream).is_some() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "slots were not freed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn request_memory_is_bounded_across_connections() {
    let broker = TestBroker::start_with(|c| {
        c.message_max_bytes = 64 * 1024;
        c.socket_request_max_bytes = 1024 * 1024;
        c.queued_max_request_bytes = 1024 * 1024;
    });
    // A announces a frame as large as the whole budget and sends only part of it.
    let mut hog = connect(&broker);
    hog.write_all(&(1024 * 1024i32).to_be_bytes()).unwrap();
    hog.write_all(&[0, 18, 0, 0, 0, 0, 0, 1]).unwrap();
    // B's small request waits for budget: no answer while A holds it. A's
    // header reaches the broker on its own connection, in its own time, so a
    // request sent before it took the budget is answered: probe again until
    // one waits (a broker that never makes one wait fails at the deadline).
    let deadline = std::time::Instant::now() + WAIT;
    let mut waiting = loop {
        let mut probe = connect(&broker);
        request(
            &mut probe,
            ApiKey::ApiVersions,
            0,
            &ApiVersionsRequest::default(),
        );
        probe
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut byte = [0u8; 1];
        let early = probe.read(&mut byte);
        if matches!(&early, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
        {
            break probe;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "answered while the budget was taken: {early:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // ...and is served once A goes away.
    drop(hog);
    waiting.set_read_timeout(Some(WAIT)).unwrap();
    let answer = read_frame(&mut waiting).expect("answered once the budget is free");
    assert!(answer.len() > 4);
}
