//! What the scripting commands share across clients: the two Lua
//! interpreters (one for `EVAL` scripts, one for `FUNCTION` libraries, as
//! in Redis) and the "a script is running" flags other clients read
//! without the keyspace lock.
//!
//! A script runs under the keyspace lock (that is what makes it atomic), so
//! a client that wants to know whether to answer `BUSY` cannot take that
//! lock to find out. [`Busy`] is the answer: a few atomics the running
//! script sets when it starts and clears when it ends. Another connection
//! that cannot get the keyspace lock looks at [`Busy::timed_out`]; past
//! `busy-reply-threshold` it answers `BUSY` (or serves `SCRIPT KILL`,
//! which only sets [`Busy::kill`]; the script's instruction hook sees it).
//! The interpreters themselves sit behind their own mutexes, always taken
//! while the keyspace lock is held (or for `SCRIPT LOAD`/`FUNCTION LOAD`,
//! which need no data), so the lock order is keyspace → interpreter.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;

/// The shared flags of the script that runs now (at most one: scripts
/// hold the keyspace lock).
#[derive(Debug)]
pub(crate) struct Busy {
    /// The clock the start times are measured on.
    epoch: Instant,
    /// Start of the running script in ms since `epoch`, plus one; 0 = none.
    started: AtomicU64,
    /// The running script is a function (`FCALL`), not `EVAL`.
    function: AtomicBool,
    /// The running script has called a write command (it cannot be killed).
    wrote: AtomicBool,
    /// `SCRIPT KILL` / `FUNCTION KILL` asked the running script to stop.
    kill: AtomicBool,
    /// Run time (ms) at which the running script next hands its async
    /// worker over (see `command::scripting::offload`); doubles each time.
    next_offload_ms: AtomicU64,
}

/// Run time after which a script stops sharing its async worker thread
/// with other clients (most scripts end in microseconds and never get here).
pub(crate) const OFFLOAD_FIRST_MS: u64 = 2;

/// What `SCRIPT KILL` / `FUNCTION KILL` found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KillOutcome {
    /// Nothing runs.
    NotBusy,
    /// The script wrote already.
    Unkillable,
    /// A function runs and `SCRIPT KILL` was used (or the reverse).
    WrongKind {
        /// The running one is a function.
        function: bool,
    },
    /// The script will stop at its next instruction hook.
    Killed,
}

