//! What the binary's end-to-end tests share: a child that dies with the
//! test, bounded reads of its output, and a tiny blocking HTTP GET.

#![allow(dead_code)] // Each test file uses its own subset.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdout, Command, Output};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Kills the child if the test panics, so no server outlives a failed test.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines of a child's stdout, read on a thread so every wait is bounded.
pub struct Lines(mpsc::Receiver<String>);

impl Lines {
    /// Starts reading `stdout` line by line.
    pub fn new(stdout: ChildStdout) -> Self {
        let (send, receive) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Lines(receive)
    }

    /// The next line; panics if none comes within `timeout` or stdout closes.
    pub fn next_within(&self, timeout: Duration) -> String {
        self.0
            .recv_timeout(timeout)
            .expect("a line on stdout in time (did the process exit?)")
    }
}

/// Waits at most `timeout` for `child` to exit and returns what it printed;
/// kills it and panics if it does not.
pub fn wait_output(child: Child, timeout: Duration) -> Output {
    let mut guard = Guard(child);
    let started = Instant::now();
    while guard.0.try_wait().expect("try_wait").is_none() {
        assert!(
            started.elapsed() < timeout,
            "the process did not exit within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = guard.0.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let mut stdout = Vec::new();
    if let Some(mut pipe) = guard.0.stdout.take() {
        let _ = pipe.read_to_end(&mut stdout);
    }
    Output {
        status: guard.0.wait().expect("wait"),
        stdout,
        stderr: stderr.into_bytes(),
    }
}

/// The binary under test.
pub fn hyperscale() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hyperscale"))
}

/// A tiny blocking GET over a raw socket: enough for these checks, and it
/// keeps the binary's tests free of another HTTP client build.
pub fn get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = match rest.split_once('/') {
        Some((host, path)) => (host, format!("/{path}")),
        None => (rest, "/".to_string()),
    };
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read response");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}
