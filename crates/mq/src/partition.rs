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

use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::cluster::epochs::{EpochCache, diverging, truncation_point};
use crate::cluster::isr::{LeaderState, ReplicaRole};
use crate::cluster::metadata::{BrokerId, PartitionInfo};
use crate::idempotence::{Decision, Producers};
use crate::log::{Appended, BatchHeader, LogError, PartitionLog};

/// What became of a produced batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appending {
    /// Appended now.
    Appended(Appended),
    /// An idempotent producer's retry of a batch appended before at this offset.
    Duplicate(i64),
    /// Refused (idempotent-producer checks, or not the leader) with this Kafka error code.
    Refused(i16),
}

struct Inner {
    log: PartitionLog,
    producers: Producers,
    epochs: EpochCache,
}

/// A leader's answer to a replica fetch: whole batches, or where the
/// follower's log diverges ((epoch, end offset), see `cluster::epochs`).
pub type ReplicaRead = (Vec<Bytes>, Option<(i32, i64)>);

/// No leader epoch (not leading).
const NOT_LEADING: i32 = -1;

/// One partition of a topic.
pub struct Partition {
    /// The partition's index in its topic.
    pub index: i32,
    inner: Mutex<Inner>,
    end: watch::Sender<i64>,
    /// The high watermark: what consumers may read. The log end on a
    /// single broker; the lowest ISR log end when replicated.
    hw: watch::Sender<i64>,
    start: AtomicI64,
    /// The end offset at the last explicit flush (so idle logs are not fsynced).
    flushed: AtomicI64,
    /// Part of a cluster: leadership and the high watermark come from replication.
    replicated: bool,
    /// The leader epoch while this replica leads, else -1 (changed under `inner`).
    leading: AtomicI32,
    /// The replica's role (cluster mode).
    role: Mutex<ReplicaRole>,
}

impl Partition {
    /// Wraps an opened log of a single broker (it leads, high watermark = log end).
    pub fn new(index: i32, log: PartitionLog) -> Self {
        Self::with_epochs(index, log, EpochCache::default(), false)
    }

    /// Wraps an opened log that is a replica in a cluster: it serves nothing
    /// until the metadata makes it leader or follower.
    pub fn replicated(index: i32, log: PartitionLog) -> Result<Self, LogError> {
        let epochs = EpochCache::load(log.dir(), log.end_offset())
            .map_err(LogError::io("loading the epoch cache of", log.dir()))?;
        Ok(Self::with_epochs(index, log, epochs, true))
    }

    fn with_epochs(index: i32, log: PartitionLog, epochs: EpochCache, replicated: bool) -> Self {
        let (end, _) = watch::channel(log.end_offset());
        let (hw, _) = watch::channel(if replicated { 0 } else { log.end_offset() });
        let start = AtomicI64::new(log.start_offset());
        let flushed = AtomicI64::new(log.end_offset());
        Partition {
            index,
            inner: Mutex::new(Inner {
                log,
                producers: Producers::default(),
                epochs,
            }),
            end,
            hw,
            start,
            flushed,
            replicated,
            leading: AtomicI32::new(NOT_LEADING),
            role: Mutex::new(ReplicaRole::None),
        }
    }

    /// Whether this partition is a replica in a cluster.
    pub fn is_replicated(&self) -> bool {
        self.replicated
    }

    /// Appends one record batch (blocking: call from a blocking thread),
    /// after the idempotent-producer checks (see `idempotence`), which run
    /// under the same lock as the append. A replica that does not lead
    /// refuses with NOT_LEADER_OR_FOLLOWER; a leader stamps its epoch.
    pub fn append_blocking(&self, batch: &[u8], now_ms: i64) -> Result<Appending, LogError> {
        let mut inner = self.inner.lock();
        let epoch = if self.replicated {
            match self.leading.load(Ordering::Acquire) {
                NOT_LEADING => {
                    return Ok(Appending::Refused(
                        ResponseError::NotLeaderOrFollower.code(),
                    ));
                }
                epoch => Some(epoch),
            }
        } else {
            None
        };
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
        let appended = inner.log.append_in_epoch(batch, now_ms, epoch)?;
        if let Some(header) = &header {
            inner.producers.record(header, appended.base_offset);
        }
        self.publish(&inner.log);
        drop(inner);
        self.refresh_high_watermark();
        Ok(Appending::Appended(appended))
    }

    /// Whole batches from `offset`, up to about `max_bytes` (blocking).
    pub fn read_blocking(&self, offset: i64, max_bytes: usize) -> Result<Vec<Bytes>, LogError> {
        self.inner.lock().log.read(offset, max_bytes)
    }

