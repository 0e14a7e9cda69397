//! One way to get an [`MqClient`] of each implementation, with a restart
//! that keeps the data: [`Kind::Embedded`] (a broker in this process,
//! closed and reopened on its directory) and [`Kind::Kafka`] (our broker
//! served on a free loopback port and reached over TCP, stopped and served
//! again on the same directory).
#![allow(dead_code)] // each test module uses its own subset

use std::sync::Arc;
use std::time::Duration;

use mqclient::{ClientOptions, Embedded, Kafka, MqClient};
use service::{Shutdown, SystemContext};

/// Which implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `mqclient::Embedded`.
    Embedded,
    /// `mqclient::Kafka` to a served `mq` broker.
    Kafka,
}

/// Bounds every wait of a test.
pub const WAIT: Duration = Duration::from_secs(30);

enum Running {
    Embedded(Arc<Embedded>),
    Kafka {
        client: Arc<Kafka>,
        stop: Shutdown,
        task: tokio::task::JoinHandle<anyhow::Result<()>>,
    },
}

/// A running implementation over a temporary data directory.
pub struct Harness {
    pub kind: Kind,
    pub options: ClientOptions,
    dir: tempfile::TempDir,
    running: Option<Running>,
}

impl Harness {
    /// Starts `kind` with default client options.
    pub async fn start(kind: Kind) -> Harness {
        Harness::start_with(kind, ClientOptions::default()).await
    }

    /// Starts `kind` with these client options.
    pub async fn start_with(kind: Kind, options: ClientOptions) -> Harness {
        let mut harness = Harness {
            kind,
            options,
            dir: tempfile::tempdir().unwrap(),
            running: None,
        };
        harness.running = Some(harness.launch().await);
        harness
    }

    fn config(&self) -> mq::Config {
        mq::Config {
            data_dir: self.dir.path().join("mq"),
            ..mq::Config::default()
        }
    }

    async fn launch(&self) -> Running {
        match self.kind {
            Kind::Embedded => {
                let embedded = Embedded::open_with(self.config(), self.options.clone())
                    .await
                    .unwrap();
                Running::Embedded(Arc::new(embedded))
            }
            Kind::Kafka => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let (config, metrics) = (self.config(), Arc::new(mq::Metrics::new()));
                let server = tokio::task::spawn_blocking(move || {
                    mq::Server::open(config, listener, metrics)
                })
                .await
                .unwrap()
                .unwrap();
                let stop = Shutdown::new();
                let task = tokio::spawn(server.serve(SystemContext::new(stop.clone())));
                let client = Kafka::connect(&addr.to_string(), self.options.clone())
                    .await
                    .unwrap();
                Running::Kafka {
                    client: Arc::new(client),
                    stop,
                    task,
                }
            }
        }
    }

    /// The client (clones share it).
    pub fn client(&self) -> Arc<dyn MqClient> {
        match self.running.as_ref().expect("running") {
            Running::Embedded(embedded) => embedded.clone(),
            Running::Kafka { client, .. } => client.clone(),
        }
    }

    /// The bootstrap address of the served broker (Kafka only).
    pub fn bootstrap(&self) -> Option<String> {
        match self.running.as_ref()? {
            Running::Kafka { client, .. } => Some(client.bootstrap().to_string()),
            Running::Embedded(_) => None,
        }
    }

    /// Stops the broker (fsyncing it) and starts it again on the same
    /// data; every client and consumer of the old one must be gone.
    pub async fn restart(&mut self) {
        match self.running.take().expect("running") {
            Running::Embedded(embedded) => {
                let embedded = Arc::try_unwrap(embedded)
                    .expect("the test dropped its clients before the restart");
                embedded.close().await.unwrap();
            }
            Running::Kafka { stop, task, .. } => {
                stop.cancel();
                tokio::time::timeout(WAIT, task)
                    .await
                    .expect("the broker stops in time")
                    .unwrap()
                    .unwrap();
            }
        }
        self.running = Some(self.launch().await);
    }
}

/// Polls `consumer` until it has returned `want` records (or [`WAIT`] passes).
pub async fn drain(consumer: &mut dyn mqclient::Consumer, want: usize) -> Vec<mqclient::Message> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut got = Vec::new();
    while got.len() < want && tokio::time::Instant::now() < deadline {
        got.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
    }
    got
}

/// Defines `#[tokio::test]`s running `$body(Harness)` on both implementations.
macro_rules! both {
    ($($name:ident => $body:path;)*) => {
        $(
            mod $name {
                use super::*;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn embedded() {
                    let harness = crate::harness::Harness::start(crate::harness::Kind::Embedded).await;
                    tokio::time::timeout(std::time::Duration::from_secs(120), $body(harness)).await.expect("the test ends in time");
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn kafka() {
                    let harness = crate::harness::Harness::start(crate::harness::Kind::Kafka).await;
                    tokio::time::timeout(std::time::Duration::from_secs(120), $body(harness)).await.expect("the test ends in time");
                }
            }
        )*
    };
}
pub(crate) use both;
