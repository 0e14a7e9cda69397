//! The ingester: a member of a consumer group that writes the pipeline's
//! records into [`tsdb::Db`] and commits offsets only after the WAL has
//! made them durable. Records of the priority topic are read first in
//! every round.
//!
//! Why a module: this is the notes' stream consumer between the queue and
//! the database; its one rule (durable, then commit) is what makes a crash
//! or an outage lose nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use mqclient::{Consumer, ConsumerConfig, Message, MqClient};
use tsdb::{Db, SeriesSamples};

use super::codec::decode;

/// Settings of an ingester.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// Consumer group (the priority topic uses `<group>.priority`).
    pub group: String,
    /// Topic of ordinary metrics.
    pub topic: String,
    /// Topic of important metrics.
    pub priority_topic: String,
    /// Longest wait of one poll.
    pub poll_ms: u64,
    /// Session timeout of the group membership.
    pub session_timeout_ms: u32,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            group: "ingest".into(),
            topic: super::TOPIC.into(),
            priority_topic: super::PRIORITY_TOPIC.into(),
            poll_ms: 200,
            session_timeout_ms: 10_000,
        }
    }
}

/// Counters of an ingester.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Records written and committed.
    pub records: AtomicU64,
    /// Samples written.
    pub samples: AtomicU64,
    /// Records refused by the database (bad labels, conflicting samples): skipped.
    pub refused: AtomicU64,
}

/// Converts one record into an append batch, with the database's limits.
fn to_batch(db: &Db, m: &Message) -> Result<Vec<SeriesSamples>, String> {
    let value = m.value.as_deref().ok_or("empty record")?;
    let series = decode(value)?;
    let mut out = Vec::with_capacity(series.len());
    for s in series {
        let labels = db.labels(s.labels).map_err(|e| e.to_string())?;
        out.push((
            labels,
            s.samples
                .into_iter()
                .map(|(t, bits)| (t, f64::from_bits(bits)))
                .collect(),
        ));
    }
    Ok(out)
}

/// Writes `msgs` durably; returns Err only when the database cannot write
/// (then nothing may be committed).
async fn write(db: &Arc<Db>, msgs: Vec<Message>, stats: &IngestStats) -> Result<(), String> {
    let db = db.clone();
    let (records, samples, refused) = tokio::task::spawn_blocking(move || {
        let mut tickets = Vec::new();
        let (mut records, mut samples, mut refused) = (0u64, 0u64, 0u64);
        for m in &msgs {
            match to_batch(&db, m) {
                Ok(batch) => {
                    let n: usize = batch.iter().map(|(_, s)| s.len()).sum();
                    match db.append(batch) {
                        Ok(t) => {
                            tickets.push(t);
                            records += 1;
                            samples += n as u64;
                        }
                        Err(e) if e.is_bad_input() => {
                            tracing::warn!(topic = %m.topic, partition = m.partition, offset = m.offset, error = %e, "record refused by the database; skipped");
                            refused += 1;
                        }
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Err(e) => {
                    tracing::warn!(topic = %m.topic, partition = m.partition, offset = m.offset, error = %e, "undecodable record; skipped");
                    refused += 1;
                }
            }
        }
        // Durable (one group commit for the whole batch) before any commit.
        for t in tickets {
            t.wait().map_err(|e| e.to_string())?;
        }
        Ok((records, samples, refused))
    })
    .await
    .map_err(|e| format!("ingest task failed: {e}"))??;
    stats.records.fetch_add(records, Ordering::Relaxed);
    stats.samples.fetch_add(samples, Ordering::Relaxed);
    stats.refused.fetch_add(refused, Ordering::Relaxed);
    Ok(())
}

async fn consumer(
    client: &dyn MqClient,
    group: String,
    topic: &str,
    session_timeout_ms: u32,
) -> mqclient::Result<Box<dyn Consumer>> {
    let mut cfg = ConsumerConfig::group(group, &[topic]);
    cfg.session_timeout_ms = session_timeout_ms;
    client.subscribe(cfg).await
}

/// Consumes until `stop` is set; returns after closing its consumers.
pub async fn run(
    client: Arc<dyn MqClient>,
    db: Arc<Db>,
    opts: IngestOptions,
    stop: Arc<AtomicBool>,
    stats: Arc<IngestStats>,
) -> Result<(), String> {
    client
        .ensure_topic(&opts.topic, 4)
        .await
        .map_err(|e| e.to_string())?;
    client
        .ensure_topic(&opts.priority_topic, 4)
        .await
        .map_err(|e| e.to_string())?;
    let mut prio = consumer(
        client.as_ref(),
        format!("{}.priority", opts.group),
        &opts.priority_topic,
        opts.session_timeout_ms,
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut main = consumer(
        client.as_ref(),
        opts.group.clone(),
        &opts.topic,
        opts.session_timeout_ms,
    )
    .await
    .map_err(|e| e.to_string())?;
    let poll = Duration::from_millis(opts.poll_ms);
    while !stop.load(Ordering::SeqCst) {
        for (c, wait) in [(&mut prio, Duration::from_millis(1)), (&mut main, poll)] {
            let msgs = match c.poll(wait).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "poll failed; retrying");
                    tokio::time::sleep(poll).await;
                    continue;
                }
            };
            if msgs.is_empty() {
                continue;
            }
            // Not durable: stop without committing; the records come again.
            write(&db, msgs, &stats).await?;
            if let Err(e) = c.commit().await {
                // A rebalance: the records come again to their new owner (idempotent).
                tracing::warn!(error = %e, "commit failed");
            }
        }
    }
    let _ = prio.close().await;
    let _ = main.close().await;
    Ok(())
}
