//! The chapter's experiment, run for real: how even is the load, and how many
//! keys move when a server joins or leaves?
//!
//! For each virtual node count it builds three rings of identically named
//! servers (the cluster, the cluster plus one server, the cluster minus its
//! last server), hashes `keys` synthetic keys once, and counts per key the
//! owner in each ring. That yields the load per server (the spread virtual
//! nodes are meant to shrink) and the share of keys that moved (the `k/n`
//! the chapter promises). The same keys under `hash % n` show the contrast:
//! changing `n` by one moves nearly every key, the cache-miss storm that
//! motivates the chapter. Memory is `O(servers)`: keys are generated, not
//! stored, so the key count only costs time (~1 s per 10^6 keys per row in
//! release builds on one core).

use std::fmt;

use serde::Serialize;
use thiserror::Error;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::error::RingError;
use crate::ring::Ring;

/// Most keys one simulation accepts: a time bound (~minutes), not a memory one.
pub const KEYS_MAX: u64 = 1_000_000_000;
/// Most servers one simulation accepts.
pub const SERVERS_MAX: usize = 10_000;

/// What to simulate.
#[derive(Debug, Clone, Serialize)]
pub struct SimulationConfig {
    /// Servers in the cluster, named `{name_prefix}0 ..`; at least 2 so one
    /// can be removed and one stays.
    pub servers: usize,
    /// One row per entry: every server gets this many virtual nodes.
    pub vnode_counts: Vec<u32>,
    /// How many synthetic keys to place.
    pub keys: u64,
    /// Seeds the synthetic keys: different seeds, different key sets.
    pub key_seed: u64,
    /// Server names are this prefix plus an index; a different prefix gives
    /// a differently laid-out ring (the server-placement "seed").
    pub name_prefix: String,
}

impl SimulationConfig {
    /// `servers` servers named `server-0 ..`, the given vnode counts and keys.
    pub fn new(servers: usize, vnode_counts: Vec<u32>, keys: u64) -> Self {
        SimulationConfig {
            servers,
            vnode_counts,
            keys,
            key_seed: 0,
            name_prefix: "server-".to_owned(),
        }
    }
}

/// Why a simulation was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SimulationError {
    /// Fewer than 2 or more than [`SERVERS_MAX`] servers.
    #[error("the simulation needs between 2 and {SERVERS_MAX} servers, got {0}")]
    Servers(usize),
    /// No virtual node count given.
    #[error("give at least one virtual node count, e.g. 1,10,100,200")]
    NoVnodeCounts,
    /// Zero or more than [`KEYS_MAX`] keys.
    #[error("the simulation needs between 1 and {KEYS_MAX} keys, got {0}")]
    Keys(u64),
    /// A ring could not be built (e.g. a virtual node count of 0).
    #[error(transparent)]
    Ring(#[from] RingError),
}

/// How evenly keys spread over servers. Percentages are of the mean load.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LoadStats {
    /// Keys on the least loaded server.
    pub min_keys: u64,
    /// Keys on the most loaded server.
    pub max_keys: u64,
    /// Keys per server on average.
    pub mean_keys: f64,
    /// Population standard deviation of keys per server, as % of the mean.
    pub std_dev_pct: f64,
    /// `min_keys` as % of the mean.
    pub min_pct: f64,
    /// `max_keys` as % of the mean.
    pub max_pct: f64,
}

impl LoadStats {
    /// Statistics of a per-server key count list (not empty).
    pub fn from_loads(loads: &[u64]) -> LoadStats {
        assert!(
            !loads.is_empty(),
            "load statistics need at least one server"
        );
        let n = loads.len() as f64;
        let mean = loads.iter().sum::<u64>() as f64 / n;
        let variance = loads
            .iter()
            .map(|&l| (l as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        let min = *loads.iter().min().expect("not empty");
        let max = *loads.iter().max().expect("not empty");
        let pct = |x: f64| if mean > 0.0 { x / mean * 100.0 } else { 0.0 };
        LoadStats {
            min_keys: min,
            max_keys: max,
            mean_keys: mean,
            std_dev_pct: pct(variance.sqrt()),
            min_pct: pct(min as f64),
            max_pct: pct(max as f64),
        }
    }
}

/// One row of the experiment: one virtual node count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VnodeRow {
    /// Virtual nodes per server.
    pub vnodes_per_server: u32,
    /// Load per server in the cluster.
    pub load: LoadStats,
    /// % of keys whose owner changed when one server joined.
    pub moved_on_add_pct: f64,
    /// % of keys whose owner changed when one server left.
    pub moved_on_remove_pct: f64,
}

/// What `hash % n` does to the same keys.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ModuloContrast {
    /// % of keys whose server changed going from `n` to `n + 1` servers.
    pub moved_on_add_pct: f64,
    /// % of keys whose server changed going from `n` to `n - 1` servers.
    pub moved_on_remove_pct: f64,
}

/// The whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimulationReport {
    /// Servers in the cluster.
    pub servers: usize,
    /// Keys placed.
    pub keys: u64,
    /// The ideal % moved on adding a server: its fair share, `100 / (n + 1)`.
    pub ideal_add_pct: f64,
    /// The ideal % moved on removing a server: its share, `100 / n`.
    pub ideal_remove_pct: f64,
    /// One row per virtual node count, in the order given.
    pub rows: Vec<VnodeRow>,
    /// The same keys under modulo hashing.
    pub modulo: ModuloContrast,
}

/// A simulated server: its name is what the ring hashes, its index is where
/// its load is counted (so no map lookup per key).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SimServer {
    name: String,
    index: usize,
}

impl fmt::Display for SimServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// The position of synthetic key `i`: a seeded hash of its index, as
/// uniform as hashing real key text and far cheaper to generate.
fn key_hash(i: u64, seed: u64) -> u64 {
    xxh3_64_with_seed(&i.to_le_bytes(), seed)
}

