//! Shared helpers of the broker tests: an in-process broker on a free port
//! with its data in a temporary directory, stopped on drop.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use service::{Shutdown, SystemContext};

/// A running broker.
pub struct TestBroker {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its data directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// Its metrics.
    pub metrics: Arc<mq::Metrics>,
    shutdown: Shutdown,
    thread: Option<JoinHandle<()>>,
}

impl TestBroker {
    /// Starts a broker with default settings.
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// Starts a broker whose settings `tweak` adjusts.
    pub fn start_with(tweak: impl FnOnce(&mut mq::Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = mq::Config {
            data_dir: dir.path().to_path_buf(),
            ..mq::Config::default()
        };
        tweak(&mut config);
        Self::start_in(dir, config)
    }

    /// Starts a broker on `config` (whose data_dir is inside `dir`).
    pub fn start_in(dir: tempfile::TempDir, config: mq::Config) -> Self {
        let shutdown = Shutdown::new();
        let stop = shutdown.clone();
        let (ready, addr) = mpsc::channel();
        let metrics = Arc::new(mq::Metrics::new());
        let serving_metrics = metrics.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let bound = listener.local_addr().unwrap();
                let server = mq::Server::open(config, listener, serving_metrics).unwrap();
                ready.send(bound).unwrap();
                server.serve(SystemContext::new(stop)).await.unwrap();
            });
        });
        let addr = addr
            .recv_timeout(Duration::from_secs(30))
            .expect("the broker starts within 30 s");
        TestBroker {
            addr,
            dir,
            metrics,
            shutdown,
            thread: Some(thread),
        }
    }

    /// The Prometheus text of its metrics, as `/metrics` serves it.
    pub fn metrics_text(&self) -> String {
        let mut registry = service::metrics::Registry::default();
        self.metrics
            .register(registry.sub_registry_with_prefix("mq"));
        service::metrics::render(&registry)
    }

    /// `127.0.0.1:PORT`, for `-b`.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// Stops the broker and returns its data directory (to restart on it).
    pub fn stop(mut self) -> tempfile::TempDir {
        self.halt();
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    fn halt(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.halt();
    }
}
