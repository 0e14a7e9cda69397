//! The node's thread: runs the replica state machine, makes its changes
//! durable, then lets its messages and answers go.
//!
//! Why it exists: [`Node`] is pure and single-threaded by design; giving it
//! one OS thread (not an async worker) means its LSM writes and fsyncs
//! block nobody's event loop, and no lock is needed around it. Inputs come
//! through one bounded queue; each wake-up handles what is waiting (up to
//! [`BATCH_MAX`] inputs), writes their [`Persist`] changes as one batch
//! (a group commit), and only then sends messages and answers, so an
//! acknowledgement never precedes the durability it promises.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::status::{AntiEntropyStatus, ChangeStatus, ClusterMetrics, MemberStatus, Status};
use super::store::{Store, StoreError};
use super::transport::{Links, Local};
use super::{ClusterConfig, Input, Members, Reply};
use crate::cluster::NodeId;
use crate::cluster::membership::{Event, Status as Liveness};
use crate::cluster::placement::{NodeSpec, Placement, QuorumMode};
use crate::cluster::replica::{Disk, MemberChange, Msg, Node, Out, Persist, Setup};
use crate::cluster::vector_clock::PrunePolicy;
use crate::cluster::wire::MemberSpec;

/// How often the state machine ticks (detector, deadlines, handoff, AE).
const TICK_MS: u64 = 20;
/// How often the `/metrics` gauges are refreshed.
const METRICS_MS: u64 = 1_000;
/// Inputs handled per wake-up before the batch is made durable.
const BATCH_MAX: usize = 256;

/// What the thread starts with.
pub(super) struct Parts {
    pub me: MemberSpec,
    pub cluster: ClusterConfig,
    pub store: Store,
    pub disk: Disk,
    pub members: Members,
    pub links: Arc<Links>,
    pub local: Arc<Local>,
    pub inputs: SyncSender<Input>,
    pub shutdown: CancellationToken,
    pub metrics: Arc<ClusterMetrics>,
}

pub(super) struct Actor {
    parts: Parts,
    disk: Option<Disk>,
    /// Seed address → the member met there.
    seeds: BTreeMap<String, Option<NodeId>>,
    node: Option<Node>,
    clients: HashMap<u64, (oneshot::Sender<Reply>, u64)>,
    next_client: u64,
    persist: Vec<Persist>,
}

impl Actor {
    pub fn new(mut parts: Parts) -> Actor {
        let disk = std::mem::replace(
            &mut parts.disk,
            Disk::empty(crate::cluster::vector_clock::Actor(0), Default::default()),
        );
        let mut seeds: BTreeMap<String, Option<NodeId>> = parts
            .cluster
            .seeds
            .iter()
            .map(|s| (s.clone(), None))
            .collect();
        // Members saved by an earlier run resolve their seeds at once.
        parts.members.remove(&parts.me.id);
        for member in parts.members.values() {
            if let Some(slot) = seeds.get_mut(&member.addr) {
                *slot = Some(member.id);
            }
        }
        Actor {
            parts,
            disk: Some(disk),
            seeds,
            node: None,
            clients: HashMap::new(),
            next_client: 0,
            persist: Vec::new(),
        }
    }

    /// Runs until [`Input::Stop`] or every sender is gone. A store failure
    /// stops the node (and the server): it could no longer keep promises.
    pub fn run(mut self, rx: Receiver<Input>) -> Result<(), StoreError> {
        let seeds: Vec<String> = self.seeds.keys().cloned().collect();
        let known: Vec<String> = self
            .parts
            .members
            .values()
            .map(|m| m.addr.clone())
            .collect();
        for addr in seeds.into_iter().chain(known) {
            self.parts.links.dial(addr, self.parts.inputs.clone());
        }
        self.refresh_hello();
        self.try_form(clock::now_ms());
        let result = self.run_loop(&rx);
        if let Err(err) = &result {
            tracing::error!(error = %err, "the cluster store failed; stopping the node");
            self.parts.shutdown.cancel();
        }
        result
    }

