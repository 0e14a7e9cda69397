//! Publish/subscribe: the hub that routes messages to subscribed clients.
//!
//! Redis's pub/sub is fire-and-forget: a message reaches whoever is
//! subscribed at that instant and is never stored. The hub keeps two maps,
//! channel → subscribers and pattern → subscribers; `PUBLISH` delivers to
//! the channel's subscribers and to every pattern that glob-matches.
//!
//! Delivery is an unbounded queue per client *with a byte budget*: each
//! subscriber's queued bytes are counted, and a subscriber that falls more
//! than `client-output-buffer-limit pubsub` behind is marked overflowed and
//! disconnected by its connection, exactly Redis's hard limit. A slow
//! reader therefore cannot make the server buffer without bound, and a
//! publisher never blocks on a slow subscriber.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::RwLock;
use tokio::sync::mpsc;

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
    fn size_bytes(&self) -> usize {
        self.pattern.as_ref().map_or(0, Bytes::len)
            + self.channel.len()
            + self.payload.len()
            + MESSAGE_OVERHEAD_BYTES
    }
}

/// The sending side of one client's message queue.
#[derive(Debug, Clone)]
pub struct Subscriber {
    /// The client id (the key in the hub's maps).
    id: u64,
    tx: mpsc::UnboundedSender<Arc<Message>>,
    /// Bytes queued and not yet written to the socket.
    pending_bytes: Arc<AtomicUsize>,
    /// Set when the budget was exceeded: the connection must close.
    overflowed: Arc<AtomicBool>,
    /// The budget.
    limit_bytes: usize,
}

/// The receiving side, owned by the connection.
#[derive(Debug)]
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<Arc<Message>>,
    pending_bytes: Arc<AtomicUsize>,
    overflowed: Arc<AtomicBool>,
}

impl Inbox {
    /// Waits for the next message.
    pub async fn recv(&mut self) -> Option<Arc<Message>> {
        let message = self.rx.recv().await?;
        self.pending_bytes
            .fetch_sub(message.size_bytes(), Ordering::AcqRel);
        Some(message)
    }

    /// A message already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Arc<Message>> {
        let message = self.rx.try_recv().ok()?;
        self.pending_bytes
            .fetch_sub(message.size_bytes(), Ordering::AcqRel);
        Some(message)
    }

    /// Whether this client fell too far behind and must be disconnected.
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
    }
}

/// A new queue for client `id` with a byte budget.
pub fn mailbox(id: u64, limit_bytes: usize) -> (Subscriber, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    let pending_bytes = Arc::new(AtomicUsize::new(0));
    let overflowed = Arc::new(AtomicBool::new(false));
    let sub = Subscriber {
        id,
        tx,
        pending_bytes: pending_bytes.clone(),
        overflowed: overflowed.clone(),
        limit_bytes,
    };
    (
        sub,
        Inbox {
            rx,
            pending_bytes,
            overflowed,
        },
    )
}

impl Subscriber {
    fn deliver(&self, message: &Arc<Message>) {
        let size = message.size_bytes();
        let queued = self.pending_bytes.fetch_add(size, Ordering::AcqRel) + size;
        if self.overflowed.load(Ordering::Acquire) {
            self.pending_bytes.fetch_sub(size, Ordering::AcqRel);
            return; // already condemned: queue nothing more
        }
        if self.limit_bytes > 0 && queued > self.limit_bytes {
            // This last message is still queued so the connection wakes up,
            // sees the flag and closes: memory stays under limit + one message.
            self.overflowed.store(true, Ordering::Release);
        }
        if self.tx.send(message.clone()).is_err() {
            self.pending_bytes.fetch_sub(size, Ordering::AcqRel);
        }
    }
}

type Subscribers = HashMap<Bytes, HashMap<u64, Subscriber>>;

/// The hub (see the module docs).
#[derive(Debug, Default)]
pub struct Hub {
    channels: RwLock<Subscribers>,
    patterns: RwLock<Subscribers>,
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

    /// Delivers a message; returns how many clients received it.
    pub fn publish(&self, channel: Bytes, payload: Bytes) -> usize {
        let mut receivers = 0;
        if let Some(subs) = self.channels.read().get(&channel[..]) {
            let message = Arc::new(Message {
                pattern: None,
                channel: channel.clone(),
                payload: payload.clone(),
            });
            for sub in subs.values() {
                sub.deliver(&message);
                receivers += 1;
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
                sub.deliver(&message);
                receivers += 1;
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

    #[tokio::test]
    async fn publish_reaches_channels_and_patterns() {
        let hub = Hub::default();
        let (a, mut inbox_a) = mailbox(1, 0);
        let (b, mut inbox_b) = mailbox(2, 0);
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
    fn a_slow_subscriber_overflows_instead_of_growing() {
        let hub = Hub::default();
        let (sub, inbox) = mailbox(1, 1000);
        hub.subscribe(Kind::Channel, Bytes::from("c"), &sub);
        for _ in 0..100 {
            hub.publish(Bytes::from("c"), Bytes::from(vec![0u8; 100]));
        }
        assert!(inbox.overflowed());
        assert!(inbox.pending_bytes.load(Ordering::Acquire) <= 1000 + 100 + MESSAGE_OVERHEAD_BYTES);
    }
}
