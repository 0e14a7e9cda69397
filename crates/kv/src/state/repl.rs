//! Replication state (Redis's primary–replica model): the replication id
//! and offset, the bounded backlog, the replicas this primary feeds, and the
//! primary this server follows when it is a replica.
//!
//! The stream of writes is the backlog: every write a client runs on a
//! primary is appended (as the RESP command it was) under the keyspace
//! lock, so its position in the stream is its position in the keyspace's
//! history and a snapshot taken under the same lock has an exact offset.
//! A replica's feeder reads the backlog from its own offset and is dropped
//! (to resynchronize in full) when it falls behind what the backlog keeps:
//! one bounded buffer instead of one per replica. A replica appends the
//! stream it receives to its own backlog, so its offset stays the
//! primary's and, once promoted, it serves partial resynchronization to the
//! other replicas under the old id (`replid2`), as Redis's PSYNC2 does.
//!
//! Decisions (`continue_from`, `good_replicas`) are pure functions of this
//! state; the I/O that runs them is in `replication`.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

/// A primary this server replicates from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Host name or address.
    pub(crate) host: String,
    /// Port.
    pub(crate) port: u16,
}

/// The link to our primary, as `INFO replication` reports it.
#[derive(Debug, Clone)]
pub(crate) struct MasterLink {
    /// Where it is.
    pub(crate) target: Target,
    /// Whether the stream is flowing (`master_link_status:up`).
    pub(crate) up: bool,
    /// Whether a full sync is being received.
    pub(crate) syncing: bool,
    /// When data last came from the primary.
    pub(crate) last_io: Instant,
    /// When the link went down.
    pub(crate) down_since: Instant,
}

/// One replica this primary feeds.
#[derive(Debug, Clone)]
pub(crate) struct ReplicaInfo {
    /// Its address as seen by us.
    pub(crate) ip: String,
    /// Its `REPLCONF listening-port`.
    pub(crate) port: u16,
    /// `wait_bgsave`, `send_bulk` or `online`.
    pub(crate) state: &'static str,
    /// The offset it last acknowledged.
    pub(crate) ack_offset: u64,
    /// When it last acknowledged.
    pub(crate) last_ack: Instant,
}

/// The bytes of the stream kept for partial resynchronization.
#[derive(Debug)]
struct Backlog {
    buf: VecDeque<u8>,
    capacity: usize,
}

/// Everything behind [`Repl`]'s lock.
#[derive(Debug)]
pub(crate) struct Inner {
    /// This history's id (40 hex characters).
    pub(crate) replid: String,
    /// The id of the history this one continues (after a promotion).
    pub(crate) replid2: String,
    /// The first offset not covered by `replid2` (`-1` = none).
    pub(crate) second_offset: i64,
    /// Bytes of stream produced (or received) so far: `master_repl_offset`.
    pub(crate) offset: u64,
    backlog: Option<Backlog>,
    /// Replicas being fed, by client id.
    pub(crate) replicas: BTreeMap<u64, ReplicaInfo>,
    /// `Some` while this server is a replica.
    pub(crate) master: Option<MasterLink>,
    /// Full resynchronizations served (`INFO stats` `sync_full`).
    pub(crate) sync_full: u64,
    /// Partial resynchronizations accepted (`sync_partial_ok`).
    pub(crate) sync_partial_ok: u64,
    /// Partial resynchronizations asked for and refused (`sync_partial_err`).
    pub(crate) sync_partial_err: u64,
}

impl Inner {
    /// Bytes in the backlog; `None` without one.
    pub(crate) fn backlog_len(&self) -> Option<usize> {
        self.backlog.as_ref().map(|b| b.buf.len())
    }
}

/// Replication state shared by commands, connections and the replica task.
#[derive(Debug)]
pub(crate) struct Repl {
    inner: Mutex<Inner>,
    /// `inner.master.is_some()`, readable without the lock (every write checks it).
    replica: AtomicBool,
    /// The offset after each append (feeders wait on it).
    offset_tx: watch::Sender<u64>,
    /// Replicas' acknowledgements (`WAIT` waits on it).
    pub(crate) acks: Notify,
    /// The primary to follow (`None` = be a primary); the replica task
    /// watches it.
    pub(crate) target_tx: watch::Sender<Option<Target>>,
}

