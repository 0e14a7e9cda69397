//! Node-exporter-like series for benchmarks: names, labels and how each kind
//! of series moves from one 15 s scrape to the next.
//!
//! Why a module: bytes per sample and query latency depend on the data, so
//! `hyperscale bench metrics` sends our server and Prometheus the very same
//! series, and its numbers can be set against the codec test's mix (the
//! same five kinds in the same shares: see BENCHMARKS.md). Most of a node
//! exporter's series barely move (sizes, limits, info metrics, idle devices);
//! the busy ones are counters.

/// A kind of series: its metric name and how its value moves per scrape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Sizes, limits, info metrics: never move (50 %).
    ConstantGauge,
    /// Memory in pages, moving one scrape in four (15 %).
    PagedGauge,
    /// Bytes or packets: up to 20,000 a scrape (15 %).
    Counter,
    /// Errors, retries: +1 one scrape in ten (10 %).
    IdleCounter,
    /// CPU seconds with two decimals (10 %).
    CpuSeconds,
}

/// Series per instance (a host's exporter).
pub const SERIES_PER_INSTANCE: usize = 100;
/// The scrape interval the samples are spaced by.
pub const SCRAPE_INTERVAL_MS: i64 = 15_000;

impl Kind {
    /// The kind of series number `i` (the shares cycle every 20 series).
    pub fn of(i: usize) -> Kind {
        match i % 20 {
            0..=9 => Kind::ConstantGauge,
            10..=12 => Kind::PagedGauge,
            13..=15 => Kind::Counter,
            16..=17 => Kind::IdleCounter,
            _ => Kind::CpuSeconds,
        }
    }

    /// The metric name of this kind.
    pub fn name(self) -> &'static str {
        match self {
            Kind::ConstantGauge => "node_filesystem_size_bytes",
            Kind::PagedGauge => "node_memory_active_bytes",
            Kind::Counter => "node_network_receive_bytes_total",
            Kind::IdleCounter => "node_network_receive_errs_total",
            Kind::CpuSeconds => "node_cpu_seconds_total",
        }
    }

    /// The first value of a series of this kind.
    pub fn start(self) -> f64 {
        match self {
            Kind::ConstantGauge => 64.0 * 1024.0 * 1024.0 * 1024.0,
            Kind::PagedGauge => 4.0e9,
            Kind::Counter => 1.0e6,
            Kind::IdleCounter => 17.0,
            Kind::CpuSeconds => 12_345.67,
        }
    }

    /// The value one scrape after `v`.
    pub fn next(self, rng: &mut fastrand::Rng, v: f64) -> f64 {
        match self {
            Kind::ConstantGauge => v,
            Kind::PagedGauge if rng.u8(0..4) == 0 => v + (rng.i64(-64..64) * 4096) as f64,
            Kind::PagedGauge => v,
            Kind::Counter => v + rng.u64(0..20_000) as f64,
            Kind::IdleCounter => v + if rng.u8(0..10) == 0 { 1.0 } else { 0.0 },
            Kind::CpuSeconds => ((v * 100.0).round() + rng.u64(0..1500) as f64) / 100.0,
        }
    }
}

/// The labels of series `i`, sorted by name: `__name__`, `device` (unique
/// within the instance), `instance`, `job`.
pub fn labels(i: usize) -> Vec<(String, String)> {
    let host = i / SERIES_PER_INSTANCE;
    vec![
        ("__name__".into(), Kind::of(i).name().into()),
        ("device".into(), format!("d{}", i % SERIES_PER_INSTANCE)),
        ("instance".into(), format!("host-{host}:9100")),
        ("job".into(), "node".into()),
    ]
}

/// A scrape's timestamp: `t_ms`, one scrape in ten a few ms late or early,
/// as a real scraper's clock jitters.
pub fn jitter(rng: &mut fastrand::Rng, t_ms: i64) -> i64 {
    if rng.u8(0..10) == 0 {
        t_ms + rng.i64(-3..=3)
    } else {
        t_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_labels_are_as_documented() {
        let kinds: Vec<Kind> = (0..20).map(Kind::of).collect();
        let share = |k: Kind| kinds.iter().filter(|x| **x == k).count();
        assert_eq!(share(Kind::ConstantGauge), 10);
        assert_eq!(share(Kind::PagedGauge) + share(Kind::Counter), 6);
        assert_eq!(share(Kind::IdleCounter) + share(Kind::CpuSeconds), 4);
        let a = labels(0);
        assert!(a.windows(2).all(|w| w[0].0 < w[1].0), "{a:?}");
        let all: std::collections::HashSet<_> = (0..1000).map(labels).collect();
        assert_eq!(all.len(), 1000, "every series is distinct");
        let mut rng = fastrand::Rng::with_seed(1);
        let mut v = Kind::Counter.start();
        for _ in 0..100 {
            let next = Kind::Counter.next(&mut rng, v);
            assert!(next >= v, "counters never go down");
            v = next;
        }
    }
}
