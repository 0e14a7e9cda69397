//! A server on a thread of its own: for another crate's tests and tools that
//! need a real RESP endpoint without a binary or an async runtime of their
//! own (the rate limiter's and the ID service's Redis suites run against it
//! exactly as against `redis-server`).

use std::net::SocketAddr;
use std::thread::JoinHandle;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::server::{Error, serve};

/// A running server on 127.0.0.1 (an OS-chosen port); stops when dropped.
pub struct EmbeddedServer {
    addr: SocketAddr,
    shutdown: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedServer {
    /// Starts a server with `config` (its `bind` is ignored) and returns
    /// once it accepts connections.
    pub fn start(config: Config) -> Result<EmbeddedServer, Error> {
        // Everything async happens on the server's own thread, so this
        // works from plain code and from inside another runtime alike.
        let shutdown = CancellationToken::new();
        let ctx = service::SystemContext::new(shutdown.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("kv-embedded".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = ready_tx.send(Err(Error::Io(err)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let bound = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .and_then(|l| l.local_addr().map(|addr| (l, addr)));
                    let listener = match bound {
                        Ok((listener, addr)) => {
                            let _ = ready_tx.send(Ok(addr));
                            listener
                        }
                        Err(err) => {
                            let _ = ready_tx.send(Err(Error::Io(err)));
                            return;
                        }
                    };
                    if let Err(err) =
                        serve(listener, config, crate::command::new_metrics(), ctx).await
                    {
                        tracing::error!(error = %err, "embedded kv server stopped");
                    }
                });
            })?;
        let addr = ready_rx
            .recv()
            .map_err(|_| Error::Io(std::io::Error::other("the embedded server thread died")))??;
        Ok(EmbeddedServer {
            addr,
            shutdown,
            thread: Some(thread),
        })
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }
}

impl Drop for EmbeddedServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
