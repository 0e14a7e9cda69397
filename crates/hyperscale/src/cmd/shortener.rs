//! `hyperscale shortener serve`: the URL shortener of chapter 8 as a server.

use std::net::SocketAddr;
use std::path::PathBuf;

use service::{ConfigSources, SystemInfo};

/// Arguments of `hyperscale shortener`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(clap::Subcommand)]
enum Verb {
    /// Serve the shortener's API, redirects and web page.
    Serve(ServeArgs),
}

/// Flags of `serve`; each overrides the same key of `--config`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8081].
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// Directory of the embedded store [default: ./data/shortener].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// TOML file with the shortener's settings.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Redirect status: 301 (cached by browsers) or 302 (every click counted).
    #[arg(long)]
    redirect: Option<u16>,
    /// Code strategy: `snowflake` (base-62 of a unique ID) or `hash`.
    #[arg(long)]
    strategy: Option<String>,
    /// `embedded` or a RESP URL such as redis://127.0.0.1:6379.
    #[arg(long)]
    store: Option<String>,
    /// Base of the short URLs handed out, e.g. https://sho.rt.
    #[arg(long)]
    public_url: Option<String>,
    /// Address of `/metrics` and `/healthz` [default: none].
    #[arg(long)]
    admin_bind: Option<SocketAddr>,
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.verb {
        Verb::Serve(args) => serve(args),
    }
}

/// Loads the shortener's config from `--config`, `HYPERSCALE_SHORTENER_*` and flags.
pub fn load_config(args: &ServeArgs) -> anyhow::Result<shortener::Config> {
    let sources = ConfigSources::new(args.config.clone(), "HYPERSCALE_SHORTENER_")
        .flag("bind", args.bind.map(|addr| addr.to_string()))
        .flag(
            "data_dir",
            args.data_dir.as_ref().map(|dir| dir.display().to_string()),
        )
        .flag("redirect", args.redirect.map(i64::from))
        .flag("strategy", args.strategy.clone())
        .flag("store", args.store.clone())
        .flag("public_url", args.public_url.clone());
    let config: shortener::Config = service::config::load(&sources)?;
    config.redirect_status().map_err(anyhow::Error::msg)?;
    if config.workers > 1024 {
        anyhow::bail!(
            "workers = {} is more than 1024: use 0 for one per CPU",
            config.workers
        );
    }
    Ok(config)
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = load_config(&args)?;
    let data_dir = (config.store == "embedded").then(|| config.data_dir.clone());
    let bind = config.bind;
    // Thread per core: this thread's runtime is the first worker, the
    // shortener starts the others (see `shortener::server`).
    let workers = service::net::worker_count(config.workers);
    super::serve::serve_single(
        data_dir.as_deref(),
        args.admin_bind,
        bind,
        super::serve::Runtime::PerCore(workers),
        "the shortener",
        "shortener",
        |endpoint| async move {
            let info = info(&endpoint);
            let shortener = shortener::Shortener::open(config).await?;
            let banner = format!(
                "shortener listening on {} ({})\n",
                info.endpoint,
                info.link.clone().unwrap_or_default()
            );
            Ok((shortener, info, banner))
        },
    )
}

impl super::serve::Single for shortener::Shortener {
    fn register_metrics(&self, registry: &mut service::metrics::Registry) {
        shortener::Shortener::register_metrics(self, registry);
    }

    fn serve(
        self,
        listener: tokio::net::TcpListener,
        workers: usize,
        ctx: service::SystemContext,
    ) -> impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static {
        shortener::Shortener::serve_workers(self, listener, workers, ctx)
    }
}

/// How the shortener is listed by `up` and the console.
pub fn info(endpoint: &str) -> SystemInfo {
    SystemInfo {
        name: "shortener".into(),
        title: "URL shortener".into(),
        chapter: "ch. 8 URL shortener".into(),
        protocol: "HTTP".into(),
        endpoint: endpoint.into(),
        link: Some(format!("http://{endpoint}/")),
    }
}
