//! `hyperscale crawler`: the web crawler of chapter 9.
//!
//! - `crawl` crawls from a seeds file into a data directory (resumable: run
//!   it again after a crash or Ctrl-C), with a progress line, `status.json`
//!   in the data directory, WARC output and an optional `/metrics` endpoint.
//! - `status` prints a crawl's last status (running or finished).
//! - `robots` says which URLs a robots.txt allows for an agent.
//! - `testweb` serves the synthetic web the tests and benchmarks crawl.
//! - `serve` runs one node of a distributed crawl (`crawler::cluster`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use crawler::crawl::{CrawlConfig, Crawler, End};
use crawler::parse::Handlers;
use crawler::stats::{Snapshot, Stats};
use serde::{Deserialize, Serialize};
use service::ConfigSources;

use crate::output::{emit, emit_json, note};
use crate::table;

/// Arguments of `hyperscale crawler`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(clap::Subcommand)]
enum Verb {
    /// Crawl from seed URLs (resumes the crawl in --data-dir if there is one).
    Crawl(CrawlArgs),
    /// Print the status of a crawl (from its data directory).
    Status(StatusArgs),
    /// List the pages a crawl has recorded (URL, outcome, status, type).
    Pages(StatusArgs),
    /// Check URLs against a robots.txt file for a user agent.
    Robots(RobotsArgs),
    /// Serve a synthetic web on 127.0.0.1 for tests, demos and benchmarks.
    Testweb(TestwebArgs),
    /// Run one node of a distributed crawl (hosts split among nodes by the ring).
    Serve(ServeArgs),
}

/// Flags of `serve`: the cluster, then the same flags as `crawl`.
#[derive(clap::Args)]
struct ServeArgs {
    /// This node's id (one of --peers).
    #[arg(long)]
    node_id: String,
    /// Every node, this one too: ID=HOST:PORT,... (this node listens on its own entry).
    #[arg(long)]
    peers: String,
    /// Shared secret of the cluster: sent with and required on forwarded batches.
    #[arg(long, env = "HYPERSCALE_CRAWLER_TOKEN")]
    token: Option<String>,
    #[command(flatten)]
    crawl: CrawlArgs,
}

