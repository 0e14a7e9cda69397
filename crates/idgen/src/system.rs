//! The ID service as one system of `hyperscale up`: metrics, health, info.
//!
//! The shared `service` crate runs every system the same way: a start
//! function gets a bound listener and a [`SystemContext`] (shutdown token and
//! health), metrics go into one Prometheus registry under the system's
//! prefix. This module adapts [`crate::http`] to that shape and adds what an
//! operator of an ID service watches: IDs issued, requests refused, and health
//! that turns down when the machine-id lease is lost or lapses.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use service::metrics::Registry;
use service::{SystemContext, SystemInfo};
use tokio::net::TcpListener;

use crate::http::{ServerConfig, router_with_metrics};
use crate::machine::Claimed;

/// Name, metrics prefix and console entry of the ID service.
pub const NAME: &str = "id";

/// How often health re-checks the lease (a lease problem shows within this).
const HEALTH_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Counters of the ID service.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// IDs handed out over HTTP.
    pub(crate) issued: Counter,
    /// Requests refused because the generator must not issue (clock, lease).
    pub(crate) refused: Counter,
}

impl Metrics {
    /// Counters registered in `registry` under the `id` prefix.
    pub fn register(registry: &mut Registry) -> Metrics {
        let metrics = Metrics::default();
        let sub = registry.sub_registry_with_prefix(NAME);
        sub.register("issued", "IDs issued over HTTP", metrics.issued.clone());
        sub.register(
            "refused",
            "ID requests refused: clock moved back too far or machine-id lease lost",
            metrics.refused.clone(),
        );
        metrics
    }
}

/// How the console and `hyperscale up` list the ID service.
pub fn info(endpoint: &str) -> SystemInfo {
    SystemInfo {
        name: NAME.into(),
        title: "Unique ID generator (snowflake)".into(),
        chapter: "ch. 7 unique ID generator".into(),
        protocol: "HTTP".into(),
        endpoint: endpoint.into(),
        link: Some(format!("http://{endpoint}/api/v1/ids?count=10")),
    }
}

/// Runs the ID service on `listener` with the generator of `claimed` (see
/// [`crate::machine::claim`]) until `ctx.shutdown`; health is up while the
/// generator may issue IDs. The claim is held until this returns.
pub async fn run(
    listener: TcpListener,
    claimed: Claimed,
    config: ServerConfig,
    metrics: Metrics,
    ctx: SystemContext,
) -> anyhow::Result<()> {
    let generator = claimed.generator.clone();
    let app = router_with_metrics(generator.clone(), &config, metrics);
    ctx.health.set_up();
    if generator.lease().is_some() {
        let (health, shutdown) = (ctx.health.clone(), ctx.shutdown.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEALTH_CHECK_EVERY);
            while shutdown.run_until_cancelled(tick.tick()).await.is_some() {
                match generator.lease().map(|l| l.check()) {
                    Some(Err(err)) => health.set_down(err.to_string()),
                    _ => health.set_up(),
                }
            }
        });
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(ctx.shutdown.cancelled_owned())
        .await?;
    drop(claimed);
    Ok(())
}
