//! The web console of `hyperscale up`: one page listing every running system
//! with its health, protocol, endpoint and a link, plus each system's live
//! metrics.
//!
//! The book's first chapter ends on "monitor the system continuously"; a
//! reader who has just started a dozen servers needs one place to see them.
//! The page is rendered on the server as plain HTML with a little CSS and no
//! JavaScript: nothing to build, it works in any browser and in `curl`, and it
//! refreshes itself every few seconds with a `<meta http-equiv="refresh">`.
//!
//! Routes: `/` (the page), `/systems/{name}` (one system and its metrics),
//! `/systems/{name}/metrics` (that system's share of the process's metrics,
//! in the exposition format, for the metrics server to scrape), `/metrics`
//! (every system's request rate charted from the metrics server, and a query
//! box), `/api/systems` (the list as JSON, for scripts), `/alerts` and
//! `/alerts/history` (firing alerts, silences, history: see [`alerts`]),
//! and, when `up` runs a stage of chapter 1 (`--config examples/scale/...`),
//! `/topology` (the stage drawn tier by tier, see [`topology`]) and
//! `/api/topology`.
#![warn(missing_docs)]

pub mod alerts;
mod alerts_page;
pub mod chart;
mod page;
pub mod requests;
pub mod topology;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use service::{Directory, MetricsView, SystemContext, SystemInfo};
use tokio::net::TcpListener;

/// What the console reads: the process's systems and metrics.
#[derive(Clone)]
pub struct Console {
    /// Every system of the process, with live health.
    pub directory: Directory,
    /// The process's metrics, readable once the supervisor runs.
    pub metrics: MetricsView,
    /// The metrics server's base URL (`http://127.0.0.1:9090`), which the
    /// metrics page charts from; `None` when none runs.
    pub prometheus: Option<String>,
    /// The alert manager's base URL (`http://127.0.0.1:9093`), which the
    /// alert pages read and change silences through; `None` when none runs.
    pub alertmanager: Option<String>,
    /// Counts the console's own requests
    /// (`hyperscale_console_requests_total`, registered by the caller).
    pub requests: prometheus_client::metrics::counter::Counter,
    /// The stage of chapter 1 being run, if any (`/topology`).
    pub topology: Option<std::sync::Arc<topology::Topology>>,
    /// What the topology sampler has read (started by [`serve`]).
    pub sampler: std::sync::Arc<topology::Sampler>,
    /// The boxes `/topology` may stop and start.
    pub switches: std::sync::Arc<topology::Switches>,
}

/// The description under which the console lists itself.
pub fn info(endpoint: &str) -> SystemInfo {
    SystemInfo {
        name: "console".into(),
        title: "Web console".into(),
        chapter: "ch. 1 (monitoring)".into(),
        protocol: "HTTP".into(),
        endpoint: endpoint.into(),
        link: Some(format!("http://{endpoint}/")),
    }
}

/// The console's routes.
pub fn router(console: Console) -> Router {
    let requests = console.requests.clone();
    let router = Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics_page))
        .route("/systems/{name}", get(system))
        .route("/systems/{name}/metrics", get(system_metrics))
        .route("/api/systems", get(api_systems))
        .route("/alerts", get(alerts::page))
        .route("/alerts/history", get(alerts::history))
        .route(
            "/alerts/silences",
            axum::routing::post(alerts::create_silence),
        )
        .route(
            "/alerts/silences/{id}/expire",
            axum::routing::post(alerts::expire_silence),
        )
        .route("/topology", get(topology_page))
        .route("/api/topology", get(api_topology))
        .route("/topology/{name}/{action}", axum::routing::post(switch_box))
        .with_state(console);
    service::metrics::count_requests(router, requests)
}

/// Serves the console on `listener` until the context's shutdown.
pub async fn serve(
    listener: TcpListener,
    console: Console,
    ctx: SystemContext,
) -> anyhow::Result<()> {
    if let Some(topology) = console.topology.clone() {
        tokio::spawn(topology::run_sampler(
            topology,
            console.metrics.clone(),
            console.sampler.clone(),
            ctx.shutdown.clone(),
        ));
    }
    ctx.health.set_up();
    axum::serve(listener, router(console))
        .with_graceful_shutdown(ctx.shutdown.cancelled_owned())
        .await?;
    Ok(())
}

async fn index(State(console): State<Console>) -> Html<String> {
    Html(page::index(&console.directory.list()))
}

async fn system(State(console): State<Console>, Path(name): Path<String>) -> Response {
    let systems = console.directory.list();
    let Some((info, status)) = systems.iter().find(|(info, _)| info.name == name) else {
        return (StatusCode::NOT_FOUND, Html(page::not_found(&name))).into_response();
    };
    let metrics = metrics_of(&console.metrics.render(), &info.name);
    Html(page::system(info, status, &metrics)).into_response()
}

/// One system's metrics in the exposition format (404 for an unknown name,
/// 503 for a system that reports itself down, so a scrape of a system that
/// is gone or stopped reports `up` 0).
async fn system_metrics(State(console): State<Console>, Path(name): Path<String>) -> Response {
    let systems = console.directory.list();
    match systems.iter().find(|(info, _)| info.name == name) {
        None => {
            return (StatusCode::NOT_FOUND, format!("no system named {name}\n")).into_response();
        }
        Some((_, service::Status::Down(reason))) => {
            let body = format!("{name} is down: {reason}\n");
            return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
        }
        Some(_) => {}
    }
    let text = requests::system_exposition(&console.metrics.render(), &name);
    (
        [(header::CONTENT_TYPE, service::metrics::CONTENT_TYPE)],
        text,
    )
        .into_response()
}

