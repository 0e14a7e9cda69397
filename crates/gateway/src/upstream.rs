//! One upstream server as the gateway sees it: its address, whether it is in
//! rotation, how many requests it is serving, and the failure counts that
//! take it out of rotation.
//!
//! The book's failover story ("server 1 goes offline, all traffic goes to
//! server 2") needs the load balancer to *know* a server is offline. Two
//! signals feed that knowledge, as in nginx and Envoy:
//!
//! - **passive**: real requests that fail (connect refused, reset, timeout, a
//!   502/503) count up; after `eject_after_failures` in a row the upstream is
//!   ejected at once, without waiting for the next probe;
//! - **active**: the health checker ([`crate::health`]) probes every upstream
//!   periodically; only probes re-admit an ejected upstream, so a server that
//!   is still broken never gets real traffic again just to fail it.
//!
//! All state is atomics: it is read on every request by every worker thread,
//! and written rarely.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Source of [`Upstream::id`]s, unique in the process.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

/// A server behind the gateway.
#[derive(Debug)]
pub struct Upstream {
    /// Unique in the process: keys this upstream's idle connections
    /// ([`crate::client`]), which must never serve another upstream that
    /// happens to reuse an address or an allocation.
    pub id: u64,
    /// `host:port`, used in upstream URIs, logs and metric labels.
    pub authority: http::uri::Authority,
    /// In rotation. Starts true so a gateway serves at once, before the
    /// first probe; the first failures eject a dead upstream quickly.
    healthy: AtomicBool,
    /// Consecutive failed real requests (passive detection).
    request_failures: AtomicU32,
    /// Consecutive failed probes (active detection).
    probe_failures: AtomicU32,
    /// Consecutive good probes while out of rotation (re-admission).
    probe_successes: AtomicU32,
    /// Requests sent and whose response body is not finished: the measure
    /// least-connections balances on.
    in_flight: AtomicUsize,
    /// `gateway_upstream_up{pool,upstream}`: 1 in rotation, 0 ejected.
    up_gauge: Gauge,
    /// `gateway_upstream_latency_seconds{pool,upstream}`: time to response head.
    pub latency: Histogram,
    /// `gateway_upstream_failures_total{pool,upstream}`: failed attempts.
    pub failures: Counter,
}

impl Upstream {
    /// A healthy upstream with no traffic yet, reporting into these metrics.
    pub fn new(
        authority: http::uri::Authority,
        up_gauge: Gauge,
        latency: Histogram,
        failures: Counter,
    ) -> Self {
        up_gauge.set(1);
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            authority,
            healthy: AtomicBool::new(true),
            request_failures: AtomicU32::new(0),
            probe_failures: AtomicU32::new(0),
            probe_successes: AtomicU32::new(0),
            in_flight: AtomicUsize::new(0),
            up_gauge,
            latency,
            failures,
        }
    }

    /// In rotation?
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Requests currently in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts a request in flight until the returned guard drops (when the
    /// response body ends or the client goes away).
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// A real request succeeded: the passive failure streak ends.
    pub fn record_success(&self) {
        if self.request_failures.load(Ordering::Relaxed) != 0 {
            self.request_failures.store(0, Ordering::Relaxed);
        }
    }

    /// A real request failed; ejects after `threshold` in a row (0 = never).
    /// Returns true when this failure ejected the upstream.
    pub fn record_failure(&self, threshold: u32) -> bool {
        self.failures.inc();
        let streak = self.request_failures.fetch_add(1, Ordering::Relaxed) + 1;
        threshold != 0 && streak >= threshold && self.set_healthy(false)
    }

    /// A probe answered; re-admits after `healthy_threshold` in a row.
    /// Returns true when the upstream came back.
    pub fn probe_succeeded(&self, healthy_threshold: u32) -> bool {
        self.probe_failures.store(0, Ordering::Relaxed);
        if self.is_healthy() {
            return false;
        }
        let streak = self.probe_successes.fetch_add(1, Ordering::Relaxed) + 1;
        streak >= healthy_threshold && self.set_healthy(true)
    }

    /// A probe failed; ejects after `unhealthy_threshold` in a row.
    /// Returns true when this probe ejected the upstream.
    pub fn probe_failed(&self, unhealthy_threshold: u32) -> bool {
        self.probe_successes.store(0, Ordering::Relaxed);
        let streak = self.probe_failures.fetch_add(1, Ordering::Relaxed) + 1;
        streak >= unhealthy_threshold && self.set_healthy(false)
    }

    /// Puts the upstream back without a probe (used when probes are off).
    pub fn readmit(&self) -> bool {
        self.set_healthy(true)
    }

    /// Sets the state; true if it changed. Resets the streaks on a change so
    /// each state starts counting afresh.
    fn set_healthy(&self, healthy: bool) -> bool {
        let changed = self.healthy.swap(healthy, Ordering::Relaxed) != healthy;
        if changed {
            self.request_failures.store(0, Ordering::Relaxed);
            self.probe_failures.store(0, Ordering::Relaxed);
            self.probe_successes.store(0, Ordering::Relaxed);
            self.up_gauge.set(i64::from(healthy));
        }
        changed
    }
}

/// Holds one unit of an upstream's in-flight count.
#[derive(Debug)]
pub struct InFlight(Arc<Upstream>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let before = self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        debug_assert!(before > 0, "in-flight count went negative");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream() -> Arc<Upstream> {
        Arc::new(Upstream::new(
            "127.0.0.1:1".parse().unwrap(),
            Gauge::default(),
            Histogram::new([1.0]),
            Counter::default(),
        ))
    }

    #[test]
    fn passive_ejection_needs_a_streak() {
        let up = upstream();
        assert!(!up.record_failure(3));
        assert!(!up.record_failure(3));
        up.record_success();
        assert!(!up.record_failure(3));
        assert!(!up.record_failure(3));
        assert!(up.record_failure(3), "third failure in a row ejects");
        assert!(!up.is_healthy());
        assert!(!up.record_failure(0), "threshold 0 never ejects");
    }

    #[test]
    fn probes_readmit_after_threshold() {
        let up = upstream();
        assert!(!up.probe_failed(2));
        assert!(up.probe_failed(2));
        assert!(!up.probe_succeeded(2));
        assert!(up.probe_succeeded(2));
        assert!(up.is_healthy());
    }

    #[test]
    fn in_flight_guard_counts() {
        let up = upstream();
        let a = up.start();
        let b = up.start();
        assert_eq!(up.in_flight(), 2);
        drop(a);
        drop(b);
        assert_eq!(up.in_flight(), 0);
    }
}
