//! `hyperscale kv sentinel`: automatic failover for primary–replica
//! replication, speaking Redis Sentinel's protocol (chapter 1's "a replica
//! is promoted when the primary dies").
//!
//! Several sentinels watch one primary and its replicas (found through the
//! primary's `INFO replication`). One that gets no valid reply from the
//! primary for `down_after_ms` marks it *subjectively down*, asks its peers
//! (`SENTINEL is-master-down-by-addr`), and with `quorum` of them agreeing
//! marks it *objectively down*. It then asks for votes in a new epoch; a
//! sentinel votes once per epoch, for the first asker; with a majority (and
//! at least the quorum) it leads the failover: promotes the best replica
//! (`REPLICAOF NO ONE`), repoints the others, publishes `+switch-master`
//! to its subscribers and bumps the configuration epoch, which the other
//! sentinels adopt when they poll it (`SENTINEL master`). The old primary,
//! when it answers again, is told to replicate from the new one.
//!
//! Clients ask any sentinel `SENTINEL get-master-addr-by-name`: redis-py's
//! `Sentinel`, Jedis, and `kvclient`'s sentinel mode work unchanged.
//!
//! Differences from Redis Sentinel, on purpose: peers are configured
//! (`--sentinel host:port`) rather than discovered through the
//! `__sentinel__:hello` channel, the configuration epoch travels by
//! polling rather than by hello messages, one sentinel watches one primary,
//! and nothing is rewritten into a config file (a restarted sentinel learns
//! the current primary from its peers).
//!
//! [`decide`] holds the rules as pure functions; `monitor` runs them on a
//! timer; `server` answers clients and peers; [`client`] is the RESP client
//! they use.

pub mod client;
pub mod decide;
mod monitor;
mod server;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use decide::{Ballot, Seen};

/// A sentinel's settings.
#[derive(Debug, Clone)]
pub struct SentinelConfig {
    /// The name clients ask for (`mymaster`).
    pub master_name: String,
    /// The primary's `host:port` at start.
    pub master_addr: String,
    /// Sentinels that must agree the primary is down.
    pub quorum: usize,
    /// Silence after which an instance is subjectively down (ms).
    pub down_after_ms: u64,
    /// How long a failover may take, and the pause before another try (ms).
    pub failover_timeout_ms: u64,
    /// The other sentinels' `host:port`.
    pub peers: Vec<String>,
    /// This sentinel's `host:port` as others reach it.
    pub announce: String,
}

impl SentinelConfig {
    fn down_after(&self) -> Duration {
        Duration::from_millis(self.down_after_ms)
    }
}

/// What a sentinel knows, shared by its monitor and its server.
#[derive(Debug)]
pub(crate) struct View {
    pub(crate) config: SentinelConfig,
    pub(crate) run_id: String,
    /// The primary now (changes on failover).
    pub(crate) master: Seen,
    pub(crate) config_epoch: u64,
    pub(crate) replicas: BTreeMap<String, Seen>,
    /// Peers: address → (run id, last reply, agrees the primary is down).
    pub(crate) peers: BTreeMap<String, Peer>,
    pub(crate) ballot: Ballot,
    pub(crate) odown_since: Option<Instant>,
    /// A failover this sentinel leads or waits out: (epoch, start).
    pub(crate) failover: Option<(u64, Instant)>,
    /// `SENTINEL FAILOVER` asked for one without agreement.
    pub(crate) forced: bool,
}

/// A peer sentinel as last seen.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) run_id: String,
    pub(crate) last_ok: Option<Instant>,
    pub(crate) says_down: bool,
}

/// A running sentinel's shared parts.
pub(crate) struct Shared {
    pub(crate) view: Mutex<View>,
    pub(crate) events: broadcast::Sender<(String, String)>,
}

impl Shared {
    /// Publishes `payload` on `channel` to subscribed clients.
    pub(crate) fn publish(&self, channel: &str, payload: String) {
        tracing::info!(event = channel, %payload, "sentinel");
        let _ = self.events.send((channel.to_string(), payload));
    }
}

/// Runs a sentinel on `listener` until `stop` fires.
pub async fn serve(
    listener: TcpListener,
    config: SentinelConfig,
    stop: CancellationToken,
) -> std::io::Result<()> {
    if config.quorum == 0 || config.quorum > config.peers.len() + 1 {
        return Err(std::io::Error::other(format!(
            "quorum {} is impossible with {} sentinels: use 1..={}",
            config.quorum,
            config.peers.len() + 1,
            config.peers.len() + 1
        )));
    }
    let now = Instant::now();
    let view = View {
        run_id: crate::state::repl::new_replid(),
        master: Seen::new(config.master_addr.clone(), now),
        config_epoch: 0,
        replicas: BTreeMap::new(),
        peers: config
            .peers
            .iter()
            .map(|p| {
                (
                    p.clone(),
                    Peer {
                        run_id: String::new(),
                        last_ok: None,
                        says_down: false,
                    },
                )
            })
            .collect(),
        ballot: Ballot::default(),
        odown_since: None,
        failover: None,
        forced: false,
        config,
    };
    let shared = Arc::new(Shared {
        view: Mutex::new(view),
        events: broadcast::channel(1024).0,
    });
    tokio::spawn(monitor::run(shared.clone(), stop.clone()));
    server::accept_loop(shared, listener, stop).await;
    Ok(())
}