/// Flags of `crawl`; each overrides the same key of `--config`.
#[derive(clap::Args)]
pub struct CrawlArgs {
    /// File of seed URLs, one per line (`#` comments).
    #[arg(long)]
    seeds: PathBuf,
    /// Directory of the crawl's state, pages and status [default: ./data/crawler].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// TOML file with the crawl's settings (see `crawler::crawl::CrawlConfig`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Stop after this many pages in all (0 = no limit).
    #[arg(long)]
    max_pages: Option<u64>,
    /// Which links are followed: same-host, same-domain or any.
    #[arg(long)]
    scope: Option<String>,
    /// Minimum delay between two requests to one host, in ms [default: 1000].
    #[arg(long)]
    delay_ms: Option<u64>,
    /// Hosts fetched at once [default: 32].
    #[arg(long)]
    concurrency: Option<u64>,
    /// Write every 2xx response to this WARC file (gzip per record).
    #[arg(long)]
    warc: Option<PathBuf>,
    /// User-Agent header; its product token is the robots.txt agent.
    #[arg(long)]
    user_agent: Option<String>,
    /// Serve `/metrics` and `/status` here while crawling.
    #[arg(long)]
    admin_bind: Option<SocketAddr>,
    /// Do not store page bodies under --data-dir/pages.
    #[arg(long)]
    no_bodies: bool,
    /// Print the final report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct StatusArgs {
    /// The crawl's data directory [default: ./data/crawler].
    #[arg(long, default_value = "data/crawler")]
    data_dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct RobotsArgs {
    /// The robots.txt file.
    #[arg(long)]
    robots: PathBuf,
    /// User agent (product token) to match groups against.
    #[arg(long, default_value = "hyperscale-crawler")]
    agent: String,
    /// URLs to check.
    #[arg(required = true)]
    urls: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct TestwebArgs {
    /// Hosts (one port each; at least 5 for every role).
    #[arg(long, default_value_t = 50)]
    hosts: usize,
    /// Regular pages in all.
    #[arg(long, default_value_t = 20_000)]
    pages: usize,
    /// First port (hosts on consecutive ports); 0 = free ports.
    #[arg(long, default_value_t = 0)]
    base_port: u16,
    /// Delay of the slow host's answers, in ms.
    #[arg(long, default_value_t = 200)]
    slow_ms: u64,
    /// Crawl-delay host 4 asks for in its robots.txt, in ms (0: none).
    #[arg(long, default_value_t = 100)]
    crawl_delay_ms: u64,
    /// Every fourth page changes this often, in ms (0: pages never change).
    #[arg(long, default_value_t = 0)]
    change_ms: u64,
    /// Write the seed URL to this file.
    #[arg(long)]
    seeds_out: Option<PathBuf>,
    /// Write the request log (host, target, arrival µs) here on exit.
    #[arg(long)]
    log: Option<PathBuf>,
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.verb {
        Verb::Crawl(args) => crawl(args),
        Verb::Status(args) => status(args),
        Verb::Pages(args) => pages(args),
        Verb::Robots(args) => robots(args),
        Verb::Testweb(args) => testweb(args),
        Verb::Serve(args) => serve(args),
    }
}

/// Loads the crawl config from `--config`, `HYPERSCALE_CRAWLER_*` and flags.
pub fn load_config(args: &CrawlArgs) -> anyhow::Result<CrawlConfig> {
    if let Some(scope) = &args.scope {
        scope
            .parse::<crawler::state::Scope>()
            .map_err(anyhow::Error::msg)?;
    }
    let sources = ConfigSources::new(args.config.clone(), "HYPERSCALE_CRAWLER_")
        .flag(
            "data_dir",
            args.data_dir.as_ref().map(|d| d.display().to_string()),
        )
        .flag("max_pages", args.max_pages.map(|n| n as i64))
        .flag("concurrency", args.concurrency.map(|n| n as i64))
        .flag("warc", args.warc.as_ref().map(|d| d.display().to_string()))
        .flag("state.scope", args.scope.clone())
        .flag("state.politeness.delay_ms", args.delay_ms.map(|n| n as i64))
        .flag("state.store_bodies", args.no_bodies.then_some(false))
        .flag("fetch.user_agent", args.user_agent.clone());
    let config: CrawlConfig = service::config::load(&sources)?;
    if config.concurrency == 0 || config.concurrency > 10_000 {
        bail!(
            "concurrency must be between 1 and 10000 (got {})",
            config.concurrency
        );
    }
    Ok(config)
}

fn read_seeds(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read seeds file {}", path.display()))?;
    let seeds: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    if seeds.is_empty() {
        bail!("seeds file {} has no URLs (one per line)", path.display());
    }
    Ok(seeds)
}

/// What `status.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// `running`, `complete`, `max_pages` or `stopped`.
    pub state: String,
    /// Pages done in all runs.
    pub pages_done: u64,
    /// Pages per second in this run.
    pub pages_per_s: f64,
    /// Seconds this run has taken.
    pub elapsed_s: f64,
    /// Unix ms of this status.
    pub updated_at_ms: u64,
    /// Peak resident memory of this run's process, in KiB (Linux `VmHWM`).
    #[serde(default)]
    pub peak_rss_kib: u64,
    /// Counters of this run.
    pub stats: Snapshot,
}

use crawler::bench::peak_rss_kib;

fn write_status(dir: &Path, status: &Status) -> anyhow::Result<()> {
    let tmp = dir.join("status.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(status)?)?;
    std::fs::rename(&tmp, dir.join("status.json"))?;
    Ok(())
}

fn progress_line(status: &Status) -> String {
    let s = &status.stats;
    let errors: Vec<String> = s.errors.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "\rpages {} ({:.1}/s) | frontier {} | hosts active {} queued {} | dups {} | errors {}   ",
        status.pages_done,
        status.pages_per_s,
        s.frontier,
        s.hosts_active,
        s.hosts_queued,
        s.duplicates.values().sum::<u64>(),
        if errors.is_empty() {
            "0".to_string()
        } else {
            errors.join(",")
        },
    )
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    use crawler::cluster::{Node, NodeConfig, parse_peers};
    let cfg = load_config(&args.crawl)?;
    let seeds = read_seeds(&args.crawl.seeds)?;
    let peers = parse_peers(&args.peers)?;
    let addr = peers
        .iter()
        .find(|(id, _)| *id == args.node_id)
        .map(|(_, addr)| *addr)
        .with_context(|| {
            format!(
                "--node-id {} is not in --peers: list every node, this one too",
                args.node_id
            )
        })?;
    service::net::prepare_data_dir(&cfg.data_dir)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let node = Node::open(&NodeConfig {
            node_id: args.node_id.clone(),
            peers: peers.clone(),
            seeds,
            crawl: cfg,
            token: args.token.clone(),
        })?;
        let listener = service::net::bind(addr, "crawler node").await?;
        note(&format!(
            "node {} on http://{} ({} nodes)\n",
            args.node_id,
            listener.local_addr()?,
            peers.len()
        ));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let shutdown = service::shutdown::on_signals();
        tokio::spawn({
            let stop = stop.clone();
            let crawler = node.crawler().clone();
            async move {
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    let s = crawler.stats().snapshot();
                    note(&format!(
                        "\rpages {} | frontier {} | forwarded {} | hosts active {}   ",
                        s.pages, s.frontier, s.forwarded, s.hosts_active
                    ));
                }
                stop.store(true, Ordering::SeqCst);
            }
        });
        node.run(listener, &peers, stop).await?;
        note("\nstopped; run the same command to resume\n");
        anyhow::Ok(())
    })
}

