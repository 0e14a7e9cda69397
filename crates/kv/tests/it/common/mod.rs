//! Test harness: an in-process server on port 0, a raw RESP socket, timeouts,
//! and helpers for the `redis` crate client.
#![allow(dead_code)]

pub mod dataset;
pub mod diff;

use std::net::SocketAddr;
use std::time::Duration;

use kv::Config;
use kv::config::EngineKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running server; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), kv::Error>>>,
}

impl TestServer {
    /// A memory-engine server with default settings.
    pub async fn start() -> TestServer {
        Self::with(|_| {}).await
    }

    /// A server whose config `tweak` adjusts (engine defaults to memory).
    pub async fn with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = Config {
            engine: EngineKind::Memory,
            ..Config::default()
        };
        tweak(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shutdown = CancellationToken::new();
        let ctx = service::SystemContext::new(shutdown.clone());
        let task = tokio::spawn(kv::serve(listener, config, kv::new_metrics(), ctx));
        TestServer {
            addr,
            shutdown,
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    pub async fn client(&self) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(self.url()).expect("a valid URL");
        tokio::time::timeout(WAIT, client.get_multiplexed_async_connection())
            .await
            .expect("connect in time")
            .expect("connect")
    }

    pub async fn raw(&self) -> Raw {
        Raw {
            stream: TcpStream::connect(self.addr).await.expect("connect"),
            buf: Vec::new(),
        }
    }

    /// Stops the server and waits for it (bounded).
    pub async fn stop(mut self) -> Result<(), kv::Error> {
        self.shutdown.cancel();
        let task = self.task.take().expect("stop runs once");
        tokio::time::timeout(WAIT, task)
            .await
            .expect("server stops in time")
            .expect("the server task does not panic")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A raw TCP client for protocol edge cases.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    /// Reads until `expected` has arrived in full and returns exactly it
    /// (panics with what arrived if it differs or times out).
    pub async fn expect(&mut self, expected: &[u8]) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.buf.len() < expected.len() {
            let mut chunk = [0u8; 4096];
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await;
            match read {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Ok(Err(err)) => panic!("read failed: {err}"),
            }
        }
        let got: Vec<u8> = self
            .buf
            .drain(..expected.len().min(self.buf.len()))
            .collect();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected)
        );
    }

    /// Reads until `needle` arrives; returns everything up to and including it.
    pub async fn read_until(&mut self, needle: &[u8]) -> Vec<u8> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(at) = self.buf.windows(needle.len()).position(|w| w == needle) {
                return self.buf.drain(..at + needle.len()).collect();
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                other => panic!(
                    "{needle:?} never arrived ({other:?}); got {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    /// Sends a command and expects a reply.
    pub async fn roundtrip(&mut self, args: &[&str], expected: &str) {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send(&kv::protocol::encode_request(&args)).await;
        self.expect(expected.as_bytes()).await;
    }

    /// Waits until the server closes the connection (bounded).
    pub async fn expect_closed(&mut self) {
        let mut chunk = [0u8; 1024];
        loop {
            match tokio::time::timeout(WAIT, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(_)) => continue,
                Err(_) => panic!("server did not close the connection"),
            }
        }
    }
}

/// Polls `check` every 10 ms until it holds (bounded by [`WAIT`]).
pub async fn eventually<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in time"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends `args` as one command through the `redis` crate's connection.
pub async fn cmd<T: redis::FromRedisValue>(
    con: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> redis::RedisResult<T> {
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
        command.arg(*arg);
    }
    command.query_async(con).await
}

/// A `redis` crate error as the server's text (`ERR ...`).
pub fn error_text(err: redis::RedisError) -> String {
    // The client splits "ERR text" into a kind and a detail; join them back.
    format!(
        "{} {}",
        err.code().unwrap_or("?"),
        err.detail().unwrap_or("")
    )
}