/// What the metrics page accepts: a PromQL expression (default: every
/// system's request rate) and how many seconds back to chart.
#[derive(serde::Deserialize)]
struct ChartParams {
    query: Option<String>,
    range_s: Option<u64>,
}

/// Shortest and longest range the metrics page charts (1 minute, 7 days).
const RANGE_S_MIN: u64 = 60;
const RANGE_S_MAX: u64 = 7 * 86_400;
const RANGE_S_DEFAULT: u64 = 900;

async fn metrics_page(
    State(console): State<Console>,
    Query(params): Query<ChartParams>,
) -> Response {
    let default = requests::rate_query();
    let query = params
        .query
        .filter(|q| !q.trim().is_empty())
        .unwrap_or_else(|| default.clone());
    let range_s = params
        .range_s
        .unwrap_or(RANGE_S_DEFAULT)
        .clamp(RANGE_S_MIN, RANGE_S_MAX);
    let end_s = clock::now_ms() / 1000;
    let start_s = end_s.saturating_sub(range_s);
    let chart = if query.len() > chart::QUERY_BYTES_MAX {
        Err(format!(
            "the query is {} bytes; the page takes at most {}",
            query.len(),
            chart::QUERY_BYTES_MAX
        ))
    } else {
        match &console.prometheus {
            None => Err("no metrics server runs in this process".into()),
            Some(server) => chart::query_range(server, &query, range_s, end_s)
                .await
                .map(|series| (chart::render(&series, start_s, end_s), series)),
        }
    };
    let missing: Vec<String> = match (&chart, query == default) {
        (Ok((_, series)), true) => {
            let charted: Vec<String> = series.iter().map(chart::series_name).collect();
            console
                .directory
                .list()
                .into_iter()
                .map(|(info, _)| info.name)
                .filter(|name| !charted.contains(name))
                .collect()
        }
        _ => Vec::new(),
    };
    let view = page::ChartView {
        query: &query,
        default_query: &default,
        range_s,
        chart: chart.map(|(svg, _)| svg),
        missing: &missing,
    };
    Html(page::metrics(&view)).into_response()
}

async fn api_systems(State(console): State<Console>) -> Response {
    let systems: Vec<Listed> = console
        .directory
        .list()
        .into_iter()
        .map(|(info, status)| Listed { info, status })
        .collect();
    axum::Json(systems).into_response()
}

async fn topology_page(State(console): State<Console>) -> Response {
    let Some(topology) = &console.topology else {
        return (StatusCode::NOT_FOUND, Html(page::no_topology())).into_response();
    };
    let live = console.sampler.live();
    let switchable: Vec<&str> = console.switches.0.keys().map(String::as_str).collect();
    Html(page::topology(
        topology,
        &live,
        &console.directory.list(),
        &switchable,
    ))
    .into_response()
}

/// `POST /topology/{name}/stop|start`: stops or starts a box (its port
/// closes and reopens), then back to the page. Cross-site posts are refused:
/// a page elsewhere must not stop the reader's boxes.
async fn switch_box(
    State(console): State<Console>,
    Path((name, action)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Response {
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site == "cross-site")
    {
        return (StatusCode::FORBIDDEN, "cross-site request refused\n").into_response();
    }
    let running = match action.as_str() {
        "stop" => false,
        "start" => true,
        _ => return (StatusCode::NOT_FOUND, "use stop or start\n").into_response(),
    };
    if !console.switches.set(&name, running) {
        let text = format!("no box named {name} can be stopped or started here\n");
        return (StatusCode::NOT_FOUND, text).into_response();
    }
    let verb = if running { "started" } else { "stopped" };
    console
        .sampler
        .note(format!("{name} {verb} from the console"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, "/topology")]).into_response()
}

async fn api_topology(State(console): State<Console>) -> Response {
    let Some(topology) = &console.topology else {
        let error =
            "no stage runs: start one with `hyperscale up --config examples/scale/STAGE.toml`";
        return (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({ "error": error })),
        )
            .into_response();
    };
    let live = console.sampler.live();
    let status: std::collections::BTreeMap<String, String> = console
        .directory
        .list()
        .into_iter()
        .map(|(info, status)| (info.name, status.word().to_string()))
        .collect();
    axum::Json(serde_json::json!({
        "topology": &**topology,
        "live": live,
        "status": status,
    }))
    .into_response()
}

#[derive(serde::Serialize)]
struct Listed {
    #[serde(flatten)]
    info: SystemInfo,
    #[serde(flatten)]
    status: service::Status,
}

/// The sample lines of one system: those named `hyperscale_{name}_...` (each
/// system registers under its own prefix) or labelled `system="{name}"`,
/// comments dropped.
fn metrics_of(text: &str, name: &str) -> Vec<String> {
    let prefix = format!("hyperscale_{name}_");
    let label = format!("system=\"{name}\"");
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.starts_with(&prefix) || line.contains(&label))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn metrics_of_keeps_only_that_system() {
        let text = "# HELP x\nhyperscale_kv_ops_total 3\nhyperscale_gateway_requests 1\n\
                    hyperscale_system_up{system=\"kv\"} 1\n";
        let lines = super::metrics_of(text, "kv");
        assert_eq!(
            lines,
            [
                "hyperscale_kv_ops_total 3",
                "hyperscale_system_up{system=\"kv\"} 1"
            ]
        );
    }
}