fn crawl(args: CrawlArgs) -> anyhow::Result<()> {
    let cfg = load_config(&args)?;
    let seeds = read_seeds(&args.seeds)?;
    service::net::prepare_data_dir(&cfg.data_dir)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let stats = Stats::default();
        let mut registry = service::metrics::Registry::default();
        stats.register(&mut registry);
        let data_dir = cfg.data_dir.clone();
        let crawler = Arc::new(Crawler::open_with(cfg, stats.clone(), Handlers::default())?);
        let added = crawler.add_seeds(&seeds)?;
        let done_at_start = crawler.state().lock().pages_done();
        if done_at_start > 0 {
            note(&format!(
                "resuming: {done_at_start} pages already done, {added} new seeds\n"
            ));
        }
        if let Some(addr) = args.admin_bind {
            let listener = service::net::bind(addr, "crawler admin").await?;
            let registry = Arc::new(registry);
            let status_dir = data_dir.clone();
            let app = axum::Router::new()
                .route(
                    "/metrics",
                    axum::routing::get(move || {
                        let registry = registry.clone();
                        async move {
                            (
                                [(
                                    axum::http::header::CONTENT_TYPE,
                                    service::metrics::CONTENT_TYPE,
                                )],
                                service::metrics::render(&registry),
                            )
                        }
                    }),
                )
                .route(
                    "/",
                    axum::routing::get(|| async {
                        axum::response::Html(crawler::console::CONSOLE_HTML)
                    }),
                )
                .route(
                    "/status",
                    axum::routing::get(move || {
                        let dir = status_dir.clone();
                        async move {
                            std::fs::read_to_string(dir.join("status.json"))
                                .unwrap_or_else(|_| "{}".into())
                        }
                    }),
                );
            note(&format!(
                "console on http://{0}/, metrics on http://{0}/metrics\n",
                listener.local_addr()?
            ));
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
        }
        let shutdown = service::shutdown::on_signals();
        let stop = crawler.stop_flag();
        tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                shutdown.cancelled().await;
                stop.store(true, Ordering::SeqCst);
            }
        });
        let started = Instant::now();
        let snapshot = |state: &str| {
            let pages_done = crawler.state().lock().pages_done();
            let elapsed = started.elapsed().as_secs_f64();
            Status {
                state: state.to_string(),
                pages_done,
                pages_per_s: (pages_done - done_at_start) as f64 / elapsed.max(1e-3),
                elapsed_s: elapsed,
                updated_at_ms: clock::now_ms(),
                peak_rss_kib: peak_rss_kib(),
                stats: stats.snapshot(),
            }
        };
        let mut run = {
            let crawler = crawler.clone();
            tokio::spawn(async move { crawler.run().await })
        };
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let end = loop {
            tokio::select! {
                result = &mut run => break result.context("the crawl task died")??,
                _ = tick.tick() => {
                    let status = snapshot("running");
                    note(&progress_line(&status));
                    let dir = data_dir.clone();
                    tokio::task::spawn_blocking(move || write_status(&dir, &status)).await??;
                }
            }
        };
        let state = match end {
            End::Complete => "complete",
            End::MaxPages => "max_pages",
            End::Stopped => "stopped",
        };
        let status = snapshot(state);
        note(&format!("{}\n", progress_line(&status)));
        write_status(&data_dir, &status)?;
        if args.json {
            emit_json(&status)
        } else {
            emit(&status_table(&status))
        }
    })
}

