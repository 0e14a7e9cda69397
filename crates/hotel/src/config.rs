//! The hotel service's settings: one struct, loaded from file, environment
//! (`HYPERSCALE_HOTEL_*`) and flags by `service::config`.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::concurrency::Mode;
use crate::model::{Overbooking, StayLimits};

/// Every setting of `hyperscale hotel serve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Where the embedded SQLite file lives (`{data_dir}/hotel.db`).
    pub data_dir: PathBuf,
    /// `embedded` (SQLite under `data_dir`), `sqlite://PATH` or
    /// `postgres://user:pass@host/db`.
    pub database: String,
    /// `pessimistic`, `optimistic` or `constraint` (see `concurrency`).
    pub concurrency: String,
    /// Rooms sold per physical room, e.g. `1.10`; applied to inventory as it
    /// is set.
    pub overbooking: f64,
    /// Retries of one request under contention (optimistic conflicts,
    /// transient database errors).
    pub retries_max: u32,
    /// Database connections.
    pub db_connections: u32,
    /// Bound on waiting for the database, in ms; past it: 503.
    pub db_timeout_ms: u64,
    /// When set, every `/v1` request needs `Authorization: Bearer <key>` or
    /// `X-API-Key: <key>`.
    pub api_key: Option<String>,
    /// Largest request body, in bytes.
    pub body_bytes_max: usize,
    /// Longest stay, in nights.
    pub stay_nights_max: i64,
    /// How far ahead a stay may start, in days.
    pub horizon_days: i64,
    /// Most rooms in one reservation.
    pub rooms_max: i64,
    /// Pause between the availability check and the write, in ms: 0 in
    /// production; tests and benchmarks widen the race window with it.
    pub hold_ms: u64,
    /// Databases the hotels are spread over by hotel id (see `shard`); a
    /// different count opens different, empty shards.
    pub shards: usize,
    /// The inventory cache: empty for none, or `redis://HOST:PORT` (our
    /// `kv` or any Redis); fed by the outbox relay (see `cache`).
    pub cache: String,
    /// How long a cached night lives, in ms.
    pub cache_ttl_ms: u64,
    /// How often the relay reads the outbox, in ms.
    pub outbox_poll_ms: u64,
    /// Move reservations whose stay ended this many days ago to the archive
    /// table (0: never).
    pub archive_after_days: i64,
    /// The payment provider: `fake` (an in-process fake, as `hyperscale
    /// hotel fake-payments` serves) or its `http://host:port`.
    pub payments: String,
    /// Bound on one call to the provider, in ms.
    pub payment_timeout_ms: u64,
    /// Charge calls of one payment before it is compensated.
    pub payment_attempts_max: u32,
    /// How often unfinished payment sagas are driven on, in ms.
    pub saga_sweep_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8084)),
            data_dir: PathBuf::from("./data/hotel"),
            database: "embedded".into(),
            concurrency: "optimistic".into(),
            overbooking: 1.0,
            retries_max: 8,
            db_connections: 8,
            db_timeout_ms: 10_000,
            api_key: None,
            body_bytes_max: 16 * 1024,
            stay_nights_max: 30,
            horizon_days: 730,
            rooms_max: 10,
            hold_ms: 0,
            shards: 1,
            archive_after_days: 0,
            cache: String::new(),
            cache_ttl_ms: 60_000,
            outbox_poll_ms: 50,
            payments: "fake".into(),
            payment_timeout_ms: 5_000,
            payment_attempts_max: 3,
            saga_sweep_ms: 5_000,
        }
    }
}

impl Config {
    /// The concurrency mode, validated.
    pub fn mode(&self) -> Result<Mode, String> {
        self.concurrency.parse()
    }

    /// The overbooking ratio, validated.
    pub fn overbooking(&self) -> Result<Overbooking, String> {
        Overbooking::from_ratio(self.overbooking)
    }

    /// The stay bounds.
    pub fn stay_limits(&self) -> StayLimits {
        StayLimits {
            nights_max: self.stay_nights_max,
            horizon_days: self.horizon_days,
        }
    }

    /// The database URL: `embedded` becomes a SQLite file under `data_dir`.
    pub fn database_url(&self) -> String {
        if self.database == "embedded" {
            format!("sqlite://{}", self.data_dir.join("hotel.db").display())
        } else {
            self.database.clone()
        }
    }

    /// Checks every setting, naming the bad one.
    pub fn validate(&self) -> Result<(), String> {
        self.mode()?;
        self.overbooking()?;
        if !(1..=365).contains(&self.stay_nights_max) {
            return Err("stay_nights_max must be 1..=365".into());
        }
        if !(1..=3650).contains(&self.horizon_days) {
            return Err("horizon_days must be 1..=3650".into());
        }
        if !(1..=1000).contains(&self.rooms_max) {
            return Err("rooms_max must be 1..=1000".into());
        }
        if !(1..=1000).contains(&self.db_connections) {
            return Err("db_connections must be 1..=1000".into());
        }
        if self.hold_ms > 1_000 {
            return Err("hold_ms must be at most 1000".into());
        }
        if self.retries_max > 100 {
            return Err("retries_max must be at most 100".into());
        }
        if !(1..=256).contains(&self.shards) {
            return Err("shards must be 1..=256".into());
        }
        if !(0..=36_500).contains(&self.archive_after_days) {
            return Err("archive_after_days must be 0..=36500".into());
        }
        if !self.cache.is_empty() && !self.cache.starts_with("redis://") {
            return Err(format!(
                "cache must be empty (none) or redis://HOST:PORT, not `{}`",
                self.cache
            ));
        }
        if !(1_000..=86_400_000).contains(&self.cache_ttl_ms) {
            return Err("cache_ttl_ms must be 1000..=86400000".into());
        }
        if !(1..=60_000).contains(&self.outbox_poll_ms) {
            return Err("outbox_poll_ms must be 1..=60000".into());
        }
        if self.payments != "fake" && !self.payments.starts_with("http://") {
            return Err(format!(
                "payments must be `fake` or http://HOST:PORT, not `{}`",
                self.payments
            ));
        }
        if !(10..=600_000).contains(&self.payment_timeout_ms) {
            return Err("payment_timeout_ms must be 10..=600000".into());
        }
        if !(1..=100).contains(&self.payment_attempts_max) {
            return Err("payment_attempts_max must be 1..=100".into());
        }
        if !(10..=3_600_000).contains(&self.saga_sweep_ms) {
            return Err("saga_sweep_ms must be 10..=3600000".into());
        }
        if self.api_key.as_deref() == Some("") {
            return Err("api_key must not be empty (leave it unset to disable auth)".into());
        }
        Ok(())
    }
}
