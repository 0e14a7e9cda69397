//! [`Gateway`]: the compiled configuration (routes, pools, client, metrics)
//! and the per-request entry point, [`Gateway::handle`].
//!
//! Everything here is built once at start and shared read-only by every
//! connection (an `Arc`); the only mutable state is atomics inside the
//! upstreams and the metrics. That is the notes' stateless web tier applied
//! to the balancer itself: any number of gateways can run side by side.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use http::header::HeaderName;
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use service::MetricsView;
use service::metrics::Registry;

use crate::balance::Pool;
use crate::body::Payload;
use crate::body::{self, BodyPolicy, Budget};
use crate::cache::{self, EdgeCache};
use crate::client::UpstreamClient;
use crate::config::{Config, ConfigError, HealthCheck};
use crate::datacenter::DataCenters;
use crate::error;
use crate::head;
use crate::limit::Limiting;
use crate::metrics::Metrics;
use crate::proxy::{Forwarder, ServedBy};
use crate::routes::Routes;

/// Where `/metrics` is rendered from.
#[derive(Debug, Clone)]
pub enum MetricsSource {
    /// A registry of the gateway's own (standalone `serve`).
    Own(Arc<Registry>),
    /// The process-wide registry of a `service::Supervisor`.
    View(MetricsView),
}

/// A client request body the gateway can take and forward (hyper's
/// `Incoming` in the server, any body in tests and embeddings).
pub trait ClientBody:
    http_body::Body<Data = Bytes, Error: Into<body::BoxError>> + Send + 'static
{
}

impl<B> ClientBody for B
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<body::BoxError>,
{
}

/// A configured gateway, cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Gateway {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) routes: Routes,
    pub(crate) pools: Vec<Arc<Pool>>,
    /// Each pool's health-check settings, by pool index.
    pub(crate) checks: Vec<HealthCheck>,
    client: UpstreamClient,
    pub(crate) metrics: Metrics,
    /// Set once before serving; `None` serves no `/metrics`.
    metrics_source: OnceLock<MetricsSource>,
    pub(crate) retry_statuses: Vec<StatusCode>,
    idempotent_header: Option<HeaderName>,
    /// Route labels of requests no route serves (`none`) and of `/metrics`.
    none_label: Arc<String>,
    metrics_label: Arc<String>,
    /// The rate limiter, when a rules file is configured.
    pub(crate) limiting: Option<Limiting>,
    /// How request bodies are taken, and the bound on buffered ones.
    body_policy: BodyPolicy,
    body_budget: Arc<Budget>,
    /// The edge cache, when a route caches.
    pub(crate) edge: Option<Arc<EdgeCache>>,
    purge_label: Arc<String>,
    /// The data centers and their health.
    pub(crate) datacenters: Arc<DataCenters>,
}

impl Gateway {
    /// Validates `config`, builds pools and routes, and registers the
    /// metrics into `registry` (pass a sub-registry prefixed `gateway`).
    pub fn new(config: Config, registry: &mut Registry) -> Result<Self, ConfigError> {
        config.validate()?;
        let metrics = Metrics::register(registry);
        let limiting = Limiting::build(&config.ratelimit, registry)?;
        let mut pools = Vec::new();
        let mut checks = Vec::new();
        for (name, spec) in &config.pools {
            pools.push(Arc::new(Pool::new(name, spec, &metrics)?));
            checks.push(spec.health.clone());
        }
        let names: Vec<&String> = config.pools.keys().collect();
        let routes = Routes::new(&config.routes, |name| {
            names.iter().position(|candidate| *candidate == name)
        });
        let datacenters = Arc::new(DataCenters::new(
            &config.datacenters,
            &config.datacenter_failover,
            config.routes.iter().map(|route| &route.datacenter_pools),
            |name| names.iter().position(|candidate| *candidate == name),
        )?);
        let retry_statuses = config
            .retry
            .statuses
            .iter()
            .filter_map(|code| StatusCode::from_u16(*code).ok())
            .collect();
        let idempotent_header = match config.retry.idempotent_header.as_str() {
            "" => None,
            name => Some(HeaderName::try_from(name).map_err(|_| {
                ConfigError(format!(
                    "retry.idempotent_header `{name}` is not a header name"
                ))
            })?),
        };
        let limits = &config.limits;
        let body_policy = BodyPolicy {
            bytes_max: limits.body_bytes_max,
            read_timeout: Duration::from_millis(config.timeouts.body_read_ms),
            memory_bytes_max: limits.body_memory_bytes_max,
            spill_dir: limits
                .body_spill_dir
                .clone()
                .unwrap_or_else(std::env::temp_dir),
        };
        let body_budget = Budget::new(limits.body_buffer_total_bytes_max, metrics.clone());
        let edge = if config
            .routes
            .iter()
            .any(|r| r.cache.as_ref().is_some_and(|c| c.enabled))
        {
            let opened = EdgeCache::open(
                &config.cache,
                config.timeouts.upstream_response_ms,
                registry,
            );
            Some(opened.map_err(|err| {
                ConfigError(format!("cache.disk_dir: cannot open the disk tier: {err}"))
            })?)
        } else {
            None
        };
        Ok(Self {
            inner: Arc::new(Inner {
                body_policy,
                body_budget,
                client: upstream_client(&config),
                routes,
                pools,
                checks,
                metrics,
                metrics_source: OnceLock::new(),
                retry_statuses,
                idempotent_header,
                limiting,
                none_label: Arc::new("none".into()),
                purge_label: Arc::new("purge".into()),
                datacenters,
                edge,
                metrics_label: Arc::new("metrics".into()),
                config,
            }),
        })
    }