impl Busy {
    fn new() -> Busy {
        Busy {
            epoch: Instant::now(),
            started: AtomicU64::new(0),
            function: AtomicBool::new(false),
            wrote: AtomicBool::new(false),
            kill: AtomicBool::new(false),
            next_offload_ms: AtomicU64::new(OFFLOAD_FIRST_MS),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Marks a script as running from now.
    pub(crate) fn start(&self, function: bool) {
        self.function.store(function, Ordering::Relaxed);
        self.wrote.store(false, Ordering::Relaxed);
        self.kill.store(false, Ordering::Relaxed);
        self.next_offload_ms
            .store(OFFLOAD_FIRST_MS, Ordering::Relaxed);
        self.started.store(self.now(), Ordering::Release);
    }

    /// Whether the running script has run long enough to hand its async
    /// worker over now: after [`OFFLOAD_FIRST_MS`], then at doubling run
    /// times (a hand-off that lost its race is tried again, rarely). Only
    /// the running script's own hook calls this.
    pub(crate) fn offload_due(&self) -> bool {
        let started = self.started.load(Ordering::Acquire);
        if started == 0 {
            return false;
        }
        let ran_ms = self.now().saturating_sub(started);
        let due_ms = self.next_offload_ms.load(Ordering::Relaxed);
        if ran_ms < due_ms {
            return false;
        }
        self.next_offload_ms
            .store(ran_ms.max(1).saturating_mul(2), Ordering::Relaxed);
        true
    }

    /// Marks the script as finished.
    pub(crate) fn stop(&self) {
        self.started.store(0, Ordering::Release);
        self.kill.store(false, Ordering::Relaxed);
    }

    /// Records that the running script called a write command.
    pub(crate) fn mark_wrote(&self) {
        self.wrote.store(true, Ordering::Relaxed);
    }

    /// Whether the running script was asked to stop.
    pub(crate) fn kill_requested(&self) -> bool {
        self.kill.load(Ordering::Relaxed)
    }

    /// `Some(is_function)` while a script has run for at least
    /// `threshold_ms` (`0` = never times out).
    pub(crate) fn timed_out(&self, threshold_ms: u64) -> Option<bool> {
        let started = self.started.load(Ordering::Acquire);
        if started == 0 || threshold_ms == 0 {
            return None;
        }
        (self.now().saturating_sub(started) >= threshold_ms)
            .then(|| self.function.load(Ordering::Relaxed))
    }

    /// `SCRIPT KILL` (`function == false`) or `FUNCTION KILL`.
    pub(crate) fn kill(&self, function: bool) -> KillOutcome {
        if self.started.load(Ordering::Acquire) == 0 {
            return KillOutcome::NotBusy;
        }
        if self.wrote.load(Ordering::Relaxed) {
            return KillOutcome::Unkillable;
        }
        let running_function = self.function.load(Ordering::Relaxed);
        if running_function != function {
            return KillOutcome::WrongKind {
                function: running_function,
            };
        }
        self.kill.store(true, Ordering::Relaxed);
        KillOutcome::Killed
    }
}

/// A script in the `EVAL` cache.
#[derive(Debug)]
pub(crate) struct CachedScript {
    /// The compiled chunk, in the interpreter's registry.
    pub(crate) function: mlua::RegistryKey,
    /// Flags from a `#!lua flags=...` line (`None` = no shebang: Redis's
    /// compatibility mode).
    pub(crate) flags: Option<u32>,
}

/// The `EVAL` interpreter and its script cache (by lower-case hex SHA1).
#[derive(Default)]
pub(crate) struct EvalState {
    /// Created on first use; `SCRIPT FLUSH` drops it.
    pub(crate) lua: Option<mlua::Lua>,
    /// Scripts compiled into `lua`.
    pub(crate) scripts: HashMap<String, CachedScript>,
}

/// One function of a library.
#[derive(Debug)]
pub(crate) struct FunctionInfo {
    /// The callback, in the interpreter's registry.
    pub(crate) callback: mlua::RegistryKey,
    /// Its description (`FUNCTION LIST`), if any.
    pub(crate) description: Option<String>,
    /// Its flags (`no-writes`, `allow-oom`, ...).
    pub(crate) flags: u32,
}

/// One library loaded with `FUNCTION LOAD`.
#[derive(Debug)]
pub(crate) struct Library {
    /// The code as loaded (for `FUNCTION DUMP` and `WITHCODE`).
    pub(crate) code: Bytes,
    /// Its functions by name.
    pub(crate) functions: BTreeMap<String, FunctionInfo>,
}

/// The functions interpreter and its libraries.
#[derive(Default)]
pub(crate) struct FunctionState {
    /// Created on first use; `FUNCTION FLUSH` drops it.
    pub(crate) lua: Option<mlua::Lua>,
    /// Libraries by name.
    pub(crate) libraries: BTreeMap<String, Library>,
    /// Function name → library name (function names are global).
    pub(crate) index: HashMap<String, String>,
}

/// The scripting state of a server.
pub(crate) struct Scripts {
    /// The running script's flags, shared with the instruction hooks.
    pub(crate) busy: Arc<Busy>,
    /// `EVAL` scripts.
    pub(crate) eval: Mutex<EvalState>,
    /// `FUNCTION` libraries.
    pub(crate) functions: Mutex<FunctionState>,
}

impl Default for Scripts {
    fn default() -> Self {
        Scripts {
            busy: Arc::new(Busy::new()),
            eval: Mutex::default(),
            functions: Mutex::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_needs_a_running_script_of_the_right_kind_that_has_not_written() {
        let busy = Busy::new();
        assert_eq!(busy.kill(false), KillOutcome::NotBusy);
        busy.start(true);
        assert_eq!(busy.kill(false), KillOutcome::WrongKind { function: true });
        assert_eq!(busy.kill(true), KillOutcome::Killed);
        assert!(busy.kill_requested());
        busy.stop();
        busy.start(false);
        assert!(!busy.kill_requested());
        busy.mark_wrote();
        assert_eq!(busy.kill(false), KillOutcome::Unkillable);
        assert_eq!(busy.timed_out(0), None);
        assert_eq!(busy.timed_out(1_000_000), None);
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(busy.timed_out(1), Some(false));
        busy.stop();
        assert_eq!(busy.timed_out(1), None);
    }
}
