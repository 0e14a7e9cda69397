//! TCP between nodes: one outbound connection per peer for this node's
//! messages, inbound connections for theirs, each authenticated
//! ([`super::frame`]) and opened with a hello ([`Envelope::Hello`]).
//!
//! Why it exists: the replica state machine only says "send this to node
//! 3"; someone has to hold connections, reconnect after a crash, bound
//! what waits for a slow or dead peer, and refuse strangers. Messages
//! between replicas tolerate loss by design (rounds time out, hints are
//! re-offered, anti-entropy repeats), so a full queue drops the message
//! (counted in `cluster status`) instead of blocking the node.
//!
//! - **Outbound** ([`Links::dial`]): a task per peer address connects
//!   (`connect_timeout_ms`), authenticates (`handshake_timeout_ms`),
//!   exchanges hellos, then writes queued payloads, each sealed into a
//!   frame; on any error it waits and reconnects. Its queue holds at most
//!   `peer_queue_max` messages.
//! - **Inbound** ([`accept_loop`]): each connection authenticates, reads
//!   the peer's hello, answers with this node's, then reads frames until
//!   the peer is silent for `idle_timeout_ms` (peers gossip every few
//!   hundred ms, so silence means a dead link) and hands each decoded
//!   message to the node's thread.
//!
//! A wrong secret, version, a corrupt or oversized frame, a hello with
//! another replication factor or a wall clock more than
//! `clock_skew_max_ms` off closes the connection with a warning in the
//! log; nothing from it is applied.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::frame::{self, FrameError, Nonces, Opener, Sealer, Secret};
use super::{Input, NetLimits};
use crate::cluster::NodeId;
use crate::cluster::replica::Msg;
use crate::cluster::wire::{self, Envelope, MemberSpec};

/// Wait before reconnecting to a peer that failed.
const RECONNECT_MS: u64 = 250;

/// What the transport needs to know about this node.
pub(crate) struct Local {
    pub secret: Secret,
    pub nonces: Nonces,
    pub limits: NetLimits,
    pub wire: wire::Limits,
    pub replicas: u32,
    /// This node's hello, refreshed as it learns members.
    pub hello: Mutex<(MemberSpec, Vec<MemberSpec>)>,
}

impl Local {
    fn hello(&self) -> Vec<u8> {
        let (spec, known) = self.hello.lock().clone();
        wire::encode_envelope(&Envelope::Hello {
            spec,
            known,
            replicas: self.replicas,
            wall_ms: clock::now_ms(),
        })
    }

    /// Checks a peer's hello; the refusal says why.
    fn check(&self, envelope: Envelope) -> Result<(MemberSpec, Vec<MemberSpec>), String> {
        let Envelope::Hello {
            spec,
            known,
            replicas,
            wall_ms,
        } = envelope
        else {
            return Err("the first frame is not a hello".into());
        };
        if replicas != self.replicas {
            return Err(format!(
                "node {} runs with --replicas {replicas}, this node with {}",
                spec.id, self.replicas
            ));
        }
        let skew_ms = clock::now_ms().abs_diff(wall_ms);
        if skew_ms > self.limits.clock_skew_max_ms {
            return Err(format!(
                "node {}'s clock is {skew_ms} ms off (limit {} ms)",
                spec.id, self.limits.clock_skew_max_ms
            ));
        }
        Ok((spec, known))
    }
}

/// The outbound side: a queue per connected peer.
pub(crate) struct Links {
    local: Arc<Local>,
    queues: Mutex<HashMap<NodeId, mpsc::Sender<Vec<u8>>>>,
    dialing: Mutex<HashSet<String>>,
    /// Messages dropped: no connection to the peer, or its queue full.
    pub dropped: AtomicU64,
    runtime: tokio::runtime::Handle,
    shutdown: CancellationToken,
}