    /// Serves `metrics_path` from `source` (first call wins).
    pub fn set_metrics_source(&self, source: MetricsSource) {
        let _already_set = self.inner.metrics_source.set(source);
    }

    /// The configuration this gateway runs.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Answers one client request from `client`. Never fails: every error
    /// becomes a JSON response with the right status.
    pub async fn handle<B>(&self, request: Request<B>, client: SocketAddr) -> Response<Body>
    where
        B: ClientBody,
    {
        let started = Instant::now();
        // Cloned only when logged: this runs per request.
        let logged = self
            .inner
            .config
            .access_log
            .then(|| (request.method().clone(), request.uri().clone()));
        let (route, response) = self.dispatch(request, client).await;
        let status = response.status().as_u16();
        self.inner.metrics.count_request(route, status);
        if let Some((method, uri)) = logged {
            let upstream = response
                .extensions()
                .get::<ServedBy>()
                .map(|s| s.0.as_str());
            tracing::info!(
                target: "gateway::access",
                client = %client.ip(),
                %method,
                %uri,
                status,
                route = route.as_str(),
                upstream = upstream.unwrap_or("-"),
                elapsed_us = started.elapsed().as_micros() as u64,
            );
        }
        response
    }

    /// Checks the head ([`crate::head`]: Host, Transfer-Encoding, canonical
    /// path), then routes, rate-limits and forwards; returns the route label
    /// with the response.
    async fn dispatch<B>(
        &self,
        mut request: Request<B>,
        client: SocketAddr,
    ) -> (&Arc<String>, Response<Body>)
    where
        B: ClientBody,
    {
        let inner = &*self.inner;
        if let Err(err) = head::prepare(&mut request) {
            inner.metrics.count_refusal(err.reason());
            return (&inner.none_label, err.response());
        }
        let path = request.uri().path();
        if let Some(edge) = &inner.edge
            && !edge.purge_path().is_empty()
            && path == edge.purge_path()
        {
            let response =
                cache::purge::handle(request, edge.admin_token(), |target| edge.purge(target))
                    .await;
            return (&inner.purge_label, response);
        }
        if !inner.config.metrics_path.is_empty()
            && path == inner.config.metrics_path
            && matches!(*request.method(), Method::GET | Method::HEAD)
        {
            return (&inner.metrics_label, self.render_metrics());
        }
        let Some(route) = inner.routes.find(path) else {
            let message = format!("no route for path `{path}`");
            return (
                &inner.none_label,
                error::json(StatusCode::NOT_FOUND, &message),
            );
        };
        let label = &inner.routes.get(route).label;
        let Some(limiting) = &inner.limiting else {
            return (label, self.proxy(request, route, client).await);
        };
        // The layer reads the client address from the extensions.
        request
            .extensions_mut()
            .insert(ratelimit::layer::extract::PeerAddr(client));
        let gateway = self.clone();
        let proxy = tower::service_fn(move |request: Request<B>| {
            let gateway = gateway.clone();
            async move { Ok::<_, Infallible>(gateway.proxy(request, route, client).await) }
        });
        let limited = tower::Layer::layer(&limiting.layer, proxy);
        let response = match tower::ServiceExt::oneshot(limited, request).await {
            Ok(response) => response.map(Body::new),
            Err(never) => match never {},
        };
        (label, response)
    }

