//! The I/O around the Raft core: one task (the [`Driver`]) owns the Raft
//! state, persists it, sends its messages, applies committed commands to
//! the metadata [`Image`], and — while this node leads — acts as the
//! controller: it answers heartbeats, topic changes and ISR changes with
//! proposals (decided by `controller`), and fences brokers whose
//! heartbeats stop. Everyone else reaches it with [`Node::call_controller`],
//! which follows leader hints.
//!
//! Controller decisions are taken on the *projected* image (the applied
//! image plus the log's uncommitted tail), so two changes in flight never
//! both start from the same old state.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::controller::{self, Liveness};
use super::metadata::{BrokerId, Command, Image};
use super::raft::storage::Storage;
use super::raft::{Message, Raft, Role, Timing};
use super::transport::{Pool, ReplicaFetch, Request, Response, Rpc, read_frame, write_frame};

/// How often the driver ticks (elections, heartbeats).
const TICK: Duration = Duration::from_millis(20);
/// How often the controller looks for brokers whose heartbeats stopped.
const LIVENESS_CHECK_MS: u64 = 100;
/// How often the controller moves leaderships back to preferred replicas
/// (Kafka's `leader.imbalance.check.interval.seconds`, 300 s there).
const PREFERRED_LEADER_CHECK_MS: u64 = 5_000;

/// Settings of a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This broker.
    pub broker_id: BrokerId,
    /// Every voter's internal address, by id.
    pub voters: BTreeMap<BrokerId, String>,
    /// Where the Raft state lives.
    pub raft_dir: PathBuf,
    /// Raft timeouts.
    pub timing: Timing,
    /// A broker not heard from this long is fenced.
    pub session_timeout_ms: u64,
    /// How often a broker heartbeats the controller.
    pub heartbeat_interval_ms: u64,
}

enum Input {
    Raft {
        from: BrokerId,
        message: Message<Command>,
    },
    Call {
        request: Request,
        reply: oneshot::Sender<Response>,
    },
}

/// The replica-fetch handler the internal listener calls (it lives with the partitions).
pub type FetchHandler = Arc<
    dyn Fn(ReplicaFetch) -> Pin<Box<dyn Future<Output = (Response, Bytes)> + Send>> + Send + Sync,
>;

/// This broker's membership in the cluster: its view of the metadata and
/// the way to the controller.
pub struct Node {
    /// The settings.
    pub config: NodeConfig,
    image: watch::Sender<Arc<Image>>,
    leader: AtomicI32,
    inbox: mpsc::UnboundedSender<Input>,
    /// Connections to other brokers' internal listeners.
    pub pool: Pool,
}

/// The task that owns the Raft state (see the module doc).
pub struct Driver {
    node: Arc<Node>,
    raft: Raft<Command>,
    storage: Storage,
    rx: mpsc::UnboundedReceiver<Input>,
    pending: BTreeMap<u64, (u64, Option<oneshot::Sender<Response>>)>,
    liveness: Liveness,
    leader_since: u64,
    next_liveness_check: u64,
    next_preferred_check: u64,
    was_leader: bool,
    started: Instant,
    peers: BTreeMap<BrokerId, mpsc::UnboundedSender<Message<Command>>>,
}

impl Node {
    /// Opens the Raft state (blocking); run the returned driver with [`Driver::run`].
    pub fn open(config: NodeConfig) -> anyhow::Result<(Arc<Node>, Driver)> {
        let (storage, hard, log) = Storage::open::<Command>(&config.raft_dir)?;
        let voters: Vec<BrokerId> = config.voters.keys().copied().collect();
        let seed = u64::try_from(config.broker_id).unwrap_or(0) ^ clock::now_ms();
        let raft = Raft::new(config.broker_id, voters, config.timing, hard, log, 0, seed);
        let (inbox, rx) = mpsc::unbounded_channel();
        let (image, _) = watch::channel(Arc::new(Image::default()));
        let node = Arc::new(Node {
            config,
            image,
            leader: AtomicI32::new(-1),
            inbox,
            pool: Pool::default(),
        });
        let driver = Driver {
            node: node.clone(),
            raft,
            storage,
            rx,
            pending: BTreeMap::new(),
            liveness: Liveness::default(),
            leader_since: 0,
            next_liveness_check: 0,
            next_preferred_check: 0,
            was_leader: false,
            started: Instant::now(),
            peers: BTreeMap::new(),
        };
        Ok((node, driver))
    }

