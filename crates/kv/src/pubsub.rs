//! Publish/subscribe: the hub that routes messages to subscribed clients.
//!
//! Redis's pub/sub is fire-and-forget: a message reaches whoever is
//! subscribed at that instant and is never stored. The hub keeps two maps,
//! channel → subscribers and pattern → subscribers; `PUBLISH` delivers to
//! the channel's subscribers and to every pattern that glob-matches.
//!
//! Delivery is an unbounded queue per client *with Redis's output limits*
//! (`client-output-buffer-limit pubsub`, default `32mb 8mb 60`): each
//! subscriber's queued bytes are counted, and one that reaches the hard
//! limit, or stays over the soft limit for longer than its seconds, is
//! condemned: it gets nothing more, `PUBLISH` stops counting it, and its
//! connection closes at once, even while it is blocked writing to a client
//! that stopped reading. A slow reader therefore cannot make the server
//! buffer without bound, and a publisher never blocks on a slow subscriber.
//! The limits live in the hub, so `CONFIG SET` changes them for everyone.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::RwLock;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::OutputLimits;
use crate::pattern::glob_match;

/// Per-message bookkeeping overhead counted against the byte budget.
const MESSAGE_OVERHEAD_BYTES: usize = 64;

/// One published message as a subscriber receives it.
#[derive(Debug)]
pub struct Message {
    /// The matching pattern, for pattern subscriptions (`pmessage`).
    pub pattern: Option<Bytes>,
    /// The channel it was published to.
    pub channel: Bytes,
    /// The payload.
    pub payload: Bytes,
}

impl Message {
    fn size_bytes(&self) -> u64 {
        (self.pattern.as_ref().map_or(0, Bytes::len)
            + self.channel.len()
            + self.payload.len()
            + MESSAGE_OVERHEAD_BYTES) as u64
    }
}

/// What both ends of one client's queue share.
#[derive(Debug, Default)]
struct Budget {
    /// Bytes queued and not yet taken by the connection.
    pending_bytes: AtomicU64,
    /// When the queue went over the soft limit (Unix ms), `0` if it is not.
    soft_since_ms: AtomicU64,
    /// Cancelled when the client broke a limit: the connection must close.
    condemned: CancellationToken,
}

/// The sending side of one client's message queue.
#[derive(Debug, Clone)]
pub struct Subscriber {
    /// The client id (the key in the hub's maps).
    id: u64,
    tx: mpsc::UnboundedSender<Arc<Message>>,
    budget: Arc<Budget>,
}

/// The receiving side, owned by the connection.
#[derive(Debug)]
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<Arc<Message>>,
    budget: Arc<Budget>,
}

impl Inbox {
    /// Waits for the next message.
    pub async fn recv(&mut self) -> Option<Arc<Message>> {
        let message = self.rx.recv().await?;
        self.taken(&message);
        Some(message)
    }

    /// A message already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Arc<Message>> {
        let message = self.rx.try_recv().ok()?;
        self.taken(&message);
        Some(message)
    }

    fn taken(&self, message: &Message) {
        self.budget
            .pending_bytes
            .fetch_sub(message.size_bytes(), Ordering::AcqRel);
    }

    /// Whether this client broke its output limit and must be disconnected.
    pub fn overflowed(&self) -> bool {
        self.budget.condemned.is_cancelled()
    }

    /// Fires when this client breaks its output limit: the connection
    /// selects on it around every socket write, so a client that stopped
    /// reading is closed even while a write to it is blocked.
    pub fn condemned(&self) -> &CancellationToken {
        &self.budget.condemned
    }
}

/// A new queue for client `id`.
pub fn mailbox(id: u64) -> (Subscriber, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    let budget = Arc::new(Budget::default());
    let sub = Subscriber {
        id,
        tx,
        budget: budget.clone(),
    };
    (sub, Inbox { rx, budget })
}

