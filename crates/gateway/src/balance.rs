//! Load balancing: which upstream of a pool serves the next request.
//!
//! The notes' load balancer "spreads traffic evenly over the web servers of
//! the load-balancing set". Three policies, each a known trade-off:
//!
//! - **round robin**: a shared counter; each upstream in turn. Perfectly even
//!   for uniform requests, blind to slow ones.
//! - **least connections**: the upstream with the fewest requests in flight
//!   (ties broken by a rotating start so equal upstreams share). Adapts to
//!   slow requests and slow machines at the cost of a scan per request (a
//!   pool is a handful of upstreams, so the scan is a few loads).
//! - **consistent hashing** (ch. 5, via the `ring` crate): the request key
//!   (client IP, path or a header) picks an owner on the ring, so a key
//!   sticks to one upstream — the notes' *sticky session*, which a stateless
//!   tier does not need but caches and session-holding apps do. When the
//!   owner is out of rotation the key goes to the next distinct upstream on
//!   the ring, and only that owner's keys move.
//!
//! Every policy skips upstreams out of rotation and the upstream a retry
//! must avoid. When no upstream is in rotation the pick fails and the client
//! gets a 503 at once: sending traffic to servers known to be down would
//! only turn a fast, clear error into a slow one.

use std::cmp::Ordering as CmpOrdering;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::{self, Balance, ConfigError, HashKey};
use crate::metrics::{Metrics, UpstreamLabels};
use crate::upstream::Upstream;

/// A pool at run time: its upstreams and how to choose among them.
#[derive(Debug)]
pub struct Pool {
    /// The pool's name from the config (metric label).
    pub name: String,
    /// The upstreams, in config order; indices are stable for the pool's life.
    pub upstreams: Vec<Arc<Upstream>>,
    /// Passive ejection threshold (0 = off).
    pub eject_after_failures: u32,
    policy: Policy,
    /// Round-robin position, also the tie-break rotation of least connections.
    next: AtomicUsize,
}

/// The policy and, for hashing, its ring.
#[derive(Debug)]
enum Policy {
    RoundRobin,
    LeastConnections,
    ConsistentHash {
        ring: ring::Ring<Member>,
        key: HashKey,
    },
}

/// An upstream on the ring: hashed by its address (so placement does not
/// depend on config order), carrying its index into `upstreams`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    name: String,
    index: usize,
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl PartialOrd for Member {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Member {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.name
            .cmp(&other.name)
            .then(self.index.cmp(&other.index))
    }
}

impl Pool {
    /// Builds pool `name` from its validated config, registering its
    /// upstreams' metrics.
    pub fn new(name: &str, spec: &config::Pool, metrics: &Metrics) -> Result<Self, ConfigError> {
        let mut upstreams = Vec::with_capacity(spec.upstreams.len());
        for text in &spec.upstreams {
            let authority = config::parse_upstream(text)
                .map_err(|err| ConfigError(format!("pools.{name}.upstreams: {err}")))?;
            let labels = UpstreamLabels {
                pool: name.to_string(),
                upstream: authority.to_string(),
            };
            let gauge = metrics.upstream_up.get_or_create(&labels).clone();
            let latency = metrics.upstream_latency.get_or_create(&labels).clone();
            let failures = metrics.upstream_failures.get_or_create(&labels).clone();
            upstreams.push(Arc::new(Upstream::new(authority, gauge, latency, failures)));
        }
        let policy = match spec.balance {
            Balance::RoundRobin => Policy::RoundRobin,
            Balance::LeastConnections => Policy::LeastConnections,
            Balance::ConsistentHash => {
                let key = HashKey::parse(&spec.hash_key)
                    .map_err(|err| ConfigError(format!("pools.{name}.hash_key: {err}")))?;
                let mut ring = ring::Ring::new();
                for (index, upstream) in upstreams.iter().enumerate() {
                    let member = Member {
                        name: upstream.authority.to_string(),
                        index,
                    };
                    ring.add_server(member, spec.vnodes).map_err(|err| {
                        ConfigError(format!("pools.{name}: cannot place upstream: {err}"))
                    })?;
                }
                Policy::ConsistentHash { ring, key }
            }
        };
        Ok(Self {
            name: name.to_string(),
            upstreams,
            eject_after_failures: spec.eject_after_failures,
            policy,
            next: AtomicUsize::new(0),
        })
    }

