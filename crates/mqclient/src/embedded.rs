//! [`Embedded`]: the [`crate::MqClient`] over an `mq` broker in this process.
//!
//! [`Embedded::open`] opens a broker's data directory (recovering every
//! partition log, off the async workers) and starts what a broker runs
//! besides requests (group session timeouts, the fsync timer, retention:
//! `mq::server::spawn_maintenance`), but binds no socket. Requests go
//! through the broker's own request handler (see the crate doc for why),
//! so topics, groups and committed offsets are exactly a served broker's:
//! the same directory can later be served by `hyperscale mq serve`.
//!
//! [`Embedded::from_broker`] wraps a broker that is also being served (the
//! one `hyperscale up` runs), so an application in that process and
//! remote Kafka clients share topics and groups.
//!
//! One process owns a data directory at a time. [`Embedded::close`] stops
//! the background work and fsyncs every partition; dropping an `Embedded`
//! stops the background work only (under `fsync = interval`, the last
//! second of appends then rests on the OS).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use mq::broker::Broker;
use tokio_util::sync::CancellationToken;

use crate::wire::{Connector, Wire};
use crate::{ClientOptions, Error, Result};

/// An in-process broker and a client of it.
pub struct Embedded {
    broker: Arc<Broker>,
    wire: Wire,
    /// Stops the background work this client started (none for a shared broker).
    maintenance: Option<CancellationToken>,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded")
            .field("data_dir", &self.broker.config.data_dir)
            .finish()
    }
}

impl Embedded {
    /// Opens (creating if needed) a broker in `dir` with the broker's
    /// defaults (`fsync = interval`, 1 s).
    pub async fn open(dir: &Path) -> Result<Embedded> {
        let config = mq::Config {
            data_dir: dir.to_path_buf(),
            ..mq::Config::default()
        };
        Embedded::open_with(config, ClientOptions::default()).await
    }

    /// Opens a broker with explicit settings (`config.data_dir` is where
    /// it lives; the listener settings are unused). A single broker only:
    /// a cluster member must be served (`hyperscale mq serve`).
    pub async fn open_with(config: mq::Config, options: ClientOptions) -> Result<Embedded> {
        if !config.controller_quorum.is_empty() {
            return Err(Error::InvalidInput(
                "an embedded broker is a single broker: clear controller_quorum".into(),
            ));
        }
        // Nothing listens; metadata advertises this placeholder, which the
        // in-process transport never dials.
        let bound = SocketAddr::from(([127, 0, 0, 1], 0));
        let dir = config.data_dir.clone();
        let metrics = Arc::new(mq::Metrics::new());
        let broker = tokio::task::spawn_blocking(move || Broker::open(config, bound, metrics))
            .await
            .map_err(|err| Error::Unavailable(format!("opening the broker failed: {err}")))?
            .map_err(|err| {
                Error::Unavailable(format!(
                    "cannot open the broker in {}: {err:#}",
                    dir.display()
                ))
            })?;
        let broker = Arc::new(broker);
        let stop = CancellationToken::new();
        mq::server::spawn_maintenance(&broker, &stop);
        Ok(Embedded {
            wire: Wire::new(Connector::Local(broker.clone()), options),
            broker,
            maintenance: Some(stop),
        })
    }

    /// A client of `broker`, which something else serves and maintains
    /// (`mq::Server::broker()`).
    pub fn from_broker(broker: Arc<Broker>, options: ClientOptions) -> Embedded {
        Embedded {
            wire: Wire::new(Connector::Local(broker.clone()), options),
            broker,
            maintenance: None,
        }
    }

    /// The broker (for `mq`'s own inspection: topics, groups, metrics).
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Stops the background work and fsyncs every partition.
    pub async fn close(mut self) -> Result<()> {
        if let Some(stop) = self.maintenance.take() {
            stop.cancel();
        }
        let broker = self.broker.clone();
        tokio::task::spawn_blocking(move || broker.flush_all_blocking())
            .await
            .map_err(|err| Error::Unavailable(format!("flushing failed: {err}")))?
            .map_err(|err| Error::Unavailable(format!("flushing failed: {err}")))
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        if let Some(stop) = self.maintenance.take() {
            stop.cancel();
        }
    }
}

crate::wire::delegate_to_wire!(Embedded);
