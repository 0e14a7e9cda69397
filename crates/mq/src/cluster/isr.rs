//! In-sync replicas and the high watermark, as the partition leader decides
//! them: plain functions of what followers' fetches reported.
//!
//! The notes: "committed offset: every message before it is synchronised on
//! all ISR replicas". A follower's fetch offset is its log end (it asks for
//! what it lacks), so each fetch tells the leader how far that follower
//! holds the log. The high watermark is the lowest log end over the ISR
//! (the leader's included); consumers read below it and `acks=all`
//! producers are answered once it passes their batch. A follower that has
//! not caught up with the leader's log end for `replica_lag_time_max_ms`
//! leaves the ISR (Kafka's rule: "caught up" is a fetch at or beyond the
//! leader's end as of the previous fetch); one whose log end reaches the
//! high watermark again rejoins. ISR changes go through the controller
//! (`controller::alter_isr`); until one is committed the leader keeps using
//! the old ISR, which only ever makes the high watermark more conservative.

use std::collections::BTreeMap;

use super::metadata::{BrokerId, PartitionInfo};

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerState {
    /// Its log end offset as of its last fetch (-1: not heard from this tenure).
    pub log_end: i64,
    /// When it last caught up with the leader.
    pub last_caught_up_ms: u64,
    /// The leader's log end at the follower's previous fetch, and when that was.
    last_fetch: (i64, u64),
}

impl FollowerState {
    /// A follower as a new leader first sees it: counted as caught up now,
    /// so it gets a full `replica_lag_time_max_ms` to fetch.
    pub fn new(now_ms: u64) -> Self {
        FollowerState {
            log_end: -1,
            last_caught_up_ms: now_ms,
            last_fetch: (i64::MAX, now_ms),
        }
    }

    /// A fetch at `fetch_offset` while the leader's log ends at `leader_end`.
    pub fn on_fetch(&mut self, fetch_offset: i64, leader_end: i64, now_ms: u64) {
        self.log_end = fetch_offset;
        if fetch_offset >= leader_end {
            self.last_caught_up_ms = now_ms;
        } else if fetch_offset >= self.last_fetch.0 {
            self.last_caught_up_ms = self.last_caught_up_ms.max(self.last_fetch.1);
        }
        self.last_fetch = (leader_end, now_ms);
    }
}

/// A leader's view of its partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderState {
    /// This broker.
    pub me: BrokerId,
    /// The leader epoch it leads in.
    pub leader_epoch: i32,
    /// The partition epoch of the metadata it last saw (for ISR updates).
    pub partition_epoch: i32,
    /// All replicas.
    pub replicas: Vec<BrokerId>,
    /// The committed ISR.
    pub isr: Vec<BrokerId>,
    /// Followers by id.
    pub followers: BTreeMap<BrokerId, FollowerState>,
    /// The log end when it became leader: a follower rejoins only past it.
    pub epoch_start_offset: i64,
    /// An ISR change was sent to the controller and is not applied yet.
    pub isr_change_pending: bool,
}

impl LeaderState {
    /// A new leadership from the metadata.
    pub fn new(me: BrokerId, info: &PartitionInfo, log_end: i64, now_ms: u64) -> Self {
        LeaderState {
            me,
            leader_epoch: info.leader_epoch,
            partition_epoch: info.partition_epoch,
            replicas: info.replicas.clone(),
            isr: info.isr.clone(),
            followers: info
                .replicas
                .iter()
                .filter(|r| **r != me)
                .map(|r| (*r, FollowerState::new(now_ms)))
                .collect(),
            epoch_start_offset: log_end,
            isr_change_pending: false,
        }
    }

    /// The metadata changed within the same leader epoch (an ISR update).
    pub fn update(&mut self, info: &PartitionInfo) {
        self.partition_epoch = info.partition_epoch;
        self.isr = info.isr.clone();
        self.isr_change_pending = false;
    }

    /// The high watermark: the lowest log end over the ISR, never moving back.
    pub fn high_watermark(&self, current: i64, leader_end: i64) -> i64 {
        let lowest = self
            .isr
            .iter()
            .filter(|r| **r != self.me)
            .map(|r| self.followers.get(r).map_or(-1, |f| f.log_end))
            .fold(leader_end, i64::min);
        current.max(lowest)
    }

