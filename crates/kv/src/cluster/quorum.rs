//! The coordinator's bookkeeping for one request: how many replicas must
//! answer (`N`, `W`, `R`), when the request has succeeded, failed or timed
//! out, and which replicas a read found stale.
//!
//! Why it exists: the notes' consistency section ("데이터 일관성") makes
//! consistency a dial: a write succeeds after `W` of the `N` replicas
//! acknowledge it, a read after `R` answer, and `W + R > N` means every
//! read quorum overlaps every write quorum, so a read sees the latest
//! acknowledged write. `R = 1, W = N` favours reads, `W = 1, R = N`
//! writes. These rules, and read repair ("the replicas a read found
//! behind get the merged version"), are counting decisions, so they live
//! here as two small state machines ([`WriteRound`], [`ReadRound`]) fed
//! with replies and the time, and tested without a network.
//!
//! # What `W + R > N` does and does not buy
//!
//! Under a **strict** quorum (only the key's own `N` replicas count), `W +
//! R > N` gives read-your-writes for acknowledged writes. Under a
//! **sloppy** quorum (substitutes count, see `placement`) the `W` nodes
//! that took a write and the `R` nodes a later read asks may not overlap
//! at all (the write went to substitutes, the read to recovered
//! replicas), so even `W + R > N` is *not* linearizable, nor even
//! read-your-writes, until hinted handoff or anti-entropy has run. The
//! sloppy quorum buys availability during failures with exactly that.
//!
//! A failed or timed-out write is not rolled back: the replicas that took
//! it keep it, and it may surface later (Dynamo's semantics; the client
//! was told "unknown", not "no").

use super::NodeId;
use super::placement::Target;

/// The replication factor and quorum sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quorum {
    /// Copies per key.
    pub n: usize,
    /// Acknowledgements a write needs.
    pub w: usize,
    /// Answers a read needs.
    pub r: usize,
}

/// A client's override of the cluster's `W`, `R` and quorum mode for its
/// own requests (`KV.CONSISTENCY`); `None` keeps the cluster's setting.
/// `N` is the ring's and cannot change per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Consistency {
    /// Acks a write needs.
    pub w: Option<usize>,
    /// Answers a read needs.
    pub r: Option<usize>,
    /// Strict or sloppy.
    pub mode: Option<crate::cluster::placement::QuorumMode>,
}

impl Consistency {
    /// The quorum and mode a request runs with: the override, each value
    /// capped to `1..=N` (a client asking more than `N` gets `N`).
    pub fn apply(
        &self,
        quorum: Quorum,
        mode: crate::cluster::placement::QuorumMode,
    ) -> (Quorum, crate::cluster::placement::QuorumMode) {
        let clamp = |x: Option<usize>, default: usize| x.unwrap_or(default).clamp(1, quorum.n);
        let q = Quorum {
            n: quorum.n,
            w: clamp(self.w, quorum.w),
            r: clamp(self.r, quorum.r),
        };
        (q, self.mode.unwrap_or(mode))
    }
}

/// A refused quorum configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("W={w} and R={r} must each be between 1 and N={n}")]
pub struct BadQuorum {
    /// N.
    pub n: usize,
    /// W.
    pub w: usize,
    /// R.
    pub r: usize,
}

impl Quorum {
    /// Checks `1 ≤ W ≤ N` and `1 ≤ R ≤ N`.
    pub fn new(n: usize, w: usize, r: usize) -> Result<Quorum, BadQuorum> {
        let ok = |x: usize| (1..=n).contains(&x);
        if ok(w) && ok(r) {
            Ok(Quorum { n, w, r })
        } else {
            Err(BadQuorum { n, w, r })
        }
    }

    /// Whether read and write quorums always overlap (`W + R > N`): the
    /// notes' "strong consistency", which holds only under a strict quorum.
    pub fn overlapping(&self) -> bool {
        self.w + self.r > self.n
    }
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Fewer targets than the quorum from the start.
    #[error("{needed} replicas needed and only {available} reachable")]
    Unavailable {
        /// Targets available.
        available: usize,
        /// The quorum.
        needed: usize,
    },
    /// So many targets refused that the quorum cannot be reached.
    #[error("{needed} replicas needed: {ok} answered and {refused} refused")]
    Refused {
        /// Positive answers.
        ok: usize,
        /// Refusals.
        refused: usize,
        /// The quorum.
        needed: usize,
    },
    /// The deadline passed first.
    #[error("timed out: {ok} of {needed} replicas answered in time")]
    TimedOut {
        /// Positive answers by the deadline.
        ok: usize,
        /// The quorum.
        needed: usize,
    },
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Waiting for answers.
    Pending,
    /// The quorum answered.
    Succeeded,
    /// It cannot succeed any more.
    Failed(Failure),
}

/// Per-target answers and the quorum arithmetic both rounds share.
#[derive(Debug, Clone)]
struct Tally {
    targets: Vec<Target>,
    /// Per target: None = no answer yet, Some(true) = ok, Some(false) = refused.
    answers: Vec<Option<bool>>,
    needed: usize,
    deadline_ms: u64,
    outcome: Outcome,
}

