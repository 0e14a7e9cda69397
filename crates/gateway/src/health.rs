//! Active health checks: every `interval_ms`, a `GET` of the configured path
//! on every upstream of a pool; any 2xx or 3xx answer within `timeout_ms`
//! is healthy.
//!
//! Probes are what brings an ejected upstream back (see
//! [`crate::upstream`]), and they find a dead upstream even when no traffic
//! reaches it. Each probe opens a fresh connection (the probe client keeps
//! no idle connections) so it sees what a new request would see: a
//! restarted server, a closed port, a full accept queue.
//!
//! With probes disabled, an ejected upstream is re-admitted after five
//! intervals, like nginx's `fail_timeout`: without a prober nothing else
//! could ever bring it back.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use service::Shutdown;
use tokio::task::JoinSet;

use crate::balance::Pool;
use crate::config::HealthCheck;

/// The client probes use: fresh connections only.
type ProbeClient = Client<HttpConnector, Full<Bytes>>;

/// Probes `pool` until `shutdown`. Spawn one per pool.
pub async fn run(pool: Arc<Pool>, check: HealthCheck, connect_ms: u64, shutdown: Shutdown) {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_millis(
        connect_ms.min(check.timeout_ms),
    )));
    connector.set_nodelay(true);
    let client: ProbeClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector);
    let mut ticker = tokio::time::interval(Duration::from_millis(check.interval_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rounds_down: Vec<u32> = vec![0; pool.upstreams.len()];
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if check.enabled {
            probe_all(&pool, &check, &client).await;
        } else {
            readmit_after_cooldown(&pool, &mut rounds_down);
        }
    }
}

/// Probes every upstream at once and applies the results.
async fn probe_all(pool: &Arc<Pool>, check: &HealthCheck, client: &ProbeClient) {
    let mut probes = JoinSet::new();
    for (index, upstream) in pool.upstreams.iter().enumerate() {
        let uri = format!("http://{}{}", upstream.authority, check.path);
        let client = client.clone();
        let timeout = Duration::from_millis(check.timeout_ms);
        probes.spawn(async move { (index, probe(&client, &uri, timeout).await) });
    }
    while let Some(joined) = probes.join_next().await {
        let Ok((index, result)) = joined else {
            continue;
        };
        let upstream = &pool.upstreams[index];
        match result {
            Ok(()) => {
                if upstream.probe_succeeded(check.healthy_threshold) {
                    tracing::info!(pool = %pool.name, upstream = %upstream.authority, "upstream healthy again: back in rotation");
                }
            }
            Err(why) => {
                if upstream.probe_failed(check.unhealthy_threshold) {
                    tracing::warn!(pool = %pool.name, upstream = %upstream.authority, "upstream failed health checks ({why}): out of rotation");
                }
            }
        }
    }
}

/// One probe: `Ok` for a 2xx/3xx within `timeout`, else why not.
async fn probe(client: &ProbeClient, uri: &str, timeout: Duration) -> Result<(), String> {
    let request = http::Request::get(uri)
        .header(http::header::USER_AGENT, "hyperscale-gateway-health")
        .body(Full::new(Bytes::new()))
        .map_err(|err| err.to_string())?;
    match tokio::time::timeout(timeout, client.request(request)).await {
        Err(_) => Err(format!("no answer in {} ms", timeout.as_millis())),
        Ok(Err(err)) => Err(format!("{err}")),
        Ok(Ok(response)) => {
            let status = response.status();
            if status.is_success() || status.is_redirection() {
                Ok(())
            } else {
                Err(format!("status {status}"))
            }
        }
    }
}

/// Without probes: bring an upstream back after five ticks out of rotation.
fn readmit_after_cooldown(pool: &Pool, rounds_down: &mut [u32]) {
    const COOLDOWN_TICKS: u32 = 5;
    for (upstream, rounds) in pool.upstreams.iter().zip(rounds_down.iter_mut()) {
        if upstream.is_healthy() {
            *rounds = 0;
            continue;
        }
        *rounds += 1;
        if *rounds >= COOLDOWN_TICKS && upstream.readmit() {
            *rounds = 0;
            tracing::info!(pool = %pool.name, upstream = %upstream.authority, "upstream re-admitted after cooldown (health checks are off)");
        }
    }
}