    /// Takes the body ([`crate::body`]) and forwards the request along
    /// route `route`.
    async fn proxy<B>(
        &self,
        request: Request<B>,
        route: usize,
        client: SocketAddr,
    ) -> Response<Body>
    where
        B: ClientBody,
    {
        let inner = &*self.inner;
        let index = route;
        let route = inner.routes.get(route);
        if let (Some(edge), Some(settings)) = (&inner.edge, &route.cache) {
            let (parts, body) = request.into_parts();
            if matches!(parts.method, Method::GET | Method::HEAD) {
                // A GET's body means nothing (RFC 9110 §9.3.1): not forwarded.
                drop(body);
                let origin = RouteOrigin {
                    gateway: self.clone(),
                    route: index,
                    client_ip: client.ip(),
                };
                return edge.serve(settings, parts, origin).await;
            }
            let (uri, headers) = (parts.uri.clone(), parts.headers.clone());
            let response = self
                .forward_request(Request::from_parts(parts, body), index, client)
                .await;
            edge.invalidate_after_unsafe(settings, &uri, &headers, response.status());
            return cache::with_x_cache(response, "BYPASS");
        }
        self.forward_request(request, index, client).await
    }

    /// Takes the body and forwards along route `route` (no cache).
    async fn forward_request<B>(
        &self,
        request: Request<B>,
        route: usize,
        client: SocketAddr,
    ) -> Response<Body>
    where
        B: ClientBody,
    {
        let inner = &*self.inner;
        let (parts, body) = request.into_parts();
        let replayable = self.forwarder().replayable(&parts);
        let prepared = body::prepare(
            &parts,
            body,
            replayable,
            &inner.body_policy,
            &inner.body_budget,
        );
        match prepared.await {
            Ok(payload) => self.forward(route, parts, payload, client.ip()).await,
            Err(fault) => {
                inner.metrics.count_refusal(fault.reason());
                fault.response()
            }
        }
    }

    /// Forwards a request whose body is taken along route `route`, to the
    /// pool serving it for `client_ip`. Edge-cache fills come here with an
    /// empty payload.
    async fn forward(
        &self,
        route: usize,
        parts: Parts,
        payload: Payload,
        client_ip: IpAddr,
    ) -> Response<Body> {
        let route = self.inner.routes.get(route);
        let pool = self.pool_for(route, client_ip);
        self.forwarder()
            .forward(pool, route, parts, payload, client_ip)
            .await
    }

    /// The pool serving `route` for `client`: its nearest healthy data
    /// center's when the route spans data centers.
    pub(crate) fn pool_for(&self, route: &crate::routes::Compiled, client: IpAddr) -> &Arc<Pool> {
        let inner = &*self.inner;
        let index = match route.datacenter_pools.as_slice() {
            [] => route.pool,
            pairs => inner
                .datacenters
                .choose(client, pairs)
                .unwrap_or(route.pool),
        };
        &inner.pools[index]
    }

    fn forwarder(&self) -> Forwarder<'_> {
        let inner = &*self.inner;
        Forwarder {
            client: &inner.client,
            response_timeout: Duration::from_millis(inner.config.timeouts.upstream_response_ms),
            retry_enabled: inner.config.retry.enabled,
            retry_statuses: &inner.retry_statuses,
            idempotent_header: inner.idempotent_header.as_ref(),
            metrics: &inner.metrics,
            mark_served_by: inner.config.access_log,
        }
    }

    fn render_metrics(&self) -> Response<Body> {
        let text = match self.inner.metrics_source.get() {
            Some(MetricsSource::Own(registry)) => service::metrics::render(registry),
            Some(MetricsSource::View(view)) => view.render(),
            None => String::new(),
        };
        let mut response = Response::new(Body::from(text));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(service::metrics::CONTENT_TYPE),
        );
        response
    }
}

/// A cached route's origin: its pool, reached through the gateway.
#[derive(Clone)]
struct RouteOrigin {
    gateway: Gateway,
    route: usize,
    client_ip: IpAddr,
}

impl cache::Origin for RouteOrigin {
    fn fetch(&self, parts: Parts) -> impl std::future::Future<Output = Response<Body>> + Send {
        let this = self.clone();
        async move {
            this.gateway
                .forward(this.route, parts, Payload::empty(), this.client_ip)
                .await
        }
    }
}

/// The forwarding client: keep-alive connections per upstream and serving
/// thread, bounded connect.
fn upstream_client(config: &Config) -> UpstreamClient {
    UpstreamClient::new(
        Duration::from_millis(config.timeouts.connect_ms),
        UPSTREAM_IDLE,
    )
}

/// How long an idle upstream connection is kept for reuse: 30 s (nginx's
/// `keepalive_timeout` default is 60 s on the upstream side; closing first
/// avoids racing it).
pub(crate) const UPSTREAM_IDLE: Duration = Duration::from_secs(30);
