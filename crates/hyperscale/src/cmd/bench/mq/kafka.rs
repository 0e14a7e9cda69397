//! The Kafka side of `hyperscale bench mq`: producers pipeline Produce
//! requests (up to `--in-flight` per connection, as Kafka's producer does)
//! with the broker's own codecs (`kafka-protocol`, `mq::log::records`);
//! consumers long-poll Fetch on their share of the partitions. Topic
//! creation, metadata and offsets go through `mq::client`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail, ensure};
use bytes::BytesMut;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use mq::api::meta::topic_name;
use mq::client::{CLIENT_ID, Client, PartitionInfo, RESPONSE_MAX_BYTES, check_code_with};
use mq::frame::{read_response, write_frame};
use mq::log::Compression;
use mq::log::batch::{BatchHeader, HEADER_BYTES, LOG_OVERHEAD};
use mq::log::records::{NewRecord, batch_payload, encode_batch, parse_records};
use tokio::io::{BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;

use super::{AckLatencies, Args, Codec, E2eLatencies, Outcome, Pacer, Plan, Shared, join};

/// How long a Fetch may wait for data.
const FETCH_WAIT_MS: i32 = 100;
/// Bytes asked per partition per Fetch.
const PARTITION_FETCH_BYTES: i32 = 8 << 20;
/// How long the broker may wait for acknowledgements.
const PRODUCE_TIMEOUT_MS: i32 = 30_000;

fn acks(text: &str) -> anyhow::Result<i16> {
    match text {
        "0" => Ok(0),
        "1" => Ok(1),
        "all" | "-1" => Ok(-1),
        other => bail!("--acks must be 0, 1 or all, not {other:?}"),
    }
}

fn compression(codec: Codec) -> Compression {
    match codec {
        Codec::None => Compression::None,
        Codec::Gzip => Compression::Gzip,
        Codec::Snappy => Compression::Snappy,
        Codec::Lz4 => Compression::Lz4,
        Codec::Zstd => Compression::Zstd,
    }
}

/// Creates the topic if needed, starts consumers at the partitions' ends,
/// then producers; deletes a topic it created.
pub(super) async fn run(
    args: &Args,
    plans: Vec<Plan>,
    shared: Arc<Shared>,
) -> anyhow::Result<Outcome> {
    let acks = acks(&args.acks)?;
    let (topic, fresh) = super::topic(args);
    let mut admin = Client::connect(&args.bootstrap).await?;
    if fresh || admin.partitions(&topic).await.is_err() {
        admin
            .create_topic(&topic, args.partitions, &BTreeMap::new())
            .await?;
    }
    let partitions = wait_for_leaders(&mut admin, &topic).await?;
    let ends = admin.end_offsets(&topic, &partitions).await?;
    let mut consumers = Vec::new();
    for id in 0..args.consumers {
        let mine: Vec<(PartitionInfo, i64)> = partitions
            .iter()
            .filter(|p| p.index as usize % args.consumers == id)
            .map(|p| (p.clone(), ends.get(&p.index).copied().unwrap_or(0)))
            .collect();
        let (bootstrap, topic, shared) = (args.bootstrap.clone(), topic.clone(), shared.clone());
        consumers.push(tokio::spawn(consume(bootstrap, topic, mine, shared)));
    }
    let started = Instant::now();
    let mut producers: Vec<JoinHandle<anyhow::Result<AckLatencies>>> = Vec::new();
    for (id, plan) in plans.into_iter().enumerate() {
        let producer = Producer {
            bootstrap: args.bootstrap.clone(),
            topic: topic.clone(),
            partitions: partitions.clone(),
            id,
            acks,
            compression: compression(args.compression),
            in_flight: args.in_flight,
            shared: shared.clone(),
        };
        producers.push(tokio::spawn(producer.run(plan)));
    }
    let outcome = join(&shared, started, producers, consumers).await;
    if fresh {
        // Best effort: the numbers are taken; a broker that cannot delete keeps a topic.
        let _ = admin.delete_topic(&topic).await;
    }
    outcome
}

/// The topic's partitions once each has a leader (a new topic may take a moment).
async fn wait_for_leaders(admin: &mut Client, topic: &str) -> anyhow::Result<Vec<PartitionInfo>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let partitions = admin.partitions(topic).await?;
        if !partitions.is_empty() && partitions.iter().all(|p| p.leader >= 0) {
            return Ok(partitions);
        }
        ensure!(
            Instant::now() < deadline,
            "topic {topic} has partitions without a leader"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One producer: batches round-robin over the partitions, pipelined on a
/// connection per leader.
struct Producer {
    bootstrap: String,
    topic: String,
    partitions: Vec<PartitionInfo>,
    id: usize,
    acks: i16,
    compression: Compression,
    in_flight: usize,
    shared: Arc<Shared>,
}

impl Producer {
    async fn run(self, plan: Plan) -> anyhow::Result<AckLatencies> {
        let record_size = plan.record_size;
        let mut client = Client::connect(&self.bootstrap).await?;
        let mut pipes: HashMap<i32, Pipe> = HashMap::new();
        let mut pacer = Pacer::new(plan);
        let mut values = Vec::new();
        let mut next = self.id;
        loop {
            let count = pacer.next_batch(&mut values).await;
            if count == 0 {
                break;
            }
            let partition = &self.partitions[next % self.partitions.len()];
            next += 1;
            let pipe = match pipes.entry(partition.leader) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let connection = client.broker(partition.leader).await?;
                    let version = connection.version(ApiKey::Produce).ok_or_else(|| {
                        anyhow!(
                            "the broker at {} speaks no Produce version",
                            connection.addr()
                        )
                    })?;
                    let addr = connection.addr().to_string();
                    e.insert(
                        Pipe::open(&addr, version, self.acks, self.in_flight, &self.shared).await?,
                    )
                }
            };
            let timestamp_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let records: Vec<NewRecord<'_>> = values
                .chunks(record_size)
                .map(|value| NewRecord {
                    key: None,
                    value: Some(value),
                    timestamp_ms,
                    headers: &[],
                })
                .collect();
            let batch = encode_batch(&records, self.compression)
                .map_err(|err| anyhow!("cannot encode a batch: {err}"))?;
            let request = ProduceRequest::default()
                .with_acks(self.acks)
                .with_timeout_ms(PRODUCE_TIMEOUT_MS)
                .with_topic_data(vec![
                    TopicProduceData::default()
                        .with_name(topic_name(&self.topic))
                        .with_partition_data(vec![
                            PartitionProduceData::default()
                                .with_index(partition.index)
                                .with_records(Some(batch.into())),
                        ]),
                ]);
            pipe.send(&request, count).await?;
        }
        let mut latencies = Vec::new();
        for (_, pipe) in pipes {
            latencies.extend(pipe.close().await?);
        }
        Ok(latencies)
    }
}

