//! The alert manager: Alertmanager's API v2 and behaviour (routing tree,
//! grouping, de-duplication, inhibition, silences), at-least-once delivery
//! to webhook and email receivers with retries, a durable history of every
//! alert change and notification attempt, and token roles for changes.

pub mod api;
pub mod config;
pub mod journal;
pub mod matcher;
pub mod notify;
pub mod server;
pub mod state;

pub use config::{Config, parse_config};
pub use server::{AlertManager, AmOptions, Role};
