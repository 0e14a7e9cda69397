//! The URL frontier (미수집 URL 저장소), on disk.
//!
//! The chapter's design: front queues by priority, a router that sends each
//! URL to the back queue of its host (a mapping table host → queue), a queue
//! selector that gives each back queue to one worker at a time, and a delay
//! between two downloads from one host. Here:
//!
//! * **Back queues live in the LSM engine**: a queued URL is the key
//!   `q/<host>\0<priority><seq>`; a host's back queue is a key prefix, and the
//!   priority byte in the key makes each back queue the merge of the front
//!   queues, highest priority first, FIFO within a level (breadth-first).
//!   Memory holds per host only a count, a small buffer of the head of its
//!   queue and a cursor, so 100M queued URLs cost disk, not RAM.
//! * **The mapping table** is the key prefix itself plus the in-memory map
//!   of [`HostState`]s, rebuilt at open by one scan of the queue keys.
//! * **The queue selector** is a heap of hosts by next-allowed time
//!   ([`crate::politeness::Schedule`]): a worker leases the earliest ready
//!   host, fetches one URL, and the host goes back with `now + delay`.
//! * **Crash safety**: a URL leaves the queue only in the same write batch
//!   that records its page as done (`d/<url>`) and queues its outlinks
//!   (see [`crate::state`]), so after `kill -9` the queue holds exactly the
//!   URLs not yet done; the ones in flight at the kill are fetched again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use lsm::{Db, WriteBatch};
use serde::{Deserialize, Serialize};

use crate::politeness::{PolitenessConfig, Pop, Schedule};

/// Key prefix of queued URLs.
pub const QUEUE_PREFIX: &[u8] = b"q/";
/// Key prefix of per-host records.
pub const HOST_PREFIX: &[u8] = b"h/";
/// Key of the sequence counter.
const SEQ_KEY: &[u8] = b"m/seq";

/// A URL waiting in the frontier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedUrl {
    /// The normalized URL.
    pub url: String,
    /// Links followed from a seed.
    pub depth: u32,
    /// Redirects followed to reach it.
    #[serde(default)]
    pub redirects: u32,
    /// Set when this is a revisit of a fetched page ([`crate::freshness`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revisit: Option<crate::freshness::Revisit>,
}

/// What the crawl remembers of a host across restarts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostRecord {
    /// Current politeness delay.
    pub delay_ms: u64,
    /// Pages fetched (for the per-host limit).
    pub fetched: u64,
}

#[derive(Debug, Default)]
struct HostState {
    queued: u64,
    /// Head of the back queue: keys loaded from disk (or queued ahead of the cursor).
    buffer: BTreeMap<Vec<u8>, QueuedUrl>,
    /// Last key loaded into the buffer; the disk queue after it is unread.
    cursor: Option<Vec<u8>>,
    /// Keys leased to a worker (not in the buffer any more, still on disk).
    record: HostRecord,
    crawl_delay_ms: Option<u64>,
    /// Earliest time the host may be fetched again (politeness).
    next_allowed_ms: u64,
}

/// One URL handed to a worker; the host is leased until [`Frontier::release`].
#[derive(Debug, Clone)]
pub struct Lease {
    /// Host key (`host:port`).
    pub host: String,
    /// The queue key (deleted when the page is done).
    pub key: Vec<u8>,
    /// The URL.
    pub entry: QueuedUrl,
}

/// What [`Frontier::next`] hands out.
#[derive(Debug)]
pub enum Next {
    /// Fetch this.
    Lease(Lease),
    /// Nothing is ready before this time (ms).
    WaitUntil(u64),
    /// Hosts are all leased; wait for a release.
    Busy,
    /// Nothing queued and nothing in flight: the crawl is complete.
    Done,
}

/// Sizes of the frontier.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FrontierStats {
    /// URLs queued on disk.
    pub queued: u64,
    /// Hosts with queued URLs.
    pub hosts_queued: usize,
    /// Hosts being fetched now.
    pub hosts_active: usize,
}

/// The frontier over the store.
pub struct Frontier {
    db: Arc<Db>,
    hosts: HashMap<String, HostState>,
    schedule: Schedule,
    seq: u64,
    queued: u64,
    politeness: PolitenessConfig,
    buffer_max: usize,
}

