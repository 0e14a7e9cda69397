//! Producing: records grouped into one v2 batch per partition, sent to each
//! partition's leader with the chosen `acks`.
//!
//! Routing follows the notes and Kafka's default partitioner: a keyed record
//! goes to `murmur2(key) % partitions` (the same partition a Java or
//! librdkafka-with-`murmur2_random` producer picks, so keys stay together
//! whichever client wrote them); unkeyed records are spread round-robin.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use kafka_protocol::messages::ProduceRequest;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use serde::Serialize;

use super::{Client, PartitionInfo, check_code_with};
use crate::api::meta::topic_name;
use crate::log::Compression;
use crate::log::records::{Header, NewRecord, encode_batch};

/// How long the broker may wait for acknowledgements.
const PRODUCE_TIMEOUT_MS: i32 = 30_000;

/// A record to send.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outgoing {
    /// Its key, if any.
    pub key: Option<Vec<u8>>,
    /// Its value.
    pub value: Vec<u8>,
    /// Its headers, in order (a null value is `None`).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Its partition, overriding the key's and the send's.
    pub partition: Option<i32>,
}

impl Outgoing {
    /// An unkeyed record with this value (no headers, routed round-robin).
    pub fn new(value: impl Into<Vec<u8>>) -> Outgoing {
        Outgoing {
            value: value.into(),
            ..Outgoing::default()
        }
    }

    /// The same record with a key (routed by it: murmur2, as Kafka's default).
    #[must_use]
    pub fn key(mut self, key: impl Into<Vec<u8>>) -> Outgoing {
        self.key = Some(key.into());
        self
    }

    /// The same record with one more header.
    #[must_use]
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Outgoing {
        self.headers.push((key.into(), Some(value.into())));
        self
    }

    /// The same record sent to `partition`.
    #[must_use]
    pub fn partition(mut self, partition: i32) -> Outgoing {
        self.partition = Some(partition);
        self
    }

    /// Bytes this record takes on the wire, about (key, value, headers and
    /// each field's length prefix).
    pub fn size_bytes(&self) -> usize {
        const FIELD_OVERHEAD: usize = 5;
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len) + 2 * FIELD_OVERHEAD)
            .sum();
        self.key.as_ref().map_or(0, Vec::len) + self.value.len() + headers + 4 * FIELD_OVERHEAD
    }
}

