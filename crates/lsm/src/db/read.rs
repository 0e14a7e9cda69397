//! The read path: memtable → immutable memtables → tables (bloom first), snapshots and
//! range scans.
//!
//! A point read takes the current view and stops at the first version of the key it
//! finds, newest source first; the first hit decides (a tombstone or an expired value
//! means "absent"). A snapshot is just a sequence number: versions newer than it are
//! skipped, and compaction keeps the versions live snapshots still need.

use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Db, Inner};
use crate::codec::{Entry, Kind, now_ms};
use crate::error::Result;
use crate::iter::{DbIter, MergeIter, Source};
use crate::iter_rev::{DbIterRev, RevSource};
use crate::stats::{LevelStats, Stats};

/// The remaining time to live of a key (Redis `TTL` semantics: -2, -1, or seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ttl {
    /// The key does not exist (or has expired).
    Missing,
    /// The key exists and never expires.
    Persistent,
    /// The key expires after this long.
    Expires(Duration),
}

/// A consistent point-in-time view for reads; dropping it lets compaction reclaim the
/// versions it was keeping alive.
pub struct Snapshot {
    /// The store.
    inner: Arc<Inner>,
    /// Sequence number this snapshot reads at.
    seq: u64,
}

impl Snapshot {
    /// The sequence number this snapshot reads at.
    pub fn sequence(&self) -> u64 {
        self.seq
    }

    /// The value of `key` as of the snapshot.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.inner.get_at(key, self.seq)?.map(|(v, _)| v))
    }

    /// An ordered scan as of the snapshot.
    pub fn scan<'a>(&self, range: impl RangeBounds<&'a [u8]>) -> Result<DbIter> {
        self.inner.scan_at(range, self.seq)
    }

    /// A reverse scan (from the high end down) as of the snapshot.
    pub fn scan_rev<'a>(&self, range: impl RangeBounds<&'a [u8]>) -> Result<DbIterRev> {
        self.inner.scan_rev_at(range, self.seq)
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let mut snaps = self.inner.snapshots.lock();
        if let Some(n) = snaps.get_mut(&self.seq) {
            *n -= 1;
            if *n == 0 {
                snaps.remove(&self.seq);
            }
        }
    }
}

impl Db {
    /// The value of `key`, or `None` if absent, deleted or expired.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .inner
            .get_at(key, self.inner.visible_seq.load(Ordering::Acquire))?
            .map(|(v, _)| v))
    }

    /// The value of `key` and its expiry (unix milliseconds) if it has one.
    pub fn get_with_expiry(&self, key: &[u8]) -> Result<Option<(Vec<u8>, Option<u64>)>> {
        self.inner
            .get_at(key, self.inner.visible_seq.load(Ordering::Acquire))
    }

    /// The remaining time to live of `key`.
    pub fn ttl(&self, key: &[u8]) -> Result<Ttl> {
        Ok(match self.get_with_expiry(key)? {
            None => Ttl::Missing,
            Some((_, None)) => Ttl::Persistent,
            Some((_, Some(at))) => Ttl::Expires(Duration::from_millis(at.saturating_sub(now_ms()))),
        })
    }

    /// Live keys in `range`, in order, at the moment of the call:
    /// `db.scan(..)`, `db.scan(&b"a"[..]..&b"m"[..])`.
    pub fn scan<'a>(&self, range: impl RangeBounds<&'a [u8]>) -> Result<DbIter> {
        self.inner
            .scan_at(range, self.inner.visible_seq.load(Ordering::Acquire))
    }

    /// Live keys in `range`, from the highest down, at the moment of the call. The
    /// work is proportional to what is read (a block or a memtable chunk per source
    /// at a time), not to the size of the range.
    pub fn scan_rev<'a>(&self, range: impl RangeBounds<&'a [u8]>) -> Result<DbIterRev> {
        self.inner
            .scan_rev_at(range, self.inner.visible_seq.load(Ordering::Acquire))
    }

    /// Live keys starting with `prefix`, in order.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<DbIter> {
        match prefix_end(prefix) {
            Some(end) => self.scan((Bound::Included(prefix), Bound::Excluded(end.as_slice()))),
            None => self.scan((Bound::Included(prefix), Bound::Unbounded)),
        }
    }

    /// A snapshot of the current state.
    pub fn snapshot(&self) -> Snapshot {
        let mut snaps = self.inner.snapshots.lock();
        let seq = self.inner.visible_seq.load(Ordering::Acquire);
        *snaps.entry(seq).or_insert(0) += 1;
        Snapshot {
            inner: self.inner.clone(),
            seq,
        }
    }

    /// Current statistics.
    pub fn stats(&self) -> Stats {
        let i = &self.inner;
        let view = i.view();
        let c = &i.counters;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let levels = (0..view.version.levels.len())
            .map(|l| LevelStats {
                level: l,
                tables: view.version.levels[l].len(),
                size_bytes: view.version.level_bytes(l),
            })
            .collect();
        let user = load(&c.user_bytes);
        let written = load(&c.wal_bytes) + load(&c.flush_bytes) + load(&c.compaction_bytes_written);
        let (hits, misses) = (load(&i.cache.hits), load(&i.cache.misses));
        Stats {
            levels,
            memtable_bytes: view.mem.size_bytes(),
            immutable_memtables: view.imms.len(),
            last_sequence: i.writer.lock().last_seq,
            user_bytes_written: user,
            wal_bytes_written: load(&c.wal_bytes),
            flush_bytes_written: load(&c.flush_bytes),
            compaction_bytes_written: load(&c.compaction_bytes_written),
            compaction_bytes_read: load(&c.compaction_bytes_read),
            write_amplification: if user == 0 {
                0.0
            } else {
                written as f64 / user as f64
            },
            bloom_negatives: load(&i.bloom.negatives),
            bloom_true_positives: load(&i.bloom.true_positives),
            bloom_false_positives: load(&i.bloom.false_positives),
            block_cache_hits: hits,
            block_cache_misses: misses,
            block_cache_hit_ratio: if hits + misses == 0 {
                0.0
            } else {
                hits as f64 / (hits + misses) as f64
            },
            block_cache_bytes: i.cache.used_bytes(),
            flushes: load(&c.flushes),
            compactions: load(&c.compactions),
            write_slowdowns: load(&c.slowdowns),
            write_stalls: load(&c.stalls),
            wal_tail_dropped_bytes: load(&c.wal_tail_dropped_bytes),
            wal_syncs: load(&c.wal_syncs),
            durable_sequence: i.synced_seq.load(Ordering::Acquire),
        }
    }
}

