//! The cluster (issue 11 point 5): several brokers, one elected controller
//! holding the metadata, partitions replicated from leaders to followers
//! with in-sync replica sets, and failover.
//!
//! # The chapter's design, as built
//!
//! - **Coordination service** ([`raft`], [`node`]): the brokers named in
//!   `--controller-quorum id@host:port,...` form a Raft quorum (KRaft's
//!   combined mode: every broker is also a voter). Its leader is the one
//!   active controller; a majority must be up for metadata to change. Why a
//!   small Raft of our own rather than openraft: see [`raft`].
//! - **Metadata store** ([`metadata`]): brokers, topics, and per partition
//!   its replicas, leader, leader epoch and ISR, as the state machine of the
//!   Raft log; every broker applies it and so learns the metadata, and
//!   answers Metadata requests with every live broker and each partition's
//!   leader/replicas/ISR, so unmodified clients route to leaders.
//! - **Controller** ([`controller`]): replica placement, clean leader
//!   election from the ISR when a broker's heartbeats stop
//!   (`broker_session_timeout_ms`), ISR changes asked by leaders, and
//!   leaderships moved back to preferred replicas once they are in sync.
//! - **Replication** ([`replication`], [`isr`], [`epochs`]): followers pull
//!   from the leader (the notes' "followers copy the leader per the replica
//!   distribution plan"); the high watermark is the offset every ISR member
//!   holds; consumers see only below it; `acks=all` waits for it,
//!   `acks=1` for the leader's append, `acks=0` for nothing; a follower
//!   behind for `replica_lag_time_max_ms` leaves the ISR and rejoins when it
//!   catches up; leader epochs let a returning old leader find and cut its
//!   divergent tail.
//! - **Group coordination** ([`offsets_topic`]): committed offsets are
//!   records of the replicated internal topic `__consumer_offsets`; a
//!   group's coordinator is the leader of its partition, and a new leader
//!   loads the partition before serving, so commits survive failover.
//! - **Transport** ([`transport`]): brokers talk over their own internal
//!   listener (the quorum address), not the Kafka port; see there why.
//!
//! # Not yet
//!
//! - Every broker is a voter (no broker-only or controller-only roles), and
//!   the voter set is fixed (no membership change); the Raft log is never
//!   compacted (no snapshots).
//! - No reassignment: replicas stay where they were placed at creation.
//! - Idempotent-producer state is not replicated, so a retry across a
//!   failover may be appended twice. (Committed offsets are: see
//!   [`offsets_topic`].) Group membership is not: a new coordinator starts
//!   the group with a rebalance, as Kafka's does for members it did not know.
//!   Committed offsets are never expired (no `offsets.retention.minutes`).
//! - A topic deleted while a broker was down is deleted there only if that
//!   broker saw it exist after restarting; a follower that fell below the
//!   leader's log start (retention) is not reset.
//!
//! Decisions are plain functions of state ([`raft::Raft`], [`controller`],
//! [`isr`], [`epochs`]), tested without sockets; [`node`] and
//! [`replication`] do the I/O.

pub mod controller;
pub mod epochs;
pub mod isr;
pub mod metadata;
pub mod node;
pub mod offsets_topic;
pub mod raft;
pub mod replication;
pub mod transport;

use std::collections::BTreeMap;

use crate::config::split_host_port;
use metadata::BrokerId;

/// Parses `--controller-quorum`: `id@host:port,id@host:port,...`.
pub fn parse_quorum(text: &str) -> Result<BTreeMap<BrokerId, String>, String> {
    let mut voters = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('@')
            .ok_or_else(|| format!("controller_quorum entry {part:?} is not ID@HOST:PORT"))?;
        let id: BrokerId = id
            .parse()
            .map_err(|_| format!("controller_quorum entry {part:?}: {id:?} is not a broker id"))?;
        if split_host_port(addr).is_none() {
            return Err(format!(
                "controller_quorum entry {part:?}: {addr:?} is not HOST:PORT"
            ));
        }
        if voters.insert(id, addr.to_string()).is_some() {
            return Err(format!("controller_quorum names broker {id} twice"));
        }
    }
    Ok(voters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_parses_and_refuses_bad_entries() {
        let voters = parse_quorum("1@127.0.0.1:19093, 2@127.0.0.1:19094").unwrap();
        assert_eq!(voters[&2], "127.0.0.1:19094");
        assert!(parse_quorum("1@x:1,1@y:2").is_err());
        assert!(parse_quorum("a@x:1").is_err());
        assert!(parse_quorum("1=x:1").is_err());
    }
}
