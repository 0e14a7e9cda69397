//! What a node does when a peer cannot be reached at all: the caller
//! (the server's transport) knows at once when there is no connection to
//! a node, long before the failure detector marks it down.
//!
//! Why it exists: without it, every request forwarded to a just-killed
//! coordinator waits out its timeout, and every copy sent to a
//! just-killed replica is lost until anti-entropy finds it. With it, a
//! forward goes to the next replica and a copy becomes a hint here, the
//! same decisions the node makes for a member it believes down.

use bytes::Bytes;

use super::{Node, Op, Out, Persist};
use crate::cluster::NodeId;
use crate::cluster::placement::{QuorumMode, Target};
use crate::cluster::quorum::Consistency;
use crate::cluster::siblings::Siblings;

impl Node {
    /// The caller could not even send a forward to `to` (no connection):
    /// the request goes to the next up replica instead, as if `to` were
    /// down, rather than waiting out a timeout for a node that is gone.
    pub fn forward_failed(
        &mut self,
        now_ms: u64,
        to: NodeId,
        client: u64,
        op: Op,
        consistency: Consistency,
        out: &mut Vec<Out>,
    ) {
        let membership = &self.membership;
        let next = self
            .coordinating()
            .preference_list(op.key())
            .into_iter()
            .find(|&n| n != to && membership.is_up(n));
        // One retry: a second failure is answered by the client's timeout.
        self.route(now_ms, next, (client, op, consistency), out);
    }

    /// The caller could not send a replica its copy of `key` (no
    /// connection: it is down, whatever the detector believes yet). Under
    /// a sloppy quorum this node keeps a hint for it, so the write reaches
    /// it when it is back instead of waiting for anti-entropy.
    pub fn replicate_failed(
        &mut self,
        to: NodeId,
        key: Bytes,
        state: &Siblings,
        out: &mut Vec<Out>,
    ) {
        if self.mode != QuorumMode::Sloppy || to == self.id {
            return;
        }
        if self.disk.hints.add(to, key.clone(), state).is_ok()
            && let Some(held) = self.disk.hints.state(to, &key)
        {
            out.push(Out::Persist(Persist::Hint(to, key, held.clone())));
        }
    }

    /// Under a sloppy quorum, a down replica that no substitute stands in
    /// for (every node is already in the preference list, as with `N`
    /// equal to the cluster size) gets a hint held here, as Cassandra's
    /// coordinators keep one: it does not count toward `W`, but the
    /// replica gets the write as soon as it is back, before anti-entropy
    /// would find it.
    pub(super) fn hint_uncovered(
        &mut self,
        key: &Bytes,
        state: &Siblings,
        targets: &[Target],
        out: &mut Vec<Out>,
    ) {
        if self.mode != QuorumMode::Sloppy {
            return;
        }
        for node in self.replicas(key) {
            let covered = node == self.id
                || targets
                    .iter()
                    .any(|t| t.node == node || t.hint_for == Some(node));
            if covered {
                continue;
            }
            if self.disk.hints.add(node, key.clone(), state).is_ok()
                && let Some(held) = self.disk.hints.state(node, key)
            {
                out.push(Out::Persist(Persist::Hint(node, key.clone(), held.clone())));
            }
        }
    }
}
