//! The registry of connected clients, for `CLIENT LIST`, `INFO clients`
//! and `maxclients`.
//!
//! Each connection publishes a small [`ClientInfo`] here. Fields that change
//! per command are atomics the connection stores into without a lock; the
//! registry's own lock is taken only on connect, disconnect and listing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;

/// What `CLIENT LIST` shows about one connection.
#[derive(Debug)]
pub struct ClientInfo {
    /// Unique, increasing id (`CLIENT ID`).
    pub id: u64,
    /// The peer's address.
    pub addr: Option<SocketAddr>,
    /// Our address.
    pub laddr: Option<SocketAddr>,
    /// When it connected.
    pub connected: Instant,
    /// Seconds since `connected` of the last command (for `idle=`).
    pub last_active_secs: AtomicU64,
    /// Table index of the last command, `usize::MAX` if none yet.
    pub last_command: AtomicUsize,
    /// `CLIENT SETNAME`.
    pub name: Mutex<Bytes>,
    /// `CLIENT SETINFO LIB-NAME` / `LIB-VER`.
    pub lib: Mutex<(Bytes, Bytes)>,
    /// Channel and pattern subscriptions (`sub=`, `psub=`).
    pub subscriptions: [AtomicI64; 2],
    /// Commands queued in `MULTI`, or -1 outside a transaction.
    pub multi: AtomicI64,
    /// Protocol version 2 or 3.
    pub resp: AtomicU8,
}

impl ClientInfo {
    /// Info for a new connection.
    pub fn new(id: u64, addr: Option<SocketAddr>, laddr: Option<SocketAddr>) -> Self {
        ClientInfo {
            id,
            addr,
            laddr,
            connected: Instant::now(),
            last_active_secs: AtomicU64::new(0),
            last_command: AtomicUsize::new(usize::MAX),
            name: Mutex::new(Bytes::new()),
            lib: Mutex::new((Bytes::new(), Bytes::new())),
            subscriptions: [AtomicI64::new(0), AtomicI64::new(0)],
            multi: AtomicI64::new(-1),
            resp: AtomicU8::new(2),
        }
    }

    /// One `CLIENT LIST` line (without the newline), in Redis's field order;
    /// `command_name` names a command table index (the registry sits below
    /// the command layer and does not know the table).
    pub fn line(&self, command_name: fn(usize) -> &'static str) -> String {
        let age = self.connected.elapsed().as_secs();
        let idle = age.saturating_sub(self.last_active_secs.load(Ordering::Relaxed));
        let cmd = command_name(self.last_command.load(Ordering::Relaxed));
        let show = |a: Option<SocketAddr>| a.map_or_else(String::new, |a| a.to_string());
        let name = String::from_utf8_lossy(&self.name.lock()).into_owned();
        let (lib_name, lib_ver) = {
            let lib = self.lib.lock();
            (
                String::from_utf8_lossy(&lib.0).into_owned(),
                String::from_utf8_lossy(&lib.1).into_owned(),
            )
        };
        let multi = self.multi.load(Ordering::Relaxed);
        let flags = if multi >= 0 {
            "x"
        } else if self.subscribed() {
            "P"
        } else {
            "N"
        };
        format!(
            "id={} addr={} laddr={} fd=-1 name={name} age={age} idle={idle} flags={flags} db=0 sub={} psub={} ssub=0 \
             multi={multi} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 \
             events=r cmd={cmd} user=default redir=-1 resp={} lib-name={lib_name} lib-ver={lib_ver}",
            self.id,
            show(self.addr),
            show(self.laddr),
            self.subscriptions[0].load(Ordering::Relaxed),
            self.subscriptions[1].load(Ordering::Relaxed),
            self.resp.load(Ordering::Relaxed),
        )
    }

    fn subscribed(&self) -> bool {
        self.subscriptions
            .iter()
            .any(|s| s.load(Ordering::Relaxed) > 0)
    }
}

/// Every connected client.
#[derive(Debug, Default)]
pub struct Clients {
    by_id: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    next_id: AtomicU64,
}

impl Clients {
    /// Registers a connection unless `max` clients are connected already.
    pub fn register(
        &self,
        max: usize,
        addr: Option<SocketAddr>,
        laddr: Option<SocketAddr>,
    ) -> Option<Arc<ClientInfo>> {
        let mut by_id = self.by_id.lock();
        if by_id.len() >= max {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let info = Arc::new(ClientInfo::new(id, addr, laddr));
        by_id.insert(id, info.clone());
        Some(info)
    }

    /// Removes a connection.
    pub fn unregister(&self, id: u64) {
        self.by_id.lock().remove(&id);
    }

    /// Connected clients.
    pub fn count(&self) -> usize {
        self.by_id.lock().len()
    }

    /// Clients subscribed to something (`INFO clients`' `pubsub_clients`).
    pub fn subscribed_count(&self) -> usize {
        self.by_id
            .lock()
            .values()
            .filter(|c| c.subscribed())
            .count()
    }

    /// A snapshot of every client, by id.
    pub fn list(&self) -> Vec<Arc<ClientInfo>> {
        self.by_id.lock().values().cloned().collect()
    }
}
