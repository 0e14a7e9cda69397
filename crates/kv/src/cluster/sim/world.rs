//! The simulated world: a clock, an event queue, a network that delays,
//! drops and partitions, nodes that crash (keeping or losing their disk)
//! and restart, and clients that read, write and read-modify-write.
//!
//! Everything random comes from one seeded `fastrand::Rng`, and the queue
//! orders events by (time, insertion number), so a seed replays exactly.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use bytes::Bytes;

use crate::cluster::NodeId;
use crate::cluster::crdt::Update;
use crate::cluster::hinted_handoff::Limits;
use crate::cluster::membership::{Event as MemberEvent, Status};
use crate::cluster::replica::{Answer, Disk, MemberChange, Msg, Node, Op, Out, Setup};
use crate::cluster::siblings::Siblings;
use crate::cluster::vector_clock::{Actor, Dot, VectorClock};

use super::linearizability::{Call, Operation, Replaces, Value};

const TICK_MS: u64 = 50;
const CLIENT_TIMEOUT_MS: u64 = 3_000;
/// The key clients `INCRBY`.
pub(super) const COUNTER_KEY: &[u8] = b"counter";

enum Event {
    Tick(NodeId, u64),
    Deliver(NodeId, NodeId, Msg),
    Arrive(NodeId, u64, Op),
    ClientStep(usize),
    ClientAnswer(u64, Answer),
    ClientTimeout(u64),
}

/// A node's place in the world: running, or stopped with its disk.
struct Slot {
    node: Option<Node>,
    disk: Option<Disk>,
    /// Bumped on every boot, so ticks of an earlier life are ignored.
    life: u64,
    /// Bumped when the disk is lost: a new actor id.
    disk_life: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Intent {
    Read,
    ReadModifyWrite,
    Write,
    /// A CRDT update; for `INCRBY`, its delta.
    Update(i64),
}

struct Client {
    /// The request in flight: (request id, key, intent).
    busy: Option<(u64, Bytes, Intent)>,
    ops: u64,
    active: bool,
}

/// What the checks need to know about the run.
#[derive(Default)]
pub(super) struct History {
    /// Every acknowledged put: (key, dot).
    pub acked: Vec<(Bytes, Dot)>,
    /// The context every put was sent with, by key: what its client had
    /// seen, the only versions it may legitimately replace.
    pub contexts: BTreeMap<Bytes, Vec<VectorClock>>,
    /// Membership transitions: (time, observer, event).
    pub member_events: Vec<(u64, NodeId, MemberEvent)>,
    pub reads_ok: u64,
    pub requests_failed: u64,
    pub messages_sent: u64,
    pub messages_lost: u64,
    /// The sum of acknowledged `INCRBY` deltas.
    pub incr_acked: i64,
    /// The sum of deltas whose outcome is unknown (failed or timed out).
    pub incr_unknown: i64,
    /// Every client call with its key, for the linearizability check;
    /// `None`: known not to have taken effect (a refused write, a read
    /// without an answer).
    pub calls: Vec<(Bytes, Option<Operation>)>,
    /// Calls awaiting their answer: request → index in `calls`.
    open: BTreeMap<u64, usize>,
    /// Values interned for the checker (every write's value is unique).
    values: BTreeMap<Option<Bytes>, Value>,
}

impl History {
    fn intern(&mut self, value: &Option<Bytes>) -> Value {
        let next = self.values.len() as Value;
        *self.values.entry(value.clone()).or_insert(next)
    }

    fn values_of(&mut self, state: &Siblings) -> std::collections::BTreeSet<Value> {
        state
            .siblings()
            .iter()
            .map(|s| self.intern(&s.value))
            .collect()
    }

    /// Records a call as it is sent; `read` is the read whose context a
    /// write carries.
    fn called(&mut self, request: u64, key: &Bytes, op: &Op, read: Option<&Siblings>, now_ms: u64) {
        let call = match op {
            // CRDT updates are checked by their own properties.
            Op::Update { .. } => return,
            Op::Get { .. } => Call::Read(Default::default()),
            Op::Put { value, context, .. } => {
                let replaces = match (context, read) {
                    (None, _) => Replaces::All,
                    (Some(_), Some(read)) => Replaces::Seen(self.values_of(read)),
                    (Some(_), None) => Replaces::Seen(Default::default()),
                };
                let value = self.intern(value);
                Call::Write { value, replaces }
            }
        };
        let op = Operation {
            call_ms: now_ms,
            return_ms: None,
            call,
        };
        self.open.insert(request, self.calls.len());
        self.calls.push((key.clone(), Some(op)));
    }