/// A batch awaiting its answer: correlation id, send time, records, and
/// the in-flight slot it holds.
type Pending = (i32, Instant, usize, OwnedSemaphorePermit);

/// One pipelined connection: requests written as they come, answers read
/// in order by a task of their own.
struct Pipe {
    writer: BufWriter<OwnedWriteHalf>,
    /// The request being encoded (reused: no page faults per batch).
    buf: BytesMut,
    version: i16,
    next_id: i32,
    acks: i16,
    slots: Arc<Semaphore>,
    pending: Option<mpsc::UnboundedSender<Pending>>,
    reader: Option<JoinHandle<anyhow::Result<AckLatencies>>>,
    shared: Arc<Shared>,
}

impl Pipe {
    async fn open(
        addr: &str,
        version: i16,
        acks: i16,
        in_flight: usize,
        shared: &Arc<Shared>,
    ) -> anyhow::Result<Pipe> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let (pending, reader) = if acks == 0 {
            // No answers come back with acks=0 (at most once).
            (None, None)
        } else {
            let (tx, rx) = mpsc::unbounded_channel();
            let task = tokio::spawn(read_answers(read, version, rx, shared.clone()));
            (Some(tx), Some(task))
        };
        Ok(Pipe {
            writer: BufWriter::with_capacity(256 << 10, write),
            buf: BytesMut::new(),
            version,
            next_id: 0,
            acks,
            slots: Arc::new(Semaphore::new(in_flight)),
            pending,
            reader,
            shared: shared.clone(),
        })
    }

    async fn send(&mut self, request: &ProduceRequest, records: usize) -> anyhow::Result<()> {
        let slot = self.slots.clone().acquire_owned().await?;
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::Produce as i16)
            .with_request_api_version(self.version)
            .with_correlation_id(id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        self.buf.clear();
        header.encode(
            &mut self.buf,
            ApiKey::Produce.request_header_version(self.version),
        )?;
        request.encode(&mut self.buf, self.version)?;
        if let Some(pending) = &self.pending {
            pending
                .send((id, Instant::now(), records, slot))
                .map_err(|_| anyhow!("the connection's reader stopped"))?;
        }
        let written = write_frame(&mut self.writer, &self.buf).await;
        if let Err(err) = written {
            // The reader's error (the broker's answer) says more than a broken pipe.
            if let Some(reader) = self.reader.take() {
                reader.await??;
            }
            return Err(err).context("lost the connection to the broker");
        }
        if self.acks == 0 {
            self.shared
                .produced
                .fetch_add(records as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Waits for every answer and returns the batches' latencies.
    async fn close(mut self) -> anyhow::Result<AckLatencies> {
        drop(self.pending.take());
        match self.reader.take() {
            Some(reader) => reader.await?,
            None => Ok(Vec::new()),
        }
    }
}

async fn read_answers(
    read: OwnedReadHalf,
    version: i16,
    mut pending: mpsc::UnboundedReceiver<Pending>,
    shared: Arc<Shared>,
) -> anyhow::Result<AckLatencies> {
    let mut reader = BufReader::with_capacity(64 << 10, read);
    let mut latencies = Vec::new();
    while let Some((id, sent, records, slot)) = pending.recv().await {
        let mut body = read_response(&mut reader, RESPONSE_MAX_BYTES)
            .await
            .context("the broker closed the connection")?;
        let header =
            ResponseHeader::decode(&mut body, ApiKey::Produce.response_header_version(version))?;
        ensure!(
            header.correlation_id == id,
            "answer to request {} instead of {id}",
            header.correlation_id
        );
        let response = ProduceResponse::decode(&mut body, version)?;
        for t in &response.responses {
            for p in &t.partition_responses {
                check_code_with(p.error_code, p.error_message.as_ref(), "produce")?;
            }
        }
        latencies.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        shared.produced.fetch_add(records as u64, Ordering::Relaxed);
        drop(slot);
    }
    Ok(latencies)
}

/// One consumer: fetches its partitions from their offsets until every
/// record arrived (or the producers are done and nothing comes).
async fn consume(
    bootstrap: String,
    topic: String,
    mine: Vec<(PartitionInfo, i64)>,
    shared: Arc<Shared>,
) -> anyhow::Result<(E2eLatencies, Instant)> {
    let mut client = Client::connect(&bootstrap).await?;
    let mut positions: BTreeMap<i32, i64> = mine.iter().map(|(p, o)| (p.index, *o)).collect();
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (p, _) in &mine {
        by_leader.entry(p.leader).or_default().push(p.index);
    }
    let mut latencies = Vec::new();
    let mut last = Instant::now();
    if mine.is_empty() {
        return Ok((latencies, last));
    }
    while !shared.consumers_may_stop(last) {
        for (&leader, indexes) in &by_leader {
            let partitions = indexes
                .iter()
                .map(|&i| {
                    FetchPartition::default()
                        .with_partition(i)
                        .with_current_leader_epoch(-1)
                        .with_fetch_offset(positions[&i])
                        .with_log_start_offset(-1)
                        .with_partition_max_bytes(PARTITION_FETCH_BYTES)
                })
                .collect();
            let request = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(FETCH_WAIT_MS)
                .with_min_bytes(1)
                .with_max_bytes(64 << 20)
                .with_session_epoch(-1)
                .with_topics(vec![
                    FetchTopic::default()
                        .with_topic(topic_name(&topic))
                        .with_partitions(partitions),
                ]);
            let wait = Duration::from_millis(FETCH_WAIT_MS as u64);
            let response = client.broker(leader).await?.send(&request, wait).await?;
            mq::client::check_code(response.error_code, "fetch")?;
            let now = super::now_us();
            for t in response.responses {
                for p in t.partitions {
                    mq::client::check_code(
                        p.error_code,
                        &format!("fetch {topic}-{}", p.partition_index),
                    )?;
                    let Some(from) = positions.get_mut(&p.partition_index) else {
                        continue;
                    };
                    let records = p.records.unwrap_or_default();
                    let got = read_batches(&records, from, now, &mut latencies)
                        .with_context(|| format!("fetch {topic}-{}", p.partition_index))?;
                    if got > 0 {
                        shared.consumed.fetch_add(got, Ordering::Relaxed);
                        last = Instant::now();
                    }
                }
            }
        }
    }
    Ok((latencies, last))
}

/// Reads the whole batches in `data` from offset `*from` on, pushing each
/// record's latency and moving `*from` past them; returns how many records.
fn read_batches(
    mut data: &[u8],
    from: &mut i64,
    now_us: u64,
    latencies: &mut Vec<u32>,
) -> anyhow::Result<u64> {
    let mut count = 0;
    while data.len() >= LOG_OVERHEAD {
        let length = i32::from_be_bytes([data[8], data[9], data[10], data[11]]);
        let total = usize::try_from(length)? + LOG_OVERHEAD;
        if total < HEADER_BYTES || total > data.len() {
            break;
        }
        let (batch, rest) = data.split_at(total);
        data = rest;
        let header = BatchHeader::parse(batch).map_err(|e| anyhow!("{e}"))?;
        if header.is_control() {
            *from = (*from).max(header.base_offset + i64::from(header.last_offset_delta) + 1);
            continue;
        }
        let (header, payload) = batch_payload(batch).map_err(|e| anyhow!("{e}"))?;
        for r in parse_records(&payload, header.records_count).map_err(|e| anyhow!("{e}"))? {
            let offset = header.base_offset + i64::from(r.offset_delta);
            if offset < *from {
                continue;
            }
            *from = offset + 1;
            count += 1;
            if let Some(latency) = r.value.and_then(|v| super::latency_us(v, now_us)) {
                latencies.push(latency);
            }
        }
    }
    Ok(count)
}
