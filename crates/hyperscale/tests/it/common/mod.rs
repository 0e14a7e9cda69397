//! What the binary's end-to-end tests share: a child that dies with the
//! test, bounded reads of its output, and a tiny blocking HTTP GET.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
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

/// Lines of a child's stdout or stderr, read on a thread so every wait is
/// bounded.
pub struct Lines(mpsc::Receiver<String>);

impl Lines {
    /// Starts reading `pipe` line by line.
    pub fn new(pipe: impl Read + Send + 'static) -> Self {
        let (send, receive) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { return };
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Lines(receive)
    }

    /// The next line; panics if none comes within `timeout` or the pipe closes.
    pub fn next_within(&self, timeout: Duration) -> String {
        self.0
            .recv_timeout(timeout)
            .expect("a line in time (did the process exit?)")
    }

    /// Every remaining line until the pipe closes, waiting at most `timeout`.
    pub fn rest_within(&self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut rest = Vec::new();
        while let Ok(line) = self
            .0
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            rest.push(line);
        }
        rest
    }
}

/// Waits at most `timeout` for `child` to exit and returns what it printed;
/// kills it and panics if it does not. The pipes are drained while it runs
/// (a child that prints more than a pipe holds would otherwise block forever).
pub fn wait_output(child: Child, timeout: Duration) -> Output {
    let mut guard = Guard(child);
    let stderr = guard.0.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            text
        })
    });
    let stdout = guard.0.stdout.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            text
        })
    });
    let started = Instant::now();
    while guard.0.try_wait().expect("try_wait").is_none() {
        assert!(
            started.elapsed() < timeout,
            "the process did not exit within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let drained = |reader: Option<std::thread::JoinHandle<Vec<u8>>>| {
        reader
            .map(|r| r.join().unwrap_or_default())
            .unwrap_or_default()
    };
    Output {
        status: guard.0.wait().expect("wait"),
        stdout: drained(stdout),
        stderr: drained(stderr),
    }
}

/// Sends SIGINT (Ctrl-C) to the child and waits at most `timeout` for it
/// to exit.
pub fn interrupt_and_wait(guard: &mut Guard, timeout: Duration) -> ExitStatus {
    let pid = guard.0.id().to_string();
    let sent = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -INT {pid}");
    let started = Instant::now();
    loop {
        if let Some(status) = guard.0.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            started.elapsed() < timeout,
            "did not exit within {timeout:?} of Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The binary under test.
pub fn hyperscale() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hyperscale"))
}

/// Starts `hyperscale <args>`, a server that prints a banner line first,
/// and waits (at most `timeout`) for that banner. The server's stdout
/// stays read by the returned [`Lines`], so keep it alive with the guard.
pub fn serve<I, S>(args: I, timeout: Duration) -> (Guard, Lines, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = hyperscale()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the hyperscale binary");
    let lines = Lines::new(child.stdout.take().expect("stdout is piped"));
    let guard = Guard(child);
    let banner = lines.next_within(timeout);
    (guard, lines, banner)
}

/// A tiny blocking GET over a raw socket: enough for these checks, and it
/// keeps the binary's tests free of another HTTP client build.
pub fn get(url: &str) -> (u16, String) {
    request("GET", url, &[], "")
}

/// A tiny blocking POST of a JSON body (see [`get`]).
pub fn post_json(url: &str, body: &str) -> (u16, String) {
    request("POST", url, &[("Content-Type", "application/json")], body)
}

/// A blocking request with extra `headers` (see [`get`]).
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = match rest.split_once('/') {
        Some((host, path)) => (host, format!("/{path}")),
        None => (rest, "/".to_string()),
    };
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set timeout");
    let mut content: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    if !body.is_empty() {
        content.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{content}Connection: close\r\n\r\n{body}"
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