    /// Records a call's answer (`None`: it timed out).
    fn answered(&mut self, request: u64, answer: Option<&Answer>, now_ms: u64) {
        let Some(i) = self.open.remove(&request) else {
            return;
        };
        let values = match answer {
            Some(Answer::Read(state)) => Some(self.values_of(state)),
            _ => None,
        };
        let Some(op) = self.calls[i].1.as_mut() else {
            return;
        };
        match (&mut op.call, answer) {
            (Call::Write { .. }, Some(Answer::Written(_))) => op.return_ms = Some(now_ms),
            (Call::Read(read), Some(Answer::Read(_))) => {
                *read = values.unwrap_or_default();
                op.return_ms = Some(now_ms);
            }
            // Refused before anything was stored.
            (Call::Write { .. }, Some(Answer::TooManySiblings(_))) => self.calls[i].1 = None,
            // A write that failed or timed out may have happened.
            (Call::Write { .. }, _) => {}
            (Call::Read(_), _) => self.calls[i].1 = None,
        }
    }
}

pub(super) struct World {
    pub now_ms: u64,
    pub rng: fastrand::Rng,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: BTreeMap<u64, Event>,
    next_event: u64,
    setup: Setup,
    slots: BTreeMap<NodeId, Slot>,
    /// Partition group per node (None: no partition).
    pub groups: Option<BTreeMap<NodeId, u8>>,
    pub loss_percent: u32,
    pub delay_max_ms: u64,
    pub keys: Vec<Bytes>,
    clients: Vec<Client>,
    /// Half the blind writes are plain `SET`s (no context: replace all).
    pub plain_sets: bool,
    pub history: History,
}

impl World {
    pub fn new(seed: u64, setup: Setup, clients: usize, keys: usize) -> World {
        let mut world = World {
            now_ms: 0,
            rng: fastrand::Rng::with_seed(seed),
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            next_event: 0,
            slots: BTreeMap::new(),
            groups: None,
            loss_percent: 0,
            delay_max_ms: 15,
            keys: (0..keys).map(|k| Bytes::from(format!("key{k}"))).collect(),
            clients: (0..clients)
                .map(|_| Client {
                    busy: None,
                    ops: 0,
                    active: true,
                })
                .collect(),
            plain_sets: false,
            history: History::default(),
            setup,
        };
        for id in world.setup.placement.nodes() {
            let disk = Disk::empty(Actor(u64::from(id.0) << 32), Limits::default());
            let slot = Slot {
                node: None,
                disk: Some(disk),
                life: 0,
                disk_life: 0,
            };
            world.slots.insert(id, slot);
            world.boot(id, false);
        }
        for c in 0..clients {
            let at = world.rng.u64(0..500);
            world.schedule(at, Event::ClientStep(c));
        }
        world
    }

    fn schedule(&mut self, after_ms: u64, event: Event) {
        self.next_event += 1;
        self.events.insert(self.next_event, event);
        self.queue
            .push(Reverse((self.now_ms + after_ms, self.next_event)));
    }

    pub fn nodes(&self) -> Vec<NodeId> {
        self.slots.keys().copied().collect()
    }

    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.slots.get(&id).and_then(|s| s.node.as_ref())
    }

    fn in_state(&self, running: bool) -> Vec<NodeId> {
        self.slots
            .iter()
            .filter(|(_, s)| s.node.is_some() == running)
            .map(|(&id, _)| id)
            .collect()
    }

    pub fn running(&self) -> Vec<NodeId> {
        self.in_state(true)
    }

    pub fn stopped(&self) -> Vec<NodeId> {
        self.in_state(false)
    }

    /// Starts a stopped node on its disk, or on an empty one.
    pub fn boot(&mut self, id: NodeId, lose_disk: bool) {
        let seed = self.rng.u64(..);
        let now_ms = self.now_ms;
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if slot.node.is_some() {
            return;
        }
        let disk = match slot.disk.take() {
            Some(disk) if !lose_disk => disk,
            _ => {
                slot.disk_life += 1;
                let actor = Actor(u64::from(id.0) << 32 | slot.disk_life);
                Disk::empty(actor, Limits::default())
            }
        };
        slot.life += 1;
        let life = slot.life;
        slot.node = Some(Node::boot(id, disk, &self.setup, now_ms, seed));
        let first_tick_ms = self.rng.u64(1..=TICK_MS);
        self.schedule(first_tick_ms, Event::Tick(id, life));
    }

    /// A plain `DEL` (no context: replaces every version the coordinator
    /// holds) through `node` from a scripted client.
    pub fn delete_via(&mut self, node: NodeId, client: usize, key: Bytes) {
        let op = Op::Put {
            key: key.clone(),
            value: None,
            context: None,
        };
        self.send_request(client, node, key, Intent::Write, op, None);
    }

    /// A new node with an empty disk, booted outside the ring (it learns
    /// the ring from the members and joins when told to).
    pub fn add_node(&mut self, id: NodeId) {
        let disk = Disk::empty(Actor(u64::from(id.0) << 32), Limits::default());
        let slot = Slot {
            node: None,
            disk: Some(disk),
            life: 0,
            disk_life: 0,
        };
        self.slots.insert(id, slot);
        self.boot(id, false);
    }

