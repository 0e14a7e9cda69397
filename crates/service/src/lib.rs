//! The one shape every Hyperscale server shares, written once.
//!
//! The book's first chapter grows a single server into a fleet: load
//! balancers probe health, operators watch metrics and logs, deployments stop
//! servers without dropping requests. Every system in Hyperscale therefore
//! needs the same few things, and this crate is where they live:
//!
//! - [`config`]: a TOML file, `HYPERSCALE_<SYSTEM>_*` environment variables and
//!   flags, layered in that order, with errors that name the key;
//! - [`logging`]: `tracing` logs, human or JSON;
//! - [`metrics`] and [`admin`]: a Prometheus `/metrics` and a `/healthz`;
//! - [`auth`]: bearer tokens, compared in constant time;
//! - [`shutdown`]: SIGINT/SIGTERM cancel one token; servers drain and return;
//! - [`supervisor`]: several systems in one process (`hyperscale up`), each with
//!   its name, endpoint and [`Health`];
//! - [`html`]: escaping for server-rendered pages;
//! - [`front`]: a hand-written HTTP/1.1 loop for a system's hot request,
//!   handing every other request to the full stack (hyper, axum);
//! - [`net`]: binding ports and preparing data directories with actionable errors.
//!
//! A system plugs in by exposing an async function that takes a bound
//! listener, its config and a [`SystemContext`], and returns when the
//! context's shutdown token is cancelled. Whether it runs alone
//! (`hyperscale kv serve`) or beside every other system (`hyperscale up`) is
//! the caller's choice, not the system's.
#![warn(missing_docs)]

pub mod admin;
pub mod auth;
pub mod config;
pub mod front;
pub mod health;
pub mod html;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod restart;
pub mod session;
pub mod shutdown;
pub mod supervisor;

pub use config::{ConfigError, ConfigSources};
pub use health::{Health, Status};
pub use shutdown::Shutdown;
pub use supervisor::{Directory, MetricsView, Supervisor, SystemContext, SystemInfo};
