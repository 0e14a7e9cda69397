//! Log compaction (`cleanup.policy=compact`): keep the last value per key.
//!
//! (Being written: the rewrite of sealed segments lands in the next commit.)

/// What [`super::PartitionLog::compact`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Sealed segments rewritten.
    pub segments_rewritten: usize,
    /// Records removed (superseded values and expired tombstones).
    pub records_removed: u64,
    /// Log bytes before minus after.
    pub bytes_reclaimed: u64,
}
