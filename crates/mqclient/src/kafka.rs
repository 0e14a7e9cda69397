//! [`Kafka`]: the [`crate::MqClient`] over the Kafka wire protocol, to any broker
//! that speaks it: `hyperscale mq serve` (one broker or a cluster) or
//! Apache Kafka / Redpanda, found from one bootstrap address.
//!
//! Connecting is lazy: [`Kafka::new`] checks nothing, the first call
//! connects, and a call whose connection fails answers
//! [`crate::Error::Unavailable`] and leaves the next call to reconnect.
//! [`Kafka::connect`] connects at once, for a process that should not start
//! when its broker is away.

use crate::wire::{Connector, Wire};
use crate::{ClientOptions, Result};

/// A Kafka-protocol client. Cheap to share behind an `Arc`.
pub struct Kafka {
    bootstrap: String,
    wire: Wire,
}

impl std::fmt::Debug for Kafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kafka")
            .field("bootstrap", &self.bootstrap)
            .finish()
    }
}

impl Kafka {
    /// A client of the cluster behind `bootstrap` (HOST:PORT); connects on
    /// first use.
    pub fn new(bootstrap: &str, options: ClientOptions) -> Kafka {
        Kafka {
            bootstrap: bootstrap.to_string(),
            wire: Wire::new(Connector::Tcp(bootstrap.to_string()), options),
        }
    }

    /// Like [`Kafka::new`], but connects now: an unreachable broker is an
    /// error here rather than on the first call.
    pub async fn connect(bootstrap: &str, options: ClientOptions) -> Result<Kafka> {
        let client = Kafka::new(bootstrap, options);
        client.wire.check().await?;
        Ok(client)
    }

    /// The bootstrap address.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }
}

crate::wire::delegate_to_wire!(Kafka);
