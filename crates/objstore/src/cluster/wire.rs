//! The data-node protocol: how an API node asks a data node process
//! (`hyperscale s3 datanode`) to put, get and delete objects, and how the placement
//! service's heartbeat reaches it.
//!
//! Why hand-written and binary: a chunk is up to 8 MiB (plus a 16-byte layout header),
//! and the chapter's data routing service only needs four verbs; a length-prefixed
//! frame over a pooled TCP connection costs one copy and no parsing. Every number a
//! peer sends is bounded before anything is allocated ([`FRAME_BYTES_MAX`],
//! [`SECRET_BYTES_MAX`]), and every socket has read and write timeouts.
//!
//! ```text
//! handshake  client → "HSD1" | secret_len u16 | secret        server → status u8 (0: ok)
//! request    op u8 | object id [16] | payload_len u32 | payload
//! response   status u8 | payload_len u32 | payload
//! ```
//!
//! The shared cluster secret authenticates the API node (compared in constant time);
//! the link is not encrypted, so data nodes belong on a private network.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use parking_lot::Mutex;

use crate::{Error, ObjectId, Result};

/// First bytes of a connection.
pub const MAGIC: [u8; 4] = *b"HSD1";
/// Longest cluster secret.
pub const SECRET_BYTES_MAX: usize = 256;
/// Largest payload of one frame: a 64 MiB object (the data node's default limit) plus
/// its layout header.
pub const FRAME_BYTES_MAX: usize = (64 << 20) + 4096;

/// Request verbs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// Store the payload under the id (replacing), durable when answered.
    Put = 1,
    /// The whole object, checksum verified.
    Get = 2,
    /// Delete the object.
    Delete = 3,
    /// Heartbeat: the node's identity and sizes as JSON ([`NodeInfo`]).
    Ping = 4,
}

impl Op {
    /// The verb of a byte, if any.
    pub fn from_u8(b: u8) -> Option<Op> {
        Some(match b {
            1 => Op::Put,
            2 => Op::Get,
            3 => Op::Delete,
            4 => Op::Ping,
            _ => return None,
        })
    }
}

/// Response statuses.
pub mod status {
    /// Done; the payload is the answer.
    pub const OK: u8 = 0;
    /// No such object.
    pub const NOT_FOUND: u8 = 1;
    /// The stored record failed its checksum: not served.
    pub const CORRUPT: u8 = 2;
    /// Any other failure; the payload is the message.
    pub const ERROR: u8 = 3;
    /// The node is full.
    pub const FULL: u8 = 4;
    /// The request was malformed or not allowed.
    pub const BAD_REQUEST: u8 = 5;
}

/// What a data node says about itself in a heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeInfo {
    /// Its name (`--node-id`).
    pub node_id: String,
    /// Its failure domain (`--zone`: a rack, host or data center).
    pub zone: String,
    /// Objects (chunks, copies and shards) it holds.
    pub objects: u64,
    /// Bytes of its data files.
    pub disk_bytes: u64,
    /// Its capacity limit in bytes (`u64::MAX`: none).
    pub capacity_bytes: u64,
}

/// Writes a request or response frame.
pub fn write_frame(w: &mut impl Write, head: &[u8], payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l as usize <= FRAME_BYTES_MAX)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    let mut buf = Vec::with_capacity(head.len() + 4 + payload.len());
    buf.extend_from_slice(head);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf)?;
    w.flush()
}

/// Reads a payload length and the payload, refusing lengths over [`FRAME_BYTES_MAX`].
pub fn read_payload(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > FRAME_BYTES_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over the {FRAME_BYTES_MAX}-byte limit"),
        ));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

/// Constant-time equality of two secrets.
pub fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A client of one data node: a small pool of authenticated connections.
pub struct Remote {
    addr: SocketAddr,
    secret: Vec<u8>,
    connect_timeout_ms: u64,
    io_timeout_ms: u64,
    pool: Mutex<Vec<TcpStream>>,
}

/// Idle connections kept per data node.
const POOL_CONNECTIONS_MAX: usize = 16;

impl Remote {
    /// A client of the data node at `addr`.
    pub fn new(
        addr: SocketAddr,
        secret: Vec<u8>,
        connect_timeout_ms: u64,
        io_timeout_ms: u64,
    ) -> Self {
        Self {
            addr,
            secret,
            connect_timeout_ms,
            io_timeout_ms,
            pool: Mutex::new(Vec::new()),
        }
    }

    /// The node's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn connect(&self) -> io::Result<TcpStream> {
        let s = TcpStream::connect_timeout(
            &self.addr,
            Duration::from_millis(self.connect_timeout_ms.max(1)),
        )?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_millis(self.io_timeout_ms.max(1))))?;
        s.set_write_timeout(Some(Duration::from_millis(self.io_timeout_ms.max(1))))?;
        let mut s = s;
        let mut hello = Vec::with_capacity(6 + self.secret.len());
        hello.extend_from_slice(&MAGIC);
        hello.extend_from_slice(&(self.secret.len() as u16).to_be_bytes());
        hello.extend_from_slice(&self.secret);
        s.write_all(&hello)?;
        let mut st = [0u8; 1];
        s.read_exact(&mut st)?;
        if st[0] != status::OK {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the data node refused the cluster secret",
            ));
        }
        Ok(s)
    }

    fn exchange(
        s: &mut TcpStream,
        op: Op,
        id: ObjectId,
        payload: &[u8],
    ) -> io::Result<(u8, Vec<u8>)> {
        let mut head = [0u8; 17];
        head[0] = op as u8;
        head[1..].copy_from_slice(&id.to_bytes());
        write_frame(s, &head, payload)?;
        let mut st = [0u8; 1];
        s.read_exact(&mut st)?;
        Ok((st[0], read_payload(s)?))
    }

    /// One request: on a pooled connection (retried once on a fresh one if the pooled
    /// one had gone stale; every verb is idempotent).
    pub fn call(&self, op: Op, id: ObjectId, payload: &[u8]) -> Result<(u8, Vec<u8>)> {
        let pooled = self.pool.lock().pop();
        if let Some(mut s) = pooled
            && let Ok(r) = Self::exchange(&mut s, op, id, payload)
        {
            self.give_back(s);
            return Ok(r);
        }
        let mut s = self.connect().map_err(|e| self.unavailable(e))?;
        let r = Self::exchange(&mut s, op, id, payload).map_err(|e| self.unavailable(e))?;
        self.give_back(s);
        Ok(r)
    }

    fn give_back(&self, s: TcpStream) {
        let mut pool = self.pool.lock();
        if pool.len() < POOL_CONNECTIONS_MAX {
            pool.push(s);
        }
    }

    fn unavailable(&self, e: io::Error) -> Error {
        Error::Unavailable(format!("data node {}: {e}", self.addr))
    }

    /// Maps a non-OK status to this crate's error.
    pub fn status_error(&self, st: u8, payload: &[u8]) -> Error {
        let msg = String::from_utf8_lossy(payload).into_owned();
        match st {
            status::CORRUPT => Error::Corrupt {
                path: format!("data node {}", self.addr).into(),
                offset: 0,
                detail: msg,
            },
            status::FULL => Error::Full(format!("data node {}: {msg}", self.addr)),
            _ => Error::Unavailable(format!("data node {}: {msg}", self.addr)),
        }
    }
}