    /// What a consumer may see: whole batches from `offset` below the high watermark.
    pub fn read_committed_blocking(
        &self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>, LogError> {
        let hw = self.high_watermark();
        let mut batches = self.read_blocking(offset, max_bytes)?;
        // The high watermark is always a batch boundary: every replica's log
        // end is one, and it is the lowest of them.
        batches.retain(|b| BatchHeader::parse(b).is_ok_and(|h| h.base_offset < hw));
        Ok(batches)
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
        if !self.replicated {
            self.hw.send_replace(log.end_offset());
        }
    }

    /// The log end offset (next offset to assign).
    pub fn end_offset(&self) -> i64 {
        *self.end.borrow()
    }

    /// The high watermark (the log end on a single broker).
    pub fn high_watermark(&self) -> i64 {
        *self.hw.borrow()
    }

    /// The log start offset.
    pub fn start_offset(&self) -> i64 {
        self.start.load(Ordering::Acquire)
    }

    /// A receiver that changes whenever the high watermark does (consumers' long polling).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.hw.subscribe()
    }

    /// A receiver that changes whenever the log end does (followers' long polling).
    pub fn subscribe_end(&self) -> watch::Receiver<i64> {
        self.end.subscribe()
    }

    /// The epoch this replica leads in, if it leads.
    pub fn leader_epoch(&self) -> Option<i32> {
        match self.leading.load(Ordering::Acquire) {
            NOT_LEADING if self.replicated => None,
            NOT_LEADING => Some(0),
            epoch => Some(epoch),
        }
    }

    /// The role (cluster mode).
    pub fn role(&self) -> ReplicaRole {
        self.role.lock().clone()
    }

    /// Recomputes a leader's high watermark from its ISR's log ends.
    fn refresh_high_watermark(&self) {
        if let ReplicaRole::Leader(state) = &*self.role.lock() {
            let current = self.high_watermark();
            let hw = state.high_watermark(current, self.end_offset());
            if hw != current {
                self.hw.send_replace(hw);
            }
        }
    }

    /// Wakes whoever waits on the high watermark (a role changed).
    fn wake(&self) {
        self.hw.send_modify(|_| {});
    }

    /// Takes the leadership given by the metadata (blocking: records the epoch durably).
    pub fn become_leader_blocking(
        &self,
        me: BrokerId,
        info: &PartitionInfo,
        now_ms: u64,
    ) -> Result<(), LogError> {
        let mut inner = self.inner.lock();
        let end = inner.log.end_offset();
        let dir = inner.log.dir().to_path_buf();
        inner
            .epochs
            .assign(info.leader_epoch, end)
            .map_err(LogError::io("saving the epoch cache of", &dir))?;
        self.leading.store(info.leader_epoch, Ordering::Release);
        *self.role.lock() = ReplicaRole::Leader(LeaderState::new(me, info, end, now_ms));
        drop(inner);
        self.refresh_high_watermark();
        self.wake();
        Ok(())
    }

    /// Follows `leader` (or nobody when `leader` is None).
    pub fn become_follower(&self, leader: Option<(BrokerId, i32)>) {
        let inner = self.inner.lock();
        self.leading.store(NOT_LEADING, Ordering::Release);
        *self.role.lock() = match leader {
            Some((leader, leader_epoch)) => ReplicaRole::Follower {
                leader,
                leader_epoch,
            },
            None => ReplicaRole::None,
        };
        drop(inner);
        self.wake();
    }

    /// The metadata changed while this replica keeps leading in the same epoch (ISR).
    pub fn update_leader(&self, info: &PartitionInfo) {
        if let ReplicaRole::Leader(state) = &mut *self.role.lock() {
            state.update(info);
        }
        self.refresh_high_watermark();
    }

    /// The ISR a leader should ask the controller for, if it differs and no
    /// change is pending: (isr, leader epoch, partition epoch). Marks it pending.
    pub fn isr_change(&self, now_ms: u64, lag_max_ms: u64) -> Option<(Vec<BrokerId>, i32, i32)> {
        let hw = self.high_watermark();
        let mut role = self.role.lock();
        let ReplicaRole::Leader(state) = &mut *role else {
            return None;
        };
        if state.isr_change_pending {
            return None;
        }
        let isr = state.wanted_isr(hw, now_ms, lag_max_ms)?;
        state.isr_change_pending = true;
        Some((isr, state.leader_epoch, state.partition_epoch))
    }

