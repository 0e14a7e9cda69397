//! Running several systems in one process: what `hyperscale up` needs, and
//! what a single `hyperscale <system> serve` uses too (a supervisor of one).
//!
//! Each system is added with its description (name, protocol, endpoint) and a
//! start function that receives a [`SystemContext`]: the shutdown token to obey
//! and the [`Health`] to report. The supervisor lists every system in a
//! [`Directory`] (read by the admin endpoint and the console), serves
//! `/metrics` and `/healthz`, and on shutdown waits for every system to drain,
//! up to a timeout.
//!
//! Failure policy: a system whose task ends with an error before shutdown
//! stops the whole process with that error. We fail fast on purpose: a
//! half-running process that looks alive is worse than a dead one that a
//! service manager restarts, and listeners are bound before systems are added,
//! so the common start-up errors (port in use) never get this far.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::health::{Health, Status};
use crate::metrics::Registry;
use crate::shutdown::Shutdown;

/// What the console and the start-up table show about a system.
#[derive(Debug, Clone, Serialize)]
pub struct SystemInfo {
    /// Short unique name, also the metrics prefix: `kv`, `gateway`.
    pub name: String,
    /// One line for humans: "Key-value store (Redis protocol)".
    pub title: String,
    /// Where it comes from in the book: "ch. 6 key-value store".
    pub chapter: String,
    /// Wire protocol clients speak: `HTTP`, `RESP`, `Kafka`.
    pub protocol: String,
    /// The bound address, `127.0.0.1:6379`.
    pub endpoint: String,
    /// A URL a browser can open, for HTTP systems.
    pub link: Option<String>,
}

/// A system as listed: its description and live health.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The description given when it was added.
    pub info: SystemInfo,
    /// Its health, updated by the system itself.
    pub health: Health,
}

/// The list of systems of this process; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    // Written only while systems are added at start, read on every page view.
    entries: Arc<RwLock<Vec<Entry>>>,
}

impl Directory {
    /// Every system with its current status, in the order they were added.
    pub fn list(&self) -> Vec<(SystemInfo, Status)> {
        let entries = self
            .entries
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        entries
            .iter()
            .map(|entry| (entry.info.clone(), entry.health.status()))
            .collect()
    }

    fn push(&self, entry: Entry) {
        self.entries
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
            .push(entry);
    }
}

/// Read access to the process's metrics once serving has started; before
/// that, renders nothing. Lets the console show metrics without owning them.
#[derive(Debug, Clone, Default)]
pub struct MetricsView {
    registry: Arc<OnceLock<Arc<Registry>>>,
}

impl MetricsView {
    /// The whole exposition text.
    pub fn render(&self) -> String {
        self.registry
            .get()
            .map(|registry| crate::metrics::render(registry))
            .unwrap_or_default()
    }
}

/// What a system's start function receives.
#[derive(Debug, Clone)]
pub struct SystemContext {
    /// Cancelled when the process shuts down: stop accepting, drain, return.
    pub shutdown: Shutdown,
    /// Report `set_up()` once serving, `set_down(reason)` when not.
    pub health: Health,
}

impl SystemContext {
    /// A context obeying `shutdown`, with a fresh health that no supervisor
    /// watches: what a system run outside a [`Supervisor`] (a test, an
    /// embedding) needs. [`Supervisor::add`] builds its own.
    pub fn new(shutdown: Shutdown) -> Self {
        Self {
            shutdown,
            health: Health::default(),
        }
    }
}

type Task = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SystemLabel {
    system: String,
}

/// Collects systems, then runs them together. See the module doc.
pub struct Supervisor {
    registry: Registry,
    directory: Directory,
    metrics_view: MetricsView,
    shutdown: Shutdown,
    /// `hyperscale_system_up{system}`: 1 while a system reports up.
    up: Family<SystemLabel, Gauge>,
    /// Started in order; `(name, task)`.
    pending: Vec<(String, Task)>,
    /// The systems added with [`Self::add_restartable`].
    switches: crate::restart::Switches,
    /// Required (as a bearer token) by the admin endpoint's stop/start.
    admin_token: Option<String>,
}

impl Supervisor {
    /// A supervisor whose systems stop when `shutdown` is cancelled.
    pub fn new(shutdown: Shutdown) -> Self {
        let mut registry = Registry::with_prefix("hyperscale");
        let up = Family::<SystemLabel, Gauge>::default();
        registry.register(
            "system_up",
            "1 while the system reports itself up",
            up.clone(),
        );
        Self {
            registry,
            directory: Directory::default(),
            metrics_view: MetricsView::default(),
            shutdown,
            up,
            pending: Vec::new(),
            switches: crate::restart::Switches::default(),
            admin_token: None,
        }
    }

