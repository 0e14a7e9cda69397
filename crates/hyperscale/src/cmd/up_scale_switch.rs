//! Stopping and starting one box of a running stage (the console's stop
//! and start buttons), so a reader can break a tier and watch the others
//! react. A stopped box really closes its port: clients and load balancers
//! get "connection refused", as from a crashed server. Started again, it
//! binds the same address and serves the same data.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use service::SystemContext;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How long a stopping box may drain before it is dropped.
const STOP_DRAIN_MS: u64 = 3_000;
/// How long a starting box retries binding its old address.
const REBIND_MS: u64 = 5_000;

async fn rebind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(REBIND_MS);
    loop {
        match service::net::bind(addr, "the restarted box").await {
            Ok(listener) => return Ok(listener),
            Err(err) if tokio::time::Instant::now() >= deadline => return Err(err),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Runs `run(listener, ctx)` while `switch` says so, until the process
/// shuts down. Each run gets a context of its own, cancelled when the box is
/// switched off; health reads "stopped from the console" meanwhile.
pub async fn restartable<F, Fut>(
    first: TcpListener,
    ctx: SystemContext,
    mut switch: watch::Receiver<bool>,
    mut run: F,
) -> anyhow::Result<()>
where
    F: FnMut(TcpListener, SystemContext) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let addr = first.local_addr()?;
    let mut first = Some(first);
    loop {
        while !*switch.borrow_and_update() {
            // Dropping the first listener closes the port while stopped.
            first = None;
            ctx.health.set_down("stopped from the console");
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return Ok(()),
                changed = switch.changed() => if changed.is_err() { return Ok(()) },
            }
        }
        let listener = match first.take() {
            Some(listener) => listener,
            None => rebind(addr).await?,
        };
        let stop = ctx.shutdown.child_token();
        let inner = SystemContext {
            shutdown: stop.clone(),
            health: ctx.health.clone(),
        };
        let serving = run(listener, inner);
        tokio::pin!(serving);
        loop {
            tokio::select! {
                result = &mut serving => return result,
                changed = switch.changed() => {
                    if changed.is_err() || *switch.borrow() {
                        continue;
                    }
                    stop.cancel();
                    let drain = Duration::from_millis(STOP_DRAIN_MS);
                    if let Ok(Err(err)) = tokio::time::timeout(drain, &mut serving).await {
                        tracing::warn!("a box stopped with an error: {err:#}");
                    }
                    break;
                }
            }
        }
    }
}