/// Runs the experiment described by `config`.
pub fn simulate(config: &SimulationConfig) -> Result<SimulationReport, SimulationError> {
    let n = config.servers;
    if !(2..=SERVERS_MAX).contains(&n) {
        return Err(SimulationError::Servers(n));
    }
    if config.vnode_counts.is_empty() {
        return Err(SimulationError::NoVnodeCounts);
    }
    if !(1..=KEYS_MAX).contains(&config.keys) {
        return Err(SimulationError::Keys(config.keys));
    }
    let rows = config
        .vnode_counts
        .iter()
        .map(|&vnodes| simulate_row(config, vnodes))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SimulationReport {
        servers: n,
        keys: config.keys,
        ideal_add_pct: 100.0 / (n + 1) as f64,
        ideal_remove_pct: 100.0 / n as f64,
        rows,
        modulo: modulo_contrast(config),
    })
}

fn build_ring(
    config: &SimulationConfig,
    indexes: std::ops::Range<usize>,
    vnodes: u32,
) -> Result<Ring<SimServer>, RingError> {
    let mut ring = Ring::new();
    for index in indexes {
        let name = format!("{}{index}", config.name_prefix);
        ring.add_server(SimServer { name, index }, vnodes)?;
    }
    Ok(ring)
}

fn simulate_row(config: &SimulationConfig, vnodes: u32) -> Result<VnodeRow, SimulationError> {
    let n = config.servers;
    let cluster = build_ring(config, 0..n, vnodes)?;
    let grown = build_ring(config, 0..n + 1, vnodes)?;
    let shrunk = build_ring(config, 0..n - 1, vnodes)?;
    let mut loads = vec![0u64; n];
    let (mut moved_on_add, mut moved_on_remove) = (0u64, 0u64);
    let owner =
        |ring: &Ring<SimServer>, h| ring.owner_of_position(h).expect("ring not empty").index;
    for i in 0..config.keys {
        let h = key_hash(i, config.key_seed);
        let home = owner(&cluster, h);
        loads[home] += 1;
        moved_on_add += u64::from(owner(&grown, h) != home);
        moved_on_remove += u64::from(owner(&shrunk, h) != home);
    }
    let pct = |count: u64| count as f64 / config.keys as f64 * 100.0;
    Ok(VnodeRow {
        vnodes_per_server: vnodes,
        load: LoadStats::from_loads(&loads),
        moved_on_add_pct: pct(moved_on_add),
        moved_on_remove_pct: pct(moved_on_remove),
    })
}

fn modulo_contrast(config: &SimulationConfig) -> ModuloContrast {
    let n = config.servers as u64;
    let (mut moved_on_add, mut moved_on_remove) = (0u64, 0u64);
    for i in 0..config.keys {
        let h = key_hash(i, config.key_seed);
        let home = h % n;
        moved_on_add += u64::from(h % (n + 1) != home);
        moved_on_remove += u64::from(h % (n - 1) != home);
    }
    let pct = |count: u64| count as f64 / config.keys as f64 * 100.0;
    ModuloContrast {
        moved_on_add_pct: pct(moved_on_add),
        moved_on_remove_pct: pct(moved_on_remove),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_configs() {
        let bad = |c: SimulationConfig| simulate(&c).unwrap_err();
        assert_eq!(
            bad(SimulationConfig::new(1, vec![1], 10)),
            SimulationError::Servers(1)
        );
        assert_eq!(
            bad(SimulationConfig::new(3, vec![], 10)),
            SimulationError::NoVnodeCounts
        );
        assert_eq!(
            bad(SimulationConfig::new(3, vec![1], 0)),
            SimulationError::Keys(0)
        );
        assert!(matches!(
            bad(SimulationConfig::new(3, vec![10, 0], 10)),
            SimulationError::Ring(RingError::ZeroVnodes { .. })
        ));
    }

    #[test]
    fn counts_add_up() {
        let report = simulate(&SimulationConfig::new(4, vec![1, 50], 5_000)).unwrap();
        assert_eq!(report.rows.len(), 2);
        for row in &report.rows {
            assert!((row.load.mean_keys - 1_250.0).abs() < 1e-9);
            assert!(row.load.min_keys <= 1_250 && row.load.max_keys >= 1_250);
            assert!(row.moved_on_add_pct > 0.0 && row.moved_on_add_pct < 100.0);
        }
        assert!((report.ideal_add_pct - 20.0).abs() < 1e-9);
        assert!((report.ideal_remove_pct - 25.0).abs() < 1e-9);
    }

    /// Modulo hashing moves about n/(n+1) of keys on a resize: for 10
    /// servers ~91% (the keys whose h % 10 == h % 11 are ~1/11).
    #[test]
    fn modulo_moves_nearly_everything() {
        let report = simulate(&SimulationConfig::new(10, vec![100], 20_000)).unwrap();
        assert!(report.modulo.moved_on_add_pct > 85.0, "{:?}", report.modulo);
        assert!(
            report.modulo.moved_on_remove_pct > 85.0,
            "{:?}",
            report.modulo
        );
        assert!(report.rows[0].moved_on_add_pct < 20.0);
    }

    #[test]
    fn load_stats_of_an_even_spread() {
        let stats = LoadStats::from_loads(&[10, 10, 10]);
        assert_eq!(stats.std_dev_pct, 0.0);
        assert_eq!((stats.min_pct, stats.max_pct), (100.0, 100.0));
        let stats = LoadStats::from_loads(&[0, 20]);
        assert!((stats.std_dev_pct - 100.0).abs() < 1e-9);
        assert_eq!((stats.min_pct, stats.max_pct), (0.0, 200.0));
    }
}
