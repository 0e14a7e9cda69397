//! Data centers (the notes' "데이터 센터"): upstream pools grouped by data
//! center, each client sent to its nearest one, and traffic moved to the
//! next data center when one fails.
//!
//! - **Geo-routing.** The notes route users with geoDNS; a gateway sees the
//!   client's address instead, so "nearest" is a configured map of client
//!   networks to data centers (`[[datacenters]] networks = [...]`): the
//!   first data center (in config order) with a network containing the
//!   client is its *home*; clients in no listed network go to the first one.
//! - **Failover.** A route with `datacenter_pools` names one pool per data
//!   center. A data center is *up* while at least one upstream of its pools
//!   is in rotation (the pools' own health checks decide that). Requests go
//!   to the home data center if it is up, else to the next one up in config
//!   order (wrapping), else to home (which answers 503 at once).
//! - **Hysteresis.** A data center that flaps must not drag traffic back
//!   and forth: it is marked down only after its pools have had no healthy
//!   upstream for `down_after_ms`, and up again only after they have been
//!   healthy for `up_after_ms` without a break ([`step`], a pure function).
//!
//! Data sync between data centers (the notes' second challenge) is the
//! stores' business (replication), not the gateway's.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use ratelimit::layer::extract::Cidr;
use service::Shutdown;

use crate::balance::Pool;
use crate::config::{ConfigError, DataCenter, Hysteresis};
use crate::metrics::Metrics;

/// What the hysteresis remembers of one data center.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// Whether traffic may go there.
    pub up: bool,
    /// Since when the observations have disagreed with `up` (Unix ms).
    pub disagreeing_since_ms: Option<u64>,
}

/// The next state after observing `healthy` at `now_ms`.
pub fn step(state: Health, healthy: bool, now_ms: u64, hysteresis: &Hysteresis) -> Health {
    if healthy == state.up {
        return Health {
            up: state.up,
            disagreeing_since_ms: None,
        };
    }
    let since = state.disagreeing_since_ms.unwrap_or(now_ms);
    let needed = if state.up {
        hysteresis.down_after_ms
    } else {
        hysteresis.up_after_ms
    };
    if now_ms.saturating_sub(since) >= needed {
        Health {
            up: healthy,
            disagreeing_since_ms: None,
        }
    } else {
        Health {
            up: state.up,
            disagreeing_since_ms: Some(since),
        }
    }
}

/// The data centers of a gateway and their current health.
pub struct DataCenters {
    names: Vec<String>,
    networks: Vec<(Cidr, usize)>,
    /// Per data center: the pool indices whose health makes it up.
    pools: Vec<Vec<usize>>,
    up: Vec<AtomicBool>,
    states: Mutex<Vec<Health>>,
    hysteresis: Hysteresis,
}

