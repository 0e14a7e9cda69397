//! The bound on request bodies buffered for replay, shared by all requests:
//! a [`Budget`] of bytes (memory and disk together) that each buffered body
//! takes a [`Reservation`] from and gives back when it is dropped, with the
//! gauges that show it (`request_body_buffered_bytes`, `..._peak_bytes`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::metrics::Metrics;

/// Bytes of request bodies held for replay by all requests together.
pub struct Budget {
    total_bytes_max: u64,
    reserved: AtomicU64,
    memory: AtomicU64,
    disk: AtomicU64,
    memory_peak: AtomicU64,
    reserved_peak: AtomicU64,
    pub(super) metrics: Metrics,
}

impl Budget {
    /// A budget of `total_bytes_max`, reported through `metrics`.
    pub fn new(total_bytes_max: u64, metrics: Metrics) -> Arc<Self> {
        Arc::new(Self {
            total_bytes_max,
            reserved: AtomicU64::new(0),
            memory: AtomicU64::new(0),
            disk: AtomicU64::new(0),
            memory_peak: AtomicU64::new(0),
            reserved_peak: AtomicU64::new(0),
            metrics,
        })
    }

    /// Bytes held in memory now.
    pub fn memory_bytes(&self) -> u64 {
        self.memory.load(Ordering::Relaxed)
    }

    /// Bytes held in spill files now.
    pub fn disk_bytes(&self) -> u64 {
        self.disk.load(Ordering::Relaxed)
    }

    /// Bytes reserved now (held, or promised to a declared length).
    pub fn reserved_bytes(&self) -> u64 {
        self.reserved.load(Ordering::Relaxed)
    }

    /// The most bytes ever held in memory at once.
    pub fn memory_peak_bytes(&self) -> u64 {
        self.memory_peak.load(Ordering::Relaxed)
    }

    /// The most bytes ever reserved (memory and disk) at once.
    pub fn reserved_peak_bytes(&self) -> u64 {
        self.reserved_peak.load(Ordering::Relaxed)
    }

    /// Takes `bytes` more from the budget, or nothing if they do not fit.
    fn take(&self, bytes: u64) -> bool {
        let taken = self
            .reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |reserved| {
                reserved
                    .checked_add(bytes)
                    .filter(|total| *total <= self.total_bytes_max)
            });
        let Ok(before) = taken else {
            return false;
        };
        let now = before + bytes;
        self.reserved_peak.fetch_max(now, Ordering::Relaxed);
        self.metrics
            .body_peak_bytes("total")
            .set(gauge_value(self.reserved_peak.load(Ordering::Relaxed)));
        true
    }

    fn add(&self, storage: &'static str, bytes: u64) {
        let counter = self.storage(storage);
        let now = counter.fetch_add(bytes, Ordering::AcqRel) + bytes;
        self.metrics.body_bytes(storage).set(gauge_value(now));
        if storage == "memory" {
            self.memory_peak.fetch_max(now, Ordering::Relaxed);
            self.metrics
                .body_peak_bytes("memory")
                .set(gauge_value(self.memory_peak.load(Ordering::Relaxed)));
        }
    }

    fn remove(&self, storage: &'static str, bytes: u64) {
        let counter = self.storage(storage);
        let before = counter.fetch_sub(bytes, Ordering::AcqRel);
        debug_assert!(before >= bytes, "{storage} accounting went negative");
        self.metrics
            .body_bytes(storage)
            .set(gauge_value(before.saturating_sub(bytes)));
    }

    fn storage(&self, storage: &'static str) -> &AtomicU64 {
        match storage {
            "memory" => &self.memory,
            _ => &self.disk,
        }
    }
}

fn gauge_value(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// One request's share of the [`Budget`], returned when dropped.
pub(super) struct Reservation {
    pub(super) budget: Arc<Budget>,
    reserved: u64,
    memory: u64,
    disk: u64,
}

impl Reservation {
    pub(super) fn new(budget: &Arc<Budget>, bytes: u64) -> Option<Self> {
        budget.take(bytes).then(|| Self {
            budget: budget.clone(),
            reserved: bytes,
            memory: 0,
            disk: 0,
        })
    }

    /// Makes room for `bytes` more held bytes, growing the reservation if
    /// needed; false when the budget has no room.
    pub(super) fn room_for(&mut self, bytes: u64) -> bool {
        let needed = (self.memory + self.disk + bytes).saturating_sub(self.reserved);
        if needed == 0 {
            return true;
        }
        if !self.budget.take(needed) {
            return false;
        }
        self.reserved += needed;
        true
    }

    pub(super) fn hold(&mut self, storage: &'static str, bytes: u64) {
        debug_assert!(self.memory + self.disk + bytes <= self.reserved);
        self.budget.add(storage, bytes);
        match storage {
            "memory" => self.memory += bytes,
            _ => self.disk += bytes,
        }
    }

    /// The memory part was written to disk.
    pub(super) fn memory_to_disk(&mut self) {
        let moved = std::mem::take(&mut self.memory);
        self.budget.remove("memory", moved);
        self.hold("disk", moved);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.remove("memory", self.memory);
        self.budget.remove("disk", self.disk);
        self.budget
            .reserved
            .fetch_sub(self.reserved, Ordering::AcqRel);
    }
}
