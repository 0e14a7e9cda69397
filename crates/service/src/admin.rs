//! The admin endpoint: `/metrics` for Prometheus and `/healthz` for load
//! balancers and orchestrators. Kept off the systems' own ports so scraping
//! and probing never compete with user traffic or need its authentication.

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::health::Status;
use crate::metrics::Registry;
use crate::supervisor::Directory;

/// The admin routes over a frozen registry and the process's systems.
pub fn router(registry: Arc<Registry>, directory: Directory) -> Router {
    Router::new()
        .route("/metrics", get(move || metrics(registry.clone())))
        .route("/healthz", get(move || healthz(directory.clone())))
}

async fn metrics(registry: Arc<Registry>) -> Response {
    let body = crate::metrics::render(&registry);
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response()
}

#[derive(Serialize)]
struct SystemHealth {
    name: String,
    endpoint: String,
    #[serde(flatten)]
    status: Status,
}

#[derive(Serialize)]
struct HealthReport {
    /// `up` when every system is up, `degraded` otherwise.
    status: &'static str,
    systems: Vec<SystemHealth>,
}

/// 200 when every system is up, 503 otherwise: what a load balancer's health
/// check wants. The body lists each system for humans.
async fn healthz(directory: Directory) -> Response {
    let systems: Vec<SystemHealth> = directory
        .list()
        .into_iter()
        .map(|(info, status)| SystemHealth {
            name: info.name,
            endpoint: info.endpoint,
            status,
        })
        .collect();
    let all_up = systems.iter().all(|system| system.status == Status::Up);
    let code = if all_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let report = HealthReport {
        status: if all_up { "up" } else { "degraded" },
        systems,
    };
    (code, axum::Json(report)).into_response()
}
