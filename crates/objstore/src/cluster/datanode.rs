//! A data node as a process of its own (`hyperscale s3 datanode`): the embedded
//! [`Node`] served over the [`super::wire`] protocol, and the [`DataNode`] trait the
//! API node's data routing uses for in-process and remote nodes alike.
//!
//! Why blocking threads: every verb ends in a blocking call on [`Node`] (a group
//! commit's fsync, a `pread` and a checksum), so a thread per connection, capped at
//! `connections_max`, is the simplest server that never blocks an async worker. Idle
//! connections are closed after `idle_timeout_ms`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::wire::{self, NodeInfo, Op, Remote, status};
use crate::{Error, Node, ObjectId, Result};

/// One data node as the data routing service sees it: in-process ([`Node`]) or a
/// process reached over the network ([`Remote`]).
pub trait DataNode: Send + Sync {
    /// Stores `data` under `id` (replacing); durable (fsynced) when it returns.
    fn put(&self, id: ObjectId, data: &[u8]) -> Result<()>;
    /// The object, checksum verified ([`Error::Corrupt`] otherwise), or `None`.
    fn get(&self, id: ObjectId) -> Result<Option<Vec<u8>>>;
    /// Deletes the object; whether it was there.
    fn delete(&self, id: ObjectId) -> Result<bool>;
    /// The heartbeat.
    fn ping(&self) -> Result<NodeInfo>;
}

impl DataNode for Node {
    fn put(&self, id: ObjectId, data: &[u8]) -> Result<()> {
        self.put_with_id(id, data)
    }
    fn get(&self, id: ObjectId) -> Result<Option<Vec<u8>>> {
        Node::get(self, id, ..)
    }
    fn delete(&self, id: ObjectId) -> Result<bool> {
        Node::delete(self, id)
    }
    fn ping(&self) -> Result<NodeInfo> {
        let s = self.stats();
        Ok(NodeInfo {
            node_id: self.path().display().to_string(),
            zone: String::new(),
            objects: s.objects,
            disk_bytes: s.disk_bytes,
            capacity_bytes: u64::MAX,
        })
    }
}

impl DataNode for Remote {
    fn put(&self, id: ObjectId, data: &[u8]) -> Result<()> {
        match self.call(Op::Put, id, data)? {
            (status::OK, _) => Ok(()),
            (st, msg) => Err(self.status_error(st, &msg)),
        }
    }
    fn get(&self, id: ObjectId) -> Result<Option<Vec<u8>>> {
        match self.call(Op::Get, id, &[])? {
            (status::OK, data) => Ok(Some(data)),
            (status::NOT_FOUND, _) => Ok(None),
            (st, msg) => Err(self.status_error(st, &msg)),
        }
    }
    fn delete(&self, id: ObjectId) -> Result<bool> {
        match self.call(Op::Delete, id, &[])? {
            (status::OK, _) => Ok(true),
            (status::NOT_FOUND, _) => Ok(false),
            (st, msg) => Err(self.status_error(st, &msg)),
        }
    }
    fn ping(&self) -> Result<NodeInfo> {
        match self.call(Op::Ping, ObjectId::from_bytes([0; 16]), &[])? {
            (status::OK, json) => serde_json::from_slice(&json).map_err(|e| {
                Error::Unavailable(format!("data node {}: bad heartbeat: {e}", self.addr()))
            }),
            (st, msg) => Err(self.status_error(st, &msg)),
        }
    }
}

/// Settings of a data node server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Its name in heartbeats.
    pub node_id: String,
    /// Its failure domain.
    pub zone: String,
    /// The shared cluster secret clients must present.
    pub secret: Vec<u8>,
    /// Connections served at once; more are closed at once.
    pub connections_max: usize,
    /// A connection idle (or stalled mid-frame) this long is closed.
    pub idle_timeout_ms: u64,
    /// Its capacity limit, reported in heartbeats.
    pub capacity_bytes: u64,
}

