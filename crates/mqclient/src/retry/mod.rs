//! Retry topic and dead letters: what to do with a record whose processing
//! failed, without blocking the records behind it.
//!
//! A partition is a queue in order: a consumer that retries a failing
//! record in place stops its whole partition (every later record waits),
//! and one that skips it loses it. The notes' answer, as Uber and Spring
//! Kafka build it, is two more topics beside each topic `T`:
//!
//! ```text
//!   T ──consumer──> ok: commit
//!        │ fails
//!        └─Router::fail──> T.retry  (headers: retry.attempt = n, retry.not-before-ms,
//!                           │         retry.error, retry.origin = T/partition/offset)
//!                           └─ Worker: waits until not-before, re-produces to T ──> T
//!        after max_attempts: Router::fail ──> T.dlq (same headers: the last error, the count)
//!   hyperscale mq dlq --topic T   lists T.dlq
//! ```
//!
//! - [`Router::fail`] is what the application calls for a failed record
//!   (it then commits as usual: the record is now safe in another topic).
//!   It counts the attempt in a header and picks `T.retry` or, once
//!   `max_attempts` deliveries have failed, `T.dlq`. The key is kept, so a
//!   retried record goes back to its key's partition of `T`.
//! - [`Worker`] (`hyperscale mq retry`) consumes `T.retry` in its own
//!   group, waits out each record's not-before time and re-produces it to
//!   `T` with its headers, then commits. Records not yet due are not
//!   committed: the worker seeks back to them and sleeps, polling at least
//!   once a second so it keeps its group membership. Records written to
//!   `T.retry` by other clients without headers count as one failed
//!   attempt, due `delay_ms` after their timestamp.
//! - Both are at-least-once: a crash between producing a record onward and
//!   committing it delivers it twice, so handlers should be idempotent.
//!
//! Trade-offs: one fixed delay per retry topic keeps each partition of
//! `T.retry` in due-time order (a record never waits behind a later-due
//! one); tiers of growing delays are a chain of workers on topics of your
//! naming. A retried record loses its place among its key's records:
//! per-key order holds only for records that never failed.

mod worker;

pub use worker::{Decision, Stats, Worker, WorkerConfig, decide};

use std::sync::Arc;

use crate::{ConsumerConfig, Delivery, Message, MqClient, Record, Result};

/// Header: how many deliveries of this record failed so far (decimal).
pub const ATTEMPT_HEADER: &str = "retry.attempt";
/// Header: not to be re-delivered before this time (ms since 1970, decimal).
pub const NOT_BEFORE_HEADER: &str = "retry.not-before-ms";
/// Header: the last error's text.
pub const ERROR_HEADER: &str = "retry.error";
/// Header: where the record first failed, `topic/partition/offset`.
pub const ORIGIN_HEADER: &str = "retry.origin";
/// Longest error text kept in [`ERROR_HEADER`].
pub const ERROR_MAX_BYTES: usize = 1024;

/// The retry topic of `topic`.
pub fn retry_topic(topic: &str) -> String {
    format!("{topic}.retry")
}

/// The dead-letter topic of `topic`.
pub fn dlq_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// How often and how late a failed record is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Deliveries a record gets in all (the first one included); after
    /// that many failures it is a dead letter. 1: no retry at all.
    pub max_attempts: u32,
    /// How long a failed record waits before it is delivered again.
    pub delay_ms: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_attempts: 5,
            delay_ms: 1_000,
        }
    }
}

/// Where [`Router::fail`] sent a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed {
    /// To the retry topic, as failed attempt `attempt`, due at `not_before_ms`.
    Retry {
        /// Failed deliveries so far.
        attempt: u32,
        /// When it may be delivered again.
        not_before_ms: u64,
        /// Where it landed in the retry topic.
        delivery: Delivery,
    },
    /// To the dead-letter topic after `attempts` failed deliveries.
    Dead {
        /// Failed deliveries in all.
        attempts: u32,
        /// Where it landed in the dead-letter topic.
        delivery: Delivery,
    },
}