/// `"host port"` (the `replicaof` setting) as a target; `None` if empty
/// or malformed.
pub(crate) fn parse_target(text: &str) -> Option<Target> {
    let mut words = text.split_whitespace();
    let host = words.next()?.to_string();
    let port = words.next()?.parse().ok()?;
    words.next().is_none().then_some(Target { host, port })
}

/// A fresh random replication id.
pub(crate) fn new_replid() -> String {
    (0..40)
        .map(|_| char::from(b"0123456789abcdef"[fastrand::usize(..16)]))
        .collect()
}

/// One command as the replication stream carries it (a RESP array).
pub(crate) fn encode_command(args: &[Bytes]) -> Vec<u8> {
    let words: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
    crate::protocol::encode_request(&words)
}

impl Repl {
    /// A primary with a new id, no backlog and no replicas.
    pub(crate) fn new() -> Self {
        Repl {
            inner: Mutex::new(Inner {
                replid: new_replid(),
                replid2: "0".repeat(40),
                second_offset: -1,
                offset: 0,
                backlog: None,
                replicas: BTreeMap::new(),
                master: None,
                sync_full: 0,
                sync_partial_ok: 0,
                sync_partial_err: 0,
            }),
            replica: AtomicBool::new(false),
            offset_tx: watch::channel(0).0,
            acks: Notify::new(),
            target_tx: watch::channel(None).0,
        }
    }

