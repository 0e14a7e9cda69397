//! What commands need, and nothing of the network: the shared [`State`],
//! one client's [`session::ConnState`], and the active-expiry loop.
//!
//! This is the layer that lets a command run without a server. Before it,
//! commands reached their data through the server's `Shared` (which also
//! held the listening socket's shutdown token), and per-client state lived in
//! the connection module, so the command layer, the connection and the
//! server imported each other. Now [`State`] is plain data (the port is a
//! number for `INFO`, not a socket) that a unit test or a fuzz target builds
//! with a memory engine in one call, and the layers above it
//! (`command` → `connection` → `server`) only ever look down.

pub(crate) mod blocking;
pub(crate) mod expiry;
pub(crate) mod notify;
pub(crate) mod repl;
pub(crate) mod scripts;
pub(crate) mod session;

use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;

use crate::clients::Clients;
use crate::config::Config;
use crate::engine::Engine;
use crate::keyspace::{Db, Keyspace};
use crate::metrics::Metrics;
use crate::pubsub::Hub;

/// Server-wide state every command may read or change.
pub(crate) struct State {
    /// The keyspace behind its lock.
    pub(crate) db: Db,
    /// Pub/sub routing.
    pub(crate) hub: Hub,
    /// Settings; `CONFIG SET` writes here.
    pub(crate) config: RwLock<Config>,
    /// Metrics handles.
    pub(crate) metrics: Arc<Metrics>,
    /// Connected clients.
    pub(crate) clients: Clients,
    /// Start time (uptime).
    pub(crate) started: Instant,
    /// Start time as Unix ms (`LASTSAVE`).
    pub(crate) started_unix_ms: u64,
    /// The listening port, as `INFO server` reports it (`0` without a socket).
    pub(crate) port: u16,
    /// Lua interpreters, the script cache, function libraries, and the
    /// flags other clients read while a script runs.
    pub(crate) scripts: scripts::Scripts,
    /// Holds connections back while woken blocked clients are served.
    pub(crate) turns: blocking::TurnGate,
    /// Replication: role, id, offset, backlog, replicas, our primary.
    pub(crate) repl: repl::Repl,
}

impl State {
    /// State over an opened `engine`.
    pub(crate) fn new(
        config: Config,
        engine: Box<dyn Engine>,
        metrics: Arc<Metrics>,
        port: u16,
    ) -> Self {
        let mut keyspace = Keyspace::new(engine);
        keyspace.set_notify(config.notify_keyspace_events.0);
        let turns = blocking::TurnGate::new(keyspace.turns_pending());
        let repl = repl::Repl::new();
        if let Some(target) = repl::parse_target(&config.replicaof) {
            repl.set_target(Some(target));
        }
        State {
            db: parking_lot::Mutex::new(keyspace),
            hub: Hub::new(config.client_output_buffer_limit_pubsub),
            config: RwLock::new(config),
            metrics,
            clients: Clients::default(),
            started: Instant::now(),
            started_unix_ms: clock::now_ms(),
            port,
            scripts: scripts::Scripts::default(),
            turns,
            repl,
        }
    }
}
