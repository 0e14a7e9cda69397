//! The write path: commit log → memtable, group commit, rotation and stalls.
//!
//! A write encodes its batch, takes the writer lock, appends one log record, inserts the
//! versions into the memtable and releases the lock. Under `SyncPolicy::Always` it then
//! joins a group commit ([`Db::sync_to`]): the first waiting writer becomes the leader,
//! fsyncs the log up to everything appended so far and publishes the new durable (and
//! visible) sequence number; writers whose records that fsync covered return without an
//! fsync of their own. Readers see a [`Db::write`] only once it is durable, so no reader
//! ever observes data a crash could take back.
//!
//! A durable write is two steps, and callers that hold a lock of their own can take them
//! apart: [`Db::write_nosync`] appends and applies (the write is visible at once and gets
//! its sequence number), and [`Db::sync_to`] waits until the log is durable up to that
//! sequence number. A server releases its own lock between the two, so many clients'
//! commits ride one fsync; it must not acknowledge a write before `sync_to` returns `Ok`.
//! The price is visibility: another reader may see a `write_nosync` (and every write
//! before it) whose fsync has not finished, and that a crash could still take back.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Db, Inner, View, Writer};
use crate::batch::{self, WriteBatch};
use crate::codec::now_ms;
use crate::error::{Error, Result};
use crate::memtable::Memtable;
use crate::options::SyncPolicy;
use crate::wal::{WalWriter, sync_log};

impl Db {
    /// Sets `key` to `value` (no expiry).
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.write(WriteBatch::new().put(key, value))
    }

    /// Sets `key` to `value`, expiring `ttl` from now; once expired the key reads as
    /// absent at once and compaction drops it.
    pub fn put_with_ttl(&self, key: &[u8], value: &[u8], ttl: Duration) -> Result<()> {
        let at = now_ms().saturating_add(ttl.as_millis().min(u128::from(u64::MAX)) as u64);
        self.write(WriteBatch::new().put_with_expiry(key, value, at))
    }

    /// Sets `key` to `value`, expiring at `expire_at_ms` (unix milliseconds).
    pub fn put_with_expiry(&self, key: &[u8], value: &[u8], expire_at_ms: u64) -> Result<()> {
        self.write(WriteBatch::new().put_with_expiry(key, value, expire_at_ms))
    }

    /// Deletes `key` (absent keys are fine).
    pub fn delete(&self, key: &[u8]) -> Result<()> {
        self.write(WriteBatch::new().delete(key))
    }

    /// Applies `batch` atomically: after a crash all of it or none of it is there.
    /// Under `SyncPolicy::Always` it returns once the batch is durable.
    pub fn write(&self, batch: &WriteBatch) -> Result<()> {
        self.inner.write(batch)
    }

    /// Appends `batch` to the log and applies it, *without* waiting for an fsync
    /// whatever the policy; returns the sequence number of its last write (0 for an
    /// empty batch). The write is visible to readers at once, and so is every write
    /// before it, durable or not (see the module docs). To make it durable before
    /// acknowledging it, call [`Db::sync_to`] with the returned number.
    pub fn write_nosync(&self, batch: &WriteBatch) -> Result<u64> {
        let seq = self.inner.append(batch)?;
        self.inner.visible_seq.fetch_max(seq, Ordering::AcqRel);
        Ok(seq)
    }

    /// Returns once the log is durable up to sequence number `seq` (a number returned
    /// by [`Db::write_nosync`]): at once if an fsync already covered it, otherwise after
    /// leading or joining one group fsync (one thread fsyncs for every writer waiting).
    /// If that fsync fails every waiter gets an error, nothing is acknowledged, and
    /// writes are disabled until the store is reopened (see the crate docs on faults).
    /// Under `SyncPolicy::No` the log is never fsynced and this returns at once.
    pub fn sync_to(&self, seq: u64) -> Result<()> {
        if self.inner.opts.sync == SyncPolicy::No {
            return Ok(());
        }
        self.inner.sync_to(seq)
    }

    /// Writes the memtable (and any waiting immutable ones) to SSTables and waits until
    /// they are recorded in the manifest.
    pub fn flush(&self) -> Result<()> {
        {
            let mut w = self.inner.writer.lock();
            if !w.mem.is_empty() {
                self.inner.rotate(&mut w)?;
            }
        }
        self.inner.wait_for(|v| v.imms.is_empty())
    }
}