fn status_table(status: &Status) -> String {
    let s = &status.stats;
    let kinds = |m: &std::collections::BTreeMap<String, u64>| {
        if m.is_empty() {
            "-".to_string()
        } else {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    let rows = vec![
        vec!["state".to_string(), status.state.clone()],
        vec!["pages done".into(), status.pages_done.to_string()],
        vec![
            "pages/s (this run)".into(),
            format!("{:.1}", status.pages_per_s),
        ],
        vec!["bytes".into(), s.bytes.to_string()],
        vec!["frontier".into(), s.frontier.to_string()],
        vec!["responses".into(), kinds(&s.statuses)],
        vec!["errors".into(), kinds(&s.errors)],
        vec!["duplicates".into(), kinds(&s.duplicates)],
        vec!["traps".into(), kinds(&s.traps)],
        vec!["skipped".into(), kinds(&s.skipped)],
        vec!["redirects".into(), s.redirects.to_string()],
        vec!["robots.txt fetched".into(), s.robots_fetched.to_string()],
    ];
    table::render(&rows)
}

fn status(args: StatusArgs) -> anyhow::Result<()> {
    let path = args.data_dir.join("status.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no crawl status at {} (start one with `hyperscale crawler crawl --data-dir ...`)",
            path.display()
        )
    })?;
    let status: Status = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a crawl status", path.display()))?;
    if args.json {
        emit_json(&status)
    } else {
        emit(&status_table(&status))
    }
}

fn pages(args: StatusArgs) -> anyhow::Result<()> {
    if !args.data_dir.join("state").exists() {
        bail!(
            "no crawl in {} (start one with `hyperscale crawler crawl --data-dir ...`)",
            args.data_dir.display()
        );
    }
    let cfg = crawler::state::StateConfig {
        store_bodies: false,
        expected_urls: 1024,
        ..Default::default()
    };
    let state = crawler::state::CrawlState::open(&args.data_dir, cfg, Stats::default(), None)?;
    let pages = state.pages()?;
    if args.json {
        return emit_json(&pages);
    }
    let mut rows = vec![vec![
        "outcome".to_string(),
        "status".into(),
        "type".into(),
        "url".into(),
    ]];
    for p in &pages {
        rows.push(vec![
            serde_json::to_value(p.outcome)?
                .as_str()
                .unwrap_or_default()
                .to_string(),
            p.status.to_string(),
            p.content_type.clone(),
            p.url.clone(),
        ]);
    }
    emit(&table::render(&rows))
}

#[derive(Serialize)]
struct RobotsVerdict {
    url: String,
    allowed: bool,
}

fn robots(args: RobotsArgs) -> anyhow::Result<()> {
    let body = std::fs::read(&args.robots)
        .with_context(|| format!("cannot read {}", args.robots.display()))?;
    let rules = crawler::robots::rules_from(
        &args.agent,
        crawler::robots::RobotsAnswer::Status(200, &body),
    );
    let verdicts: Vec<RobotsVerdict> = args
        .urls
        .iter()
        .map(|url| RobotsVerdict {
            url: url.clone(),
            allowed: rules.allowed(url),
        })
        .collect();
    if args.json {
        return emit_json(&verdicts);
    }
    let mut rows = vec![vec!["verdict".to_string(), "url".to_string()]];
    for v in &verdicts {
        rows.push(vec![
            if v.allowed { "allowed" } else { "disallowed" }.to_string(),
            v.url.clone(),
        ]);
    }
    if let Some(delay) = rules.crawl_delay_ms() {
        rows.push(vec!["crawl-delay".into(), format!("{delay} ms")]);
    }
    emit(&table::render(&rows))
}

fn testweb(args: TestwebArgs) -> anyhow::Result<()> {
    if args.hosts < 1 || args.hosts > 1000 {
        bail!("--hosts must be between 1 and 1000 (got {})", args.hosts);
    }
    if args.pages < args.hosts || args.pages > 100_000_000 {
        bail!(
            "--pages must be between --hosts and 100000000 (got {})",
            args.pages
        );
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let spec = crawler::testweb::WebSpec {
            hosts: args.hosts,
            pages: args.pages,
            slow_ms: args.slow_ms,
            base_port: args.base_port,
            crawl_delay_ms: args.crawl_delay_ms,
            change_ms: args.change_ms,
        };
        let web = crawler::testweb::TestWeb::start(spec)
            .await
            .context("cannot bind the test web's ports")?;
        if let Some(path) = &args.seeds_out {
            std::fs::write(path, format!("{}\n", web.seed()))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        note(&format!(
            "test web: {} hosts ({} .. {}), {} pages; seed {}\n",
            args.hosts,
            web.bases()[0],
            web.bases()[web.bases().len() - 1],
            args.pages,
            web.seed()
        ));
        emit(&format!("{}\n", web.seed()))?;
        service::shutdown::on_signals().cancelled().await;
        if let Some(path) = &args.log {
            let mut text = String::new();
            for entry in web.log() {
                text.push_str(&format!(
                    "{}\t{}\t{}\n",
                    entry.host, entry.target, entry.at_us
                ));
            }
            std::fs::write(path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    })
}
