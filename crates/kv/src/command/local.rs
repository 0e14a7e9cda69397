//! A client without a socket: runs commands against a [`State`] exactly as
//! a connection does, for unit tests and the fuzz target.
//!
//! It is the proof that a command is a function of (state, arguments,
//! connection state): no listener, no runtime, no I/O. The `fuzzing` feature
//! makes it public for `crates/kv/fuzz`; it is not part of the stable API.

use std::sync::Arc;

use bytes::Bytes;

use super::{dispatch, dispatch_locked, engine_error, new_metrics, pubsub, transaction};
use crate::config::Config;
use crate::engine::memory::MemoryEngine;
use crate::protocol::Frame;
use crate::pubsub::{Inbox, mailbox};
use crate::state::State;
use crate::state::session::ConnState;

/// One client of an in-process server (see the module docs).
pub struct LocalClient {
    state: Arc<State>,
    conn: ConnState,
    inbox: Inbox,
}

impl LocalClient {
    /// A new server state over a memory engine configured by `config`, and
    /// its first client.
    pub fn memory(config: Config) -> LocalClient {
        let engine = MemoryEngine::new(
            config.maxmemory,
            config.maxmemory_policy,
            config.maxmemory_samples,
        )
        .with_lfu(config.lfu_log_factor, config.lfu_decay_time);
        let state = State::new(config, Box::new(engine), new_metrics(), 0);
        LocalClient::of(Arc::new(state))
    }

    /// A new server state over `engine` (e.g. an lsm engine in a temp
    /// dir, to run a test on both engines), and its first client.
    pub fn with_engine(config: Config, engine: Box<dyn crate::engine::Engine>) -> LocalClient {
        let state = State::new(config, engine, new_metrics(), 0);
        LocalClient::of(Arc::new(state))
    }

    fn of(state: Arc<State>) -> LocalClient {
        let info = state
            .clients
            .register(usize::MAX, None, None)
            .expect("no client limit");
        let authenticated = state.config.read().requirepass.is_empty();
        let (subscriber, inbox) = mailbox(info.id);
        let conn = ConnState::new(info, subscriber, authenticated);
        LocalClient { state, conn, inbox }
    }

    /// Another client of the same server.
    pub fn connect(&self) -> LocalClient {
        LocalClient::of(self.state.clone())
    }

    /// Runs one command (its own lock hold and write batch).
    pub fn run(&mut self, args: &[&[u8]]) -> Frame {
        let args = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        self.conn.batch_now_ms = 0;
        let reply = dispatch(&self.state, &mut self.conn, args);
        // No socket to wait on: a blocking command answers as on timeout.
        self.conn.block_request = None;
        reply
    }

    /// Runs commands as one pipelined read: under one hold of the keyspace
    /// lock, as one write batch committed before the replies are returned.
    /// Stops after a command that closes the connection (`QUIT`).
    pub fn run_batch(&mut self, commands: Vec<Vec<Bytes>>) -> Vec<Frame> {
        self.conn.batch_now_ms = clock::now_ms();
        self.conn.batch_clock = None;
        let mut ks = self.state.db.lock();
        ks.recover_abandoned_batch();
        ks.begin_batch();
        let mut replies = Vec::with_capacity(commands.len().min(1024));
        let mut first_write = None;
        for mut args in commands {
            let staged = ks.savepoint();
            replies.push(dispatch_locked(
                &self.state,
                &mut self.conn,
                &mut ks,
                &mut args,
            ));
            self.conn.block_request = None;
            if first_write.is_none() && ks.savepoint() > staged {
                first_write = Some(replies.len() - 1);
            }
            if self.conn.close_after_reply {
                break;
            }
        }
        if let Err(err) = ks.commit_batch()
            && let Some(first) = first_write
        {
            let reply = engine_error(err);
            for slot in &mut replies[first..] {
                *slot = reply.clone();
            }
        }
        self.conn.batch_now_ms = 0;
        replies
    }

    /// Whether `QUIT` asked to close this client.
    pub fn closed(&self) -> bool {
        self.conn.close_after_reply
    }

    /// Pub/sub messages delivered so far: (pattern, channel, payload).
    pub fn messages(&mut self) -> Vec<(Option<Bytes>, Bytes, Bytes)> {
        let mut out = Vec::new();
        while let Some(message) = self.inbox.try_recv() {
            out.push((
                message.pattern.clone(),
                message.channel.clone(),
                message.payload.clone(),
            ));
        }
        out
    }
}

impl Drop for LocalClient {
    /// Leaves no trace in the hub, the watch table or the registry, as a
    /// closed connection does.
    fn drop(&mut self) {
        let mut ctx = super::Ctx::new(&self.state, &mut self.conn);
        pubsub::unsubscribe_all(&mut ctx);
        transaction::discard_state(&mut ctx);
        drop(ctx);
        self.state.clients.unregister(self.conn.id);
    }
}
