//! What the single-system `serve` verbs (`kv`, `mq`, `shortener`, `hotel`)
//! share.
//!
//! Some verbs' setup differs in order and in what it opens (a custom runtime
//! for kv, a recovered data directory for mq), so they share only the
//! identical steps below; the verbs whose system is opened once and served
//! on one listener (`shortener`, `hotel`) share all of it: [`serve_single`].

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use service::metrics::Registry;
use service::{Supervisor, SystemContext, SystemInfo};
use tokio::net::TcpListener;

/// The runtime a [`serve_single`] system runs on.
#[derive(Debug, Clone, Copy)]
pub enum Runtime {
    /// tokio's work-stealing runtime, one listener.
    Shared,
    /// Thread per core: this thread's single-threaded runtime is the first
    /// of this many workers (the system starts the others, each with its own
    /// `SO_REUSEPORT` listener on the same address).
    PerCore(usize),
}

/// A system a `serve` verb runs alone under a supervisor.
pub trait Single: Send + 'static {
    /// Registers its metrics (under the prefix [`serve_single`] is given).
    fn register_metrics(&self, registry: &mut Registry);
    /// Serves on `listener` (with `workers` threads in all, 1 on the shared
    /// runtime) until `ctx`'s shutdown.
    fn serve(
        self,
        listener: TcpListener,
        workers: usize,
        ctx: SystemContext,
    ) -> impl Future<Output = anyhow::Result<()>> + Send + 'static;
}

/// Runs one system alone: prepares `data_dir` (when it has one), starts the
/// `runtime` and a supervisor stopped by Ctrl-C or SIGTERM, binds
/// `--admin-bind` and `bind` (`what` names it in errors), lets `open` build
/// the system for the bound endpoint (returning it, how it is listed, and
/// the banner line to print), registers its metrics under `prefix`, and
/// serves until shutdown.
pub fn serve_single<S, F, Fut>(
    data_dir: Option<&Path>,
    admin_bind: Option<SocketAddr>,
    bind: SocketAddr,
    runtime: Runtime,
    what: &str,
    prefix: &str,
    open: F,
) -> anyhow::Result<()>
where
    S: Single,
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = anyhow::Result<(S, SystemInfo, String)>>,
{
    if let Some(dir) = data_dir {
        service::net::prepare_data_dir(dir)?;
    }
    let (built, workers) = match runtime {
        Runtime::Shared => (tokio::runtime::Runtime::new(), 1),
        Runtime::PerCore(workers) => (
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
            workers,
        ),
    };
    let built = built.context("cannot start the async runtime")?;
    built.block_on(async move {
        let mut supervisor = Supervisor::new(service::shutdown::on_signals());
        let admin = bind_admin(admin_bind).await?;
        let listener = match workers {
            1 => service::net::bind(bind, what).await?,
            _ => service::net::bind_reuseport(bind, what)?,
        };
        let endpoint = listener.local_addr()?.to_string();
        let (system, info, banner) = open(endpoint).await?;
        system.register_metrics(supervisor.registry().sub_registry_with_prefix(prefix));
        crate::output::emit(&banner)?;
        supervisor.add(info, move |ctx| system.serve(listener, workers, ctx));
        supervisor.run(admin, Duration::from_secs(3)).await
    })
}

/// Binds `--admin-bind` (`/metrics` and `/healthz`) when given; `None`
/// leaves the admin endpoint off.
pub async fn bind_admin(addr: Option<SocketAddr>) -> anyhow::Result<Option<TcpListener>> {
    match addr {
        Some(addr) => Ok(Some(service::net::bind(addr, "the admin endpoint").await?)),
        None => Ok(None),
    }
}

/// Parses the `bind` setting (a string, as TOML and env give it) into the
/// address to listen on, naming the bad value when it is not `IP:PORT`.
pub fn parse_bind(bind: &str) -> anyhow::Result<SocketAddr> {
    bind.parse()
        .with_context(|| format!("bind address {bind:?} is not IP:PORT"))
}