/// Redis's rule (`checkClientOutputBufferLimits`): over the limits with
/// `pending_bytes` queued at `now_ms`? The hard limit trips at once; the soft
/// limit only once the queue has stayed at or over it for more than
/// `soft_seconds` (`soft_since_ms` remembers when it went over; `0` = not
/// over, and going under resets it).
pub fn over_limit(
    limits: OutputLimits,
    pending_bytes: u64,
    soft_since_ms: &mut u64,
    now_ms: u64,
) -> bool {
    let hard = limits.hard_bytes > 0 && pending_bytes >= limits.hard_bytes;
    let over_soft = limits.soft_bytes > 0 && pending_bytes >= limits.soft_bytes;
    let soft = if !over_soft {
        *soft_since_ms = 0;
        false
    } else if *soft_since_ms == 0 {
        *soft_since_ms = now_ms.max(1);
        false
    } else {
        let elapsed_secs = now_ms.saturating_sub(*soft_since_ms) / 1000;
        elapsed_secs > limits.soft_seconds
    };
    hard || soft
}

impl Subscriber {
    /// Queues `message` unless this client is (or now becomes) over its
    /// limits; returns whether it was queued (what `PUBLISH` counts).
    fn deliver(&self, message: &Arc<Message>, limits: OutputLimits, now_ms: u64) -> bool {
        let budget = &self.budget;
        if budget.condemned.is_cancelled() {
            return false;
        }
        let size = message.size_bytes();
        let pending = budget.pending_bytes.fetch_add(size, Ordering::AcqRel) + size;
        let mut since = budget.soft_since_ms.load(Ordering::Acquire);
        let over = over_limit(limits, pending, &mut since, now_ms);
        budget.soft_since_ms.store(since, Ordering::Release);
        if over || self.tx.send(message.clone()).is_err() {
            budget.pending_bytes.fetch_sub(size, Ordering::AcqRel);
            if over {
                budget.condemned.cancel();
            }
            return false;
        }
        true
    }
}

type Subscribers = HashMap<Bytes, HashMap<u64, Subscriber>>;

/// The hub (see the module docs).
#[derive(Debug)]
pub struct Hub {
    channels: RwLock<Subscribers>,
    patterns: RwLock<Subscribers>,
    /// `client-output-buffer-limit pubsub`, for every subscriber.
    limits: RwLock<OutputLimits>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new(OutputLimits::PUBSUB_DEFAULT)
    }
}

/// Whether a subscription is to a channel or a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `SUBSCRIBE`.
    Channel,
    /// `PSUBSCRIBE`.
    Pattern,
}

impl Hub {
    /// A hub whose subscribers are held to `limits`.
    pub fn new(limits: OutputLimits) -> Self {
        Hub {
            channels: RwLock::default(),
            patterns: RwLock::default(),
            limits: RwLock::new(limits),
        }
    }

    /// Changes the limits (`CONFIG SET client-output-buffer-limit`).
    pub fn set_limits(&self, limits: OutputLimits) {
        *self.limits.write() = limits;
    }

