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
//! - **Served before anyone else runs**: Redis serves blocked clients right
//!   after the write that readied their key, before any other command. Here
//!   the woken client re-runs on its own connection, so while any blocked
//!   client holds an unused turn, every connection holds back its next
//!   command ([`TurnGate`]): a `RPUSH k x` pipelined with `LLEN k` answers
//!   `0` when a client was waiting on `k`, as in Redis, and a client that
//!   comes back for more (`BRPOP` in a loop) queues behind those already
//!   waiting. The hold is bounded ([`GATE_WAIT`]): a woken client that does
//!   not re-run in time (its socket stuck) opens the gate until no turn is
//!   pending, so it can slow others once, never stall them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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

/// Longest a connection holds back its next command for woken blocked
/// clients to be served (see the module docs).
pub(crate) const GATE_WAIT: Duration = Duration::from_millis(100);

/// Holds connections back while blocked clients have turns to use (see the
/// module docs).
#[derive(Debug)]
pub(crate) struct TurnGate {
    /// Blocked clients holding an unused turn (`Keyspace::turns_pending`).
    pending: Arc<AtomicUsize>,
    /// A hold ran out: stay open until no turn is pending.
    waited_out: AtomicBool,
}

impl TurnGate {
    /// A gate over the keyspace's pending-turn count.
    pub(crate) fn new(pending: Arc<AtomicUsize>) -> TurnGate {
        TurnGate {
            pending,
            waited_out: AtomicBool::new(false),
        }
    }

    /// Whether a connection should wait before its next command.
    pub(crate) fn closed(&self) -> bool {
        if self.pending.load(Ordering::Acquire) == 0 {
            if self.waited_out.load(Ordering::Relaxed) {
                self.waited_out.store(false, Ordering::Relaxed);
            }
            return false;
        }
        !self.waited_out.load(Ordering::Relaxed)
    }

    /// Waits until no blocked client holds an unused turn, at most
    /// [`GATE_WAIT`]; past that the gate stays open until none does.
    pub(crate) async fn wait(&self) {
        let deadline = Instant::now() + GATE_WAIT;
        let mut yields = 0;
        while self.pending.load(Ordering::Acquire) > 0 {
            if Instant::now() >= deadline {
                self.waited_out.store(true, Ordering::Relaxed);
                return;
            }
            // The woken clients usually re-run within a few task switches.
            if yields < 64 {
                yields += 1;
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_gate_holds_while_turns_are_pending_and_never_for_long() {
        let pending = Arc::new(AtomicUsize::new(0));
        let gate = TurnGate::new(pending.clone());
        assert!(!gate.closed());
        pending.store(1, Ordering::Release);
        assert!(gate.closed());
        let started = Instant::now();
        gate.wait().await;
        assert!(started.elapsed() >= GATE_WAIT, "held until the bound");
        assert!(!gate.closed(), "a stuck turn opens the gate");
        pending.store(0, Ordering::Release);
        assert!(!gate.closed());
        pending.store(1, Ordering::Release);
        assert!(gate.closed(), "closes again once no turn was pending");
        let releaser = {
            let pending = pending.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                pending.store(0, Ordering::Release);
            })
        };
        gate.wait().await;
        assert_eq!(pending.load(Ordering::Acquire), 0);
        releaser.await.expect("no panic");
    }
}