/// Builds the queue key of a URL.
pub fn queue_key(host: &str, priority: u8, seq: u64) -> Vec<u8> {
    let mut key = host_prefix(host);
    key.push(priority);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn host_prefix(host: &str) -> Vec<u8> {
    let mut key = QUEUE_PREFIX.to_vec();
    key.extend_from_slice(host.as_bytes());
    key.push(0);
    key
}

fn host_of_queue_key(key: &[u8]) -> Option<&str> {
    let rest = key.strip_prefix(QUEUE_PREFIX)?;
    let end = rest.iter().position(|b| *b == 0)?;
    std::str::from_utf8(&rest[..end]).ok()
}

impl Frontier {
    /// Opens the frontier over `db`, rebuilding the host table from disk.
    pub fn open(
        db: Arc<Db>,
        politeness: PolitenessConfig,
        buffer_max: usize,
        now_ms: u64,
    ) -> lsm::Result<Self> {
        let mut hosts: HashMap<String, HostState> = HashMap::new();
        let mut queued = 0;
        for kv in db.scan_prefix(QUEUE_PREFIX)? {
            let kv = kv?;
            if let Some(host) = host_of_queue_key(&kv.key) {
                hosts.entry(host.to_string()).or_default().queued += 1;
                queued += 1;
            }
        }
        for kv in db.scan_prefix(HOST_PREFIX)? {
            let kv = kv?;
            let Ok(host) = std::str::from_utf8(&kv.key[HOST_PREFIX.len()..]) else {
                continue;
            };
            if let Ok(record) = serde_json::from_slice::<HostRecord>(&kv.value) {
                hosts.entry(host.to_string()).or_default().record = record;
            }
        }
        let seq = match db.get(SEQ_KEY)? {
            Some(bytes) if bytes.len() == 8 => {
                u64::from_be_bytes(bytes.try_into().expect("length checked"))
            }
            _ => 0,
        };
        let mut schedule = Schedule::default();
        for (host, state) in &hosts {
            if state.queued > 0 {
                schedule.wake(host, now_ms);
            }
        }
        Ok(Self {
            db,
            hosts,
            schedule,
            seq,
            queued,
            politeness,
            buffer_max: buffer_max.max(1),
        })
    }

    /// Adds `entry` (already normalized, seen-checked and trap-checked) to
    /// the batch; the in-memory side changes at once, so the caller must
    /// write the batch before anything else reads the store.
    pub fn push(
        &mut self,
        batch: &mut WriteBatch,
        host: &str,
        priority: u8,
        entry: QueuedUrl,
        now_ms: u64,
    ) {
        self.seq += 1;
        let key = queue_key(host, priority, self.seq);
        let value = serde_json::to_vec(&entry).expect("a queued URL serializes");
        batch.put(&key, &value);
        batch.put(SEQ_KEY, &self.seq.to_be_bytes());
        let buffer_max = self.buffer_max;
        let state = self.hosts.entry(host.to_string()).or_default();
        state.queued += 1;
        self.queued += 1;
        let ready_at = now_ms.max(state.next_allowed_ms);
        // A key ahead of the cursor would be skipped by the next disk read:
        // keep it in the buffer (bounded: the tail beyond the cap goes back
        // to disk by moving the cursor back).
        if state.cursor.as_ref().is_some_and(|cursor| key < *cursor) {
            state.buffer.insert(key, entry);
            if state.buffer.len() > buffer_max {
                state.buffer.pop_last();
                state.cursor = state.buffer.keys().next_back().cloned();
            }
        }
        // A new URL never brings a host forward past its politeness delay.
        self.schedule.wake(host, ready_at);
    }

    /// Sets a host's robots `Crawl-delay`.
    pub fn set_crawl_delay(&mut self, host: &str, crawl_delay_ms: Option<u64>) {
        if let Some(state) = self.hosts.get_mut(host) {
            state.crawl_delay_ms = crawl_delay_ms;
        }
    }

    /// The host's crawl-delay and current delay.
    pub fn host_delay(&self, host: &str) -> (Option<u64>, u64) {
        self.hosts
            .get(host)
            .map(|s| (s.crawl_delay_ms, s.record.delay_ms))
            .unwrap_or((None, self.politeness.delay_ms))
    }

    /// Pages fetched from `host` so far.
    pub fn host_fetched(&self, host: &str) -> u64 {
        self.hosts.get(host).map_or(0, |s| s.record.fetched)
    }

    /// Leases the next URL of the earliest ready host.
    pub fn next(&mut self, now_ms: u64) -> lsm::Result<Next> {
        loop {
            let host = match self.schedule.pop(now_ms) {
                Pop::Host(host) => host,
                Pop::WaitUntil(at) => return Ok(Next::WaitUntil(at)),
                Pop::Empty if self.schedule.leased() > 0 => return Ok(Next::Busy),
                Pop::Empty => return Ok(Next::Done),
            };
            self.fill(&host)?;
            let state = self.hosts.get_mut(&host).expect("scheduled hosts exist");
            match state.buffer.pop_first() {
                Some((key, entry)) => return Ok(Next::Lease(Lease { host, key, entry })),
                None => {
                    // Nothing left (counts can lag a dropped entry): idle.
                    state.queued = 0;
                    self.schedule.release(&host, None);
                }
            }
        }
    }

    fn fill(&mut self, host: &str) -> lsm::Result<()> {
        let state = self.hosts.get_mut(host).expect("scheduled hosts exist");
        if !state.buffer.is_empty() {
            return Ok(());
        }
        let prefix = host_prefix(host);
        let mut end = prefix.clone();
        *end.last_mut().expect("prefix ends in 0") = 1;
        let start = state.cursor.clone().unwrap_or_else(|| prefix.clone());
        let iter = self.db.scan((
            std::ops::Bound::Excluded(start.as_slice()),
            std::ops::Bound::Excluded(end.as_slice()),
        ))?;
        for kv in iter.take(self.buffer_max) {
            let kv = kv?;
            if let Ok(entry) = serde_json::from_slice::<QueuedUrl>(&kv.value) {
                state.buffer.insert(kv.key.clone(), entry);
            }
            state.cursor = Some(kv.key);
        }
        Ok(())
    }

    /// Removes a leased URL from the queue (in `batch`).
    pub fn remove(&mut self, batch: &mut WriteBatch, lease: &Lease) {
        batch.delete(&lease.key);
        if let Some(state) = self.hosts.get_mut(&lease.host) {
            state.queued = state.queued.saturating_sub(1);
        }
        self.queued = self.queued.saturating_sub(1);
    }

    /// Records a request to `host` (a page when `page`) with its new delay (in `batch`).
    pub fn record_fetch(&mut self, batch: &mut WriteBatch, host: &str, delay_ms: u64, page: bool) {
        let state = self.hosts.entry(host.to_string()).or_default();
        state.record.fetched += u64::from(page);
        state.record.delay_ms = delay_ms;
        let mut key = HOST_PREFIX.to_vec();
        key.extend_from_slice(host.as_bytes());
        batch.put(
            &key,
            &serde_json::to_vec(&state.record).expect("a host record serializes"),
        );
    }

    /// Puts a leased URL back at the head of its host's queue (nothing was
    /// done with it, e.g. robots.txt was fetched first).
    pub fn unlease(&mut self, lease: Lease) {
        if let Some(state) = self.hosts.get_mut(&lease.host) {
            state.buffer.insert(lease.key, lease.entry);
        }
    }

    /// Ends the lease of `host`; it is ready again `delay_ms` after `now_ms`
    /// if it has work. Call after the batch is written.
    pub fn release(&mut self, host: &str, now_ms: u64, delay_ms: u64) {
        let state = self.hosts.entry(host.to_string()).or_default();
        // A release without a request (robots said no) keeps the earlier rest.
        state.next_allowed_ms = state.next_allowed_ms.max(now_ms.saturating_add(delay_ms));
        let more = state.queued > 0;
        let at = state.next_allowed_ms;
        self.schedule.release(host, more.then_some(at));
    }

    /// Queue sizes.
    pub fn stats(&self) -> FrontierStats {
        FrontierStats {
            queued: self.queued,
            hosts_queued: self.hosts.values().filter(|s| s.queued > 0).count(),
            hosts_active: self.schedule.leased(),
        }
    }

    /// The store.
    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &std::path::Path) -> Frontier {
        let opts = lsm::Options {
            create_if_missing: true,
            sync: lsm::SyncPolicy::No,
            ..Default::default()
        };
        let db = Arc::new(Db::open(dir, opts).expect("open"));
        Frontier::open(
            db,
            PolitenessConfig {
                delay_ms: 100,
                ..Default::default()
            },
            2,
            0,
        )
        .expect("frontier")
    }

    fn entry(url: &str) -> QueuedUrl {
        QueuedUrl {
            url: url.into(),
            depth: 1,
            redirects: 0,
            revisit: None,
        }
    }

    fn push_all(f: &mut Frontier, items: &[(&str, u8, &str)]) {
        let mut batch = WriteBatch::new();
        for (host, prio, url) in items {
            f.push(&mut batch, host, *prio, entry(url), 0);
        }
        f.db().write(&batch).expect("write");
    }

    fn take(f: &mut Frontier, now: u64) -> Option<Lease> {
        match f.next(now).expect("next") {
            Next::Lease(lease) => Some(lease),
            _ => None,
        }
    }

    fn finish(f: &mut Frontier, lease: &Lease, now: u64) {
        let mut batch = WriteBatch::new();
        f.remove(&mut batch, lease);
        f.db().write(&batch).expect("write");
        f.release(&lease.host, now, 100);
    }

    /// Leases and finishes everything left, one host rest (100 ms) apart; the URLs in order.
    fn drain(f: &mut Frontier, mut now: u64) -> Vec<String> {
        let mut order = Vec::new();
        while let Some(lease) = take(f, now).or_else(|| take(f, now + 100)) {
            order.push(lease.entry.url.clone());
            finish(f, &lease, now);
            now += 100;
        }
        order
    }

    #[test]
    fn priority_then_fifo_per_host_and_politeness_between_fetches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut f = open(dir.path());
        push_all(
            &mut f,
            &[
                ("a", 2, "a/1"),
                ("a", 2, "a/2"),
                ("a", 0, "a/top"),
                ("a", 3, "a/low"),
                ("a", 2, "a/3"),
            ],
        );
        let mut order = Vec::new();
        let mut now = 0;
        while let Some(lease) = take(&mut f, now) {
            order.push(lease.entry.url.clone());
            // One worker per host: nothing else from `a` while leased.
            assert!(matches!(f.next(now).expect("next"), Next::Busy));
            finish(&mut f, &lease, now);
            assert!(
                matches!(f.next(now + 99).expect("next"), Next::WaitUntil(t) if t == now + 100)
                    || f.stats().queued == 0
            );
            now += 100;
        }
        assert_eq!(order, vec!["a/top", "a/1", "a/2", "a/3", "a/low"]);
        assert!(matches!(f.next(now).expect("next"), Next::Done));
    }

    #[test]
    fn a_new_url_does_not_wake_a_resting_host_early() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut f = open(dir.path());
        push_all(&mut f, &[("a", 1, "a/1")]);
        let lease = take(&mut f, 0).expect("lease");
        finish(&mut f, &lease, 0);
        // Idle now, resting until 100; a link to it arrives at 10.
        let mut batch = WriteBatch::new();
        f.push(&mut batch, "a", 0, entry("a/2"), 10);
        f.db().write(&batch).expect("write");
        assert!(matches!(f.next(10).expect("next"), Next::WaitUntil(100)));
        assert!(take(&mut f, 100).is_some());
    }

    #[test]
    fn higher_priority_arriving_behind_the_cursor_is_not_lost() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut f = open(dir.path());
        push_all(
            &mut f,
            &[
                ("a", 2, "a/1"),
                ("a", 2, "a/2"),
                ("a", 2, "a/3"),
                ("a", 2, "a/4"),
            ],
        );
        let first = take(&mut f, 0).expect("lease");
        // Buffer holds a/2 now (cap 2); a/3 and a/4 are on disk after the cursor.
        push_all(&mut f, &[("a", 1, "a/hi"), ("a", 0, "a/top")]);
        finish(&mut f, &first, 0);
        let mut order = vec![first.entry.url];
        order.extend(drain(&mut f, 100));
        assert_eq!(order, vec!["a/1", "a/top", "a/hi", "a/2", "a/3", "a/4"]);
    }

    #[test]
    fn reopen_restores_exactly_the_unfinished_urls() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut f = open(dir.path());
            push_all(
                &mut f,
                &[
                    ("a", 1, "a/1"),
                    ("b", 1, "b/1"),
                    ("a", 1, "a/2"),
                    ("b", 1, "b/2"),
                ],
            );
            let lease = take(&mut f, 0).expect("lease");
            finish(&mut f, &lease, 0);
            // Leased but never finished: must come back.
            let _in_flight = take(&mut f, 0).expect("lease");
        }
        let mut f = open(dir.path());
        assert_eq!(f.stats().queued, 3);
        let mut left = drain(&mut f, 0);
        left.sort();
        assert_eq!(left.len(), 3);
        // Key order differs per host, but a/1 (first out) is gone for good.
        assert!(!left.contains(&"a/1".to_string()));
    }
}