    fn run_loop(&mut self, rx: &Receiver<Input>) -> Result<(), StoreError> {
        let mut out = Vec::new();
        let mut next_tick_ms = 0u64;
        let mut next_metrics_ms = 0u64;
        loop {
            let wait_ms = next_tick_ms.saturating_sub(clock::now_ms());
            let mut stop = false;
            let first = match rx.recv_timeout(Duration::from_millis(wait_ms)) {
                Ok(input) => Some(input),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            };
            let now_ms = clock::now_ms();
            if let Some(input) = first {
                stop |= self.handle(now_ms, input, &mut out);
                for _ in 1..BATCH_MAX {
                    match rx.try_recv() {
                        Ok(input) => stop |= self.handle(now_ms, input, &mut out),
                        Err(_) => break,
                    }
                }
            }
            if now_ms >= next_tick_ms {
                next_tick_ms = now_ms + TICK_MS;
                self.tick(now_ms, &mut out);
            }
            if now_ms >= next_metrics_ms {
                next_metrics_ms = now_ms + METRICS_MS;
                self.parts.metrics.update(&self.status());
            }
            self.flush(&mut out)?;
            if stop {
                return Ok(());
            }
        }
    }

    /// Handles one input; true on [`Input::Stop`].
    fn handle(&mut self, now_ms: u64, input: Input, out: &mut Vec<Out>) -> bool {
        match input {
            Input::Stop => return true,
            Input::Request {
                op,
                consistency,
                reply,
            } => {
                let Some(node) = &mut self.node else {
                    let waiting: Vec<&str> = self
                        .seeds
                        .iter()
                        .filter(|(_, id)| id.is_none())
                        .map(|(addr, _)| addr.as_str())
                        .collect();
                    let text = format!(
                        "CLUSTERDOWN the cluster is forming: waiting for {}",
                        waiting.join(", ")
                    );
                    let _ = reply.send(Reply::Refused(text));
                    return false;
                };
                if self.clients.len() >= self.parts.cluster.limits.requests_in_flight_max {
                    let text = "TRYAGAIN too many requests in flight on this node".to_string();
                    let _ = reply.send(Reply::Refused(text));
                    return false;
                }
                self.next_client = (self.next_client + 1) % (1 << 62);
                let id = self.next_client;
                let deadline_ms = now_ms + 3 * self.parts.cluster.timing.request_timeout_ms;
                self.clients.insert(id, (reply, deadline_ms));
                node.request_with(now_ms, id, op, consistency, out);
            }
            Input::Message { from, msg } => {
                if let Some(node) = &mut self.node {
                    node.receive(now_ms, from, msg, out);
                }
            }
            Input::Hello {
                dialed,
                spec,
                known,
            } => self.hello(now_ms, dialed, spec, known),
            Input::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Input::Change { join, reply } => {
                let Some(node) = &mut self.node else {
                    let _ = reply.send(Err("CLUSTERDOWN the cluster is forming".into()));
                    return false;
                };
                let me = &self.parts.me;
                let change = if join {
                    MemberChange::Join(NodeSpec {
                        id: me.id,
                        vnodes: me.vnodes,
                        datacenter: me.datacenter.clone(),
                    })
                } else {
                    MemberChange::Leave(me.id)
                };
                let result = node.change(now_ms, change, out);
                if let Err(err) = &result {
                    tracing::warn!(error = %err, "membership change refused");
                } else {
                    tracing::info!(join, "membership change started");
                }
                let _ = reply.send(result.map_err(|e| format!("ERR {e}")));
            }
        }
        false
    }

    fn hello(
        &mut self,
        now_ms: u64,
        dialed: Option<String>,
        spec: MemberSpec,
        known: Vec<MemberSpec>,
    ) {
        if let Some(addr) = dialed
            && let Some(slot) = self.seeds.get_mut(&addr)
        {
            *slot = Some(spec.id);
        }
        let mut learned = false;
        for member in std::iter::once(spec).chain(known) {
            if member.id == self.parts.me.id {
                continue;
            }
            match self.parts.members.get(&member.id) {
                Some(old) if *old == member => {}
                Some(old) if self.node.is_some() => {
                    tracing::warn!(node = member.id.0, was = ?old, now = ?member, "a member changed its settings; restart the cluster to apply");
                }
                _ => {
                    // Before forming: a member to wait for. After: a node
                    // joining (the ring itself changes by gossip of the
                    // topology; this only makes it reachable).
                    self.parts
                        .links
                        .dial(member.addr.clone(), self.parts.inputs.clone());
                    self.parts.members.insert(member.id, member);
                    learned = true;
                }
            }
        }
        if learned {
            self.refresh_hello();
        }
        self.try_form(now_ms);
    }