    /// The request key this pool hashes on, if it hashes at all.
    pub fn hash_key(&self) -> Option<&HashKey> {
        match &self.policy {
            Policy::ConsistentHash { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The upstream for the next request: in rotation, not `exclude`.
    /// `key` is the request key for consistent hashing (`None` falls back to
    /// round robin). `None` when no upstream qualifies.
    pub fn pick(&self, key: Option<&[u8]>, exclude: Option<usize>) -> Option<usize> {
        let usable = |index: usize| Some(index) != exclude && self.upstreams[index].is_healthy();
        let picked = match (&self.policy, key) {
            (Policy::ConsistentHash { ring, .. }, Some(key)) => ring
                .preference_list(key, self.upstreams.len())
                .into_iter()
                .map(|member| member.index)
                .find(|&index| usable(index)),
            (Policy::LeastConnections, _) => self.least_connections(usable),
            _ => self.round_robin(usable),
        };
        debug_assert!(picked.is_none_or(|index| index < self.upstreams.len()));
        picked
    }

    fn round_robin(&self, usable: impl Fn(usize) -> bool) -> Option<usize> {
        let count = self.upstreams.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(|offset| start.wrapping_add(offset) % count)
            .find(|&index| usable(index))
    }

    fn least_connections(&self, usable: impl Fn(usize) -> bool) -> Option<usize> {
        let count = self.upstreams.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(|offset| start.wrapping_add(offset) % count)
            .filter(|&index| usable(index))
            // `min_by_key` keeps the first of equal minima: the rotation start.
            .min_by_key(|&index| self.upstreams[index].in_flight())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pool(balance: Balance, count: usize) -> Pool {
        let spec = config::Pool {
            upstreams: (0..count).map(|i| format!("10.0.0.{i}:80")).collect(),
            balance,
            hash_key: "path".into(),
            ..config::Pool::default()
        };
        let mut registry = service::metrics::Registry::default();
        Pool::new("test", &spec, &Metrics::register(&mut registry)).unwrap()
    }

    #[test]
    fn round_robin_takes_turns_and_skips_the_ejected() {
        let pool = pool(Balance::RoundRobin, 3);
        let picks: Vec<_> = (0..6).map(|_| pool.pick(None, None).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        pool.upstreams[1].record_failure(1);
        for _ in 0..6 {
            assert_ne!(pool.pick(None, None), Some(1));
        }
        assert_ne!(
            pool.pick(None, Some(0)),
            Some(0),
            "a retry avoids its first upstream"
        );
    }

    #[test]
    fn no_upstream_in_rotation_means_no_pick() {
        let pool = pool(Balance::LeastConnections, 2);
        pool.upstreams[0].record_failure(1);
        assert_eq!(pool.pick(None, None), Some(1));
        assert_eq!(pool.pick(None, Some(1)), None);
        pool.upstreams[1].record_failure(1);
        assert_eq!(pool.pick(None, None), None);
    }

    #[test]
    fn least_connections_prefers_the_idle() {
        let pool = pool(Balance::LeastConnections, 3);
        let _busy = [pool.upstreams[0].start(), pool.upstreams[2].start()];
        for _ in 0..5 {
            assert_eq!(pool.pick(None, None), Some(1));
        }
    }

    proptest! {
        #[test]
        fn hashing_is_sticky_and_moves_only_the_dead_owners_keys(keys in proptest::collection::vec(any::<u64>(), 1..64)) {
            let pool = pool(Balance::ConsistentHash, 4);
            let owners: Vec<_> = keys.iter().map(|k| pool.pick(Some(&k.to_be_bytes()), None).unwrap()).collect();
            for (key, owner) in keys.iter().zip(&owners) {
                prop_assert_eq!(pool.pick(Some(&key.to_be_bytes()), None), Some(*owner));
            }
            pool.upstreams[2].record_failure(1);
            for (key, owner) in keys.iter().zip(&owners) {
                let now = pool.pick(Some(&key.to_be_bytes()), None).unwrap();
                prop_assert_ne!(now, 2);
                if *owner != 2 {
                    prop_assert_eq!(now, *owner, "keys of live upstreams must not move");
                }
            }
        }
    }
}