/// Where a batch landed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Produced {
    /// The partition.
    pub partition: i32,
    /// The offset of its first record (-1 with acks=0).
    pub base_offset: i64,
    /// How many records.
    pub records: usize,
    /// Which of the records sent are in this batch (their indexes, in offset order).
    #[serde(skip)]
    pub indexes: Vec<usize>,
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition of a keyed record among `count` (Kafka's `toPositive(murmur2) % count`).
pub fn partition_for_key(key: &[u8], count: usize) -> usize {
    assert!(count > 0, "a topic has at least one partition");
    (murmur2(key) & 0x7fff_ffff) as usize % count
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A producer of one topic.
pub struct Producer {
    topic: String,
    partitions: Vec<PartitionInfo>,
    next_unkeyed: usize,
    /// `0`, `1` or `-1` (all).
    pub acks: i16,
}

impl Producer {
    /// A producer of `topic` (which must exist) with `acks`.
    pub async fn new(client: &mut Client, topic: &str, acks: i16) -> anyhow::Result<Producer> {
        if !matches!(acks, -1..=1) {
            bail!("acks must be 0, 1 or all (-1), not {acks}");
        }
        let partitions = client.partitions(topic).await?;
        if partitions.is_empty() {
            bail!("topic {topic} has no partitions");
        }
        Ok(Producer {
            topic: topic.to_string(),
            partitions,
            next_unkeyed: 0,
            acks,
        })
    }

    /// Partitions of the topic.
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// Sends `records` (to `partition` if given, else by key or round-robin)
    /// and returns where each partition's batch landed.
    pub async fn send(
        &mut self,
        client: &mut Client,
        records: &[Outgoing],
        partition: Option<i32>,
    ) -> anyhow::Result<Vec<Produced>> {
        let count = self.partitions.len();
        let mut by_partition: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (at, record) in records.iter().enumerate() {
            let index = match (record.partition.or(partition), &record.key) {
                (Some(p), _) => match usize::try_from(p).ok().filter(|&p| p < count) {
                    Some(p) => p,
                    None => bail!(
                        "partition {p} does not exist: topic {} has partitions 0 to {}",
                        self.topic,
                        count - 1
                    ),
                },
                (None, Some(key)) => partition_for_key(key, count),
                (None, None) => {
                    self.next_unkeyed = (self.next_unkeyed + 1) % count;
                    self.next_unkeyed
                }
            };
            by_partition.entry(index).or_default().push(at);
        }
        let timestamp_ms = now_ms();
        let mut produced = Vec::new();
        for (index, indexes) in by_partition {
            let info = self.partitions[index].clone();
            let headers: Vec<Vec<Header<'_>>> = indexes
                .iter()
                .map(|&at| {
                    records[at]
                        .headers
                        .iter()
                        .map(|(k, v)| (k.as_bytes(), v.as_deref()))
                        .collect()
                })
                .collect();
            let batch = encode_batch(
                &indexes
                    .iter()
                    .zip(&headers)
                    .map(|(&at, headers)| NewRecord {
                        key: records[at].key.as_deref(),
                        value: Some(&records[at].value),
                        timestamp_ms,
                        headers,
                    })
                    .collect::<Vec<_>>(),
                Compression::None,
            )
            .context("cannot encode the batch")?;
            let request = ProduceRequest::default()
                .with_acks(self.acks)
                .with_timeout_ms(PRODUCE_TIMEOUT_MS)
                .with_topic_data(vec![
                    TopicProduceData::default()
                        .with_name(topic_name(&self.topic))
                        .with_partition_data(vec![
                            PartitionProduceData::default()
                                .with_index(info.index)
                                .with_records(Some(batch.into())),
                        ]),
                ]);
            let connection = client.broker(info.leader).await?;
            if self.acks == 0 {
                connection.send_only(&request).await?;
                produced.push(Produced {
                    partition: info.index,
                    base_offset: -1,
                    records: indexes.len(),
                    indexes,
                });
                continue;
            }
            let response = connection.send(&request, Duration::ZERO).await?;
            for t in response.responses {
                for p in t.partition_responses {
                    let what = format!("produce to {}-{}", self.topic, p.index);
                    check_code_with(p.error_code, p.error_message.as_ref(), &what)?;
                    produced.push(Produced {
                        partition: p.index,
                        base_offset: p.base_offset,
                        records: indexes.len(),
                        indexes: indexes.clone(),
                    });
                }
            }
        }
        Ok(produced)
    }

    /// Like [`Self::send`], but answers where each record landed, in the
    /// order given: (partition, offset), the offset -1 with acks=0.
    pub async fn send_each(
        &mut self,
        client: &mut Client,
        records: &[Outgoing],
        partition: Option<i32>,
    ) -> anyhow::Result<Vec<(i32, i64)>> {
        let mut placed = vec![(-1, -1); records.len()];
        for batch in self.send(client, records, partition).await? {
            for (i, &at) in batch.indexes.iter().enumerate() {
                let offset = if batch.base_offset < 0 {
                    -1
                } else {
                    batch.base_offset + i as i64
                };
                placed[at] = (batch.partition, offset);
            }
        }
        Ok(placed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Values from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973_932_308);
        assert_eq!(murmur2(b"foobar"), -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985_981_536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58_897_971
        );
        assert_eq!(murmur2(b"abc"), 479_470_107);
    }

    #[test]
    fn keys_pick_a_stable_partition_within_range() {
        for count in 1..10 {
            let p = partition_for_key(b"user-42", count);
            assert!(p < count);
            assert_eq!(p, partition_for_key(b"user-42", count));
        }
    }
}
