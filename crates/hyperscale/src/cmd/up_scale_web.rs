//! One web server of a chapter-1 stage (see `up_scale`): the URL shortener
//! on the stage's data tier (its own disk, `db`, `db` and replicas, read
//! through `cache`), plus, when the stage has sessions, `/account`: a page
//! that needs a sign-in, its session kept in the shared store
//! ([`service::session`]) so any web server behind the load balancer
//! serves any user. Every answer says which box served it (`X-Served-By`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use kvclient::KvClient;
use kvclient::replicated::{ReadFrom, Replicated, Topology};
use service::SystemContext;
use service::html::escape;
use service::session::{Data, SessionStore};

/// Where a web server keeps its data.
#[derive(Debug, Clone)]
pub enum StoreSpec {
    /// In process, under the server's data directory (stage 1).
    Embedded,
    /// The data tier: the primary, its replicas, and maybe a cache server
    /// (`host:port`, TTL in ms).
    Remote {
        /// The primary's `host:port`.
        primary: String,
        /// The replicas' `host:port`.
        replicas: Vec<String>,
        /// Where reads go.
        read_from: ReadFrom,
        /// The cache server and how long it keeps a value.
        cache: Option<(String, u64)>,
    },
}

/// How long a web server waits for its data tier at start.
const STORE_WAIT_MS: u64 = 30_000;
/// Sessions live this long after their last use.
const SESSION_TTL_S: u64 = 1_800;
/// Longest user name accepted at sign-in.
const USER_BYTES_MAX: usize = 64;

/// A web server to start.
pub struct Web {
    /// The box's name (sent in `X-Served-By`).
    pub name: String,
    /// The shortener's settings.
    pub config: shortener::Config,
    /// Its data tier.
    pub store: StoreSpec,
    /// The tier's session secret, when the stage has sessions.
    pub sessions: Option<Arc<Vec<u8>>>,
    /// `hyperscale_web_requests_total{box}`.
    pub requests: prometheus_client::metrics::counter::Counter,
    /// The console's stop/start switch.
    pub switch: tokio::sync::watch::Receiver<bool>,
}

/// The links' store and the sessions' store. Sessions always go to the
/// primary, never through replicas or the cache: a session is read right
/// after it is written (read-your-writes), which a lagging replica or a
/// cache filled from one would break.
async fn connect(
    spec: &StoreSpec,
    config: &shortener::Config,
) -> anyhow::Result<(Arc<dyn KvClient>, Arc<dyn KvClient>)> {
    let options = kvclient::remote::RemoteOptions {
        timeout_ms: config.store_timeout_ms,
        ..Default::default()
    };
    match spec {
        StoreSpec::Embedded => {
            let dir = config.data_dir.clone();
            let store = tokio::task::spawn_blocking(move || {
                kvclient::embedded::Embedded::open(&dir)
                    .with_context(|| format!("cannot open the store in {}", dir.display()))
            })
            .await??;
            let store: Arc<dyn KvClient> = Arc::new(store);
            Ok((store.clone(), store))
        }
        StoreSpec::Remote {
            primary,
            replicas,
            read_from,
            cache,
        } => {
            let url = format!("redis://{primary}/");
            let primary_store: Arc<dyn KvClient> =
                Arc::new(kvclient::remote::Remote::connect(&url, options.clone()).await?);
            let store: Arc<dyn KvClient> = if replicas.is_empty() {
                primary_store.clone()
            } else {
                let topology = Topology::Static {
                    primary: primary.clone(),
                    replicas: replicas.clone(),
                };
                Arc::new(Replicated::connect(topology, *read_from, options.clone()).await?)
            };
            let Some((cache, ttl_ms)) = cache else {
                return Ok((store, primary_store));
            };
            let url = format!("redis://{cache}/");
            let cache = Arc::new(kvclient::remote::Remote::connect(&url, options).await?);
            let cached =
                kvclient::cached::Cached::new(cache, store, Duration::from_millis(*ttl_ms));
            Ok((Arc::new(cached), primary_store))
        }
    }
}

