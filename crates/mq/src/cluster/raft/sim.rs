//! Deterministic simulation of the Raft core: voters exchange messages
//! through a network with random delays, drops and partitions; voters crash
//! and restart from what they persisted. After every event the safety
//! properties are checked: at most one leader per term, and every voter's
//! applied entries are a prefix of one shared history (no committed entry is
//! ever lost or changed). Seeds make any failure reproducible.

use std::collections::{BTreeMap, BTreeSet};

use super::{Entry, HardState, Message, NodeId, Raft, Role, Term, Timing};

struct Disk {
    hard: HardState,
    log: Vec<Entry<u64>>,
}

struct Sim {
    now: u64,
    rng: fastrand::Rng,
    nodes: BTreeMap<NodeId, Option<Raft<u64>>>,
    disks: BTreeMap<NodeId, Disk>,
    /// (deliver at, from, to, message)
    wire: Vec<(u64, NodeId, NodeId, Message<u64>)>,
    /// Voters cut off from everyone else.
    isolated: BTreeSet<NodeId>,
    drop_percent: u32,
    /// Every voter's applied entries, in order.
    applied: BTreeMap<NodeId, Vec<Entry<u64>>>,
    /// The longest applied history seen: every voter's must be a prefix.
    history: Vec<Entry<u64>>,
    leaders: BTreeMap<Term, NodeId>,
    next_command: u64,
}

const TIMING: Timing = Timing {
    election_min_ms: 150,
    election_max_ms: 300,
    heartbeat_ms: 50,
};

impl Sim {
    fn new(n: i32, seed: u64) -> Sim {
        let ids: Vec<NodeId> = (1..=n).collect();
        let mut sim = Sim {
            now: 0,
            rng: fastrand::Rng::with_seed(seed),
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            wire: Vec::new(),
            isolated: BTreeSet::new(),
            drop_percent: 0,
            applied: BTreeMap::new(),
            history: Vec::new(),
            leaders: BTreeMap::new(),
            next_command: 1,
        };
        for &id in &ids {
            sim.disks.insert(
                id,
                Disk {
                    hard: HardState::default(),
                    log: Vec::new(),
                },
            );
            sim.start(id, &ids);
        }
        sim
    }

    fn voters(&self) -> Vec<NodeId> {
        self.disks.keys().copied().collect()
    }

    fn start(&mut self, id: NodeId, voters: &[NodeId]) {
        let disk = &self.disks[&id];
        let seed = self.rng.u64(..);
        let raft = Raft::new(
            id,
            voters.to_vec(),
            TIMING,
            disk.hard,
            disk.log.clone(),
            self.now,
            seed,
        );
        self.nodes.insert(id, Some(raft));
        // A restarted voter re-applies from the start, as the real one rebuilds its image.
        self.applied.insert(id, Vec::new());
    }

    fn crash(&mut self, id: NodeId) {
        self.nodes.insert(id, None);
    }

    fn restart(&mut self, id: NodeId) {
        let voters = self.voters();
        self.start(id, &voters);
    }

    fn flush(&mut self, id: NodeId) {
        let Some(Some(raft)) = self.nodes.get_mut(&id) else {
            return;
        };
        let ready = raft.ready();
        let disk = self.disks.get_mut(&id).expect("every voter has a disk");
        if let Some(hard) = ready.hard_state {
            disk.hard = hard;
        }
        if ready.log_changed_from.is_some() {
            disk.log = raft.entries_from(1).to_vec();
        }
        if raft.role() == Role::Leader {
            let term = raft.term();
            if let Some(other) = self.leaders.insert(term, id) {
                assert_eq!(other, id, "two leaders in term {term}");
            }
        }
        for (to, message) in ready.messages {
            let delay = self.rng.u64(1..20);
            self.wire.push((self.now + delay, id, to, message));
        }
        let applied = self.applied.get_mut(&id).expect("started");
        for (index, entry) in ready.committed {
            assert_eq!(index as usize, applied.len() + 1, "applied in order");
            applied.push(entry);
        }
        let applied = &self.applied[&id];
        let common = applied.len().min(self.history.len());
        assert_eq!(
            applied[..common],
            self.history[..common],
            "voter {id} applied a different history"
        );
        if applied.len() > self.history.len() {
            self.history = applied.clone();
        }
    }

