//! A small Raft (Ongaro & Ousterhout, "In Search of an Understandable
//! Consensus Algorithm"): leader election and log replication, nothing more.
//!
//! It exists to elect the cluster's one active controller and to replicate
//! the metadata log it writes (the notes' "coordination service": leader
//! election plus a consistent metadata store, the role ZooKeeper played for
//! Kafka and KRaft plays now). Why our own and not `openraft`: the metadata
//! log is tiny (topics, partition leaders, ISRs), we need election and
//! replication only (no membership change, no snapshots yet), and a core
//! that is a pure state machine, [`Raft`], driven by `tick(now)` and
//! `step(now, from, message)`, can be run by a deterministic simulation
//! (`sim.rs`: random delays, drops, partitions, crashes, with the safety
//! properties checked after every step) — the I/O lives in `cluster::node`.
//! openraft's async storage/network traits would be more code than this
//! core for our needs.
//!
//! What the driver must do with a [`Ready`]: persist the hard state and the
//! log changes *before* sending the messages (a vote or an append reply
//! promises they are durable), then send, then apply the committed entries.
//!
//! Not implemented (yet): snapshots and log compaction (the log grows with
//! every metadata change), membership changes (voters are fixed by
//! `--controller-quorum`), pre-vote and check-quorum.

#[cfg(test)]
mod sim;
pub mod storage;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A voter's id (the broker id).
pub type NodeId = i32;
/// A Raft term.
pub type Term = u64;
/// A 1-based log index; 0 means "before the first entry".
pub type Index = u64;

/// Entries sent in one append at most.
const APPEND_BATCH_MAX: usize = 64;

/// One log entry: `None` is the no-op a new leader appends to commit its predecessors' entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry<C> {
    /// The term of the leader that appended it.
    pub term: Term,
    /// The command, or `None` for a leader's no-op.
    pub command: Option<C>,
}

/// The messages voters exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Message<C> {
    /// RequestVote.
    Vote {
        /// The candidate's term.
        term: Term,
        /// Its last entry's index.
        last_index: Index,
        /// Its last entry's term.
        last_term: Term,
    },
    /// RequestVote's answer.
    VoteReply {
        /// The voter's term.
        term: Term,
        /// Whether it voted for the candidate.
        granted: bool,
    },
    /// AppendEntries (also the heartbeat).
    Append {
        /// The leader's term.
        term: Term,
        /// Index of the entry before `entries`.
        prev_index: Index,
        /// Its term.
        prev_term: Term,
        /// Entries to append after `prev_index`.
        entries: Vec<Entry<C>>,
        /// The leader's commit index.
        commit: Index,
    },
    /// AppendEntries' answer.
    AppendReply {
        /// The follower's term.
        term: Term,
        /// Whether the entries were appended.
        success: bool,
        /// On success the follower's match index; on failure the index the
        /// leader should try next at most (the follower's last index + 1 or
        /// the rejected `prev_index`).
        index: Index,
    },
}

/// The role of a voter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asks for votes.
    Candidate,
    /// Leads: the active controller.
    Leader,
}

/// Timeouts, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Shortest election timeout.
    pub election_min_ms: u64,
    /// Longest election timeout (each timeout is random in between).
    pub election_max_ms: u64,
    /// How often a leader sends appends to idle followers.
    pub heartbeat_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            election_min_ms: 600,
            election_max_ms: 1200,
            heartbeat_ms: 100,
        }
    }
}

/// The state that must be durable before messages go out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The current term.
    pub term: Term,
    /// Who this voter voted for in `term`.
    pub voted_for: Option<NodeId>,
}