    /// Makes the admin endpoint's `POST /systems/{name}/stop|start` require
    /// `Authorization: Bearer <token>` (`None`: no token, the default; the
    /// admin endpoint binds 127.0.0.1 unless told otherwise).
    pub fn set_admin_token(&mut self, token: Option<String>) {
        self.admin_token = token.filter(|token| !token.is_empty());
    }

    /// The registry, for systems to register metrics before [`Self::run`].
    pub fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The shared list of systems (for the console).
    pub fn directory(&self) -> Directory {
        self.directory.clone()
    }

    /// Read access to the metrics once running (for the console).
    pub fn metrics_view(&self) -> MetricsView {
        self.metrics_view.clone()
    }

    /// The token every system obeys.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Adds a system; `start` runs when [`Self::run`] is called.
    pub fn add<F, Fut>(&mut self, info: SystemInfo, start: F)
    where
        F: FnOnce(SystemContext) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (name, context) = self.enter(info);
        self.pending.push((name, Box::pin(start(context))));
    }

    /// Adds a system that the admin endpoint can stop and start again
    /// (`POST /systems/{name}/stop|start`, see [`crate::restart`]): `start`
    /// is called on every start, so it binds and opens what it needs itself.
    pub fn add_restartable<F, Fut>(&mut self, info: SystemInfo, start: F)
    where
        F: FnMut(SystemContext) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (name, context) = self.enter(info);
        let switch = self.switches.register(&name);
        let task = crate::restart::run(start, context.shutdown, context.health, switch);
        self.pending.push((name, Box::pin(task)));
    }

    /// Lists a new system; returns its name and the context it runs with.
    fn enter(&mut self, info: SystemInfo) -> (String, SystemContext) {
        assert!(
            self.directory
                .list()
                .iter()
                .all(|(existing, _)| existing.name != info.name),
            "system `{}` added twice",
            info.name
        );
        let gauge = self
            .up
            .get_or_create(&SystemLabel {
                system: info.name.clone(),
            })
            .clone();
        let health = Health::new(gauge);
        let name = info.name.clone();
        self.directory.push(Entry {
            info,
            health: health.clone(),
        });
        let context = SystemContext {
            shutdown: self.shutdown.clone(),
            health,
        };
        (name, context)
    }

    /// Serves the admin endpoint on `admin` (if any), runs every system until
    /// shutdown, then waits up to `drain` for them to finish.
    pub async fn run(self, admin: Option<TcpListener>, drain: Duration) -> anyhow::Result<()> {
        let registry = Arc::new(self.registry);
        let _ = self.metrics_view.registry.set(registry.clone());
        let mut tasks = JoinSet::new();
        if let Some(listener) = admin {
            let router = crate::admin::router(registry, self.directory.clone()).merge(
                crate::restart::router(self.switches.clone(), self.admin_token.clone()),
            );
            let shutdown = self.shutdown.clone();
            tasks.spawn(async move {
                let result = axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown.cancelled_owned())
                    .await;
                ("admin".to_string(), result.map_err(anyhow::Error::from))
            });
        }
        for (name, task) in self.pending {
            tasks.spawn(async move { (name, task.await) });
        }
        let failure = supervise(&mut tasks, &self.shutdown).await;
        drain_all(&mut tasks, drain).await;
        match failure {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

/// Waits until shutdown or until a system fails (which triggers shutdown).
async fn supervise(
    tasks: &mut JoinSet<(String, anyhow::Result<()>)>,
    shutdown: &Shutdown,
) -> Option<anyhow::Error> {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            joined = tasks.join_next() => {
                let (name, result) = match joined {
                    None => return None,
                    Some(Ok(done)) => done,
                    Some(Err(join_err)) => ("a system".to_string(), Err(anyhow::anyhow!("{join_err}"))),
                };
                match result {
                    Ok(()) if shutdown.is_cancelled() => return None,
                    Ok(()) => tracing::info!(system = %name, "system finished"),
                    Err(err) => {
                        tracing::error!(system = %name, "system failed: {err:#}");
                        shutdown.cancel();
                        return Some(err.context(format!("{name} failed")));
                    }
                }
            }
        }
    }
}

async fn drain_all(tasks: &mut JoinSet<(String, anyhow::Result<()>)>, drain: Duration) {
    let deadline = tokio::time::sleep(drain);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => {
                tracing::warn!(remaining = tasks.len(), "drain timeout reached, stopping anyway");
                tasks.abort_all();
                return;
            }
            joined = tasks.join_next() => match joined {
                None => return,
                Some(Ok((name, Err(err)))) => tracing::warn!(system = %name, "stopped with error: {err:#}"),
                Some(_) => {}
            },
        }
    }
}
