//! Failure detection by gossip, as the notes describe it, plus SWIM's
//! indirect probe: who is up, decided by every node for itself.
//!
//! Why it exists: sloppy quorum and hinted handoff need to know which
//! replicas are down, and a leaderless cluster has no one to ask. The
//! notes' answer ("장애 감지", gossip protocol):
//!
//! - every node keeps a membership list of (member, heartbeat counter);
//! - each node periodically increments its own counter and sends its list
//!   to a few random members;
//! - a receiver keeps the larger counter per member, so lists converge
//!   (taking the maximum is order-independent and idempotent);
//! - a member whose counter has not advanced for a while is considered
//!   down.
//!
//! Two refinements, both cheap:
//!
//! - **Generations.** A heartbeat is `(generation, counter)`, compared in
//!   that order; a restarted node starts a new generation (its boot time),
//!   so its counter restarting at 0 still reads as newer (Cassandra's
//!   scheme).
//! - **SWIM's indirect probe** (Das, Gupta, Motivala 2002). Gossip alone
//!   marks a healthy node down when its heartbeats happen to be lost; the
//!   notes themselves say a failure should be confirmed by more than one
//!   server. So a member whose heartbeat is stale for `suspect_after_ms`
//!   becomes *suspect*: this node pings it directly and asks
//!   `indirect_probes` other members to ping it too (`PingReq`); any ack,
//!   direct or relayed, proves it alive. It is marked down only once it has
//!   been stale for `down_after_ms` *and* the latest probe went unanswered.
//!   The simulation counts false-down events (five healthy nodes, 8 runs
//!   of 30 s at 65% packet loss, `sim`'s SWIM test): plain gossip 56,
//!   a direct probe 22, direct plus two indirect probes 19. Gossip of
//!   whole lists is already redundant (a heartbeat reaches a node by many
//!   paths), so at 50% loss there were hardly any false downs to prevent;
//!   indirect probes matter most when one node's own links are bad (the
//!   unit tests cut them).
//!
//! # Shape
//!
//! A pure state machine: [`Membership::tick`] (call it every few tens of
//! ms with the current time) and [`Membership::receive`] return the
//! messages to send, addressed to members; [`Membership::drain_events`]
//! yields up/down transitions. It owns a seeded RNG for peer choice, so a
//! run is reproducible. No sockets, no clocks of its own.
//!
//! # Knobs ([`Config`])
//!
//! `gossip_interval_ms` and `fanout` trade bandwidth for propagation
//! speed; `suspect_after_ms`, `down_after_ms` and `probe_timeout_ms` trade
//! detection time for false alarms. A stopped node is marked down by every
//! peer within about `down_after_ms + probe_timeout_ms` plus the time its
//! last heartbeat takes to spread (a few gossip rounds).
//!
//! Members are the ring's ([`super::topology`] adds and removes them);
//! gossip about unknown members is ignored. Not yet: refuting suspicion
//! with an incarnation number.

use std::collections::BTreeMap;

use super::NodeId;

/// The most relayed probes a node keeps in flight for others.
const RELAYS_MAX: usize = 256;

/// Timing and fan-out of the detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// How often this node bumps its heartbeat and gossips.
    pub gossip_interval_ms: u64,
    /// How many random members each gossip round goes to.
    pub fanout: usize,
    /// A heartbeat this old makes its member suspect (and probed).
    pub suspect_after_ms: u64,
    /// A heartbeat this old, with the latest probe unanswered, marks its
    /// member down.
    pub down_after_ms: u64,
    /// How long a probe waits for an ack.
    pub probe_timeout_ms: u64,
    /// Whether suspects are probed at all (false: the notes' plain gossip).
    pub probe: bool,
    /// How many other members are asked to probe a suspect (SWIM's `k`).
    pub indirect_probes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            gossip_interval_ms: 200,
            fanout: 2,
            suspect_after_ms: 1_000,
            down_after_ms: 2_000,
            probe_timeout_ms: 500,
            probe: true,
            indirect_probes: 2,
        }
    }
}

/// A member's liveness evidence: `(generation, counter)`, compared in that
/// order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Heartbeat {
    /// The member's current life (its boot time, or a boot count).
    pub generation: u64,
    /// Bumped every gossip round within a generation.
    pub counter: u64,
}

/// What this node believes about a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Heard from recently.
    Alive,
    /// Stale heartbeat; being probed. Still used for requests.
    Suspect,
    /// Stale, and probes failed: requests go elsewhere.
    Down,
}

/// A message between detectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The sender's membership list.
    Gossip {
        /// Every member's heartbeat as the sender knows it.
        heartbeats: Vec<(NodeId, Heartbeat)>,
    },
    /// "Are you alive?" (from a prober, or from a relay on its behalf).
    Ping {
        /// Echoed in the ack.
        seq: u64,
    },
    /// "Yes": the answer to a ping, with the sender's heartbeat.
    Ack {
        /// The ping's sequence number.
        seq: u64,
        /// The acker's heartbeat.
        heartbeat: Heartbeat,
    },
    /// "Please ping `target` for me" (SWIM's indirect probe).
    PingReq {
        /// The requester's probe number, echoed in the relayed ack.
        seq: u64,
        /// Who to ping.
        target: NodeId,
    },
    /// A relay's report that `target` answered.
    IndirectAck {
        /// The requester's probe number.
        seq: u64,
        /// Who answered.
        target: NodeId,
        /// Its heartbeat.
        heartbeat: Heartbeat,
    },
}

