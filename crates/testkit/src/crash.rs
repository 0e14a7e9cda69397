//! Crash tests with real processes: a test re-executes its own test binary as a
//! child that writes durably and reports each acknowledged item on stdout, then
//! SIGKILLs it at a chosen moment and keeps the acknowledgements it saw.
//!
//! The parent then reopens the child's store and checks that every acknowledged
//! item survived. Written once here so each storage crate's crash test holds
//! only what differs: what the child writes and what the parent checks.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::ChildGuard;

/// The line a child prints once its store is open and it starts writing.
pub const READY: &str = "ready";

/// The prefix of the line a child prints after each acknowledged item
/// (`ack <payload>`); the payload must not contain a newline.
pub const ACK: &str = "ack ";

/// How long the child may take to print [`READY`].
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Re-executes the current test binary to run only the test `child_test`
/// (`--exact --nocapture`) with the environment `envs`, waits (bounded) until
/// it prints [`READY`], lets it run `kill_after`, SIGKILLs it, and returns the
/// payload of every [`ACK`] line it printed, in order.
///
/// The child test must do nothing unless one of `envs` is set, so that the
/// ordinary test run passes through it. It must print [`READY`] before its
/// first write and `ack <payload>` only after the item is durable. libtest may
/// print its own text at the start of a line, so lines are matched by
/// `ends_with(READY)` and by the text after the first [`ACK`]. The child is
/// killed on every path (also when this panics), and its stderr is dropped.
///
/// # Panics
/// If the binary cannot be re-executed or the child is not ready within 30 s.
pub fn run_child_until_killed<I, K, V>(
    child_test: &str,
    envs: I,
    kill_after: Duration,
) -> Vec<String>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let exe = std::env::current_exe().expect("the test binary knows its own path");
    let child = Command::new(exe)
        .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
        .envs(envs)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the test binary re-executes itself as the crash child");
    let mut child = ChildGuard(child);
    let stdout = child.0.stdout.take().expect("the child's stdout is piped");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Wait (bounded) for the child to open its store, then let it write a while.
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("crash child {child_test} never printed {READY:?}"));
        if line.ends_with(READY) {
            break;
        }
    }
    std::thread::sleep(kill_after);
    child.0.kill().expect("SIGKILL the crash child");
    child.0.wait().expect("reap the crash child");
    reader
        .join()
        .expect("the child's stdout reader does not panic");
    rx.try_iter()
        .filter_map(|line| line.split_once(ACK).map(|(_, payload)| payload.to_string()))
        .collect()
}