/// Failed deliveries recorded in a record's headers (0 if none).
pub fn attempts(message: &Message) -> u32 {
    message
        .header(ATTEMPT_HEADER)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `text` cut to at most `max` bytes at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The record to send onward: `message`'s key, value and headers, with the
/// headers named in `set` replaced and those in `drop` removed.
pub fn carry(message: &Message, set: &[(&str, String)], drop: &[&str]) -> Record {
    let mut headers: Vec<(String, Option<Vec<u8>>)> = message
        .headers
        .iter()
        .filter(|(k, _)| !set.iter().any(|(name, _)| name == k) && !drop.contains(&k.as_str()))
        .cloned()
        .collect();
    headers.extend(
        set.iter()
            .map(|(k, v)| (k.to_string(), Some(v.clone().into_bytes()))),
    );
    Record {
        key: message.key.clone(),
        value: message.value.clone().unwrap_or_default(),
        headers,
        partition: None,
    }
}

/// Where a failed record goes, and as what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `<topic>.retry` or `<topic>.dlq`.
    pub topic: String,
    /// The record to produce there.
    pub record: Record,
    /// Failed deliveries, this one included.
    pub attempt: u32,
    /// When it is due again (None: a dead letter).
    pub not_before_ms: Option<u64>,
}

/// Where a failed `message` goes and as what (pure: `now_ms` is given).
pub fn plan(message: &Message, error: &str, policy: &Policy, now_ms: u64) -> Plan {
    let attempt = attempts(message).saturating_add(1);
    let origin = message
        .header(ORIGIN_HEADER)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_else(|| format!("{}/{}/{}", message.topic, message.partition, message.offset));
    let mut set = vec![
        (ATTEMPT_HEADER, attempt.to_string()),
        (ERROR_HEADER, truncate(error, ERROR_MAX_BYTES).to_string()),
        (ORIGIN_HEADER, origin),
    ];
    if attempt >= policy.max_attempts {
        return Plan {
            topic: dlq_topic(&message.topic),
            record: carry(message, &set, &[NOT_BEFORE_HEADER]),
            attempt,
            not_before_ms: None,
        };
    }
    let not_before_ms = now_ms.saturating_add(policy.delay_ms);
    set.push((NOT_BEFORE_HEADER, not_before_ms.to_string()));
    Plan {
        topic: retry_topic(&message.topic),
        record: carry(message, &set, &[]),
        attempt,
        not_before_ms: Some(not_before_ms),
    }
}

/// Sends failed records to `<topic>.retry` or `<topic>.dlq` (see the module doc).
pub struct Router {
    client: Arc<dyn MqClient>,
    policy: Policy,
}

impl Router {
    /// A router producing through `client` under `policy`.
    pub fn new(client: Arc<dyn MqClient>, policy: Policy) -> Router {
        Router { client, policy }
    }

    /// Creates `<topic>.retry` and `<topic>.dlq` if absent.
    pub async fn ensure_topics(&self, topic: &str, partitions: i32) -> Result<()> {
        crate::validate::topic(topic)?;
        self.client
            .ensure_topic(&retry_topic(topic), partitions)
            .await?;
        self.client
            .ensure_topic(&dlq_topic(topic), partitions)
            .await?;
        Ok(())
    }

    /// Records that processing `message` failed with `error`: re-produces it
    /// to the retry topic, or to the dead-letter topic after the last attempt.
    /// Commit the message afterwards as if it had succeeded.
    pub async fn fail(&self, message: &Message, error: &str) -> Result<Routed> {
        let plan = plan(message, error, &self.policy, clock::now_ms());
        let delivery = self.client.produce(&plan.topic, plan.record).await?;
        Ok(match plan.not_before_ms {
            Some(not_before_ms) => Routed::Retry {
                attempt: plan.attempt,
                not_before_ms,
                delivery,
            },
            None => Routed::Dead {
                attempts: plan.attempt,
                delivery,
            },
        })
    }
}

/// A record of a dead-letter topic, as `hyperscale mq dlq` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The record as stored in `<topic>.dlq`.
    pub message: Message,
    /// Failed deliveries.
    pub attempts: u32,
    /// The last error's text.
    pub error: String,
    /// Where it first failed (`topic/partition/offset`), if known.
    pub origin: Option<String>,
}