impl Tally {
    fn new(targets: &[Target], needed: usize, deadline_ms: u64) -> Tally {
        let outcome = if targets.len() < needed {
            Outcome::Failed(Failure::Unavailable {
                available: targets.len(),
                needed,
            })
        } else {
            Outcome::Pending
        };
        Tally {
            targets: targets.to_vec(),
            answers: vec![None; targets.len()],
            needed,
            deadline_ms,
            outcome,
        }
    }

    fn count(&self, ok: bool) -> usize {
        self.answers.iter().filter(|&&a| a == Some(ok)).count()
    }

    /// Records `node`'s answer (the first one counts); returns its index if
    /// it was a target that had not answered.
    fn answer(&mut self, node: NodeId, ok: bool) -> Option<usize> {
        let i = self.targets.iter().position(|t| t.node == node)?;
        if self.answers[i].is_some() {
            return None;
        }
        self.answers[i] = Some(ok);
        if self.outcome == Outcome::Pending {
            let (oks, refused) = (self.count(true), self.count(false));
            if oks >= self.needed {
                self.outcome = Outcome::Succeeded;
            } else if self.targets.len() - refused < self.needed {
                self.outcome = Outcome::Failed(Failure::Refused {
                    ok: oks,
                    refused,
                    needed: self.needed,
                });
            }
        }
        Some(i)
    }

    fn tick(&mut self, now_ms: u64) -> Outcome {
        if self.outcome == Outcome::Pending && now_ms >= self.deadline_ms {
            self.outcome = Outcome::Failed(Failure::TimedOut {
                ok: self.count(true),
                needed: self.needed,
            });
        }
        self.outcome
    }

    fn all_answered(&self) -> bool {
        self.answers.iter().all(Option::is_some)
    }
}

/// A write waiting for `W` acknowledgements.
#[derive(Debug, Clone)]
pub struct WriteRound {
    tally: Tally,
}

impl WriteRound {
    /// A write sent to `targets` (the coordinator's own local write
    /// included, acknowledged like any other) that needs `w` acks by
    /// `deadline_ms`.
    pub fn new(targets: &[Target], w: usize, deadline_ms: u64) -> WriteRound {
        WriteRound {
            tally: Tally::new(targets, w, deadline_ms),
        }
    }

    /// `node` stored the write.
    pub fn ack(&mut self, node: NodeId) -> Outcome {
        self.tally.answer(node, true);
        self.tally.outcome
    }

    /// `node` refused it (a full hint queue, a bad state).
    pub fn refuse(&mut self, node: NodeId) -> Outcome {
        self.tally.answer(node, false);
        self.tally.outcome
    }

    /// Checks the deadline.
    pub fn tick(&mut self, now_ms: u64) -> Outcome {
        self.tally.tick(now_ms)
    }

    /// Where the write stands.
    pub fn outcome(&self) -> Outcome {
        self.tally.outcome
    }
}

/// Something replicas hold and a read merges: a semilattice join.
pub trait Mergeable: Clone + PartialEq {
    /// Merges another replica's state into this one.
    fn join(&mut self, other: &Self);
}

impl Mergeable for super::siblings::Siblings {
    fn join(&mut self, other: &Self) {
        super::siblings::Siblings::join(self, other);
    }
}

/// A read waiting for `R` answers, merging them as they come.
#[derive(Debug, Clone)]
pub struct ReadRound<T> {
    tally: Tally,
    /// Per target, its answer.
    states: Vec<Option<T>>,
    merged: T,
}

impl<T: Mergeable + Default> ReadRound<T> {
    /// A read sent to `targets` that needs `r` answers by `deadline_ms`.
    pub fn new(targets: &[Target], r: usize, deadline_ms: u64) -> ReadRound<T> {
        ReadRound {
            tally: Tally::new(targets, r, deadline_ms),
            states: vec![None; targets.len()],
            merged: T::default(),
        }
    }

    /// `node` answered with its state of the key (the empty state if it has
    /// none). Answers after success still count toward the merge and the
    /// repair decision.
    pub fn reply(&mut self, node: NodeId, state: T) -> Outcome {
        if let Some(i) = self.tally.answer(node, true) {
            self.merged.join(&state);
            self.states[i] = Some(state);
        }
        self.tally.outcome
    }

    /// Checks the deadline.
    pub fn tick(&mut self, now_ms: u64) -> Outcome {
        self.tally.tick(now_ms)
    }

    /// Where the read stands.
    pub fn outcome(&self) -> Outcome {
        self.tally.outcome
    }

    /// When the read stops waiting (late answers still feed read repair
    /// until then).
    pub fn deadline_ms(&self) -> u64 {
        self.tally.deadline_ms
    }

    /// Whether every target answered (nothing more to wait for).
    pub fn all_answered(&self) -> bool {
        self.tally.all_answered()
    }

    /// The merge of every answer so far: what the client gets.
    pub fn merged(&self) -> &T {
        &self.merged
    }

    /// Read repair: the replicas (not substitutes) whose answer lacked
    /// something the merge has. Call it once every answer is in or the
    /// deadline has passed; silent replicas are left to anti-entropy.
    pub fn repair_targets(&self) -> Vec<NodeId> {
        self.tally
            .targets
            .iter()
            .zip(&self.states)
            .filter(|(t, state)| {
                t.hint_for.is_none() && state.as_ref().is_some_and(|s| *s != self.merged)
            })
            .map(|(t, _)| t.node)
            .collect()
    }
}

#[cfg(test)]
mod tests;