impl Web {
    /// Connects to the data tier (waiting for it, bounded), then serves.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        ctx: SystemContext,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let (store, session_store) = loop {
            match connect(&self.store, &self.config).await {
                Ok(store) => break store,
                Err(err) if started.elapsed() < Duration::from_millis(STORE_WAIT_MS) => {
                    tracing::debug!(web = %self.name, "data tier not ready: {err:#}");
                    tokio::select! {
                        _ = ctx.shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
                Err(err) => {
                    return Err(err.context(format!(
                        "{}: the data tier did not answer within {STORE_WAIT_MS} ms",
                        self.name
                    )));
                }
            }
        };
        let shortener = shortener::Shortener::with_store(self.config, store)?;
        let mut router = shortener.router()?;
        if let Some(secret) = &self.sessions {
            let secure = false; // the stages run plain HTTP on loopback
            let sessions = SessionStore::new(
                session_store,
                secret,
                Duration::from_secs(SESSION_TTL_S),
                secure,
            )
            .context("the session store")?;
            let account = Account {
                sessions: Arc::new(sessions),
                served_by: self.name.clone(),
            };
            router = router.merge(account.router());
        }
        let served_by = HeaderValue::from_str(&self.name).context("box name")?;
        let router = router.layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let served_by = served_by.clone();
                async move {
                    let mut response = next.run(request).await;
                    response.headers_mut().insert("x-served-by", served_by);
                    response
                }
            },
        ));
        let router = service::metrics::count_requests(router, self.requests);
        super::up_scale_switch::restartable(listener, ctx, self.switch, move |listener, ctx| {
            let router = router.clone();
            async move {
                ctx.health.set_up();
                axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
                )
                .with_graceful_shutdown(ctx.shutdown.cancelled_owned())
                .await
                .context("web server failed")
            }
        })
        .await
    }
}

/// `/account`: a page that needs a sign-in (see the module docs).
#[derive(Clone)]
struct Account {
    sessions: Arc<SessionStore>,
    served_by: String,
}

#[derive(serde::Deserialize)]
struct SignIn {
    user: String,
}

fn unavailable(err: impl std::fmt::Display) -> Response {
    let text = format!("the session store is unavailable ({err}); try again shortly\n");
    (StatusCode::SERVICE_UNAVAILABLE, text).into_response()
}

impl Account {
    fn router(self) -> axum::Router {
        axum::Router::new()
            .route("/account", get(page))
            .route("/account/login", post(login))
            .route("/account/logout", post(logout))
            .with_state(self)
    }

    fn session_id(&self, headers: &HeaderMap) -> Option<String> {
        let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
        self.sessions.id_from_cookies(cookies)
    }

    fn render(&self, body: &str) -> String {
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Account</title>\
             </head><body style=\"font: 15px system-ui; margin: 2rem\">{body}\
             <p><small>Served by <strong>{}</strong>. The session lives in the shared store: \
             every web server knows it.</small></p></body></html>",
            escape(&self.served_by)
        )
    }
}

async fn page(State(account): State<Account>, headers: HeaderMap) -> Response {
    let session = match account.session_id(&headers) {
        Some(id) => match account.sessions.load(&id).await {
            Ok(data) => data.map(|data| (id, data)),
            Err(err) => return unavailable(err),
        },
        None => None,
    };
    let Some((id, mut data)) = session else {
        let form = "<h1>Sign in</h1><form method=\"post\" action=\"/account/login\">\
                    <input name=\"user\" placeholder=\"your name\" maxlength=\"64\"> \
                    <button>Sign in</button></form>";
        return (StatusCode::UNAUTHORIZED, Html(account.render(form))).into_response();
    };
    // Count the visits in the session itself: the count goes on from
    // server to server, which is the point.
    let visits: u64 = data.get("visits").and_then(|v| v.parse().ok()).unwrap_or(0) + 1;
    data.insert("visits".into(), visits.to_string());
    if let Err(err) = account.sessions.save(&id, &data).await {
        return unavailable(err);
    }
    let user = data.get("user").cloned().unwrap_or_default();
    let body = format!(
        "<h1>Signed in as <span id=\"user\">{}</span></h1><p>Visits in this session: \
         <span id=\"visits\">{visits}</span></p>\
         <form method=\"post\" action=\"/account/logout\"><button>Sign out</button></form>",
        escape(&user)
    );
    let mut response = Html(account.render(&body)).into_response();
    // The TTL slid with the save: the cookie's Max-Age slides with it.
    if let Ok(cookie) = HeaderValue::from_str(&account.sessions.cookie(&id)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

async fn login(State(account): State<Account>, Form(form): Form<SignIn>) -> Response {
    let user = form.user.trim();
    if user.is_empty() || user.len() > USER_BYTES_MAX || user.chars().any(char::is_control) {
        let text = format!("user must be 1 to {USER_BYTES_MAX} bytes, no control characters\n");
        return (StatusCode::BAD_REQUEST, text).into_response();
    }
    let data = Data::from([("user".to_string(), user.to_string())]);
    match account.sessions.create(&data).await {
        Ok((_, cookie)) => redirect_with_cookie(&cookie),
        Err(err) => unavailable(err),
    }
}

async fn logout(State(account): State<Account>, headers: HeaderMap) -> Response {
    let Some(id) = account.session_id(&headers) else {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, "/account")]).into_response();
    };
    match account.sessions.destroy(&id).await {
        Ok(cookie) => redirect_with_cookie(&cookie),
        Err(err) => unavailable(err),
    }
}

fn redirect_with_cookie(cookie: &str) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/account")]).into_response();
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