impl Inner {
    fn check_limits(&self, batch: &WriteBatch) -> Result<()> {
        if batch.key_len_max > self.opts.key_size_bytes_max {
            return Err(Error::InvalidArgument(format!(
                "key of {} bytes exceeds key_size_bytes_max ({})",
                batch.key_len_max, self.opts.key_size_bytes_max
            )));
        }
        if batch.value_len_max > self.opts.value_size_bytes_max {
            return Err(Error::InvalidArgument(format!(
                "value of {} bytes exceeds value_size_bytes_max ({})",
                batch.value_len_max, self.opts.value_size_bytes_max
            )));
        }
        if batch.count as u64 >= 1 << 24 {
            return Err(Error::InvalidArgument(
                "a batch holds at most 16M writes".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn write(&self, batch: &WriteBatch) -> Result<()> {
        let seq = self.append(batch)?;
        if self.opts.sync == SyncPolicy::Always {
            self.sync_to(seq)?;
        } else {
            self.visible_seq.fetch_max(seq, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Appends `batch` to the log and inserts it into the memtable, without an fsync
    /// and without publishing it to readers; returns its last sequence number (0 for an
    /// empty batch, which writes nothing).
    pub(crate) fn append(&self, batch: &WriteBatch) -> Result<u64> {
        if batch.is_empty() {
            return Ok(0);
        }
        self.check_limits(batch)?;
        self.throttle()?;
        let last_seq = {
            let mut w = self.writer.lock();
            if let Some(e) = &w.failed {
                return Err(Error::WritesDisabled(e.clone()));
            }
            if w.mem.size_bytes() >= self.opts.memtable_size_bytes {
                // The rotation after an earlier write failed (no room for a new log
                // segment): retry it, and refuse the write while it fails, so the
                // memtable stays bounded.
                self.rotate(&mut w)?;
            }
            let first_seq = w.last_seq + 1;
            let payload = batch.encode(first_seq);
            match w.wal.append(&payload) {
                Ok(_end) => {}
                Err(e) => {
                    if w.wal.broken() {
                        w.failed = Some(e.to_string());
                    }
                    return Err(e);
                }
            }
            for (i, op) in batch::ops(batch).enumerate() {
                w.mem.insert(
                    op.key,
                    first_seq + i as u64,
                    op.kind,
                    op.expire_at_ms,
                    op.value,
                );
            }
            w.last_seq = first_seq + u64::from(batch.count) - 1;
            self.counters
                .user_bytes
                .fetch_add(batch.user_bytes, Ordering::Relaxed);
            self.counters
                .wal_bytes
                .fetch_add((payload.len() + 8) as u64, Ordering::Relaxed);
            let last_seq = w.last_seq;
            if w.mem.size_bytes() >= self.opts.memtable_size_bytes
                && let Err(e) = self.rotate(&mut w)
            {
                // The write itself is logged; rotation is retried by the next write.
                tracing::warn!("memtable rotation failed: {e}");
            }
            last_seq
        };
        Ok(last_seq)
    }

    /// Group commit: returns once the log is durable up to sequence number `seq`.
    ///
    /// Leader/follower: waiters queue on `sync_leader`; the one holding it fsyncs the
    /// active segment up to everything appended so far (older segments were fsynced
    /// when they were rotated out) and raises `synced_seq`; a waiter that finds its
    /// number covered when its turn comes returns without an fsync. A failed fsync
    /// latches writes off, so every later waiter fails too instead of being told that
    /// a write is durable.
    pub(crate) fn sync_to(&self, seq: u64) -> Result<()> {
        if self.synced_seq.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        let _leader = self.sync_leader.lock();
        if self.synced_seq.load(Ordering::Acquire) >= seq {
            return Ok(()); // another leader's fsync covered our record
        }
        let (file, path, last_seq) = {
            let w = self.writer.lock();
            if let Some(e) = &w.failed {
                return Err(Error::WritesDisabled(e.clone()));
            }
            (w.wal.file.clone(), w.wal.path.clone(), w.last_seq)
        };
        if seq > last_seq {
            return Err(Error::InvalidArgument(format!(
                "sync_to({seq}): no write has that sequence number yet (last is {last_seq})"
            )));
        }
        if let Err(e) = self.sync_log(&file) {
            // After a failed fsync the page cache state is unknown (fsyncgate): refuse
            // further writes rather than acknowledge data that may be gone.
            let err = Error::io(&path, e);
            self.writer.lock().failed = Some(err.to_string());
            return Err(err);
        }
        self.synced_seq.fetch_max(last_seq, Ordering::AcqRel);
        self.visible_seq.fetch_max(last_seq, Ordering::AcqRel);
        Ok(())
    }

    /// fsyncs a log segment, counting it (`Stats::wal_syncs`). Unit tests can make it
    /// fail for this store (`fail_log_syncs`): no file system fails an fsync on demand.
    pub(crate) fn sync_log(&self, file: &std::fs::File) -> std::io::Result<()> {
        self.counters.wal_syncs.fetch_add(1, Ordering::Relaxed);
        #[cfg(any(test, feature = "fault-injection"))]
        if self.fail_log_syncs.load(Ordering::Relaxed) {
            return Err(std::io::Error::from_raw_os_error(5)); // EIO, as a dying disk gives
        }
        sync_log(file)
    }

    /// Turns the active memtable immutable and starts a new one with a new log segment.
    /// Called with the writer lock held.
    pub(crate) fn rotate(&self, w: &mut Writer) -> Result<()> {
        if let Some(e) = &w.failed {
            // The log's durability is unknown; flushing the memtable would make writes
            // that were refused durable. Reopening replays what the log really holds.
            return Err(Error::WritesDisabled(e.clone()));
        }
        let id = self.new_file_id();
        // Under `No` the log only has to survive a process crash: no fsyncs here (the
        // old segment is about to be flushed to an fsynced SSTable anyway).
        let durable = self.opts.sync != SyncPolicy::No;
        let wal = WalWriter::create(
            &self.dir,
            id,
            super::open::wal_prealloc_bytes(&self.opts),
            durable,
        )?;
        if durable && let Err(e) = self.sync_log(&w.wal.file) {
            let err = Error::io(&w.wal.path, e);
            w.failed = Some(err.to_string());
            return Err(err);
        }
        drop(std::mem::replace(&mut w.wal, wal));
        if durable {
            // Everything up to here is in the segment just fsynced (or older ones).
            self.synced_seq.fetch_max(w.last_seq, Ordering::AcqRel);
        }
        self.visible_seq.fetch_max(w.last_seq, Ordering::AcqRel);
        let mem = Arc::new(Memtable::new(id));
        let frozen = std::mem::replace(&mut w.mem, mem.clone());
        {
            let mut view = self.view.write();
            let mut imms = Vec::with_capacity(view.imms.len() + 1);
            imms.push(frozen);
            imms.extend(view.imms.iter().cloned());
            *view = Arc::new(View {
                mem,
                imms,
                version: view.version.clone(),
            });
        }
        self.flush_cv.notify_all();
        Ok(())
    }

    /// Slows writers (1 ms) and then stalls them while flushes or L0 compactions are
    /// behind, so memory stays bounded.
    fn throttle(&self) -> Result<()> {
        let o = &self.opts;
        let deadline = Instant::now() + o.stall_timeout;
        let mut stalled = false;
        loop {
            let view = self.view();
            let (imms, l0) = (view.imms.len(), view.version.levels[0].len());
            if imms < o.immutable_memtables_max && l0 < o.l0_stop_trigger {
                if l0 >= o.l0_slowdown_trigger
                    || (imms >= 2 && imms + 1 >= o.immutable_memtables_max)
                {
                    self.counters.slowdowns.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(1));
                }
                return Ok(());
            }
            if !stalled {
                stalled = true;
                self.counters.stalls.fetch_add(1, Ordering::Relaxed);
                self.compaction_cv.notify_all();
            }
            let mut bg = self.bg.lock();
            if let Some(e) = bg.error() {
                return Err(Error::Background(e.clone()));
            }
            if bg.shutdown || Instant::now() >= deadline {
                return Err(Error::Background(format!(
                    "write stalled for {:?} waiting for flush/compaction",
                    o.stall_timeout
                )));
            }
            self.progress_cv
                .wait_for(&mut bg, Duration::from_millis(50));
        }
    }

    /// Waits (bounded by `stall_timeout`) until `done(view)` holds; fails early if the
    /// flush it waits for is failing.
    pub(crate) fn wait_for(&self, done: impl Fn(&View) -> bool) -> Result<()> {
        let deadline = Instant::now() + self.opts.stall_timeout;
        loop {
            if done(&self.view()) {
                return Ok(());
            }
            let mut bg = self.bg.lock();
            if let Some(e) = &bg.flush_error {
                return Err(Error::Background(e.clone()));
            }
            if bg.shutdown || Instant::now() >= deadline {
                return Err(Error::Background(
                    "timed out waiting for background work".into(),
                ));
            }
            self.progress_cv
                .wait_for(&mut bg, Duration::from_millis(50));
        }
    }
}

impl Db {
    /// Flushes the memtable and merges every table into the deepest level, dropping
    /// overwritten versions, tombstones and expired keys. Blocks until done.
    pub fn compact(&self) -> Result<()> {
        self.flush()?;
        let _one = self.inner.compaction_lock.lock();
        let result = crate::compaction::full(&self.inner);
        self.inner.progress_cv.notify_all();
        result
    }
}
