//! The collector side: turns scraped samples into records, keyed by metric
//! name (or by a chosen label set) so one partition holds all of a series,
//! with metrics marked important sent to the priority topic.
//!
//! Why a module: partitioning and priority are the notes' two scaling
//! knobs for the queue; they are decided here, per series, as pure
//! functions ([`Publisher::route`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use mqclient::{MqClient, Record};

use super::codec::{RECORD_BYTES_MAX, WireSeries, encode};
use crate::rules::LabelSet;

/// Where and how samples are published.
#[derive(Clone, Debug)]
pub struct PublishOptions {
    /// Topic of ordinary metrics.
    pub topic: String,
    /// Topic of important metrics.
    pub priority_topic: String,
    /// Labels whose values form the partition key (empty: the metric name).
    pub partition_by: Vec<String>,
    /// Metric names (anchored regex) that go to the priority topic.
    pub important: Option<regex::Regex>,
    /// Partitions of each topic when it is created.
    pub partitions: i32,
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self {
            topic: super::TOPIC.into(),
            priority_topic: super::PRIORITY_TOPIC.into(),
            partition_by: Vec::new(),
            important: None,
            partitions: 4,
        }
    }
}

/// Publishes samples through any [`MqClient`].
pub struct Publisher {
    client: Arc<dyn MqClient>,
    opts: PublishOptions,
}

impl Publisher {
    /// Creates the topics if needed.
    pub async fn new(client: Arc<dyn MqClient>, opts: PublishOptions) -> mqclient::Result<Self> {
        client.ensure_topic(&opts.topic, opts.partitions).await?;
        client
            .ensure_topic(&opts.priority_topic, opts.partitions)
            .await?;
        Ok(Self { client, opts })
    }

    /// The topic and key of a series.
    pub fn route(&self, labels: &LabelSet) -> (&str, String) {
        let name = labels.get("__name__").map(String::as_str).unwrap_or("");
        let topic = match &self.opts.important {
            Some(re) if re.is_match(name) => &self.opts.priority_topic,
            _ => &self.opts.topic,
        };
        let key = if self.opts.partition_by.is_empty() {
            name.to_string()
        } else {
            let vals: Vec<&str> = self
                .opts
                .partition_by
                .iter()
                .map(|k| labels.get(k).map(String::as_str).unwrap_or(""))
                .collect();
            vals.join("\u{ff}")
        };
        (topic, key)
    }

    /// Publishes `series`; resolves once the broker has acknowledged every record.
    pub async fn publish(&self, series: Vec<WireSeries>) -> mqclient::Result<()> {
        let mut by_topic: BTreeMap<String, BTreeMap<String, Vec<WireSeries>>> = BTreeMap::new();
        for s in series {
            let (topic, key) = self.route(&s.labels);
            by_topic
                .entry(topic.to_string())
                .or_default()
                .entry(key)
                .or_default()
                .push(s);
        }
        for (topic, keys) in by_topic {
            let mut records = Vec::new();
            for (key, list) in keys {
                // Split so no record exceeds the limit.
                let mut chunk: Vec<WireSeries> = Vec::new();
                let mut bytes = 0;
                for s in list {
                    let size = 64
                        + s.samples.len() * 40
                        + s.labels
                            .iter()
                            .map(|(k, v)| k.len() + v.len() + 6)
                            .sum::<usize>();
                    if !chunk.is_empty() && bytes + size > RECORD_BYTES_MAX {
                        records.push(Record::new(encode(&chunk)).key(key.clone().into_bytes()));
                        chunk.clear();
                        bytes = 0;
                    }
                    bytes += size;
                    chunk.push(s);
                }
                if !chunk.is_empty() {
                    records.push(Record::new(encode(&chunk)).key(key.clone().into_bytes()));
                }
            }
            self.client.produce_batch(&topic, records).await?;
        }
        Ok(())
    }
}