    fn refresh_hello(&self) {
        let mut known: Vec<MemberSpec> = self.parts.members.values().cloned().collect();
        known.push(self.parts.me.clone());
        self.parts.local.hello.lock().1 = known;
    }

    /// Builds the ring and boots the state machine once every seed is known.
    fn try_form(&mut self, now_ms: u64) {
        if self.node.is_some() || self.seeds.values().any(Option::is_none) {
            return;
        }
        // A node started with `--join` forms outside the ring (unless it
        // saved one: then `Node::boot` uses that).
        let me = (!self.parts.cluster.join).then_some(&self.parts.me);
        let specs: Vec<NodeSpec> = me
            .into_iter()
            .chain(self.parts.members.values())
            .map(|m| NodeSpec {
                id: m.id,
                vnodes: m.vnodes,
                datacenter: m.datacenter.clone(),
            })
            .collect();
        let cluster = &self.parts.cluster;
        let placement = match Placement::new(&specs, cluster.quorum.n) {
            Ok(p) => p,
            Err(err) => {
                tracing::error!(error = %err, "cannot form the cluster");
                return;
            }
        };
        let setup = Setup {
            placement: Arc::new(placement),
            quorum: cluster.quorum,
            mode: cluster.mode,
            timing: cluster.timing,
            membership: cluster.membership,
            prune: PrunePolicy::default(),
        };
        let Some(disk) = self.disk.take() else {
            return;
        };
        if let Err(err) = self
            .parts
            .store
            .save_members(&self.parts.me, &self.parts.members)
        {
            tracing::warn!(error = %err, "cannot save the members");
        }
        let seed = u64::from(self.parts.me.id.0) ^ now_ms;
        self.node = Some(Node::boot(self.parts.me.id, disk, &setup, now_ms, seed));
        tracing::info!(
            node = self.parts.me.id.0,
            members = specs.len(),
            "cluster formed"
        );
    }

    fn tick(&mut self, now_ms: u64, out: &mut Vec<Out>) {
        let Some(node) = &mut self.node else {
            return;
        };
        node.tick(now_ms, out);
        for event in node.membership.drain_events() {
            match event {
                Event::Down(n) => tracing::warn!(peer = n.0, "peer marked down"),
                Event::Up(n) => tracing::info!(peer = n.0, "peer up again"),
            }
        }
        // Answers that never came (the node answers every round by its
        // deadline; this only frees what a lost forward left).
        self.clients
            .retain(|_, (reply, deadline_ms)| now_ms < *deadline_ms && !reply.is_closed());
    }

    /// Persists, then sends and answers, in that order (see the module
    /// docs); a forward that cannot be sent is re-routed, which may
    /// produce more outputs.
    fn flush(&mut self, out: &mut Vec<Out>) -> Result<(), StoreError> {
        let mut rerouted = Vec::new();
        // Each request is re-routed once; a second unreachable coordinator
        // leaves it to the client's timeout (and bounds this loop).
        let mut retried = std::collections::HashSet::new();
        while !out.is_empty() {
            self.persist.clear();
            for o in out.iter_mut() {
                if let Out::Persist(p) = o {
                    let p = std::mem::replace(p, Persist::Counter(0));
                    self.persist.push(p);
                }
            }
            self.parts.store.persist(&self.persist)?;
            let mut failed = Vec::new();
            let mut unsent = Vec::new();
            for o in out.drain(..) {
                match o {
                    Out::Send(to, msg @ Msg::Forward { .. }) => {
                        if !self.parts.links.send(to, &msg)
                            && let Msg::Forward {
                                client,
                                op,
                                consistency,
                            } = msg
                        {
                            failed.push((to, client, op, consistency));
                        }
                    }
                    Out::Send(to, msg) => {
                        if !self.parts.links.send(to, &msg)
                            && let Msg::Replicate {
                                key,
                                state,
                                hint_for: None,
                                ..
                            } = msg
                        {
                            unsent.push((to, key, state));
                        }
                    }
                    Out::Answer(client, answer) => {
                        if let Some((reply, _)) = self.clients.remove(&client) {
                            let _ = reply.send(Reply::Answer(answer));
                        }
                    }
                    Out::Persist(_) => {}
                }
            }
            if let Some(node) = &mut self.node {
                let now_ms = clock::now_ms();
                for (to, key, state) in unsent {
                    node.replicate_failed(to, key, &state, &mut rerouted);
                }
                for (to, client, op, consistency) in failed {
                    if !retried.insert(client) {
                        continue;
                    }
                    node.forward_failed(now_ms, to, client, op, consistency, &mut rerouted);
                }
            }
            std::mem::swap(out, &mut rerouted);
        }
        Ok(())
    }

