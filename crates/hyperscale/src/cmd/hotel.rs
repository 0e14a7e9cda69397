//! `hyperscale hotel`: the hotel reservation service (vol. 2) — `serve` runs
//! it, `seed` loads demo hotels into its database, `fake-payments` runs the
//! fake payment provider its payment saga can be pointed at.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use service::{ConfigSources, SystemInfo};

/// Arguments of `hyperscale hotel`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(clap::Subcommand)]
enum Verb {
    /// Serve the reservation API.
    Serve(ServeArgs),
    /// Load demo hotels (two room types each, on sale from today).
    Seed(SeedArgs),
    /// Run a fake payment provider (in memory; `PUT /control` makes it
    /// decline or hang) for `serve --payments http://ADDR`.
    FakePayments(FakePaymentsArgs),
}

/// Flags of `fake-payments`.
#[derive(clap::Args)]
pub struct FakePaymentsArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8085")]
    bind: SocketAddr,
}

/// What `serve` and `seed` share: where the database is.
#[derive(clap::Args)]
pub struct DbArgs {
    /// Directory of the embedded SQLite database [default: ./data/hotel].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// TOML file with the hotel service's settings.
    #[arg(long)]
    config: Option<PathBuf>,
    /// `embedded` (SQLite under --data-dir), `sqlite://PATH` or `postgres://...`.
    #[arg(long)]
    database: Option<String>,
    /// Rooms sold per physical room, e.g. 1.10 [default: 1.0].
    #[arg(long)]
    overbooking: Option<f64>,
    /// Spread hotels over this many databases by hotel id (SQLite files
    /// beside the database, or PostgreSQL schemas) [default: 1].
    #[arg(long)]
    shards: Option<i64>,
}

/// Flags of `serve`; each overrides the same key of `--config`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8084].
    #[arg(long)]
    bind: Option<SocketAddr>,
    #[command(flatten)]
    db: DbArgs,
    /// `pessimistic`, `optimistic` or `constraint` [default: optimistic].
    #[arg(long)]
    concurrency: Option<String>,
    /// Require this key (`Authorization: Bearer KEY` or `X-API-Key`) on /v1;
    /// HYPERSCALE_HOTEL_API_KEY keeps it out of the process list.
    #[arg(long)]
    api_key: Option<String>,
    /// Address of `/metrics` and `/healthz` [default: none].
    #[arg(long)]
    admin_bind: Option<SocketAddr>,
    /// The payment provider: `fake` (in process) or `http://HOST:PORT`
    /// (e.g. `hyperscale hotel fake-payments`) [default: fake].
    #[arg(long)]
    payments: Option<String>,
    /// Serve availability from this inventory cache, `redis://HOST:PORT`
    /// (`hyperscale kv serve` or any Redis), fed by the outbox [default: none].
    #[arg(long)]
    cache: Option<String>,
    /// Bound on one call to the payment provider, in ms [default: 5000].
    #[arg(long)]
    payment_timeout_ms: Option<u64>,
}

/// Flags of `seed`.
#[derive(clap::Args)]
pub struct SeedArgs {
    /// How many hotels (ids 1..=N).
    #[arg(long, default_value_t = 100)]
    hotels: i64,
    /// How many nights from today are put on sale.
    #[arg(long, default_value_t = 90)]
    days: i64,
    #[command(flatten)]
    db: DbArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.verb {
        Verb::Serve(args) => serve(args),
        Verb::Seed(args) => seed(args),
        Verb::FakePayments(args) => fake_payments(args),
    }
}

fn sources(db: &DbArgs) -> ConfigSources {
    ConfigSources::new(db.config.clone(), "HYPERSCALE_HOTEL_")
        .flag(
            "data_dir",
            db.data_dir.as_ref().map(|dir| dir.display().to_string()),
        )
        .flag("database", db.database.clone())
        .flag("overbooking", db.overbooking)
        .flag("shards", db.shards)
}