    /// The metadata as applied here.
    pub fn image(&self) -> Arc<Image> {
        self.image.borrow().clone()
    }

    /// Changes of the applied metadata.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Image>> {
        self.image.subscribe()
    }

    /// The active controller as this node knows it (-1: none).
    pub fn controller_id(&self) -> BrokerId {
        self.leader.load(Ordering::Acquire)
    }

    /// Waits until the metadata applied here reaches `index`.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> bool {
        let mut rx = self.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|image| image.applied >= index))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Sends `request` to the active controller, following leader hints and
    /// retrying while there is none, until `timeout`.
    pub async fn call_controller(
        &self,
        request: Request,
        timeout: Duration,
    ) -> Result<Response, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut target = self.controller_id();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err("no controller answered in time".into());
            }
            if let Some(addr) = self.config.voters.get(&target) {
                match self.pool.call(addr, request.clone(), left).await {
                    Ok((Response::NotController { hint }, _)) => {
                        if let Some(hint) = hint.filter(|h| *h != target) {
                            target = hint;
                            continue;
                        }
                    }
                    Ok((response, _)) => return Ok(response),
                    Err(err) => tracing::debug!(target, error = %err, "controller call failed"),
                }
            }
            tokio::time::sleep(Duration::from_millis(50).min(left)).await;
            target = self.controller_id();
        }
    }

    /// Heartbeats the controller until `stop` (the controller fences a broker that stops).
    pub async fn run_heartbeats(self: Arc<Self>, host: String, port: i32, stop: CancellationToken) {
        let every = Duration::from_millis(self.config.heartbeat_interval_ms.max(10));
        let request = Request::Heartbeat {
            broker: self.config.broker_id,
            host,
            port,
        };
        loop {
            let call = self.call_controller(request.clone(), every * 2);
            tokio::select! {
                () = stop.cancelled() => return,
                _ = call => {}
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// Serves the internal listener: Raft messages to the driver, requests
    /// to the driver (or `fetch` for replication), until `stop`.
    pub async fn serve_internal(
        self: Arc<Self>,
        listener: TcpListener,
        fetch: FetchHandler,
        stop: CancellationToken,
    ) {
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let Ok((stream, _)) = accepted else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let (node, fetch, stop) = (self.clone(), fetch.clone(), stop.clone());
            tokio::spawn(async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    result = node.serve_peer(stream, fetch) => if let Err(err) = result {
                        tracing::debug!(error = %err, "internal connection closed");
                    },
                }
            });
        }
    }

    async fn serve_peer(&self, stream: TcpStream, fetch: FetchHandler) -> std::io::Result<()> {
        let _ = stream.set_nodelay(true);
        let (mut reader, mut writer) = stream.into_split();
        while let Some((rpc, _payload)) = read_frame(&mut reader).await? {
            match rpc {
                Rpc::Raft { from, message } => {
                    let _ = self.inbox.send(Input::Raft { from, message });
                }
                Rpc::Request(Request::ReplicaFetch(request)) => {
                    let (response, payload) = fetch(request).await;
                    write_frame(&mut writer, &Rpc::Response(response), &payload).await?;
                }
                Rpc::Request(request) => {
                    let (reply, answer) = oneshot::channel();
                    let _ = self.inbox.send(Input::Call { request, reply });
                    let response = answer
                        .await
                        .unwrap_or(Response::NotController { hint: None });
                    write_frame(&mut writer, &Rpc::Response(response), &[]).await?;
                }
                Rpc::Response(_) => return Err(std::io::Error::other("unexpected response frame")),
            }
        }
        Ok(())
    }
}