    fn step_time(&mut self, ms: u64) {
        let end = self.now + ms;
        while self.now < end {
            self.now += 1;
            let now = self.now;
            let due: Vec<_> = {
                let (due, later): (Vec<_>, Vec<_>) =
                    self.wire.drain(..).partition(|(at, ..)| *at <= now);
                self.wire = later;
                due
            };
            for (_, from, to, message) in due {
                let cut = self.isolated.contains(&from) != self.isolated.contains(&to);
                if cut || self.rng.u32(0..100) < self.drop_percent {
                    continue;
                }
                if let Some(Some(raft)) = self.nodes.get_mut(&to) {
                    raft.step(now, from, message);
                    self.flush(to);
                }
            }
            for id in self.voters() {
                if let Some(Some(raft)) = self.nodes.get_mut(&id) {
                    raft.tick(now);
                    self.flush(id);
                }
            }
        }
    }

    fn leader(&self) -> Option<NodeId> {
        self.nodes.iter().find_map(|(id, raft)| {
            raft.as_ref()
                .filter(|r| r.role() == Role::Leader && !self.isolated.contains(id))
                .map(|_| *id)
        })
    }

    fn propose(&mut self) -> Option<u64> {
        let leader = self.leader()?;
        let command = self.next_command;
        self.next_command += 1;
        let now = self.now;
        let raft = self.nodes.get_mut(&leader)?.as_mut()?;
        raft.propose(now, command).ok()?;
        self.flush(leader);
        Some(command)
    }

    fn committed_commands(&self) -> BTreeSet<u64> {
        self.history.iter().filter_map(|e| e.command).collect()
    }
}

#[test]
fn a_leader_is_elected_and_commands_commit_on_every_voter() {
    let mut sim = Sim::new(3, 7);
    sim.step_time(1_000);
    assert!(sim.leader().is_some(), "a leader within a second");
    let mut sent = Vec::new();
    for _ in 0..20 {
        sent.extend(sim.propose());
        sim.step_time(10);
    }
    sim.step_time(500);
    assert_eq!(sent.len(), 20);
    for id in sim.voters() {
        let commands: Vec<u64> = sim.applied[&id].iter().filter_map(|e| e.command).collect();
        assert_eq!(commands, sent, "voter {id} applied everything in order");
    }
}

#[test]
fn a_single_voter_commits_alone() {
    let mut sim = Sim::new(1, 1);
    sim.step_time(400);
    assert_eq!(sim.leader(), Some(1));
    let command = sim.propose().unwrap();
    assert!(sim.committed_commands().contains(&command));
}

#[test]
fn the_leader_fails_over_and_nothing_committed_is_lost() {
    let mut sim = Sim::new(3, 11);
    sim.step_time(1_000);
    let first = sim.leader().unwrap();
    let mut sent = Vec::new();
    for _ in 0..5 {
        sent.extend(sim.propose());
    }
    sim.step_time(200);
    let committed = sim.committed_commands();
    assert_eq!(committed.len(), 5);
    sim.crash(first);
    sim.step_time(1_000);
    let second = sim.leader().expect("the other two elect a leader");
    assert_ne!(second, first);
    sent.extend(sim.propose());
    sim.step_time(200);
    sim.restart(first);
    sim.step_time(1_000);
    let applied: BTreeSet<u64> = sim.applied[&first]
        .iter()
        .filter_map(|e| e.command)
        .collect();
    assert_eq!(
        applied,
        sent.iter().copied().collect(),
        "the restarted voter caught up"
    );
}

/// Random crashes, restarts, partitions and drops over many seeds: the
/// safety checks in `flush` hold throughout, and once the faults stop a
/// leader commits again.
#[test]
fn safety_holds_under_random_faults() {
    for seed in 0..40 {
        let n = if seed % 2 == 0 { 3 } else { 5 };
        let mut sim = Sim::new(n, seed);
        sim.drop_percent = 10;
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
        for _ in 0..60 {
            match rng.u32(0..10) {
                0 => {
                    let id = rng.i32(1..=n);
                    sim.crash(id);
                }
                1 => {
                    let id = rng.i32(1..=n);
                    if sim.nodes[&id].is_none() {
                        sim.restart(id);
                    }
                }
                2 => {
                    sim.isolated.clear();
                    sim.isolated.insert(rng.i32(1..=n));
                }
                3 => sim.isolated.clear(),
                _ => {
                    sim.propose();
                }
            }
            sim.step_time(rng.u64(10..200));
        }
        // Heal everything: a leader emerges and a new command commits.
        sim.isolated.clear();
        sim.drop_percent = 0;
        for id in 1..=n {
            if sim.nodes[&id].is_none() {
                sim.restart(id);
            }
        }
        sim.step_time(2_000);
        let command = sim
            .propose()
            .unwrap_or_else(|| panic!("seed {seed}: no leader after healing"));
        sim.step_time(500);
        assert!(
            sim.committed_commands().contains(&command),
            "seed {seed}: a command commits after healing"
        );
        for id in 1..=n {
            assert_eq!(
                sim.applied[&id].len(),
                sim.history.len(),
                "seed {seed}: voter {id} caught up"
            );
        }
    }
}