/// Serves `node` on `listener` until accepting fails. Each connection runs on a thread
/// of its own.
pub fn serve(listener: TcpListener, node: Arc<Node>, cfg: ServerConfig) -> std::io::Result<()> {
    let cfg = Arc::new(cfg);
    let live = Arc::new(AtomicUsize::new(0));
    loop {
        let (socket, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => continue,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a data-node connection failed");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if live.fetch_add(1, Ordering::SeqCst) >= cfg.connections_max {
            live.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(%peer, "too many data-node connections; closing one");
            continue;
        }
        let (node, cfg, live) = (node.clone(), cfg.clone(), live.clone());
        let spawned = std::thread::Builder::new()
            .name("datanode-conn".into())
            .spawn(move || {
                if let Err(e) = connection(socket, &node, &cfg) {
                    tracing::debug!(%peer, error = %e, "data-node connection ended");
                }
                live.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start a connection thread");
        }
    }
}

fn connection(mut s: TcpStream, node: &Node, cfg: &ServerConfig) -> std::io::Result<()> {
    let timeout = Some(Duration::from_millis(cfg.idle_timeout_ms.max(1)));
    s.set_read_timeout(timeout)?;
    s.set_write_timeout(timeout)?;
    s.set_nodelay(true)?;
    let mut hello = [0u8; 6];
    s.read_exact(&mut hello)?;
    let len = u16::from_be_bytes([hello[4], hello[5]]) as usize;
    if hello[..4] != wire::MAGIC || len > wire::SECRET_BYTES_MAX {
        s.write_all(&[status::BAD_REQUEST])?;
        return Ok(());
    }
    let mut secret = vec![0u8; len];
    s.read_exact(&mut secret)?;
    if !wire::secret_eq(&secret, &cfg.secret) {
        tracing::warn!("a client presented a wrong cluster secret");
        s.write_all(&[status::BAD_REQUEST])?;
        return Ok(());
    }
    s.write_all(&[status::OK])?;
    loop {
        let mut head = [0u8; 17];
        match s.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let payload = wire::read_payload(&mut s)?;
        let mut id = [0u8; 16];
        id.copy_from_slice(&head[1..]);
        let id = ObjectId::from_bytes(id);
        let (st, body) = match Op::from_u8(head[0]) {
            None => (status::BAD_REQUEST, b"unknown verb".to_vec()),
            Some(op) => answer(node, cfg, op, id, &payload),
        };
        wire::write_frame(&mut s, &[st], &body)?;
    }
}

fn answer(node: &Node, cfg: &ServerConfig, op: Op, id: ObjectId, payload: &[u8]) -> (u8, Vec<u8>) {
    let r = match op {
        Op::Put => node
            .put_with_id(id, payload)
            .map(|()| (status::OK, Vec::new())),
        Op::Get => node.get(id, ..).map(|d| match d {
            Some(d) => (status::OK, d),
            None => (status::NOT_FOUND, Vec::new()),
        }),
        Op::Delete => node
            .delete(id)
            .map(|was| (if was { status::OK } else { status::NOT_FOUND }, Vec::new())),
        Op::Ping => {
            let s = node.stats();
            let info = NodeInfo {
                node_id: cfg.node_id.clone(),
                zone: cfg.zone.clone(),
                objects: s.objects,
                disk_bytes: s.disk_bytes,
                capacity_bytes: cfg.capacity_bytes,
            };
            Ok((status::OK, serde_json::to_vec(&info).unwrap_or_default()))
        }
    };
    match r {
        Ok(a) => a,
        Err(e @ Error::Corrupt { .. }) => {
            tracing::error!(%id, error = %e, "refusing to serve a corrupt object");
            (status::CORRUPT, e.to_string().into_bytes())
        }
        Err(e @ Error::Full(_)) => (status::FULL, e.to_string().into_bytes()),
        Err(e @ Error::InvalidArgument(_)) => (status::BAD_REQUEST, e.to_string().into_bytes()),
        Err(e) => (status::ERROR, e.to_string().into_bytes()),
    }
}