/// Sends one peer's Raft messages over one connection, reconnecting as
/// needed; messages that cannot be sent are dropped (Raft retries).
async fn peer_sender(
    from: BrokerId,
    addr: String,
    mut rx: mpsc::UnboundedReceiver<Message<Command>>,
) {
    let mut stream: Option<TcpStream> = None;
    while let Some(message) = rx.recv().await {
        if stream.is_none() {
            let connect =
                tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(&addr));
            if let Ok(Ok(s)) = connect.await {
                let _ = s.set_nodelay(true);
                stream = Some(s);
            }
        }
        if let Some(s) = stream.as_mut() {
            let rpc = Rpc::Raft { from, message };
            let sent =
                tokio::time::timeout(Duration::from_secs(1), write_frame(s, &rpc, &[])).await;
            if !matches!(sent, Ok(Ok(()))) {
                stream = None;
            }
        }
    }
}

impl Driver {
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Runs until `stop`; a failure to persist Raft state ends it with an error.
    pub async fn run(mut self, stop: CancellationToken) -> anyhow::Result<()> {
        let me = self.node.config.broker_id;
        for (&id, addr) in &self.node.config.voters {
            if id != me {
                let (tx, rx) = mpsc::unbounded_channel();
                self.peers.insert(id, tx);
                tokio::spawn(peer_sender(me, addr.clone(), rx));
            }
        }
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                _ = ticker.tick() => {
                    let now = self.now();
                    self.raft.tick(now);
                    self.controller_tick(now);
                }
                input = self.rx.recv() => match input {
                    None => return Ok(()),
                    Some(Input::Raft { from, message }) => {
                        let now = self.now();
                        self.raft.step(now, from, message);
                    }
                    Some(Input::Call { request, reply }) => self.call(request, reply),
                },
            }
            self.process_ready()?;
        }
    }

    fn process_ready(&mut self) -> anyhow::Result<()> {
        let ready = self.raft.ready();
        if let Some(hard) = ready.hard_state {
            self.storage.save_hard_state(hard)?;
        }
        if let Some(from) = ready.log_changed_from {
            self.storage.save_log(
                from,
                self.raft.entries_from(from),
                self.raft.entries_from(1),
            )?;
        }
        for (to, message) in ready.messages {
            if let Some(peer) = self.peers.get(&to) {
                let _ = peer.send(message);
            }
        }
        if !ready.committed.is_empty() {
            let mut image = (*self.node.image()).clone();
            for (index, entry) in ready.committed {
                match &entry.command {
                    Some(command) => image.apply(index, command),
                    None => image.applied = index,
                }
                if let Some((term, reply)) = self.pending.remove(&index)
                    && let Some(reply) = reply
                {
                    let _ = reply.send(if term == entry.term {
                        Response::Done { index }
                    } else {
                        Response::NotController {
                            hint: self.raft.leader(),
                        }
                    });
                }
            }
            self.node.image.send_replace(Arc::new(image));
        }
        self.node
            .leader
            .store(self.raft.leader().unwrap_or(-1), Ordering::Release);
        let leading = self.raft.role() == Role::Leader;
        if leading && !self.was_leader {
            self.leader_since = self.now();
            self.liveness = Liveness::default();
            tracing::info!(
                broker = self.node.config.broker_id,
                term = self.raft.term(),
                "elected controller"
            );
        }
        if !leading && self.was_leader {
            for (_, (_, reply)) in std::mem::take(&mut self.pending) {
                if let Some(reply) = reply {
                    let _ = reply.send(Response::NotController {
                        hint: self.raft.leader(),
                    });
                }
            }
        }
        self.was_leader = leading;
        Ok(())
    }

    /// The applied image plus the log's uncommitted entries.
    fn projected(&self) -> Image {
        let mut image = (*self.node.image()).clone();
        let from = image.applied + 1;
        for (offset, entry) in self.raft.entries_from(from).iter().enumerate() {
            if let Some(command) = &entry.command {
                image.apply(from + offset as u64, command);
            }
        }
        image
    }

    fn propose(&mut self, commands: Vec<Command>, reply: Option<oneshot::Sender<Response>>) {
        let now = self.now();
        let mut last = None;
        for command in commands {
            match self.raft.propose(now, command) {
                Ok(at) => last = Some(at),
                Err(hint) => {
                    if let Some(reply) = reply {
                        let _ = reply.send(Response::NotController { hint });
                    }
                    return;
                }
            }
        }
        match last {
            Some((term, index)) => {
                self.pending.insert(index, (term, reply));
            }
            None => {
                if let Some(reply) = reply {
                    let _ = reply.send(Response::Done {
                        index: self.raft.commit_index(),
                    });
                }
            }
        }
    }

    fn controller_tick(&mut self, now: u64) {
        if self.raft.role() != Role::Leader || now < self.next_liveness_check {
            return;
        }
        self.next_liveness_check = now + LIVENESS_CHECK_MS;
        let timeout = self.node.config.session_timeout_ms;
        let mut image = self.projected();
        if now >= self.next_preferred_check {
            self.next_preferred_check = now + PREFERRED_LEADER_CHECK_MS;
            let moves = controller::preferred_leaders(&image);
            if !moves.is_empty() {
                tracing::info!(
                    partitions = moves.len(),
                    "moving leaderships back to preferred replicas"
                );
                for c in &moves {
                    image.apply(image.applied, c);
                }
                self.propose(moves, None);
            }
        }
        for broker in self
            .liveness
            .expired(&image, now, self.leader_since, timeout)
        {
            tracing::warn!(
                broker,
                "no heartbeat within broker_session_timeout_ms: fencing"
            );
            let commands = controller::fence(&image, broker);
            for c in &commands {
                image.apply(image.applied, c);
            }
            self.propose(commands, None);
        }
    }

    fn call(&mut self, request: Request, reply: oneshot::Sender<Response>) {
        if self.raft.role() != Role::Leader {
            let _ = reply.send(Response::NotController {
                hint: self.raft.leader(),
            });
            return;
        }
        let error = |code: i16, message: String| Response::Error { code, message };
        let image = self.projected();
        match request {
            Request::Heartbeat { broker, host, port } => {
                self.liveness.heard(broker, self.now());
                let current = image.brokers.get(&broker);
                let fresh = current.is_some_and(|b| !b.fenced && b.host == host && b.port == port);
                if !fresh && self.node.config.voters.contains_key(&broker) {
                    tracing::info!(broker, "broker registered");
                    self.propose(controller::register(&image, broker, host, port), None);
                }
                let _ = reply.send(Response::Done {
                    index: self.raft.commit_index(),
                });
            }
            Request::CreateTopic {
                name,
                partitions,
                replication_factor,
                configs,
            } => {
                if image.topics.contains_key(&name) {
                    let _ = reply.send(error(
                        ResponseError::TopicAlreadyExists.code(),
                        format!("topic {name} already exists"),
                    ));
                    return;
                }
                let live = image.live_brokers();
                let start = fastrand::usize(..live.len().max(1));
                match controller::place_replicas(&live, partitions, replication_factor, start) {
                    Ok(placed) => self.propose(
                        vec![Command::CreateTopic {
                            name,
                            configs,
                            partitions: placed,
                        }],
                        Some(reply),
                    ),
                    Err((code, message)) => {
                        let _ = reply.send(error(code, message));
                    }
                }
            }
            Request::DeleteTopic { name } => {
                if image.topics.contains_key(&name) {
                    self.propose(vec![Command::DeleteTopic { name }], Some(reply));
                } else {
                    let _ = reply.send(error(
                        ResponseError::UnknownTopicOrPartition.code(),
                        format!("topic {name} does not exist"),
                    ));
                }
            }
            Request::AlterIsr {
                topic,
                partition,
                broker,
                leader_epoch,
                partition_epoch,
                isr,
            } => match controller::alter_isr(
                &image,
                &topic,
                partition,
                broker,
                leader_epoch,
                partition_epoch,
                isr,
            ) {
                Ok(command) => self.propose(vec![command], Some(reply)),
                Err(code) => {
                    let _ = reply.send(error(code, "ISR change refused".into()));
                }
            },
            Request::ReplicaFetch(_) => {
                let _ = reply.send(error(
                    ResponseError::InvalidRequest.code(),
                    "not a controller request".into(),
                ));
            }
        }
    }
}