impl Links {
    pub fn new(
        local: Arc<Local>,
        runtime: tokio::runtime::Handle,
        shutdown: CancellationToken,
    ) -> Arc<Links> {
        Arc::new(Links {
            local,
            queues: Mutex::new(HashMap::new()),
            dialing: Mutex::new(HashSet::new()),
            dropped: AtomicU64::new(0),
            runtime,
            shutdown,
        })
    }

    /// Queues `msg` for `to`; never blocks (callable from any thread).
    /// False if it was dropped (no connection, or the queue is full).
    pub fn send(&self, to: NodeId, msg: &Msg) -> bool {
        let queues = self.queues.lock();
        let sent = queues.get(&to).is_some_and(|q| {
            let mut out = vec![2];
            wire::encode_msg(&mut out, msg);
            // A frame the peer would refuse (and close the link for) is
            // not sent: the rest of the protocol repairs or times out.
            out.len() <= self.local.limits.frame_bytes_max && q.try_send(out).is_ok()
        });
        if !sent {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }

    /// Starts the dialer of `addr` unless one runs (callable from any thread).
    pub fn dial(self: &Arc<Links>, addr: String, inputs: std::sync::mpsc::SyncSender<Input>) {
        if !self.dialing.lock().insert(addr.clone()) {
            return;
        }
        let links = self.clone();
        self.runtime.spawn(async move {
            let stop = links.shutdown.clone();
            tokio::select! {
                () = stop.cancelled() => {}
                () = links.dial_forever(addr, inputs) => {}
            }
        });
    }

    async fn dial_forever(&self, addr: String, inputs: std::sync::mpsc::SyncSender<Input>) {
        let mut logged = false;
        loop {
            match self.connect_once(&addr, &inputs).await {
                Ok(()) => logged = false,
                // Refusals are worth a warning every time; a peer that is
                // simply down, once until it comes back.
                Err(FrameError::Auth(why)) => tracing::warn!(%addr, why, "peer refused"),
                Err(FrameError::Version(v)) => tracing::warn!(%addr, version = v, "peer refused"),
                Err(err) if !logged => {
                    tracing::info!(%addr, error = %err, "cannot reach peer; retrying");
                    logged = true;
                }
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(RECONNECT_MS)).await;
        }
    }

    async fn connect_once(
        &self,
        addr: &str,
        inputs: &std::sync::mpsc::SyncSender<Input>,
    ) -> Result<(), FrameError> {
        let limits = self.local.limits;
        let mut stream = tokio::time::timeout(
            Duration::from_millis(limits.connect_timeout_ms),
            TcpStream::connect(addr),
        )
        .await
        .map_err(|_| FrameError::Timeout(limits.connect_timeout_ms))??;
        let _ = stream.set_nodelay(true);
        let local = &self.local;
        let (mut sealer, mut opener) = frame::dial(
            &mut stream,
            &local.secret,
            &local.nonces,
            limits.handshake_timeout_ms,
            limits.frame_bytes_max,
        )
        .await?;
        let (spec, known) = exchange_hellos(local, &mut stream, &mut sealer, &mut opener).await?;
        let peer = spec.id;
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(limits.peer_queue_max);
        self.queues.lock().insert(peer, tx);
        let hello = Input::Hello {
            dialed: Some(addr.to_string()),
            spec,
            known,
        };
        let _ = inputs.try_send(hello);
        tracing::info!(%addr, peer = peer.0, "connected to peer");
        let (mut read_half, mut write_half) = stream.into_split();
        let result = async {
            let mut buf = Vec::new();
            loop {
                tokio::select! {
                    payload = rx.recv() => {
                        let Some(payload) = payload else { return Ok(()) };
                        buf.clear();
                        sealer.seal(&payload, &mut buf);
                        // Batch what else is queued into one write.
                        while buf.len() < 256 * 1024 {
                            match rx.try_recv() {
                                Ok(more) => sealer.seal(&more, &mut buf),
                                Err(_) => break,
                            }
                        }
                        write_half.write_all(&buf).await?;
                    }
                    // The acceptor never writes after its hello: a read
                    // returning means the peer closed or died.
                    read = opener.read(&mut read_half) => {
                        return match read {
                            Ok(None) => Ok(()),
                            Ok(Some(_)) => Err(FrameError::Auth("unexpected frame from an acceptor")),
                            Err(err) => Err(err),
                        };
                    }
                }
            }
        }
        .await;
        self.queues.lock().remove(&peer);
        tracing::info!(%addr, peer = peer.0, "disconnected from peer");
        result
    }
}

async fn exchange_hellos(
    local: &Local,
    stream: &mut TcpStream,
    sealer: &mut Sealer,
    opener: &mut Opener,
) -> Result<(MemberSpec, Vec<MemberSpec>), FrameError> {
    let timeout_ms = local.limits.handshake_timeout_ms;
    let mut out = Vec::new();
    sealer.seal(&local.hello(), &mut out);
    stream.write_all(&out).await?;
    let payload = tokio::time::timeout(Duration::from_millis(timeout_ms), opener.read(stream))
        .await
        .map_err(|_| FrameError::Timeout(timeout_ms))??
        .ok_or(FrameError::Auth("closed before its hello"))?;
    let envelope = wire::decode_envelope(&payload, &local.wire)
        .map_err(|_| FrameError::Auth("a hello that does not decode"))?;
    local.check(envelope).map_err(|why| {
        tracing::warn!(reason = %why, "peer refused");
        FrameError::Auth("hello refused")
    })
}

/// Accepts peers on `listener` until `shutdown` fires.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    local: Arc<Local>,
    inputs: std::sync::mpsc::SyncSender<Input>,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                tracing::warn!(error = %err, "cluster accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let local = local.clone();
        let inputs = inputs.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                result = serve_peer(stream, &local, &inputs) => match result {
                    Ok(()) => {}
                    Err(err @ (FrameError::Auth(_) | FrameError::Version(_) | FrameError::TooLarge(_))) => {
                        tracing::warn!(%peer, error = %err, "refused an internode connection");
                    }
                    Err(err) => tracing::debug!(%peer, error = %err, "internode connection ended"),
                },
            }
        });
    }
}