    fn status(&self) -> Status {
        let cluster = &self.parts.cluster;
        let ownership: BTreeMap<NodeId, f64> = self
            .node
            .as_ref()
            .map(|n| n.placement().ownership().into_iter().collect())
            .unwrap_or_default();
        let backlog: BTreeMap<NodeId, (usize, usize)> = self
            .node
            .as_ref()
            .map(|n| {
                n.disk
                    .hints
                    .backlog()
                    .into_iter()
                    .map(|(id, k, b)| (id, (k, b)))
                    .collect()
            })
            .unwrap_or_default();
        let me = &self.parts.me;
        let members = std::iter::once(me)
            .chain(self.parts.members.values())
            .map(|m| {
                let state = match &self.node {
                    None => "unknown",
                    Some(_) if m.id == me.id => "self",
                    Some(n) => match n.membership.status(m.id) {
                        Liveness::Alive => "alive",
                        Liveness::Suspect => "suspect",
                        Liveness::Down => "down",
                    },
                };
                let (hints_keys, hints_bytes) = backlog.get(&m.id).copied().unwrap_or_default();
                let ring = self
                    .node
                    .as_ref()
                    .and_then(|n| n.topology().state_of(m.id))
                    .map_or("not in ring", |s| s.name());
                MemberStatus {
                    id: m.id.0,
                    addr: m.addr.clone(),
                    datacenter: m.datacenter.clone(),
                    vnodes: m.vnodes,
                    ownership: ownership.get(&m.id).copied().unwrap_or(0.0),
                    state: state.into(),
                    hints_keys,
                    hints_bytes,
                    ring: ring.into(),
                }
            })
            .collect();
        let progress = self
            .node
            .as_ref()
            .map(Node::ae_progress)
            .unwrap_or_default();
        Status {
            node_id: me.id.0,
            formed: self.node.is_some(),
            waiting_for: self
                .seeds
                .iter()
                .filter(|(_, id)| id.is_none())
                .map(|(addr, _)| addr.clone())
                .collect(),
            replicas: cluster.quorum.n,
            write_quorum: cluster.quorum.w,
            read_quorum: cluster.quorum.r,
            quorum_mode: match cluster.mode {
                QuorumMode::Sloppy => "sloppy",
                QuorumMode::Strict => "strict",
            }
            .into(),
            members,
            keys: self.node.as_ref().map_or(0, |n| n.disk.store.len()),
            hints_keys: backlog.values().map(|(k, _)| k).sum(),
            anti_entropy: AntiEntropyStatus {
                rounds_started: progress.rounds_started,
                rounds_in_sync: progress.rounds_in_sync,
                rounds_differ: progress.rounds_differ,
                keys_repaired: progress.keys_repaired,
                tombstones_purged: progress.tombstones_purged,
            },
            in_flight: self.node.as_ref().map_or(0, Node::in_flight),
            messages_dropped: self.parts.links.dropped.load(Ordering::Relaxed),
            change: self.change_status(),
        }
    }

    fn change_status(&self) -> ChangeStatus {
        let Some(node) = &self.node else {
            return ChangeStatus::default();
        };
        let t = node.topology();
        let stream = node.stream_progress();
        ChangeStatus {
            version: t.version,
            phase: t.phase.name().into(),
            seen: t.seen.iter().map(|n| n.0).collect(),
            streamed: t.streamed.iter().map(|n| n.0).collect(),
            stream_sources: stream.sources,
            stream_sources_done: stream.sources_done,
            stream_keys: stream.keys,
        }
    }
}
