//! Frees the async worker thread a long script runs on, so other clients
//! are served while it runs.
//!
//! A script runs inside its connection's task, on a tokio worker thread,
//! under the keyspace lock (that is its atomicity). Other clients must
//! still be answered meanwhile: `BUSY` past `busy-reply-threshold`, and
//! `SCRIPT KILL` must reach the script. But a tokio worker that is stuck in
//! one task also holds everything queued on it: tasks in its queue and its
//! LIFO slot (a freshly accepted connection, say) and the timers and I/O it
//! would drive. The server then looked frozen to everyone.
//!
//! `tokio::task::block_in_place` is the fix, but it costs about 15 µs (a
//! thread hand-over), more than a rate limiter's whole `EVALSHA`; paying it
//! on every script would halve their throughput. So a script starts where
//! it is, and its instruction hook calls [`hand_off_worker`] only once it
//! has run [`crate::state::scripts::OFFLOAD_FIRST_MS`] (then at doubling
//! run times). `block_in_place` gives this worker's scheduler core (its
//! queue, LIFO slot, driver turn) to a fresh thread that goes on serving,
//! while this thread finishes the script and then leaves the pool. The
//! closure waits [`HANDOFF_WAIT`] so that the new thread takes the core
//! before `block_in_place` would take it back; a lost race is retried at
//! the next doubling.
//!
//! A current-thread runtime has no core to give away, so the kv server
//! always runs the multi-thread scheduler (one worker under `--threads 1`).
//! Outside a runtime (the socket-less `command::local` client) there is
//! nothing to free.

use std::time::Duration;

use tokio::runtime::{Handle, RuntimeFlavor};

/// How long the script's thread waits for the new worker to take over.
const HANDOFF_WAIT: Duration = Duration::from_millis(1);

/// Hands the current tokio worker's scheduler to another thread, if this
/// thread is a multi-thread runtime's worker; otherwise does nothing.
pub(crate) fn hand_off_worker() {
    let Ok(handle) = Handle::try_current() else {
        return;
    };
    if handle.runtime_flavor() != RuntimeFlavor::MultiThread {
        return;
    }
    tokio::task::block_in_place(|| std::thread::sleep(HANDOFF_WAIT));
}
