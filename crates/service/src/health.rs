//! Health of one running system, shared between the system (which reports it)
//! and the admin endpoint and console (which show it).
//!
//! A system starts `Starting`, says `Up` once it accepts traffic, and `Down`
//! with a reason when it cannot serve. The state is a small mutex-guarded value:
//! it changes a handful of times in a process's life and is read on each
//! `/healthz`, so contention is irrelevant and a `std::sync::Mutex` is the
//! simplest correct choice.

use std::sync::{Arc, Mutex};

use prometheus_client::metrics::gauge::Gauge;
use serde::Serialize;

/// The states a system moves through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "lowercase")]
pub enum Status {
    /// Launched, not yet accepting traffic.
    Starting,
    /// Accepting traffic.
    Up,
    /// Not serving; the reason says why.
    Down(String),
}

impl Status {
    /// A short word for tables and pages.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Up => "up",
            Status::Down(_) => "down",
        }
    }
}

/// A handle to one system's health; clones share the state.
#[derive(Debug, Clone)]
pub struct Health {
    status: Arc<Mutex<Status>>,
    /// Mirrors the status as `hyperscale_system_up{system=...}` (1 up, 0 not) so
    /// Prometheus can alert on it without parsing `/healthz`.
    up_gauge: Gauge,
}

impl Default for Health {
    fn default() -> Self {
        Self::new(Gauge::default())
    }
}

impl Health {
    /// A health starting in `Starting`, mirrored into `up_gauge`.
    pub fn new(up_gauge: Gauge) -> Self {
        up_gauge.set(0);
        Self {
            status: Arc::new(Mutex::new(Status::Starting)),
            up_gauge,
        }
    }

    /// The system accepts traffic.
    pub fn set_up(&self) {
        self.set(Status::Up);
    }

    /// The system cannot serve, for `reason`.
    pub fn set_down(&self, reason: impl Into<String>) {
        self.set(Status::Down(reason.into()));
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    fn set(&self, status: Status) {
        self.up_gauge.set(i64::from(status == Status::Up));
        *self
            .status
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = status;
    }
}