    /// An operator's membership change, run on node `at`.
    pub fn change(
        &mut self,
        at: NodeId,
        change: MemberChange,
    ) -> Result<(), crate::cluster::topology::ChangeError> {
        let now_ms = self.now_ms;
        let mut out = Vec::new();
        let node = self.slots.get_mut(&at).and_then(|s| s.node.as_mut());
        let result = node.map(|n| n.change(now_ms, change, &mut out));
        self.collect(at, out);
        result.unwrap_or(Err(crate::cluster::topology::ChangeError::NotInContact))
    }

    /// Stops a node; its disk stays for the next boot.
    pub fn crash(&mut self, id: NodeId) {
        if let Some(slot) = self.slots.get_mut(&id)
            && let Some(node) = slot.node.take()
        {
            slot.disk = Some(node.disk);
        }
    }

    /// A client outside the random loop, for scripted requests.
    pub fn scripted_client(&mut self) -> usize {
        self.clients.push(Client {
            busy: None,
            ops: 0,
            active: false,
        });
        self.clients.len() - 1
    }

    pub fn stop_clients(&mut self) {
        for client in &mut self.clients {
            client.active = false;
        }
    }

    pub fn clients_idle(&self) -> bool {
        self.clients.iter().all(|c| c.busy.is_none())
    }

    /// A put from outside the client loop (the concurrent-writes probe);
    /// its answer lands in the history like any other.
    pub fn put_via(&mut self, node: NodeId, client: usize, key: Bytes, value: Bytes) {
        let op = Op::Put {
            key: key.clone(),
            value: Some(value),
            context: Some(VectorClock::new()),
        };
        self.send_request(client, node, key, Intent::Write, op, None);
    }

    /// A CRDT update from outside the client loop.
    pub fn update_via(&mut self, node: NodeId, client: usize, key: Bytes, update: Update) {
        let intent = match update {
            Update::Add(delta) => {
                self.history.incr_unknown += delta;
                Intent::Update(delta)
            }
            _ => Intent::Update(0),
        };
        let op = Op::Update {
            key: key.clone(),
            update,
        };
        self.send_request(client, node, key, intent, op, None);
    }

    /// Runs every event up to `until_ms`.
    pub fn run_until(&mut self, until_ms: u64) {
        while let Some(&Reverse((at, id))) = self.queue.peek() {
            if at > until_ms {
                break;
            }
            self.queue.pop();
            self.now_ms = at;
            if let Some(event) = self.events.remove(&id) {
                self.handle(event);
            }
        }
        self.now_ms = until_ms;
    }

    fn handle(&mut self, event: Event) {
        let mut out = Vec::new();
        let now_ms = self.now_ms;
        match event {
            Event::Tick(id, life) => {
                let Some(slot) = self.slots.get_mut(&id) else {
                    return;
                };
                let Some(node) = slot.node.as_mut().filter(|_| slot.life == life) else {
                    return;
                };
                node.tick(now_ms, &mut out);
                self.schedule(TICK_MS, Event::Tick(id, life));
                self.collect(id, out);
            }
            Event::Deliver(from, to, msg) => {
                let apart = self
                    .groups
                    .as_ref()
                    .is_some_and(|g| g.get(&from) != g.get(&to));
                let Some(node) = self.slots.get_mut(&to).and_then(|s| s.node.as_mut()) else {
                    self.history.messages_lost += 1;
                    return;
                };
                if apart {
                    self.history.messages_lost += 1;
                    return;
                }
                node.receive(now_ms, from, msg, &mut out);
                self.collect(to, out);
            }
            Event::Arrive(id, request, op) => {
                let Some(node) = self.slots.get_mut(&id).and_then(|s| s.node.as_mut()) else {
                    return; // crashed meanwhile: the client times out
                };
                node.request(now_ms, request, op, &mut out);
                self.collect(id, out);
            }
            Event::ClientStep(c) => self.client_step(c),
            Event::ClientAnswer(request, answer) => self.client_answer(request, Some(answer)),
            Event::ClientTimeout(request) => self.client_answer(request, None),
        }
    }

    fn collect(&mut self, from: NodeId, out: Vec<Out>) {
        if let Some(node) = self.slots.get_mut(&from).and_then(|s| s.node.as_mut()) {
            for event in node.membership.drain_events() {
                self.history.member_events.push((self.now_ms, from, event));
            }
        }
        for o in out {
            match o {
                Out::Send(to, msg) => {
                    self.history.messages_sent += 1;
                    if self.rng.u32(0..100) < self.loss_percent {
                        self.history.messages_lost += 1;
                        continue;
                    }
                    let delay = self.rng.u64(1..=self.delay_max_ms);
                    self.schedule(delay, Event::Deliver(from, to, msg));
                }
                Out::Answer(request, answer) => {
                    self.schedule(1, Event::ClientAnswer(request, answer))
                }
                // The simulated disk is the node's in-memory `Disk`, which
                // survives its crashes as it is.
                Out::Persist(_) => {}
            }
        }
    }

