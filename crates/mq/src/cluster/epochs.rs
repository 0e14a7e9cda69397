//! Leader epochs per partition (Kafka's `leader-epoch-checkpoint`, KIP-101/279):
//! which epoch's leader wrote which range of offsets.
//!
//! A leader stamps its epoch into every batch it appends (the batch header's
//! `partitionLeaderEpoch`) and records `(epoch, start offset)` when it takes
//! office; a follower records an entry whenever a fetched batch carries a
//! newer epoch. A follower's fetch names the epoch of its last batch; the
//! leader answers where that epoch ends in *its* log, and a follower holding
//! more under that epoch (an old leader's tail that was never replicated)
//! truncates there. That is how a returning old leader drops its divergent
//! tail, instead of the high-watermark truncation that could lose or fork
//! data.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::durable::write_atomically;

/// The epoch cache of one partition, saved in its log directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochCache {
    /// (epoch, first offset written in it), both increasing.
    entries: Vec<(i32, i64)>,
    #[serde(skip)]
    path: Option<PathBuf>,
}

const FILE: &str = "leader-epoch-checkpoint.json";

impl EpochCache {
    /// Loads the cache of the log in `dir`, dropping entries past `log_end`
    /// (a crash cut the log's tail).
    pub fn load(dir: &Path, log_end: i64) -> std::io::Result<EpochCache> {
        let path = dir.join(FILE);
        let mut cache: EpochCache = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "damaged epoch cache: starting empty");
                EpochCache::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => EpochCache::default(),
            Err(e) => return Err(e),
        };
        cache.path = Some(path);
        cache.entries.retain(|(_, start)| *start <= log_end);
        Ok(cache)
    }

    /// An in-memory cache (tests).
    pub fn from_entries(entries: Vec<(i32, i64)>) -> EpochCache {
        EpochCache {
            entries,
            path: None,
        }
    }

    fn save(&self) -> std::io::Result<()> {
        match &self.path {
            Some(path) => write_atomically(
                path,
                &serde_json::to_vec(self).map_err(std::io::Error::other)?,
            ),
            None => Ok(()),
        }
    }

    /// The newest (epoch, start offset).
    pub fn latest(&self) -> Option<(i32, i64)> {
        self.entries.last().copied()
    }

    /// The newest epoch, -1 when none.
    pub fn latest_epoch(&self) -> i32 {
        self.latest().map_or(-1, |(e, _)| e)
    }

    /// Epoch `epoch` starts at `start` (ignored unless newer than the latest).
    pub fn assign(&mut self, epoch: i32, start: i64) -> std::io::Result<()> {
        if epoch > self.latest_epoch() {
            self.entries.push((epoch, start));
            self.save()?;
        }
        Ok(())
    }

    /// Where `epoch` ends in this log (whose end is `log_end`): the largest
    /// epoch `<= epoch` held, and the start of the next one (or `log_end`).
    /// `(-1, start of the first epoch)` when every epoch here is newer.
    pub fn end_offset_for(&self, epoch: i32, log_end: i64) -> (i32, i64) {
        match self.entries.iter().rposition(|(e, _)| *e <= epoch) {
            None => (-1, self.entries.first().map_or(log_end, |(_, s)| *s)),
            Some(i) => (
                self.entries[i].0,
                self.entries.get(i + 1).map_or(log_end, |(_, s)| *s),
            ),
        }
    }

    /// The log was cut to end at `offset`: drop epochs starting at or after it.
    pub fn truncate_from(&mut self, offset: i64) -> std::io::Result<()> {
        let before = self.entries.len();
        self.entries.retain(|(_, start)| *start < offset);
        if self.entries.len() != before {
            self.save()?;
        }
        Ok(())
    }
}

/// The leader's answer to a follower fetching at `fetch_offset` whose last
/// batch has `last_fetched_epoch`: `Some((epoch, end))` when the follower's
/// log diverges from the leader's (it must truncate, see [`truncation_point`]).
pub fn diverging(
    leader: &EpochCache,
    leader_end: i64,
    fetch_offset: i64,
    last_fetched_epoch: i32,
) -> Option<(i32, i64)> {
    if last_fetched_epoch < 0 {
        return None;
    }
    let (epoch, end) = leader.end_offset_for(last_fetched_epoch, leader_end);
    (end < fetch_offset || epoch < last_fetched_epoch).then_some((epoch, end))
}

/// Where a follower cuts its log after the leader said epoch `epoch` ends
/// at `leader_end_offset` there: no further than either log holds under that epoch.
pub fn truncation_point(
    follower: &EpochCache,
    follower_end: i64,
    (epoch, leader_end_offset): (i32, i64),
) -> i64 {
    if epoch < 0 {
        return leader_end_offset.min(follower_end);
    }
    let (_, mine) = follower.end_offset_for(epoch, follower_end);
    leader_end_offset.min(mine).min(follower_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_offsets_per_epoch() {
        let cache = EpochCache::from_entries(vec![(1, 0), (3, 100), (4, 150)]);
        assert_eq!(cache.end_offset_for(4, 200), (4, 200));
        assert_eq!(cache.end_offset_for(3, 200), (3, 150));
        assert_eq!(cache.end_offset_for(2, 200), (1, 100));
        assert_eq!(cache.end_offset_for(0, 200), (-1, 0));
        assert_eq!(cache.end_offset_for(9, 200), (4, 200));
    }

    #[test]
    fn a_returning_old_leader_cuts_its_unreplicated_tail() {
        // The old leader wrote offsets 100..130 in epoch 3; only 100..110
        // reached the follower that became leader in epoch 4 at offset 110.
        let new_leader = EpochCache::from_entries(vec![(1, 0), (3, 100), (4, 110)]);
        let old_leader = EpochCache::from_entries(vec![(1, 0), (3, 100)]);
        let answer = diverging(&new_leader, 140, 130, 3).expect("diverges");
        assert_eq!(answer, (3, 110));
        assert_eq!(truncation_point(&old_leader, 130, answer), 110);
        // Once cut, its fetch at 110 in epoch 3 is in line with the leader.
        assert_eq!(diverging(&new_leader, 140, 110, 3), None);
    }

    #[test]
    fn an_epoch_the_leader_never_had_is_cut_where_the_older_one_ends_on_both_sides() {
        let leader = EpochCache::from_entries(vec![(2, 0), (4, 100)]);
        let follower = EpochCache::from_entries(vec![(2, 0), (3, 80)]);
        let answer = diverging(&leader, 120, 90, 3).expect("diverges");
        assert_eq!(answer, (2, 100));
        assert_eq!(truncation_point(&follower, 90, answer), 80);
    }

    #[test]
    fn the_cache_persists_and_forgets_epochs_past_a_cut_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = EpochCache::load(dir.path(), 0).unwrap();
        cache.assign(1, 0).unwrap();
        cache.assign(1, 5).unwrap();
        cache.assign(2, 10).unwrap();
        assert_eq!(
            EpochCache::load(dir.path(), 50).unwrap().latest(),
            Some((2, 10))
        );
        assert_eq!(
            EpochCache::load(dir.path(), 5).unwrap().latest(),
            Some((1, 0))
        );
        cache.truncate_from(10).unwrap();
        assert_eq!(EpochCache::load(dir.path(), 50).unwrap().latest_epoch(), 1);
    }
}