    /// The state, locked briefly (never across an `.await`).
    pub(crate) fn lock(&self) -> parking_lot::MutexGuard<'_, Inner> {
        self.inner.lock()
    }

    /// Whether this server is a replica.
    pub(crate) fn is_replica(&self) -> bool {
        self.replica.load(Ordering::Acquire)
    }

    /// Follows `target` (`None`: stop following and become a primary, with
    /// a new history id as Redis's `REPLICAOF NO ONE`). Whether it changed.
    pub(crate) fn set_target(&self, target: Option<Target>) -> bool {
        let mut inner = self.inner.lock();
        if inner.master.as_ref().map(|m| &m.target) == target.as_ref() {
            return false;
        }
        let was_replica = inner.master.is_some();
        inner.master = target.clone().map(|target| MasterLink {
            target,
            up: false,
            syncing: false,
            last_io: Instant::now(),
            down_since: Instant::now(),
        });
        self.replica
            .store(inner.master.is_some(), Ordering::Release);
        drop(inner);
        if was_replica && target.is_none() {
            self.shift_replid();
        }
        self.target_tx.send_replace(target);
        true
    }

    /// A receiver of offset changes.
    pub(crate) fn offsets(&self) -> watch::Receiver<u64> {
        self.offset_tx.subscribe()
    }

    /// Appends raw stream bytes (a command on a primary, or what a replica
    /// received); call under the keyspace lock. Without a backlog (no
    /// replica ever attached) nothing is kept, as in Redis.
    pub(crate) fn append(&self, bytes: &[u8]) {
        let mut inner = self.inner.lock();
        let Some(backlog) = inner.backlog.as_mut() else {
            return;
        };
        backlog.buf.extend(bytes);
        let over = backlog.buf.len().saturating_sub(backlog.capacity);
        backlog.buf.drain(..over);
        inner.offset += bytes.len() as u64;
        let offset = inner.offset;
        drop(inner);
        self.offset_tx.send_replace(offset);
    }

    /// Appends one command (see [`Repl::append`]).
    pub(crate) fn propagate(&self, args: &[Bytes]) {
        if self.inner.lock().backlog.is_some() {
            self.append(&encode_command(args));
        }
    }

    /// Creates the backlog if there is none (a replica attaches), or
    /// resizes it; `capacity` is `repl-backlog-size`.
    pub(crate) fn ensure_backlog(&self, capacity: usize) {
        let mut inner = self.inner.lock();
        match inner.backlog.as_mut() {
            Some(backlog) => backlog.capacity = capacity,
            None => {
                inner.backlog = Some(Backlog {
                    buf: VecDeque::new(),
                    capacity,
                })
            }
        }
    }

    /// The stream bytes from `from` (a 0-based offset) to the end, at most
    /// `max` of them; `None` if the backlog no longer has `from`.
    pub(crate) fn read_from(&self, from: u64, max: usize) -> Option<Vec<u8>> {
        let inner = self.inner.lock();
        let backlog = inner.backlog.as_ref()?;
        let start = inner.offset - backlog.buf.len() as u64;
        if from < start || from > inner.offset {
            return None;
        }
        let skip = (from - start) as usize;
        Some(backlog.buf.iter().skip(skip).take(max).copied().collect())
    }

    /// Whether a replica asking `PSYNC replid offset` can continue from our
    /// backlog (`offset` is the next byte it wants, 1-based as Redis sends it):
    /// the 0-based offset to stream from, or `None` for a full resync.
    pub(crate) fn continue_from(&self, replid: &str, psync_offset: i64) -> Option<u64> {
        let inner = self.inner.lock();
        let backlog = inner.backlog.as_ref()?;
        let from = u64::try_from(psync_offset.checked_sub(1)?).ok()?;
        let same_history = replid == inner.replid
            || (replid == inner.replid2 && psync_offset <= inner.second_offset);
        let start = inner.offset - backlog.buf.len() as u64;
        (same_history && from >= start && from <= inner.offset).then_some(from)
    }

    /// Starts a new history after this server stops following a primary
    /// (`REPLICAOF NO ONE`): the old id stays valid for offsets up to now.
    pub(crate) fn shift_replid(&self) {
        let mut inner = self.inner.lock();
        inner.replid2 = std::mem::replace(&mut inner.replid, new_replid());
        inner.second_offset = inner.offset as i64 + 1;
    }

    /// Adopts the primary's history after a full sync at `offset`, with an
    /// empty backlog of `capacity` bytes.
    pub(crate) fn adopt(&self, replid: String, offset: u64, capacity: usize) {
        let mut inner = self.inner.lock();
        inner.replid = replid;
        inner.replid2 = "0".repeat(40);
        inner.second_offset = -1;
        inner.offset = offset;
        inner.backlog = Some(Backlog {
            buf: VecDeque::new(),
            capacity,
        });
        drop(inner);
        self.offset_tx.send_replace(offset);
    }

    /// Records a replica's acknowledgement.
    pub(crate) fn ack(&self, client: u64, offset: u64) {
        if let Some(replica) = self.inner.lock().replicas.get_mut(&client) {
            replica.ack_offset = replica.ack_offset.max(offset);
            replica.last_ack = Instant::now();
        }
        self.acks.notify_waiters();
    }

    /// How many replicas acknowledged at least `offset`.
    pub(crate) fn acked(&self, offset: u64) -> usize {
        let inner = self.inner.lock();
        inner
            .replicas
            .values()
            .filter(|r| r.state == "online" && r.ack_offset >= offset)
            .count()
    }

    /// How many online replicas acknowledged within `max_lag` (the
    /// `min-replicas-to-write` check).
    pub(crate) fn good_replicas(&self, max_lag: Duration) -> usize {
        let inner = self.inner.lock();
        inner
            .replicas
            .values()
            .filter(|r| r.state == "online" && r.last_ack.elapsed() <= max_lag)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_keeps_the_tail_and_decides_partial_resync() {
        let repl = Repl::new();
        repl.propagate(&[Bytes::from("set")]);
        assert_eq!(
            repl.lock().offset,
            0,
            "no backlog before a replica attaches"
        );
        repl.ensure_backlog(16);
        repl.append(b"0123456789");
        repl.append(b"abcdefghij");
        let id = repl.lock().replid.clone();
        assert_eq!(repl.lock().offset, 20);
        assert_eq!(
            repl.read_from(4, 100).as_deref(),
            Some(&b"456789abcdefghij"[..])
        );
        assert_eq!(repl.read_from(3, 100), None, "fell out of the backlog");
        assert_eq!(repl.continue_from(&id, 5), Some(4));
        assert_eq!(repl.continue_from(&id, 21), Some(20), "nothing missing");
        assert_eq!(repl.continue_from(&id, 4), None);
        assert_eq!(repl.continue_from(&id, 22), None, "ahead of us");
        assert_eq!(repl.continue_from("?", -1), None);
        repl.shift_replid();
        assert_eq!(
            repl.continue_from(&id, 21),
            Some(20),
            "old id after a promotion"
        );
        repl.append(b"x");
        assert_eq!(repl.continue_from(&id, 22), None, "old id past the switch");
    }
}
