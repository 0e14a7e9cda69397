//! The connection loop over real sockets on the lsm engine with `--fsync
//! always`: a write's reply waits for its fsync, and a failed fsync turns
//! the reply of every write waiting on it into an error (none is
//! acknowledged), as does every later write.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::config::{Config, FsyncPolicy};
use crate::engine::lsm::LsmEngine;

const WAIT: Duration = Duration::from_secs(10);

/// Serves `state` on a free port until `stop` fires.
async fn serve(state: Arc<State>, stop: CancellationToken) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => accepted.expect("accept"),
                () = stop.cancelled() => return,
            };
            let info = state
                .clients
                .register(usize::MAX, None, None)
                .expect("room");
            tokio::spawn(serve_connection(state.clone(), stop.clone(), stream, info));
        }
    });
    addr
}

/// Sends `SET key value` and returns the reply line.
async fn set(stream: &mut TcpStream, key: &str, value: &str) -> String {
    let request = format!(
        "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
        key.len(),
        value.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut reply = Vec::new();
    while !reply.ends_with(b"\r\n") {
        let mut byte = [0u8];
        let read = tokio::time::timeout(WAIT, stream.read(&mut byte))
            .await
            .expect("a reply in time")
            .expect("read");
        assert_eq!(read, 1, "connection closed");
        reply.push(byte[0]);
    }
    String::from_utf8(reply).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_fails_every_waiting_write_and_acknowledges_none() {
    const CLIENTS: usize = 8;
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = LsmEngine::open(dir.path(), FsyncPolicy::Always).expect("open");
    let state = Arc::new(State::new(
        Config::default(),
        engine,
        command::new_metrics(),
        0,
    ));
    let stop = CancellationToken::new();
    let addr = serve(state.clone(), stop.clone()).await;
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        assert_eq!(set(&mut stream, &format!("ok{c}"), "1").await, "+OK\r\n");
        clients.push(stream);
    }

    let fsyncs = |state: &State| -> u64 {
        let info = state.db.lock().engine().persistence_info();
        let (_, n) = info
            .iter()
            .find(|(k, _)| *k == "wal_fsyncs")
            .expect("reported");
        n.parse().expect("a number")
    };
    assert!(
        fsyncs(&state) <= CLIENTS as u64,
        "at most one fsync per write"
    );

    state.db.lock().engine().fail_log_syncs(true);
    let writers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(c, mut stream)| {
            tokio::spawn(async move {
                let reply = set(&mut stream, &format!("lost{c}"), "2").await;
                (reply, stream)
            })
        })
        .collect();
    let mut streams = Vec::new();
    for writer in writers {
        let (reply, stream) = writer.await.expect("writer");
        assert!(
            reply.starts_with("-ERR storage error"),
            "a write whose fsync failed was answered {reply:?}"
        );
        streams.push(stream);
    }
    // Latched: the log's state is unknown, so later writes fail too, even
    // with the disk working again.
    state.db.lock().engine().fail_log_syncs(false);
    let reply = set(&mut streams[0], "later", "3").await;
    assert!(reply.starts_with("-ERR storage error"), "{reply:?}");
    assert!(reply.contains("reopen the store"), "{reply:?}");
    stop.cancel();
}
