//! Prometheus metrics: one registry per process, rendered in the text
//! exposition format at `/metrics`.
//!
//! We use `prometheus-client` (the official Rust client of the Prometheus
//! project): it writes the OpenMetrics text format that Prometheus scrapes and
//! has no global state, so tests can build isolated registries. Each system
//! registers its metrics under its own prefix
//! (`registry.sub_registry_with_prefix("kv")`) before the process starts
//! serving; after that the registry is frozen behind an `Arc` and only read.

pub use prometheus_client::registry::Registry;

/// Renders `registry` in the text format Prometheus scrapes.
pub fn render(registry: &Registry) -> String {
    let mut text = String::new();
    // Encoding into a String only fails if a metric's own encoder fails, which
    // the built-in types never do; an error still yields a readable note.
    if let Err(err) = prometheus_client::encoding::text::encode(&mut text, registry) {
        text = format!("# error encoding metrics: {err}\n");
    }
    text
}

/// Counts every request `router` answers in `counter` (the request counter
/// of an HTTP system, charted by the console's metrics page).
pub fn count_requests<S>(
    router: axum::Router<S>,
    counter: prometheus_client::metrics::counter::Counter,
) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            counter.inc();
            next.run(request)
        },
    ))
}

/// The content type Prometheus expects for the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