    /// The ISR this leader should ask for now, if it differs: members behind
    /// for longer than `lag_max_ms` leave, replicas caught up to the high
    /// watermark (and past this epoch's start) join.
    pub fn wanted_isr(&self, hw: i64, now_ms: u64, lag_max_ms: u64) -> Option<Vec<BrokerId>> {
        let mut isr: Vec<BrokerId> = self
            .replicas
            .iter()
            .copied()
            .filter(|r| {
                if *r == self.me {
                    return true;
                }
                let Some(f) = self.followers.get(r) else {
                    return false;
                };
                if self.isr.contains(r) {
                    now_ms.saturating_sub(f.last_caught_up_ms) <= lag_max_ms
                } else {
                    f.log_end >= hw.max(self.epoch_start_offset)
                }
            })
            .collect();
        isr.sort_unstable();
        let mut current = self.isr.clone();
        current.sort_unstable();
        (isr != current).then_some(isr)
    }
}

/// A replica's role in its partition, from the metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ReplicaRole {
    /// Not a replica, or the partition has no leader.
    #[default]
    None,
    /// Leads, with what it knows of its followers.
    Leader(LeaderState),
    /// Follows `leader` in `leader_epoch`.
    Follower {
        /// The leader.
        leader: BrokerId,
        /// Its epoch.
        leader_epoch: i32,
    },
}

/// `acks=all` needs at least `min.insync.replicas` in the ISR (else
/// NOT_ENOUGH_REPLICAS): the notes' durability knob next to `acks`.
pub fn enough_replicas(isr_len: usize, min_insync: usize) -> bool {
    isr_len >= min_insync
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader() -> LeaderState {
        let info = PartitionInfo {
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            leader: 1,
            leader_epoch: 4,
            partition_epoch: 9,
        };
        LeaderState::new(1, &info, 10, 0)
    }

    #[test]
    fn the_high_watermark_is_the_lowest_isr_log_end_and_never_moves_back() {
        let mut l = leader();
        assert_eq!(l.high_watermark(10, 15), 10, "followers not heard from yet");
        l.followers.get_mut(&2).unwrap().on_fetch(15, 15, 5);
        l.followers.get_mut(&3).unwrap().on_fetch(12, 15, 5);
        assert_eq!(l.high_watermark(10, 15), 12);
        // Follower 3 leaves the ISR: the high watermark follows the others.
        l.isr = vec![1, 2];
        assert_eq!(l.high_watermark(12, 15), 15);
        assert_eq!(l.high_watermark(15, 15), 15);
        l.isr = vec![1, 2, 3];
        assert_eq!(l.high_watermark(15, 20), 15, "never backwards");
    }

    #[test]
    fn a_lagging_follower_leaves_and_rejoins_once_caught_up() {
        let mut l = leader();
        // Both fetch up to the end at t=100; follower 3 then stops.
        for f in [2, 3] {
            l.followers.get_mut(&f).unwrap().on_fetch(10, 10, 100);
        }
        l.followers.get_mut(&2).unwrap().on_fetch(20, 20, 5_000);
        assert_eq!(l.wanted_isr(10, 5_000, 10_000), None);
        assert_eq!(l.wanted_isr(10, 10_200, 10_000), Some(vec![1, 2]));
        l.isr = vec![1, 2];
        // Follower 3 comes back behind the high watermark: not yet.
        l.followers.get_mut(&3).unwrap().on_fetch(15, 30, 10_300);
        let hw = 20;
        assert_eq!(l.wanted_isr(hw, 10_300, 10_000), None);
        l.followers.get_mut(&3).unwrap().on_fetch(25, 30, 10_400);
        assert_eq!(l.wanted_isr(hw, 10_400, 10_000), Some(vec![1, 2, 3]));
    }

    #[test]
    fn a_follower_that_keeps_up_with_the_previous_fetch_counts_as_caught_up() {
        let mut f = FollowerState::new(0);
        f.on_fetch(0, 100, 1_000);
        assert_eq!(f.last_caught_up_ms, 0, "behind");
        // Reached where the leader was at the previous fetch: caught up as of then.
        f.on_fetch(100, 200, 2_000);
        assert_eq!(f.last_caught_up_ms, 1_000);
        f.on_fetch(200, 200, 3_000);
        assert_eq!(f.last_caught_up_ms, 3_000);
    }

    #[test]
    fn min_insync_replicas() {
        assert!(enough_replicas(2, 2));
        assert!(!enough_replicas(1, 2));
    }
}
