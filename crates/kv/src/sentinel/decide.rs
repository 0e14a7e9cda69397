//! The sentinel's decisions, pure functions of its view: subjective and
//! objective down, the vote it gives in an epoch, whether it won the
//! election, and which replica to promote (Redis Sentinel's rules).

use std::time::{Duration, Instant};

/// An instance as last seen (a primary or a replica).
#[derive(Debug, Clone)]
pub struct Seen {
    /// `host:port`.
    pub addr: String,
    /// Last valid `PING` reply.
    pub last_ok: Instant,
    /// From `INFO`: whether it says it is a primary.
    pub role_master: bool,
    /// From `INFO` (replicas): `master_link_status:up`.
    pub link_up: bool,
    /// From `INFO` (replicas): `slave_repl_offset`.
    pub offset: u64,
    /// From `INFO` (replicas): `slave_priority` (0 = never promote).
    pub priority: u32,
    /// From `INFO` (replicas): where it replicates from.
    pub master_addr: Option<String>,
    /// From `INFO`: `run_id` if it reports one.
    pub run_id: String,
}

impl Seen {
    /// Not heard from yet.
    pub fn new(addr: String, now: Instant) -> Seen {
        Seen {
            addr,
            last_ok: now,
            role_master: false,
            link_up: false,
            offset: 0,
            priority: 100,
            master_addr: None,
            run_id: String::new(),
        }
    }

    /// Subjectively down: no valid reply for `down_after`.
    pub fn sdown(&self, now: Instant, down_after: Duration) -> bool {
        now.saturating_duration_since(self.last_ok) > down_after
    }
}

/// Objectively down: this sentinel and enough others agree.
pub fn odown(self_sdown: bool, others_agreeing: usize, quorum: usize) -> bool {
    self_sdown && 1 + others_agreeing >= quorum
}

/// The votes needed to lead a failover: a majority of all sentinels, and
/// at least the quorum.
pub fn votes_needed(sentinels: usize, quorum: usize) -> usize {
    (sentinels / 2 + 1).max(quorum)
}

/// A sentinel's vote for `epoch`: the first candidate to ask in an epoch
/// newer than the last one it voted in gets it (`sentinelVoteLeader`).
/// Returns the leader it voted for in `epoch` (or before).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ballot {
    /// The highest epoch seen.
    pub current_epoch: u64,
    /// Whom it voted for, and in which epoch.
    pub leader: Option<(String, u64)>,
}

impl Ballot {
    /// Handles a vote request; returns (leader run id, leader epoch).
    pub fn vote(&mut self, epoch: u64, candidate: &str) -> (String, u64) {
        self.current_epoch = self.current_epoch.max(epoch);
        let voted_epoch = self.leader.as_ref().map_or(0, |(_, e)| *e);
        if voted_epoch < epoch {
            self.leader = Some((candidate.to_string(), epoch));
        }
        self.leader.clone().unwrap_or_else(|| ("*".into(), 0))
    }
}

/// The replica to promote (`sentinelSelectSlave`): reachable, with its
/// link to the old primary recently up, priority not 0; then the lowest
/// priority, the highest offset, the smallest run id (address as tie-break).
pub fn best_replica<'a>(
    replicas: impl Iterator<Item = &'a Seen>,
    now: Instant,
    down_after: Duration,
) -> Option<&'a Seen> {
    replicas
        .filter(|r| !r.sdown(now, down_after) && r.priority != 0 && !r.role_master)
        .min_by(|a, b| {
            a.priority
                .cmp(&b.priority)
                .then(b.offset.cmp(&a.offset))
                .then(a.run_id.cmp(&b.run_id))
                .then(a.addr.cmp(&b.addr))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_vote_per_epoch_to_the_first_asker() {
        let mut ballot = Ballot::default();
        assert_eq!(ballot.vote(1, "a"), ("a".into(), 1));
        assert_eq!(
            ballot.vote(1, "b"),
            ("a".into(), 1),
            "already voted in epoch 1"
        );
        assert_eq!(ballot.vote(2, "b"), ("b".into(), 2));
        assert_eq!(ballot.current_epoch, 2);
    }

    #[test]
    fn quorum_and_majority() {
        assert!(!odown(true, 0, 2));
        assert!(odown(true, 1, 2));
        assert!(
            !odown(false, 2, 2),
            "only a sentinel that sees it down calls it"
        );
        assert_eq!(votes_needed(3, 2), 2);
        assert_eq!(votes_needed(3, 3), 3);
        assert_eq!(votes_needed(5, 2), 3);
    }

    #[test]
    fn the_best_replica_has_priority_then_offset() {
        let now = Instant::now();
        let mk = |addr: &str, priority, offset| Seen {
            priority,
            offset,
            link_up: true,
            ..Seen::new(addr.into(), now)
        };
        let replicas = [
            mk("a", 100, 5),
            mk("b", 100, 9),
            mk("c", 0, 99),
            mk("d", 50, 1),
        ];
        let best = best_replica(replicas.iter(), now, Duration::from_secs(1)).unwrap();
        assert_eq!(best.addr, "d");
        let best = best_replica(replicas[..3].iter(), now, Duration::from_secs(1)).unwrap();
        assert_eq!(best.addr, "b", "then the highest offset; priority 0 never");
    }
}