/// What the driver must do after a call (see the module doc for the order).
#[derive(Debug)]
pub struct Ready<C> {
    /// The hard state to persist, when it changed.
    pub hard_state: Option<HardState>,
    /// Log entries from this index on changed (truncated or appended):
    /// rewrite the durable log from here with [`Raft::entries_from`].
    pub log_changed_from: Option<Index>,
    /// Messages to send: (to, message).
    pub messages: Vec<(NodeId, Message<C>)>,
    /// Committed entries not yet applied: (index, entry).
    pub committed: Vec<(Index, Entry<C>)>,
}

/// One voter's Raft state machine (see the module doc).
pub struct Raft<C> {
    id: NodeId,
    voters: Vec<NodeId>,
    timing: Timing,
    rng: fastrand::Rng,
    hard: HardState,
    log: Vec<Entry<C>>,
    commit: Index,
    applied: Index,
    role: Role,
    leader: Option<NodeId>,
    election_deadline: u64,
    heartbeat_due: u64,
    votes: BTreeSet<NodeId>,
    next: BTreeMap<NodeId, Index>,
    matched: BTreeMap<NodeId, Index>,
    last_heard: BTreeMap<NodeId, u64>,
    // Pending output.
    hard_changed: bool,
    log_changed_from: Option<Index>,
    outbox: Vec<(NodeId, Message<C>)>,
}

impl<C: Clone> Raft<C> {
    /// A voter restarted from its durable state (empty for a new one);
    /// `seed` makes its election timeouts reproducible in simulations.
    pub fn new(
        id: NodeId,
        voters: Vec<NodeId>,
        timing: Timing,
        hard: HardState,
        log: Vec<Entry<C>>,
        now: u64,
        seed: u64,
    ) -> Self {
        let mut raft = Raft {
            id,
            voters,
            timing,
            rng: fastrand::Rng::with_seed(seed),
            hard,
            log,
            commit: 0,
            applied: 0,
            role: Role::Follower,
            leader: None,
            election_deadline: 0,
            heartbeat_due: 0,
            votes: BTreeSet::new(),
            next: BTreeMap::new(),
            matched: BTreeMap::new(),
            last_heard: BTreeMap::new(),
            hard_changed: false,
            log_changed_from: None,
            outbox: Vec::new(),
        };
        raft.reset_election(now);
        raft
    }

    /// This voter's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Its role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The leader it knows of in its term.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// The current term.
    pub fn term(&self) -> Term {
        self.hard.term
    }

    /// The commit index.
    pub fn commit_index(&self) -> Index {
        self.commit
    }

    /// The last log index.
    pub fn last_index(&self) -> Index {
        self.log.len() as Index
    }

    /// The entry at `index`.
    pub fn entry(&self, index: Index) -> Option<&Entry<C>> {
        index
            .checked_sub(1)
            .and_then(|i| self.log.get(usize::try_from(i).ok()?))
    }

    /// Entries from `index` (1-based) to the end, for the durable log.
    pub fn entries_from(&self, index: Index) -> &[Entry<C>] {
        let from = usize::try_from(index.saturating_sub(1)).unwrap_or(usize::MAX);
        self.log.get(from..).unwrap_or(&[])
    }

    /// When the leader last heard from `peer` (append replies), for liveness.
    pub fn last_heard(&self, peer: NodeId) -> Option<u64> {
        self.last_heard.get(&peer).copied()
    }

    fn term_at(&self, index: Index) -> Term {
        self.entry(index).map_or(0, |e| e.term)
    }

    fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    fn peers(&self) -> Vec<NodeId> {
        self.voters
            .iter()
            .copied()
            .filter(|v| *v != self.id)
            .collect()
    }

    fn reset_election(&mut self, now: u64) {
        let span = self
            .timing
            .election_max_ms
            .saturating_sub(self.timing.election_min_ms);
        self.election_deadline = now + self.timing.election_min_ms + self.rng.u64(0..=span);
    }

    fn set_hard(&mut self, term: Term, voted_for: Option<NodeId>) {
        if self.hard.term != term || self.hard.voted_for != voted_for {
            self.hard = HardState { term, voted_for };
            self.hard_changed = true;
        }
    }