    fn send_request(
        &mut self,
        c: usize,
        node: NodeId,
        key: Bytes,
        intent: Intent,
        op: Op,
        read: Option<&Siblings>,
    ) {
        if let Op::Put { context, .. } = &op {
            let contexts = self.history.contexts.entry(key.clone()).or_default();
            contexts.push(context.clone().unwrap_or_default());
        }
        let client = &mut self.clients[c];
        client.ops += 1;
        let request = (c as u64) << 32 | client.ops;
        self.history.called(request, &key, &op, read, self.now_ms);
        client.busy = Some((request, key, intent));
        self.schedule(1, Event::Arrive(node, request, op));
        self.schedule(CLIENT_TIMEOUT_MS, Event::ClientTimeout(request));
    }

    fn client_step(&mut self, c: usize) {
        if !self.clients[c].active || self.clients[c].busy.is_some() {
            return;
        }
        let running = self.running();
        if running.is_empty() {
            self.schedule(200, Event::ClientStep(c));
            return;
        }
        let node = running[self.rng.usize(..running.len())];
        let key = self.keys[self.rng.usize(..self.keys.len())].clone();
        let (intent, op) = match self.rng.u32(0..10) {
            0..5 => (Intent::ReadModifyWrite, Op::Get { key: key.clone() }),
            5..8 => {
                let value = Bytes::from(format!("c{c}-{}", self.clients[c].ops));
                let plain = self.plain_sets && self.rng.bool();
                let op = Op::Put {
                    key: key.clone(),
                    value: Some(value),
                    context: (!plain).then(VectorClock::new),
                };
                (Intent::Write, op)
            }
            8 => (Intent::Read, Op::Get { key: key.clone() }),
            _ => {
                let delta = self.rng.i64(1..=5);
                self.history.incr_unknown += delta;
                let key = Bytes::from_static(COUNTER_KEY);
                let update = Update::Add(delta);
                let op = Op::Update { key, update };
                (Intent::Update(delta), op)
            }
        };
        let key = op.key().clone();
        self.send_request(c, node, key, intent, op, None);
    }

    fn client_answer(&mut self, request: u64, answer: Option<Answer>) {
        let c = (request >> 32) as usize;
        let Some(client) = self.clients.get_mut(c) else {
            return;
        };
        let Some((current, key, intent)) = client.busy.take() else {
            return;
        };
        if current != request {
            client.busy = Some((current, key, intent));
            return; // a late answer to an abandoned request
        }
        self.history.answered(request, answer.as_ref(), self.now_ms);
        match answer {
            Some(Answer::Written(dot)) => self.history.acked.push((key, dot)),
            Some(Answer::Read(state)) => {
                self.history.reads_ok += 1;
                if intent == Intent::ReadModifyWrite && self.clients[c].active {
                    self.read_modify_write(c, key, &state);
                    return;
                }
            }
            Some(Answer::Updated(_)) => {
                if let Intent::Update(delta) = intent {
                    self.history.incr_unknown -= delta;
                    self.history.incr_acked += delta;
                }
            }
            Some(Answer::Refused(_)) => {
                if let Intent::Update(delta) = intent {
                    self.history.incr_unknown -= delta;
                }
                self.history.requests_failed += 1
            }
            Some(Answer::Failed | Answer::TooManySiblings(_)) | None => {
                self.history.requests_failed += 1
            }
        }
        let think_ms = self.rng.u64(20..300);
        self.schedule(think_ms, Event::ClientStep(c));
    }

    /// The second half of a read-modify-write: a new value with the read's
    /// context, through any running node.
    fn read_modify_write(&mut self, c: usize, key: Bytes, state: &Siblings) {
        let running = self.running();
        if running.is_empty() {
            self.schedule(200, Event::ClientStep(c));
            return;
        }
        let node = running[self.rng.usize(..running.len())];
        let value = Bytes::from(format!(
            "c{c}-{}-after-{}",
            self.clients[c].ops,
            state.siblings().len()
        ));
        let op = Op::Put {
            key: key.clone(),
            value: Some(value),
            context: Some(state.context().clone()),
        };
        self.send_request(c, node, key, Intent::Write, op, Some(state));
    }

    /// Whether every node believes every other is up.
    pub fn all_up_everywhere(&self) -> bool {
        self.slots.values().all(|s| {
            s.node
                .as_ref()
                .is_some_and(|n| n.membership.members().all(|m| m.1 != Status::Down))
        })
    }
}
