//! The coordinator's read path after the requests went out: answering
//! the client once every ring's `R` replicas answered, then read repair.
//!
//! Why it exists apart: a read during a membership change waits on two
//! rounds (old and new ring); joining their answers and repairing every
//! stale replica is one concern, kept out of the node's dispatch.

use super::change::joint;
use super::{Answer, Msg, Node, Out};
use crate::cluster::NodeId;
use crate::cluster::quorum::{Outcome, ReadRound};
use crate::cluster::siblings::Siblings;

impl Node {
    pub(super) fn settle_read(&mut self, req: u64, now_ms: u64, out: &mut Vec<Out>) {
        let Some(read) = self.reads.get_mut(&req) else {
            return;
        };
        let outcome = joint(read.rounds.iter_mut().map(|r| r.tick(now_ms)));
        if !read.answered && outcome != Outcome::Pending {
            read.answered = true;
            let answer = match outcome {
                Outcome::Succeeded => Answer::Read(merged(&read.rounds)),
                _ => Answer::Failed,
            };
            let client = read.client;
            self.answer(client, answer, out);
        }
        let Some(read) = self.reads.get(&req) else {
            return;
        };
        let done = read.rounds.iter().all(ReadRound::all_answered)
            || read.rounds.iter().any(|r| now_ms >= r.deadline_ms());
        if done {
            let Some(read) = self.reads.remove(&req) else {
                return;
            };
            if joint(read.rounds.iter().map(ReadRound::outcome)) != Outcome::Succeeded {
                return;
            }
            let merged = merged(&read.rounds);
            let mut stale: Vec<NodeId> = read
                .rounds
                .iter()
                .flat_map(ReadRound::repair_targets)
                .collect();
            stale.sort_unstable();
            stale.dedup();
            for node in stale {
                if node == self.id {
                    self.apply(&read.key, &merged, out);
                } else {
                    let msg = Msg::Repair {
                        key: read.key.clone(),
                        state: merged.clone(),
                    };
                    out.push(Out::Send(node, msg));
                }
            }
        }
    }
}

/// The join of every round's answers: what a read returns.
fn merged(rounds: &[ReadRound<Siblings>]) -> Siblings {
    let mut all = Siblings::default();
    for round in rounds {
        all.join(round.merged());
    }
    all
}
