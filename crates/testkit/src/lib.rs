//! Test support shared by the workspace's crates (a dev-dependency only).
//!
//! Interop tests run real third-party programs (`redis-server` today) beside
//! our code. Each test starts its own instance on a free port, waits for it
//! with a bounded timeout, and kills it when the guard drops, also when the
//! test panics, so tests stay parallel-safe and never leak processes. Crash
//! tests re-execute their own binary as a child and SIGKILL it ([`crash`]).
//! Written once here rather than copied into every crate's tests.
#![warn(missing_docs)]

pub mod crash;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (the OS picks it; a tiny race remains
/// between releasing it and the child binding it, acceptable in tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("the OS hands out a free port")
}

/// Waits until something accepts TCP connections on `port`, or panics after
/// `timeout` naming `what`.
pub fn wait_for_port(port: u16, timeout: Duration, what: &str) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < timeout,
            "{what} did not listen on port {port} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed (and reaped) on drop.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real `redis-server` (Debian's package) on a free port, without
/// persistence, killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    /// The process.
    pub child: ChildGuard,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl RedisServer {
    /// Starts one; panics with an install hint if `redis-server` is missing.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts one with extra `redis-server` arguments (e.g.
    /// `["--rename-command", "EVAL", ""]` to play an older or locked-down server).
    pub fn start_with(extra: &[&str]) -> Self {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed: scripts/test installs it (apt-get install redis-server)");
        let child = ChildGuard(child);
        wait_for_port(port, Duration::from_secs(10), "redis-server");
        Self { child, port }
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}