/// Loads the hotel config from `--config`, `HYPERSCALE_HOTEL_*` and flags.
pub fn load_config(args: &ServeArgs) -> anyhow::Result<hotel::Config> {
    let sources = sources(&args.db)
        .flag("bind", args.bind.map(|addr| addr.to_string()))
        .flag("concurrency", args.concurrency.clone())
        .flag("api_key", args.api_key.clone())
        .flag("payments", args.payments.clone())
        .flag("cache", args.cache.clone())
        .flag(
            "payment_timeout_ms",
            args.payment_timeout_ms.map(|ms| ms as i64),
        );
    let config: hotel::Config = service::config::load(&sources)?;
    config.validate().map_err(anyhow::Error::msg)?;
    Ok(config)
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = load_config(&args)?;
    let data_dir = (config.database == "embedded").then(|| config.data_dir.clone());
    let bind = config.bind;
    super::serve::serve_single(
        data_dir.as_deref(),
        args.admin_bind,
        bind,
        super::serve::Runtime::Shared,
        "the hotel service",
        "hotel",
        |endpoint| async move {
            let info = info(&endpoint, &endpoint);
            let banner = format!(
                "hotel listening on {} ({} concurrency, {}{})\n",
                info.endpoint,
                config.concurrency,
                hotel::redact(&config.database_url()),
                match config.shards {
                    1 => String::new(),
                    shards => format!(", {shards} shards"),
                }
            );
            let hotel = hotel::Hotel::open(config).await?;
            Ok((hotel, info, banner))
        },
    )
}

impl super::serve::Single for hotel::Hotel {
    fn register_metrics(&self, registry: &mut service::metrics::Registry) {
        hotel::Hotel::register_metrics(self, registry);
    }

    fn serve(
        self,
        listener: tokio::net::TcpListener,
        _workers: usize,
        ctx: service::SystemContext,
    ) -> impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static {
        hotel::Hotel::serve(self, listener, ctx)
    }
}

fn fake_payments(args: FakePaymentsArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = service::net::bind(args.bind, "the fake payment provider").await?;
        let fake = hotel::payment::fake::FakeProvider::new();
        crate::output::emit(&format!(
            "fake payments listening on {}\n",
            listener.local_addr()?
        ))?;
        axum::serve(listener, fake.router())
            .with_graceful_shutdown(service::shutdown::on_signals().cancelled_owned())
            .await
            .context("fake payment provider failed")
    })
}

fn seed(args: SeedArgs) -> anyhow::Result<()> {
    if !(1..=100_000).contains(&args.hotels) {
        anyhow::bail!("--hotels must be 1..=100000, not {}", args.hotels);
    }
    if !(1..=366).contains(&args.days) {
        anyhow::bail!("--days must be 1..=366, not {}", args.days);
    }
    let config: hotel::Config = service::config::load(&sources(&args.db))?;
    config.validate().map_err(anyhow::Error::msg)?;
    if config.database == "embedded" {
        service::net::prepare_data_dir(&config.data_dir)?;
    }
    let percent = config.overbooking().map_err(anyhow::Error::msg)?.percent();
    let url = config.database_url();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let started = std::time::Instant::now();
    let rows = runtime.block_on(async {
        let stores = hotel::open_stores(&config).await?;
        hotel::seed(&stores, args.hotels, args.days, percent)
            .await
            .context("seeding failed")
    })?;
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        crate::output::emit_json(&serde_json::json!({
            "hotels": args.hotels, "room_types": args.hotels * 2, "inventory_rows": rows,
            "days": args.days, "seconds": seconds, "database": hotel::redact(&url),
        }))
    } else {
        crate::output::emit(&format!(
            "seeded {} hotels ({} room types, {rows} inventory rows for {} nights) into {} in {seconds:.1} s\n",
            args.hotels,
            args.hotels * 2,
            args.days,
            hotel::redact(&url)
        ))
    }
}

/// How the hotel service is listed by `up` and the console: the link is
/// its booking page, served at `page_origin` (the service itself, or the
/// gateway in front of it).
pub fn info(endpoint: &str, page_origin: &str) -> SystemInfo {
    SystemInfo {
        name: "hotel".into(),
        title: "Hotel reservation".into(),
        chapter: "vol. 2 Hotel reservation".into(),
        protocol: "HTTP".into(),
        endpoint: endpoint.into(),
        link: Some(format!(
            "http://{page_origin}{}",
            hotel::api::page::PAGE_PATH
        )),
    }
}
