//! The coordinator's write path: a put or a CRDT update becomes a new
//! state of the key (a fresh dot, a hybrid timestamp, the siblings it
//! replaces), stored here first, then sent to every target as a quorum
//! round.
//!
//! Why it exists apart from the rest of the node: both kinds of write
//! share every step but how the new value is made, and the "coordinator
//! stores before it sends" rule the sibling argument rests on
//! ([`crate::cluster::siblings`]) lives in one place.

use bytes::Bytes;

use super::change::{Plan, joint};
use super::{Answer, Msg, Node, Out, PendingWrite, Persist, SIBLINGS_PER_KEY_MAX};
use crate::cluster::crdt::Crdt;
use crate::cluster::crdt::update::{Refused, STATE_BYTES_MAX, Stamp, Update};
use crate::cluster::quorum::{Outcome, WriteRound};
use crate::cluster::vector_clock::{Dot, VectorClock};

/// One write round's coordinates.
pub(super) struct Write {
    pub client: u64,
    pub req: u64,
    pub key: Bytes,
    /// Targets and the rounds (with the acks each needs).
    pub plan: Plan,
    pub deadline_ms: u64,
}

/// How the new value is made.
pub(super) enum Change {
    /// A value (`None`: delete) and the client's context (`None`: the
    /// coordinator's, replacing every version it holds).
    Put(Option<Bytes>, Option<VectorClock>),
    /// A CRDT step on the join of the key's siblings.
    Update(Update),
}

impl Node {
    fn mint(&mut self) -> Dot {
        self.disk.next_counter += 1;
        Dot {
            actor: self.disk.actor,
            counter: self.disk.next_counter,
        }
    }

    pub(super) fn coordinate_write(
        &mut self,
        now_ms: u64,
        w: Write,
        change: Change,
        out: &mut Vec<Out>,
    ) {
        let mut state = self.disk.store.get(&w.key).cloned().unwrap_or_default();
        // Stamp later than every version this write replaces or joins,
        // so last-writer-wins respects what the node saw.
        for sibling in state.siblings() {
            let _skewed = self.hlc.observe(sibling.hlc, now_ms);
        }
        let hlc = self.hlc.now(now_ms);
        let (value, context, reply) = match change {
            Change::Put(value, context) => (value, context, None),
            Change::Update(update) => {
                let current = match Crdt::of_siblings(&state) {
                    Ok(current) => current,
                    Err(e) => return self.answer(w.client, Answer::Refused(e.into()), out),
                };
                let actor = self.disk.actor;
                let mut next_dot = || self.mint();
                let mut stamp = Stamp {
                    actor,
                    next_dot: &mut next_dot,
                    hlc,
                    now_ms,
                };
                let applied = update.apply(current, &mut stamp).and_then(|(crdt, reply)| {
                    let bytes = crdt.to_bytes();
                    if bytes.len() > STATE_BYTES_MAX {
                        return Err(Refused::TooLarge);
                    }
                    Ok((bytes, reply))
                });
                match applied {
                    // Replaces every sibling it merged: the coordinator's context.
                    Ok((bytes, reply)) => (Some(bytes), None, Some(reply)),
                    Err(refused) => {
                        // Dots minted for a refused step are skipped, never reused.
                        let counter = self.disk.next_counter;
                        out.push(Out::Persist(Persist::Counter(counter)));
                        return self.answer(w.client, Answer::Refused(refused), out);
                    }
                }
            }
        };
        let dot = self.mint();
        out.push(Out::Persist(Persist::Counter(self.disk.next_counter)));
        let context = context.unwrap_or_else(|| state.context().clone());
        if state.write(value, &context, dot, hlc, now_ms).is_err() {
            self.answer(w.client, Answer::Failed, out);
            return;
        }
        if state.siblings().len() > SIBLINGS_PER_KEY_MAX {
            let count = state.siblings().len() - 1;
            self.answer(w.client, Answer::TooManySiblings(count), out);
            return;
        }
        state.prune(&self.prune, now_ms);
        self.apply(&w.key, &state, out);
        let mut rounds = Vec::new();
        for (targets, need) in &w.plan.rounds {
            let mut round = WriteRound::new(targets, *need, w.deadline_ms);
            round.ack(self.id);
            rounds.push(round);
        }
        for t in w.plan.targets.iter().filter(|t| t.node != self.id) {
            let msg = Msg::Replicate {
                req: w.req,
                key: w.key.clone(),
                state: state.clone(),
                hint_for: t.hint_for,
            };
            out.push(Out::Send(t.node, msg));
        }
        self.hint_uncovered(&w.key, &state, &w.plan.targets, out);
        let pending = PendingWrite {
            client: w.client,
            dot,
            reply,
            rounds,
            version: self.topology.version,
        };
        self.writes.insert(w.req, pending);
        self.settle_write(w.req, out);
    }

    pub(super) fn settle_write(&mut self, req: u64, out: &mut Vec<Out>) {
        let Some(write) = self.writes.get(&req) else {
            return;
        };
        let outcome = joint(write.rounds.iter().map(WriteRound::outcome));
        let answer = match (outcome, write.reply) {
            (Outcome::Pending, _) => return,
            (Outcome::Succeeded, None) => Answer::Written(write.dot),
            (Outcome::Succeeded, Some(reply)) => Answer::Updated(reply),
            (Outcome::Failed(_), _) => Answer::Failed,
        };
        let client = write.client;
        self.writes.remove(&req);
        self.answer(client, answer, out);
    }
}
