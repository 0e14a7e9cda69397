//! One partition as the broker serves it: the storage helper's
//! [`PartitionLog`] behind a lock, plus what the network side needs without
//! touching the disk.
//!
//! The log is only ever called from blocking threads (an append may fsync;
//! a read may hit the disk): callers use `spawn_blocking`. The log end and
//! start offsets are mirrored in a `watch` channel and an atomic, so
//! Metadata, ListOffsets and the long-polling Fetch read them without
//! waiting for a lock an fsync may hold. Every append publishes the new end
//! offset on the watch channel, which wakes the fetches parked on it.

use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::idempotence::{Decision, Producers};
use crate::log::{Appended, BatchHeader, LogError, PartitionLog};

/// What became of a produced batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appending {
    /// Appended now.
    Appended(Appended),
    /// An idempotent producer's retry of a batch appended before at this offset.
    Duplicate(i64),
    /// Refused by the idempotent-producer checks with this Kafka error code.
    Refused(i16),
}

struct Inner {
    log: PartitionLog,
    producers: Producers,
}

/// One partition of a topic.
pub struct Partition {
    /// The partition's index in its topic.
    pub index: i32,
    inner: Mutex<Inner>,
    end: watch::Sender<i64>,
    start: AtomicI64,
    /// The end offset at the last explicit flush (so idle logs are not fsynced).
    flushed: AtomicI64,
}

impl Partition {
    /// Wraps an opened log.
    pub fn new(index: i32, log: PartitionLog) -> Self {
        let (end, _) = watch::channel(log.end_offset());
        let start = AtomicI64::new(log.start_offset());
        let flushed = AtomicI64::new(log.end_offset());
        Partition {
            index,
            inner: Mutex::new(Inner {
                log,
                producers: Producers::default(),
            }),
            end,
            start,
            flushed,
        }
    }

    /// Appends one record batch (blocking: call from a blocking thread),
    /// after the idempotent-producer checks (see `idempotence`), which run
    /// under the same lock as the append.
    pub fn append_blocking(&self, batch: &[u8], now_ms: i64) -> Result<Appending, LogError> {
        let mut inner = self.inner.lock();
        // A batch whose header does not parse is refused by the log itself.
        let header = BatchHeader::parse(batch).ok();
        if let Some(header) = &header {
            match inner.producers.check(header) {
                Decision::Append => {}
                Decision::Duplicate { base_offset } => {
                    return Ok(Appending::Duplicate(base_offset));
                }
                Decision::Refuse(code) => return Ok(Appending::Refused(code)),
            }
        }
        let appended = inner.log.append(batch, now_ms)?;
        if let Some(header) = &header {
            inner.producers.record(header, appended.base_offset);
        }
        self.publish(&inner.log);
        Ok(Appending::Appended(appended))
    }

    /// Whole batches from `offset`, up to about `max_bytes` (blocking).
    pub fn read_blocking(&self, offset: i64, max_bytes: usize) -> Result<Vec<Bytes>, LogError> {
        self.inner.lock().log.read(offset, max_bytes)
    }

    /// Bytes of the log on disk, over all its segments (blocking).
    pub fn size_bytes_blocking(&self) -> u64 {
        self.inner.lock().log.size_bytes()
    }

    /// The first offset whose timestamp is `>= timestamp_ms` (blocking).
    pub fn offset_for_timestamp_blocking(&self, timestamp_ms: i64) -> Option<i64> {
        self.inner.lock().log.offset_for_timestamp(timestamp_ms)
    }

    /// fsyncs what was appended (blocking).
    pub fn flush_blocking(&self) -> Result<(), LogError> {
        let mut inner = self.inner.lock();
        inner.log.flush()?;
        self.flushed
            .store(inner.log.end_offset(), Ordering::Release);
        Ok(())
    }

    /// [`Self::flush_blocking`] when something was appended since the last
    /// one (the `fsync = interval` timer); returns whether it flushed.
    pub fn flush_if_appended_blocking(&self) -> Result<bool, LogError> {
        if self.flushed.load(Ordering::Acquire) == self.end_offset() {
            return Ok(false);
        }
        self.flush_blocking().map(|()| true)
    }

    /// Deletes segments beyond retention (blocking).
    pub fn enforce_retention_blocking(&self, now_ms: i64) -> Result<(), LogError> {
        let mut inner = self.inner.lock();
        inner.log.enforce_retention(now_ms)?;
        self.publish(&inner.log);
        Ok(())
    }

    fn publish(&self, log: &PartitionLog) {
        self.start.store(log.start_offset(), Ordering::Release);
        self.end.send_replace(log.end_offset());
    }

    /// The log end offset (next offset to assign); also the high watermark
    /// on a single broker.
    pub fn end_offset(&self) -> i64 {
        *self.end.borrow()
    }

    /// The log start offset.
    pub fn start_offset(&self) -> i64 {
        self.start.load(Ordering::Acquire)
    }

    /// A receiver that changes whenever the end offset does (long polling).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.end.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::records::{NewRecord, encode_batch};
    use crate::log::{Compression, LogConfig};

    #[test]
    fn only_appended_partitions_are_flushed_and_appends_wake_watchers() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
        let partition = Partition::new(0, log);
        let mut watcher = partition.subscribe();
        assert!(
            !partition.flush_if_appended_blocking().unwrap(),
            "nothing appended yet"
        );
        let record = NewRecord {
            key: None,
            value: Some(b"v"),
            timestamp_ms: 1,
        };
        let batch = encode_batch(&[record], Compression::None).unwrap();
        let appended = partition.append_blocking(&batch, 1).unwrap();
        assert!(matches!(appended, Appending::Appended(a) if a.base_offset == 0));
        assert_eq!(partition.end_offset(), 1);
        assert!(
            watcher.has_changed().unwrap(),
            "an append publishes the new end"
        );
        assert_eq!(*watcher.borrow_and_update(), 1);
        assert!(partition.flush_if_appended_blocking().unwrap());
        assert!(!partition.flush_if_appended_blocking().unwrap());
    }
}
