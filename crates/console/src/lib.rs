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
//! `/api/systems` (the same list as JSON, for scripts).
#![warn(missing_docs)]

mod page;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
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
    Router::new()
        .route("/", get(index))
        .route("/systems/{name}", get(system))
        .route("/api/systems", get(api_systems))
        .with_state(console)
}

/// Serves the console on `listener` until the context's shutdown.
pub async fn serve(
    listener: TcpListener,
    console: Console,
    ctx: SystemContext,
) -> anyhow::Result<()> {
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

async fn api_systems(State(console): State<Console>) -> Response {
    let systems: Vec<Listed> = console
        .directory
        .list()
        .into_iter()
        .map(|(info, status)| Listed { info, status })
        .collect();
    axum::Json(systems).into_response()
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