impl DeadLetter {
    /// Reads the retry headers of a dead-letter record.
    pub fn from_message(message: Message) -> DeadLetter {
        let text = |name: &str| {
            message
                .header(name)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        DeadLetter {
            attempts: attempts(&message),
            error: text(ERROR_HEADER).unwrap_or_default(),
            origin: text(ORIGIN_HEADER),
            message,
        }
    }
}

/// The dead letters of `topic` (its `.dlq` topic read from the start
/// without a group, so listing moves nothing), at most `limit` of them.
pub async fn dead_letters(
    client: &dyn MqClient,
    topic: &str,
    limit: usize,
) -> Result<Vec<DeadLetter>> {
    crate::validate::topic(topic)?;
    let dlq = dlq_topic(topic);
    let mut reader = client.subscribe(ConsumerConfig::no_group(&[&dlq])).await?;
    let mut letters = Vec::new();
    while letters.len() < limit {
        // One poll fetches from every partition: nothing new means caught up.
        let got = reader.poll(LIST_POLL_WAIT).await?;
        if got.is_empty() {
            break;
        }
        letters.extend(got.into_iter().map(DeadLetter::from_message));
    }
    letters.truncate(limit);
    reader.close().await?;
    Ok(letters)
}

/// How long [`dead_letters`] waits for more records before it has them all.
const LIST_POLL_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(headers: Vec<(String, Option<Vec<u8>>)>) -> Message {
        Message {
            topic: "orders".into(),
            partition: 2,
            offset: 40,
            timestamp_ms: 1_000,
            key: Some(b"k".to_vec()),
            value: Some(b"v".to_vec()),
            headers,
        }
    }

    fn header(record: &Record, name: &str) -> Option<String> {
        record
            .headers
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_ref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    #[test]
    fn a_first_failure_goes_to_retry_with_its_origin_and_due_time() {
        let policy = Policy {
            max_attempts: 3,
            delay_ms: 500,
        };
        let trace = ("trace".to_string(), Some(b"t1".to_vec()));
        let Plan { topic, record, .. } =
            plan(&failed(vec![trace.clone()]), "boom", &policy, 10_000);
        assert_eq!(topic, "orders.retry");
        assert_eq!(record.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(record.value, b"v");
        assert_eq!(record.headers[0], trace, "other headers travel along");
        assert_eq!(header(&record, ATTEMPT_HEADER).as_deref(), Some("1"));
        assert_eq!(header(&record, NOT_BEFORE_HEADER).as_deref(), Some("10500"));
        assert_eq!(header(&record, ERROR_HEADER).as_deref(), Some("boom"));
        assert_eq!(
            header(&record, ORIGIN_HEADER).as_deref(),
            Some("orders/2/40")
        );
    }

    #[test]
    fn the_last_attempt_goes_to_the_dlq_and_headers_are_replaced_not_repeated() {
        let policy = Policy {
            max_attempts: 3,
            delay_ms: 500,
        };
        let before = vec![
            (ATTEMPT_HEADER.to_string(), Some(b"2".to_vec())),
            (ORIGIN_HEADER.to_string(), Some(b"orders/0/7".to_vec())),
            (NOT_BEFORE_HEADER.to_string(), Some(b"1".to_vec())),
        ];
        let Plan { topic, record, .. } = plan(&failed(before), &"é".repeat(2000), &policy, 10_000);
        assert_eq!(topic, "orders.dlq");
        assert_eq!(
            header(&record, NOT_BEFORE_HEADER),
            None,
            "a dead letter is never due"
        );
        assert_eq!(header(&record, ATTEMPT_HEADER).as_deref(), Some("3"));
        assert_eq!(
            header(&record, ORIGIN_HEADER).as_deref(),
            Some("orders/0/7")
        );
        let count = |name: &str| record.headers.iter().filter(|(k, _)| k == name).count();
        assert_eq!((count(ATTEMPT_HEADER), count(ORIGIN_HEADER)), (1, 1));
        let error = header(&record, ERROR_HEADER).unwrap();
        assert!(error.len() <= ERROR_MAX_BYTES && error.starts_with('é'));
        let dead = DeadLetter::from_message(Message {
            headers: record.headers.clone(),
            ..failed(Vec::new())
        });
        assert_eq!(
            (dead.attempts, dead.origin.as_deref()),
            (3, Some("orders/0/7"))
        );
    }

    #[test]
    fn one_attempt_means_no_retry_and_garbage_counts_are_zero() {
        let policy = Policy {
            max_attempts: 1,
            delay_ms: 0,
        };
        assert_eq!(plan(&failed(vec![]), "x", &policy, 0).topic, "orders.dlq");
        let junk = vec![(ATTEMPT_HEADER.to_string(), Some(b"lots".to_vec()))];
        assert_eq!(attempts(&failed(junk)), 0);
    }
}