    fn log_changed(&mut self, from: Index) {
        self.log_changed_from = Some(self.log_changed_from.map_or(from, |f| f.min(from)));
    }

    fn become_follower(&mut self, now: u64, term: Term, leader: Option<NodeId>) {
        if term > self.hard.term {
            self.set_hard(term, None);
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.votes.clear();
        self.reset_election(now);
    }

    fn start_election(&mut self, now: u64) {
        self.role = Role::Candidate;
        self.leader = None;
        let term = self.hard.term + 1;
        self.set_hard(term, Some(self.id));
        self.votes = BTreeSet::from([self.id]);
        self.reset_election(now);
        let (last_index, last_term) = (self.last_index(), self.term_at(self.last_index()));
        for peer in self.peers() {
            self.outbox.push((
                peer,
                Message::Vote {
                    term,
                    last_index,
                    last_term,
                },
            ));
        }
        self.check_won(now);
    }

    fn check_won(&mut self, now: u64) {
        if self.role == Role::Candidate && self.votes.len() >= self.quorum() {
            self.role = Role::Leader;
            self.leader = Some(self.id);
            let next = self.last_index() + 1;
            self.next = self.peers().into_iter().map(|p| (p, next)).collect();
            self.matched = self.peers().into_iter().map(|p| (p, 0)).collect();
            self.last_heard = self.peers().into_iter().map(|p| (p, now)).collect();
            // A no-op of its own term lets it commit what earlier leaders left.
            self.log.push(Entry {
                term: self.hard.term,
                command: None,
            });
            self.log_changed(self.last_index());
            self.advance_commit();
            self.broadcast(now);
        }
    }

    fn broadcast(&mut self, now: u64) {
        for peer in self.peers() {
            self.send_append(peer);
        }
        self.heartbeat_due = now + self.timing.heartbeat_ms;
    }

    fn send_append(&mut self, peer: NodeId) {
        let next = self.next.get(&peer).copied().unwrap_or(1).max(1);
        let prev_index = next - 1;
        let entries: Vec<Entry<C>> = self
            .entries_from(next)
            .iter()
            .take(APPEND_BATCH_MAX)
            .cloned()
            .collect();
        self.outbox.push((
            peer,
            Message::Append {
                term: self.hard.term,
                prev_index,
                prev_term: self.term_at(prev_index),
                entries,
                commit: self.commit,
            },
        ));
    }

    fn advance_commit(&mut self) {
        let mut indexes: Vec<Index> = self.matched.values().copied().collect();
        indexes.push(self.last_index());
        indexes.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = indexes[self.quorum() - 1];
        // Only entries of its own term are committed by counting (Raft §5.4.2).
        if candidate > self.commit && self.term_at(candidate) == self.hard.term {
            self.commit = candidate;
        }
    }

    /// Appends a command if this voter leads; `Err(leader hint)` otherwise.
    pub fn propose(&mut self, now: u64, command: C) -> Result<(Term, Index), Option<NodeId>> {
        if self.role != Role::Leader {
            return Err(self.leader);
        }
        self.log.push(Entry {
            term: self.hard.term,
            command: Some(command),
        });
        let index = self.last_index();
        self.log_changed(index);
        self.advance_commit();
        self.broadcast(now);
        Ok((self.hard.term, index))
    }

    /// Advances time: elections and heartbeats.
    pub fn tick(&mut self, now: u64) {
        match self.role {
            Role::Leader => {
                if now >= self.heartbeat_due {
                    self.broadcast(now);
                }
            }
            Role::Follower | Role::Candidate => {
                if now >= self.election_deadline {
                    self.start_election(now);
                }
            }
        }
    }

    /// Handles a message from `from`.
    pub fn step(&mut self, now: u64, from: NodeId, message: Message<C>) {
        if !self.voters.contains(&from) || from == self.id {
            return;
        }
        let term = match &message {
            Message::Vote { term, .. }
            | Message::VoteReply { term, .. }
            | Message::Append { term, .. }
            | Message::AppendReply { term, .. } => *term,
        };
        if term > self.hard.term {
            let leader = matches!(message, Message::Append { .. }).then_some(from);
            self.become_follower(now, term, leader);
        }
        match message {
            Message::Vote {
                term,
                last_index,
                last_term,
            } => {
                let mine = (self.term_at(self.last_index()), self.last_index());
                let up_to_date = (last_term, last_index) >= mine;
                let free = self.hard.voted_for.is_none_or(|v| v == from);
                let granted = term == self.hard.term && up_to_date && free;
                if granted {
                    self.set_hard(term, Some(from));
                    self.reset_election(now);
                }
                self.outbox.push((
                    from,
                    Message::VoteReply {
                        term: self.hard.term,
                        granted,
                    },
                ));
            }
            Message::VoteReply { term, granted } => {
                if self.role == Role::Candidate && term == self.hard.term && granted {
                    self.votes.insert(from);
                    self.check_won(now);
                }
            }
            Message::Append {
                term,
                prev_index,
                prev_term,
                entries,
                commit,
            } => self.on_append(now, from, term, prev_index, prev_term, entries, commit),
            Message::AppendReply {
                term,
                success,
                index,
            } => {
                if self.role != Role::Leader || term != self.hard.term {
                    return;
                }
                self.last_heard.insert(from, now);
                if success {
                    let matched = self.matched.entry(from).or_insert(0);
                    *matched = (*matched).max(index);
                    self.next.insert(from, index + 1);
                    self.advance_commit();
                    if index < self.last_index() {
                        self.send_append(from);
                    }
                } else {
                    let next = self.next.entry(from).or_insert(1);
                    *next = index.min(next.saturating_sub(1)).max(1);
                    self.send_append(from);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_append(
        &mut self,
        now: u64,
        from: NodeId,
        term: Term,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry<C>>,
        commit: Index,
    ) {
        if term < self.hard.term {
            self.outbox.push((
                from,
                Message::AppendReply {
                    term: self.hard.term,
                    success: false,
                    index: 0,
                },
            ));
            return;
        }
        // term == ours: `from` is this term's only leader.
        self.role = Role::Follower;
        self.leader = Some(from);
        self.reset_election(now);
        if prev_index > self.last_index() || self.term_at(prev_index) != prev_term {
            let hint = prev_index.min(self.last_index() + 1);
            self.outbox.push((
                from,
                Message::AppendReply {
                    term,
                    success: false,
                    index: hint.max(1),
                },
            ));
            return;
        }
        let mut index = prev_index;
        for entry in entries {
            index += 1;
            match self.entry(index) {
                Some(existing) if existing.term == entry.term => {}
                Some(_) => {
                    // A conflicting tail: drop it (never below the commit index).
                    assert!(index > self.commit, "a committed entry never conflicts");
                    self.log
                        .truncate(usize::try_from(index - 1).unwrap_or(usize::MAX));
                    self.log.push(entry);
                    self.log_changed(index);
                }
                None => {
                    self.log.push(entry);
                    self.log_changed(index);
                }
            }
        }
        if commit > self.commit {
            self.commit = commit.min(index);
        }
        self.outbox.push((
            from,
            Message::AppendReply {
                term,
                success: true,
                index,
            },
        ));
    }

    /// Takes what the driver must persist, send and apply.
    pub fn ready(&mut self) -> Ready<C> {
        let committed = (self.applied + 1..=self.commit)
            .filter_map(|i| self.entry(i).map(|e| (i, e.clone())))
            .collect();
        self.applied = self.commit;
        Ready {
            hard_state: std::mem::take(&mut self.hard_changed).then_some(self.hard),
            log_changed_from: self.log_changed_from.take(),
            messages: std::mem::take(&mut self.outbox),
            committed,
        }
    }
}