impl DataCenters {
    /// Builds from the config; `pool_index` resolves pool names and
    /// `routes` gives each route's data center → pool map.
    pub fn new<'a>(
        specs: &[DataCenter],
        hysteresis: &Hysteresis,
        routes: impl Iterator<Item = &'a std::collections::BTreeMap<String, String>>,
        pool_index: impl Fn(&str) -> Option<usize>,
    ) -> Result<Self, ConfigError> {
        let names: Vec<String> = specs.iter().map(|dc| dc.name.clone()).collect();
        let mut networks = Vec::new();
        for (index, dc) in specs.iter().enumerate() {
            for network in &dc.networks {
                let cidr = network
                    .parse::<Cidr>()
                    .map_err(|err| ConfigError(format!("datacenters[{index}].networks: {err}")))?;
                networks.push((cidr, index));
            }
        }
        let mut pools = vec![Vec::new(); names.len()];
        for map in routes {
            for (dc, pool) in map {
                if let (Some(dc), Some(pool)) =
                    (names.iter().position(|n| n == dc), pool_index(pool))
                    && !pools[dc].contains(&pool)
                {
                    pools[dc].push(pool);
                }
            }
        }
        let healthy = Health {
            up: true,
            disagreeing_since_ms: None,
        };
        Ok(Self {
            up: names.iter().map(|_| AtomicBool::new(true)).collect(),
            states: Mutex::new(vec![healthy; names.len()]),
            names,
            networks,
            pools,
            hysteresis: hysteresis.clone(),
        })
    }

    /// Whether any data center is configured.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The client's home data center (index).
    pub fn home(&self, client: IpAddr) -> usize {
        self.networks
            .iter()
            .find(|(cidr, _)| cidr.contains(client))
            .map_or(0, |(_, dc)| *dc)
    }

    /// The pool to use for `client` among a route's `(data center, pool)`
    /// pairs: home if up, else the next data center up, else home.
    pub fn choose(&self, client: IpAddr, route_pools: &[(String, usize)]) -> Option<usize> {
        let count = self.names.len();
        let home = self.home(client);
        let pool_of = |dc: usize| {
            route_pools
                .iter()
                .find(|(name, _)| *name == self.names[dc])
                .map(|(_, pool)| *pool)
        };
        (0..count)
            .map(|offset| (home + offset) % count)
            .find(|dc| self.up[*dc].load(Ordering::Relaxed) && pool_of(*dc).is_some())
            .and_then(pool_of)
            .or_else(|| pool_of(home))
    }

    /// Observes the pools once and applies the hysteresis.
    pub fn observe(&self, pools: &[Arc<Pool>], now_ms: u64, metrics: &Metrics) {
        let mut states = self.states.lock();
        for (dc, state) in states.iter_mut().enumerate() {
            let healthy = self.pools[dc]
                .iter()
                .any(|pool| pools[*pool].upstreams.iter().any(|u| u.is_healthy()));
            let next = step(*state, healthy, now_ms, &self.hysteresis);
            if next.up != state.up {
                let name = &self.names[dc];
                if next.up {
                    tracing::warn!(datacenter = %name, "data center back up: its clients return to it");
                } else {
                    tracing::warn!(datacenter = %name, "data center down: its clients fail over to the next one");
                }
            }
            *state = next;
            self.up[dc].store(next.up, Ordering::Relaxed);
            metrics.datacenter_up(&self.names[dc], next.up);
        }
    }

    /// Observes every `check_interval_ms` until shutdown.
    pub async fn run(self: Arc<Self>, pools: Vec<Arc<Pool>>, metrics: Metrics, shutdown: Shutdown) {
        let interval = Duration::from_millis(self.hysteresis.check_interval_ms);
        loop {
            self.observe(&pools, clock::now_ms(), &metrics);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYSTERESIS: Hysteresis = Hysteresis {
        down_after_ms: 1_000,
        up_after_ms: 5_000,
        check_interval_ms: 100,
    };

    #[test]
    fn a_flapping_data_center_stays_down_until_steadily_healthy() {
        let mut state = Health {
            up: true,
            disagreeing_since_ms: None,
        };
        state = step(state, false, 0, &HYSTERESIS);
        assert!(state.up, "one bad observation is not enough");
        state = step(state, true, 500, &HYSTERESIS);
        state = step(state, false, 600, &HYSTERESIS);
        state = step(state, false, 1_500, &HYSTERESIS);
        assert!(state.up, "the window restarted after the good observation");
        state = step(state, false, 1_600, &HYSTERESIS);
        assert!(!state.up);
        for (at, healthy) in [(2_000, true), (4_000, false), (4_100, true), (8_000, true)] {
            state = step(state, healthy, at, &HYSTERESIS);
            assert!(!state.up, "flapping brought it back at {at}");
        }
        state = step(state, true, 9_100, &HYSTERESIS);
        assert!(state.up);
    }

    #[test]
    fn clients_go_home_then_to_the_next_data_center_up() {
        let specs = [
            DataCenter {
                name: "east".into(),
                networks: vec!["10.1.0.0/16".into()],
            },
            DataCenter {
                name: "west".into(),
                networks: vec!["10.2.0.0/16".into()],
            },
        ];
        let map: std::collections::BTreeMap<String, String> =
            [("east".into(), "e".into()), ("west".into(), "w".into())].into();
        let dcs = DataCenters::new(&specs, &HYSTERESIS, [&map].into_iter(), |name| {
            ["e", "w"].iter().position(|p| *p == name)
        })
        .unwrap();
        let route = [("east".to_string(), 0), ("west".to_string(), 1)];
        let west_client: IpAddr = "10.2.3.4".parse().unwrap();
        let elsewhere: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(dcs.choose(west_client, &route), Some(1));
        assert_eq!(
            dcs.choose(elsewhere, &route),
            Some(0),
            "unmapped clients: first data center"
        );
        dcs.up[1].store(false, Ordering::Relaxed);
        assert_eq!(
            dcs.choose(west_client, &route),
            Some(0),
            "failover to the next one"
        );
        dcs.up[0].store(false, Ordering::Relaxed);
        assert_eq!(dcs.choose(west_client, &route), Some(1), "all down: home");
    }
}
