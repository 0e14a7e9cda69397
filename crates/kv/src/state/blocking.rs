//! Blocking commands (`BLPOP`, `BLMOVE`, `BLMPOP`, `BZPOPMIN`, `XREAD
//! BLOCK`...): how a command waits for a key without holding the keyspace
//! lock or stalling anyone else.
//!
//! # Design
//! A blocking command is an ordinary handler that runs under the keyspace
//! lock like any other. When it finds nothing to serve it does not wait: it
//! calls `Ctx::block(keys, deadline)` (command layer), which records a
//! [`BlockRequest`] in the client's [`ConnState`](super::session::ConnState)
//! and returns the reply to send on timeout. The waiting is the
//! connection's job:
//! ```text
//!  connection (lock held)      keyspace::blocking           other client
//!  BLPOP k 5 ─▶ handler ─▶ BlockRequest
//!  ─▶ ks.block(id, [k]) ──────▶ k: [.., me]   (same lock hold: no lost write)
//!  unlock, wait for: wake | deadline | socket EOF | shutdown
//!                                  ◀── touch(k) ◀── RPUSH k x (any write)
//!  woken ─▶ lock, re-run BLPOP k 5 (the same arguments)
//!     served: reply, ks.unblock ──▶ wakes the next waiter if k still exists
//!     nothing: ks.pass_on ────────▶ keep my place, wake the next if k exists
//!  deadline ─▶ lock, ks.unblock, send the timeout reply
//! ```
//! - **Who is woken**: a write to a key (any modification: `touch`) gives
//!   the turn on that key to the first waiter in its FIFO queue and wakes
//!   it; every waiter that is served, gives up, or re-runs without being
//!   served hands its turns on to the one after it. So waiters
//!   are served in the order they blocked (an `RPUSH k a b c` with three
//!   waiters gives `a`, `b`, `c` to the first, second, third), and a list
//!   emptied by the first stops the chain. Readiness is always re-checked
//!   by re-running the command under the lock, so types decide it without
//!   this module knowing them (a stream reader re-runs `XREAD` with the ids
//!   it first resolved: [`BlockRequest::args`]).
//! - **Timeouts** are absolute (Unix ms, `None` = forever) from the first
//!   run; re-runs keep the first deadline. Parsing (`0` = forever,
//!   fractional seconds, Redis's error texts) is `command::blocking`'s.
//! - **Never inside `MULTI` or a script**: `Ctx::block` refuses when the
//!   command is not the connection's own top-level command (`EXEC` and
//!   `EVAL` run theirs nested), and the handler then answers as on timeout
//!   (Redis's `CLIENT_DENY_BLOCKING`). Writes done by `EXEC` or a script
//!   wake waiters like any write, once the lock is released.
//! - **Nothing left behind**: a client that disconnects while blocked is
//!   unqueued on its way out; `CLIENT UNBLOCK id [TIMEOUT|ERROR]` wakes it
//!   with a mark; a pipelined command after a blocking one waits its turn,
//!   as in Redis.
//!
//! One difference from Redis remains: Redis serves blocked clients right
//! after the write that readied the key, before any other command runs; here
//! the woken client re-runs at its next turn at the lock, so a client that
//! is not blocked can take the element in between (Kvrocks behaves the same
//! way). Among blocked clients the order is FIFO, as in Redis.

use std::sync::Arc;

use bytes::Bytes;

use crate::keyspace::blocking::Waiter;
use crate::protocol::Frame;

/// What a blocking handler asks for when it found nothing to serve.
#[derive(Debug, Clone)]
pub(crate) struct BlockRequest {
    /// The keys whose writes should re-run the command.
    pub(crate) keys: Vec<Bytes>,
    /// When to give up (Unix ms); `None` = never.
    pub(crate) deadline_ms: Option<u64>,
    /// The command to re-run: its own arguments, or others (`XREAD`
    /// replaces `$` by the id it resolved on the first run).
    pub(crate) args: Vec<Bytes>,
}

/// A client waiting on keys (owned by its connection; see the module docs).
#[derive(Debug)]
pub(crate) struct Blocked {
    /// The command's table index.
    pub(crate) index: usize,
    /// The arguments it re-runs with.
    pub(crate) args: Vec<Bytes>,
    /// When to give up (Unix ms); `None` = never.
    pub(crate) deadline_ms: Option<u64>,
    /// What to reply on timeout.
    pub(crate) timeout_reply: Frame,
    /// Its place in the key queues.
    pub(crate) waiter: Arc<Waiter>,
    /// Woken since the last run: re-run before reading anything else.
    pub(crate) woken: bool,
}

impl Blocked {
    /// A client whose command (table `index`) asked to block by `request`
    /// and would reply `timeout_reply` if it did not; `waiter` is its place
    /// in the queues.
    pub(crate) fn new(
        index: usize,
        request: BlockRequest,
        timeout_reply: Frame,
        waiter: Arc<Waiter>,
    ) -> Blocked {
        Blocked {
            index,
            args: request.args,
            deadline_ms: request.deadline_ms,
            timeout_reply,
            waiter,
            woken: false,
        }
    }

    /// The error a `CLIENT UNBLOCK id ERROR` ends the wait with.
    pub(crate) fn unblocked_error() -> Frame {
        Frame::error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
    }
}