    fn map(&self, kind: Kind) -> &RwLock<Subscribers> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
        }
    }

    /// Subscribes; `false` if it already was.
    pub fn subscribe(&self, kind: Kind, name: Bytes, sub: &Subscriber) -> bool {
        self.map(kind)
            .write()
            .entry(name)
            .or_default()
            .insert(sub.id, sub.clone())
            .is_none()
    }

    /// Unsubscribes; `false` if it was not subscribed.
    pub fn unsubscribe(&self, kind: Kind, name: &[u8], id: u64) -> bool {
        let mut map = self.map(kind).write();
        let Some(subs) = map.get_mut(name) else {
            return false;
        };
        let removed = subs.remove(&id).is_some();
        if subs.is_empty() {
            map.remove(name);
        }
        removed
    }

    /// Delivers a message; returns how many clients received it (a
    /// subscriber over its output limit is skipped and not counted).
    pub fn publish(&self, channel: Bytes, payload: Bytes) -> usize {
        let limits = *self.limits.read();
        let now_ms = clock::now_ms();
        let mut receivers = 0;
        if let Some(subs) = self.channels.read().get(&channel[..]) {
            let message = Arc::new(Message {
                pattern: None,
                channel: channel.clone(),
                payload: payload.clone(),
            });
            for sub in subs.values() {
                receivers += usize::from(sub.deliver(&message, limits, now_ms));
            }
        }
        for (pattern, subs) in self.patterns.read().iter() {
            if !glob_match(pattern, &channel) {
                continue;
            }
            let message = Arc::new(Message {
                pattern: Some(pattern.clone()),
                channel: channel.clone(),
                payload: payload.clone(),
            });
            for sub in subs.values() {
                receivers += usize::from(sub.deliver(&message, limits, now_ms));
            }
        }
        receivers
    }

    /// Active channels (with at least one subscriber), optionally filtered.
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let map = self.channels.read();
        map.keys()
            .filter(|c| pattern.is_none_or(|p| glob_match(p, c)))
            .cloned()
            .collect()
    }

    /// Subscriber count of a channel (patterns not included, as Redis).
    pub fn numsub(&self, channel: &[u8]) -> usize {
        self.channels.read().get(channel).map_or(0, HashMap::len)
    }

    /// Number of distinct patterns subscribed.
    pub fn numpat(&self) -> usize {
        self.patterns.read().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hard_only(hard_bytes: u64) -> OutputLimits {
        OutputLimits {
            hard_bytes,
            soft_bytes: 0,
            soft_seconds: 0,
        }
    }

    #[tokio::test]
    async fn publish_reaches_channels_and_patterns() {
        let hub = Hub::new(hard_only(0));
        let (a, mut inbox_a) = mailbox(1);
        let (b, mut inbox_b) = mailbox(2);
        hub.subscribe(Kind::Channel, Bytes::from("news.tech"), &a);
        hub.subscribe(Kind::Pattern, Bytes::from("news.*"), &b);
        assert_eq!(hub.publish(Bytes::from("news.tech"), Bytes::from("hi")), 2);
        assert_eq!(hub.publish(Bytes::from("sport"), Bytes::from("x")), 0);
        assert_eq!(inbox_a.recv().await.unwrap().payload, "hi");
        assert_eq!(
            inbox_b.recv().await.unwrap().pattern.as_deref(),
            Some(&b"news.*"[..])
        );
        assert!(hub.unsubscribe(Kind::Channel, b"news.tech", 1));
        assert!(hub.channels(None).is_empty());
    }

    #[test]
    fn a_slow_subscriber_is_condemned_and_no_longer_counted() {
        let hub = Hub::new(hard_only(1000));
        let (sub, inbox) = mailbox(1);
        hub.subscribe(Kind::Channel, Bytes::from("c"), &sub);
        let counts: Vec<usize> = (0..100)
            .map(|_| hub.publish(Bytes::from("c"), Bytes::from(vec![0u8; 100])))
            .collect();
        assert!(inbox.overflowed());
        assert!(inbox.condemned().is_cancelled());
        // Counted while queued, never again once over the limit (before the
        // fix a condemned subscriber was still counted by every PUBLISH).
        let delivered = counts.iter().take_while(|&&n| n == 1).count();
        assert!((1..10).contains(&delivered), "{counts:?}");
        assert!(counts[delivered..].iter().all(|&n| n == 0), "{counts:?}");
        assert!(inbox.budget.pending_bytes.load(Ordering::Acquire) < 1000);
    }

    #[test]
    fn the_soft_limit_needs_to_last_longer_than_its_seconds() {
        let limits = OutputLimits {
            hard_bytes: 1000,
            soft_bytes: 100,
            soft_seconds: 2,
        };
        let mut since = 0;
        assert!(!over_limit(limits, 50, &mut since, 10_000));
        assert!(
            !over_limit(limits, 150, &mut since, 10_000),
            "starts the clock"
        );
        assert_eq!(since, 10_000);
        assert!(
            !over_limit(limits, 150, &mut since, 12_999),
            "2 s: not more than 2"
        );
        assert!(
            over_limit(limits, 150, &mut since, 13_000),
            "3 s over the soft limit"
        );
        // Dropping under the soft limit resets the clock.
        let mut since = 10_000;
        assert!(!over_limit(limits, 99, &mut since, 20_000));
        assert_eq!(since, 0);
        assert!(!over_limit(limits, 150, &mut since, 20_000));
        // The hard limit trips at once; 0 disables a limit.
        assert!(over_limit(limits, 1000, &mut 0, 0));
        assert!(!over_limit(hard_only(0), u64::MAX, &mut 0, 0));
    }
}