async fn serve_peer(
    mut stream: TcpStream,
    local: &Local,
    inputs: &std::sync::mpsc::SyncSender<Input>,
) -> Result<(), FrameError> {
    let _ = stream.set_nodelay(true);
    let limits = local.limits;
    let (mut sealer, mut opener) = frame::accept(
        &mut stream,
        &local.secret,
        &local.nonces,
        limits.handshake_timeout_ms,
        limits.frame_bytes_max,
    )
    .await?;
    let (spec, known) = exchange_hellos(local, &mut stream, &mut sealer, &mut opener).await?;
    let from = spec.id;
    let _ = inputs.try_send(Input::Hello {
        dialed: None,
        spec,
        known,
    });
    loop {
        let idle = Duration::from_millis(limits.idle_timeout_ms);
        let payload = match tokio::time::timeout(idle, opener.read(&mut stream)).await {
            Err(_) => return Err(FrameError::Timeout(limits.idle_timeout_ms)),
            Ok(read) => match read? {
                Some(payload) => payload,
                None => return Ok(()),
            },
        };
        match wire::decode_envelope(&payload, &local.wire) {
            Ok(Envelope::Msg(msg)) => {
                // A full input queue drops the message (the node is
                // overloaded; the protocol tolerates loss).
                let _ = inputs.try_send(Input::Message { from, msg });
            }
            Ok(Envelope::Hello { .. }) => return Err(FrameError::Auth("a second hello")),
            Err(err) => {
                tracing::warn!(peer = from.0, error = %err, "refused a message that does not decode");
                return Err(FrameError::Auth("a message that does not decode"));
            }
        }
    }
}