/// A change of a member's status, as seen by this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The member was marked down.
    Down(NodeId),
    /// A member marked down is alive again.
    Up(NodeId),
}

#[derive(Debug, Clone)]
struct Member {
    heartbeat: Heartbeat,
    /// Last time there was evidence of life: the heartbeat advanced, or a
    /// probe was answered.
    alive_ms: u64,
    status: Status,
    /// The probe in flight: (sequence number, deadline).
    probe: Option<(u64, u64)>,
}

#[derive(Debug, Clone, Copy)]
struct Relay {
    origin: NodeId,
    origin_seq: u64,
    target: NodeId,
    expires_ms: u64,
}

/// One node's failure detector.
#[derive(Debug)]
pub struct Membership {
    me: NodeId,
    heartbeat: Heartbeat,
    config: Config,
    members: BTreeMap<NodeId, Member>,
    next_gossip_ms: u64,
    next_seq: u64,
    /// Pings this node sent for others: our seq → who asked.
    relays: BTreeMap<u64, Relay>,
    events: Vec<Event>,
    rng: fastrand::Rng,
}

/// Messages to send: (recipient, message).
pub type Outbox = Vec<(NodeId, Message)>;

impl Membership {
    /// A detector for node `me` in its life `generation`, knowing `peers`
    /// (all assumed alive until their heartbeats go stale), at `now_ms`.
    pub fn new(
        me: NodeId,
        generation: u64,
        peers: impl IntoIterator<Item = NodeId>,
        config: Config,
        now_ms: u64,
        seed: u64,
    ) -> Membership {
        let members = peers
            .into_iter()
            .filter(|&p| p != me)
            .map(|p| {
                let member = Member {
                    heartbeat: Heartbeat::default(),
                    alive_ms: now_ms,
                    status: Status::Alive,
                    probe: None,
                };
                (p, member)
            })
            .collect();
        Membership {
            me,
            heartbeat: Heartbeat {
                generation,
                counter: 0,
            },
            config,
            members,
            next_gossip_ms: now_ms,
            next_seq: 1,
            relays: BTreeMap::new(),
            events: Vec::new(),
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// Starts watching `node` (a member that joined), assumed alive.
    pub fn add(&mut self, node: NodeId, now_ms: u64) {
        if node == self.me || self.members.contains_key(&node) {
            return;
        }
        let member = Member {
            heartbeat: Heartbeat::default(),
            alive_ms: now_ms,
            status: Status::Alive,
            probe: None,
        };
        self.members.insert(node, member);
    }

    /// Stops watching `node` (a member that left the ring).
    pub fn remove(&mut self, node: NodeId) {
        self.members.remove(&node);
        self.relays
            .retain(|_, r| r.target != node && r.origin != node);
    }

    /// This node's id.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// What this node believes about `node` (itself: alive; unknown: down).
    pub fn status(&self, node: NodeId) -> Status {
        if node == self.me {
            return Status::Alive;
        }
        self.members.get(&node).map_or(Status::Down, |m| m.status)
    }

    /// Whether requests should go to `node`: alive or merely suspect.
    pub fn is_up(&self, node: NodeId) -> bool {
        self.status(node) != Status::Down
    }

    /// Every other member with its status and last known heartbeat.
    pub fn members(&self) -> impl Iterator<Item = (NodeId, Status, Heartbeat)> + '_ {
        self.members
            .iter()
            .map(|(&id, m)| (id, m.status, m.heartbeat))
    }

    /// The up/down transitions since the last call.
    pub fn drain_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Advances time: gossip when due, suspect and probe stale members,
    /// mark down the ones whose probes failed.
    pub fn tick(&mut self, now_ms: u64) -> Outbox {
        let mut out = Vec::new();
        if now_ms >= self.next_gossip_ms {
            self.next_gossip_ms = now_ms + self.config.gossip_interval_ms;
            self.heartbeat.counter += 1;
            self.gossip(&mut out);
        }
        let ids: Vec<NodeId> = self.members.keys().copied().collect();
        for id in ids {
            self.check(id, now_ms, &mut out);
        }
        self.relays.retain(|_, r| r.expires_ms > now_ms);
        out
    }

    /// Sends the list to `fanout` random members that are not down, and to
    /// one random down member (so a healed partition is noticed).
    fn gossip(&mut self, out: &mut Outbox) {
        let mut heartbeats: Vec<(NodeId, Heartbeat)> = vec![(self.me, self.heartbeat)];
        heartbeats.extend(self.members.iter().map(|(&id, m)| (id, m.heartbeat)));
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for (&id, member) in &self.members {
            match member.status {
                Status::Down => down.push(id),
                _ => up.push(id),
            }
        }
        self.rng.shuffle(&mut up);
        up.truncate(self.config.fanout);
        if !down.is_empty() {
            up.push(down.swap_remove(self.rng.usize(..down.len())));
        }
        for to in up {
            let heartbeats = heartbeats.clone();
            out.push((to, Message::Gossip { heartbeats }));
        }
    }

    fn check(&mut self, id: NodeId, now_ms: u64, out: &mut Outbox) {
        let config = self.config;
        let Some(member) = self.members.get(&id) else {
            return;
        };
        let stale_ms = now_ms.saturating_sub(member.alive_ms);
        let probe_pending = member.probe.is_some_and(|(_, deadline)| now_ms < deadline);
        let status = member.status;
        match status {
            Status::Alive if stale_ms >= config.suspect_after_ms => {
                self.set_status(id, Status::Suspect);
                if config.probe {
                    self.probe(id, now_ms, out);
                }
            }
            Status::Suspect if stale_ms >= config.down_after_ms && !probe_pending => {
                self.set_status(id, Status::Down);
                self.events.push(Event::Down(id));
            }
            Status::Suspect if config.probe && !probe_pending => self.probe(id, now_ms, out),
            _ => {}
        }
    }

    fn set_status(&mut self, id: NodeId, status: Status) {
        if let Some(member) = self.members.get_mut(&id) {
            member.status = status;
            if status != Status::Suspect {
                member.probe = None;
            }
        }
    }

    /// Pings `target` and asks `indirect_probes` random other members that
    /// are not down to ping it too.
    fn probe(&mut self, target: NodeId, now_ms: u64, out: &mut Outbox) {
        let seq = self.seq();
        if let Some(member) = self.members.get_mut(&target) {
            member.probe = Some((seq, now_ms + self.config.probe_timeout_ms));
        }
        out.push((target, Message::Ping { seq }));
        let mut helpers: Vec<NodeId> = self
            .members
            .iter()
            .filter(|&(&id, m)| id != target && m.status != Status::Down)
            .map(|(&id, _)| id)
            .collect();
        self.rng.shuffle(&mut helpers);
        for helper in helpers.into_iter().take(self.config.indirect_probes) {
            out.push((helper, Message::PingReq { seq, target }));
        }
    }

    /// Evidence that `id` is alive at `now_ms`: a newer heartbeat, or an
    /// answered probe (`proof`).
    fn observe(&mut self, id: NodeId, heartbeat: Heartbeat, proof: bool, now_ms: u64) {
        let Some(member) = self.members.get_mut(&id) else {
            return; // not a configured member (joining comes later)
        };
        let advanced = heartbeat > member.heartbeat;
        if advanced {
            member.heartbeat = heartbeat;
        }
        if !(advanced || proof) {
            return;
        }
        member.alive_ms = member.alive_ms.max(now_ms);
        if member.status == Status::Down {
            self.events.push(Event::Up(id));
        }
        self.set_status(id, Status::Alive);
    }

    /// Handles one message from `from`.
    pub fn receive(&mut self, now_ms: u64, from: NodeId, message: Message) -> Outbox {
        let mut out = Vec::new();
        match message {
            Message::Gossip { heartbeats } => {
                for (id, heartbeat) in heartbeats.into_iter().take(self.members.len() + 1) {
                    if id != self.me {
                        self.observe(id, heartbeat, false, now_ms);
                    }
                }
            }
            Message::Ping { seq } => {
                let heartbeat = self.heartbeat;
                out.push((from, Message::Ack { seq, heartbeat }));
            }
            Message::Ack { seq, heartbeat } => {
                if let Some(relay) = self.relays.remove(&seq)
                    && relay.target == from
                {
                    let ack = Message::IndirectAck {
                        seq: relay.origin_seq,
                        target: from,
                        heartbeat,
                    };
                    out.push((relay.origin, ack));
                }
                let answered = self.probe_seq(from) == Some(seq);
                self.observe(from, heartbeat, answered, now_ms);
            }
            Message::PingReq { seq, target } => {
                let known = self.members.contains_key(&target) && self.members.contains_key(&from);
                if known && self.relays.len() < RELAYS_MAX {
                    let relay_seq = self.seq();
                    let expires_ms = now_ms + self.config.probe_timeout_ms;
                    let relay = Relay {
                        origin: from,
                        origin_seq: seq,
                        target,
                        expires_ms,
                    };
                    self.relays.insert(relay_seq, relay);
                    out.push((target, Message::Ping { seq: relay_seq }));
                }
            }
            Message::IndirectAck {
                seq,
                target,
                heartbeat,
            } => {
                let answered = self.probe_seq(target) == Some(seq);
                self.observe(target, heartbeat, answered, now_ms);
            }
        }
        out
    }

    fn probe_seq(&self, id: NodeId) -> Option<u64> {
        self.members
            .get(&id)
            .and_then(|m| m.probe)
            .map(|(seq, _)| seq)
    }
}

#[cfg(test)]
mod tests;