/// The smallest key greater than every key starting with `prefix` (None: no bound).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl Inner {
    /// Value and expiry of `key` at `snapshot`.
    pub(crate) fn get_at(
        &self,
        key: &[u8],
        snapshot: u64,
    ) -> Result<Option<(Vec<u8>, Option<u64>)>> {
        Ok(self
            .newest_at(key, snapshot)?
            .and_then(|(e, _)| live(e, now_ms())))
    }

    /// The newest version of `key` at `snapshot` (tombstones and expired values
    /// included) and whether it was found in a table (durable) rather than a memtable.
    pub(crate) fn newest_at(&self, key: &[u8], snapshot: u64) -> Result<Option<(Entry, bool)>> {
        let view = self.view();
        if let Some(e) = view.mem.get(key, snapshot) {
            return Ok(Some((e, false)));
        }
        if let Some(e) = view.imms.iter().find_map(|m| m.get(key, snapshot)) {
            return Ok(Some((e, false)));
        }
        Ok(view
            .version
            .get(key, snapshot, &self.bloom)?
            .map(|e| (e, true)))
    }

    /// A reverse scan of `range` at `snapshot` over the current view.
    pub(crate) fn scan_rev_at<'a>(
        &self,
        range: impl RangeBounds<&'a [u8]>,
        snapshot: u64,
    ) -> Result<DbIterRev> {
        let (start, end) = owned_bounds(&range);
        let view = self.view();
        let mut sources = vec![RevSource::mem(view.mem.clone(), &start, &end)];
        sources.extend(
            view.imms
                .iter()
                .map(|m| RevSource::mem(m.clone(), &start, &end)),
        );
        sources.extend(
            view.version.levels[0]
                .iter()
                .map(|t| RevSource::tables(vec![t.clone()], &start, &end, true)),
        );
        for level in view.version.levels.iter().skip(1) {
            if !level.is_empty() {
                sources.push(RevSource::tables(level.clone(), &start, &end, true));
            }
        }
        Ok(DbIterRev::new(sources, snapshot, now_ms(), start, end))
    }

    /// A scan of `range` at `snapshot` over the current view.
    pub(crate) fn scan_at<'a>(
        &self,
        range: impl RangeBounds<&'a [u8]>,
        snapshot: u64,
    ) -> Result<DbIter> {
        let (start, end) = owned_bounds(&range);
        let seek: &[u8] = match &start {
            Bound::Included(k) | Bound::Excluded(k) => k,
            Bound::Unbounded => &[],
        };
        let view = self.view();
        let mut sources = vec![Source::mem(view.mem.clone(), seek)];
        sources.extend(view.imms.iter().map(|m| Source::mem(m.clone(), seek)));
        sources.extend(
            view.version.levels[0]
                .iter()
                .map(|t| Source::table(t.clone(), true)),
        );
        for (l, level) in view.version.levels.iter().enumerate().skip(1) {
            if level
                .last()
                .is_some_and(|t| t.meta.largest.as_slice() >= seek)
            {
                sources.push(Source::level(view.version.clone(), l, seek, true));
            }
        }
        Ok(DbIter::new(
            MergeIter::from_key(sources, seek),
            snapshot,
            now_ms(),
            start,
            end,
        ))
    }
}

/// A range's bounds, owned.
fn owned_bounds<'a>(range: &impl RangeBounds<&'a [u8]>) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let own = |b: Bound<&&[u8]>| match b {
        Bound::Included(k) => Bound::Included(k.to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    };
    (own(range.start_bound()), own(range.end_bound()))
}

/// The visible value of a found version, if it is a live put.
fn live(e: Entry, now_ms: u64) -> Option<(Vec<u8>, Option<u64>)> {
    if e.is_deletion_at(now_ms) {
        return None;
    }
    let expiry = (e.kind == Kind::PutExpiring).then_some(e.expire_at_ms);
    Some((e.value, expiry))
}