    /// An ISR change request failed: allow another.
    pub fn isr_change_failed(&self) {
        if let ReplicaRole::Leader(state) = &mut *self.role.lock() {
            state.isr_change_pending = false;
        }
    }

    /// Led here with fewer in-sync replicas than replicas.
    pub fn under_replicated(&self) -> bool {
        matches!(&*self.role.lock(), ReplicaRole::Leader(state) if state.isr.len() < state.replicas.len())
    }

    /// The ISR size while leading (0 otherwise).
    pub fn isr_len(&self) -> usize {
        match &*self.role.lock() {
            ReplicaRole::Leader(state) => state.isr.len(),
            _ => usize::from(!self.replicated),
        }
    }

    /// A follower's position: (log end, epoch of its last batch).
    pub fn follower_position(&self) -> (i64, i32) {
        let inner = self.inner.lock();
        (inner.log.end_offset(), inner.epochs.latest_epoch())
    }

    /// A follower appends batches fetched from its leader (blocking).
    pub fn append_fetched_blocking(&self, batches: &[Bytes]) -> Result<(), LogError> {
        let mut inner = self.inner.lock();
        let dir = inner.log.dir().to_path_buf();
        for batch in batches {
            let appended = inner.log.append_replicated(batch)?;
            let header = BatchHeader::parse(batch)?;
            inner
                .epochs
                .assign(header.partition_leader_epoch, appended.base_offset)
                .map_err(LogError::io("saving the epoch cache of", &dir))?;
        }
        self.publish(&inner.log);
        Ok(())
    }

    /// A follower cuts its divergent tail after the leader said where its
    /// epoch `point.0` ends (`point.1`) (blocking; see `cluster::epochs`).
    pub fn truncate_diverging_blocking(&self, point: (i32, i64)) -> Result<(), LogError> {
        let mut inner = self.inner.lock();
        let dir = inner.log.dir().to_path_buf();
        let offset = truncation_point(&inner.epochs, inner.log.end_offset(), point);
        inner.log.truncate_to(offset)?;
        let end = inner.log.end_offset();
        inner
            .epochs
            .truncate_from(end)
            .map_err(LogError::io("saving the epoch cache of", &dir))?;
        // Producer sequence state may describe cut batches: forget it.
        inner.producers = Producers::default();
        self.publish(&inner.log);
        if self.high_watermark() > end {
            self.hw.send_replace(end);
        }
        tracing::info!(
            partition = self.index,
            offset = end,
            "divergent tail truncated"
        );
        Ok(())
    }

    /// A follower learns the leader's high watermark.
    pub fn set_follower_high_watermark(&self, leader_hw: i64) {
        let hw = leader_hw.min(self.end_offset());
        if hw != self.high_watermark() {
            self.hw.send_replace(hw);
        }
    }

    /// The leader's side of a replica fetch (blocking): checks the epoch,
    /// finds divergence, reads from the follower's log end, and records it
    /// (advancing the high watermark). Err is a Kafka error code.
    pub fn serve_replica_blocking(
        &self,
        replica: BrokerId,
        leader_epoch: i32,
        fetch_offset: i64,
        last_fetched_epoch: i32,
        max_bytes: usize,
        now_ms: u64,
    ) -> Result<ReplicaRead, i16> {
        let inner = self.inner.lock();
        let mine = self.leading.load(Ordering::Acquire);
        if mine == NOT_LEADING {
            return Err(ResponseError::NotLeaderOrFollower.code());
        }
        if leader_epoch < mine {
            return Err(ResponseError::FencedLeaderEpoch.code());
        }
        if leader_epoch > mine {
            return Err(ResponseError::UnknownLeaderEpoch.code());
        }
        let end = inner.log.end_offset();
        if let Some(point) = diverging(&inner.epochs, end, fetch_offset, last_fetched_epoch) {
            return Ok((Vec::new(), Some(point)));
        }
        if fetch_offset > end {
            return Ok((Vec::new(), Some((-1, end))));
        }
        let batches = inner.log.read(fetch_offset, max_bytes).map_err(|err| {
            tracing::warn!(partition = self.index, error = %err, "replica read failed");
            match err {
                LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange.code(),
                _ => ResponseError::KafkaStorageError.code(),
            }
        })?;
        drop(inner);
        if let ReplicaRole::Leader(state) = &mut *self.role.lock()
            && let Some(follower) = state.followers.get_mut(&replica)
        {
            follower.on_fetch(fetch_offset, end, now_ms);
        }
        self.refresh_high_watermark();
        Ok((batches, None))
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
            headers: &[],
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
