//! `hyperscale id`: snowflake unique IDs (chapter 7).
//!
//! - `next [--count N]`: IDs from a generator in this process;
//! - `decode ID`: the time (ISO-8601 UTC), datacenter, machine and sequence;
//! - `serve`: `GET /api/v1/ids?count=N` over HTTP, under a claimed machine
//!   id (`--machine-id N`, `--lease-store URL`, or by default a lock file no
//!   other process on the host holds; see `idgen::machine`), printed first;
//! - `compare`: the notes' four approaches, measured here.
//!
//! The generator settings (epoch, layout, datacenter, machine) come from
//! `--config FILE`, `HYPERSCALE_ID_*` variables and flags, in that order, so
//! `decode` reads IDs with the same epoch and layout `serve` made them with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use idgen::compare::{Approach, CompareOptions};
use idgen::http::ServerConfig;
use idgen::{Generator, Layout};
use service::ConfigSources;

use crate::output::{emit, emit_json};
use crate::table;

/// Arguments of `hyperscale id`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(clap::Subcommand)]
enum Verb {
    /// Print new IDs, one per line.
    Next {
        /// How many IDs (at most 1,000,000).
        #[arg(long, default_value_t = 1)]
        count: usize,
        #[command(flatten)]
        generator: GeneratorFlags,
        /// Print `{"ids": ["…"]}` instead.
        #[arg(long)]
        json: bool,
    },
    /// Split an ID into time, datacenter, machine and sequence.
    Decode {
        /// The ID, as a decimal number.
        id: String,
        #[command(flatten)]
        generator: GeneratorFlags,
        /// Print JSON instead.
        #[arg(long)]
        json: bool,
    },
    /// Serve `GET /api/v1/ids?count=N` over HTTP.
    Serve {
        /// Address to listen on (default 127.0.0.1:7070).
        #[arg(long)]
        bind: Option<SocketAddr>,
        /// Accepted for the common `serve` shape; the ID service keeps no data.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Lease the machine id from this RESP store (`redis://host:port`).
        #[arg(long)]
        lease_store: Option<String>,
        /// Without `--machine-id` or `--lease-store`, claim the lowest machine
        /// id no other process holds a lock file for in this directory
        /// (default: `hyperscale-idgen` in the temp dir, one per host).
        #[arg(long)]
        lock_dir: Option<PathBuf>,
        /// Largest `count` one request may ask for.
        #[arg(long)]
        count_max: Option<usize>,
        #[command(flatten)]
        generator: GeneratorFlags,
    },
    /// Measure multi-master, UUID, ticket server and snowflake side by side.
    Compare {
        /// A RESP server (`redis://host:port`, our kv or Redis) for the
        /// ticket-server row; skipped without it.
        #[arg(long)]
        ticket_server: Option<String>,
        /// How long each approach generates IDs, in ms.
        #[arg(long, default_value_t = 300)]
        duration_ms: u64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Generator settings every verb shares; each overrides the config file.
#[derive(clap::Args)]
struct GeneratorFlags {
    /// TOML file: `bind`, `count_max`, `auth_token`, `lease_store`,
    /// `machine_claim` (`"lock"` or `"fixed"`), `lock_dir`,
    /// `[generator]` (`epoch_ms`, `datacenter`, `machine`,
    /// `backward_wait_ms_max`, `[generator.layout]`), `[lease]`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Datacenter id.
    #[arg(long)]
    datacenter: Option<u64>,
    /// Machine id. For `serve`, a fixed id you vouch no other generator
    /// uses; without it `serve` claims one (see `--lock-dir`).
    #[arg(long, visible_alias = "machine-id")]
    machine: Option<u64>,
    /// Epoch in ms since 1970 (default 2024-01-01; Twitter's is 1288834974657).
    #[arg(long)]
    epoch_ms: Option<u64>,
    /// Bit widths `timestamp,datacenter,machine,sequence` (default 41,5,5,12).
    #[arg(long, value_parser = Layout::parse)]
    layout: Option<Layout>,
}

impl GeneratorFlags {
    /// The layered config with these flags on top.
    fn load(
        &self,
        extra: impl FnOnce(ConfigSources) -> ConfigSources,
    ) -> anyhow::Result<ServerConfig> {
        let as_i64 = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        let mut sources = ConfigSources::new(self.config.clone(), "HYPERSCALE_ID_")
            .flag("generator.datacenter", as_i64(self.datacenter))
            .flag("generator.machine", as_i64(self.machine))
            .flag("generator.epoch_ms", as_i64(self.epoch_ms));
        if let Some(layout) = self.layout {
            let bits = |b: u8| Some(i64::from(b));
            sources = sources
                .flag(
                    "generator.layout.timestamp_bits",
                    bits(layout.timestamp_bits()),
                )
                .flag(
                    "generator.layout.datacenter_bits",
                    bits(layout.datacenter_bits()),
                )
                .flag("generator.layout.machine_bits", bits(layout.machine_bits()))
                .flag(
                    "generator.layout.sequence_bits",
                    bits(layout.sequence_bits()),
                );
        }
        Ok(service::config::load(&extra(sources))?)
    }
}

/// The most IDs `next` prints: a bound, like every limit here.
const NEXT_COUNT_MAX: usize = 1_000_000;

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.verb {
        Verb::Next {
            count,
            generator,
            json,
        } => next(count, &generator, json),
        Verb::Decode {
            id,
            generator,
            json,
        } => decode(&id, &generator, json),
        Verb::Serve {
            bind,
            data_dir: _,
            lease_store,
            lock_dir,
            count_max,
            generator,
        } => {
            // An id given on the command line is fixed by the operator.
            let fixed = generator.machine.map(|_| "fixed");
            let config = generator.load(|s| {
                s.flag("bind", bind.map(|b| b.to_string()))
                    .flag("lease_store", lease_store)
                    .flag("lock_dir", lock_dir.map(|d| d.display().to_string()))
                    .flag("machine_claim", fixed)
                    .flag("count_max", count_max.map(|n| n as i64))
            })?;
            serve(config)
        }
        Verb::Compare {
            ticket_server,
            duration_ms,
            json,
        } => {
            let options = CompareOptions {
                duration: Duration::from_millis(duration_ms.clamp(1, 60_000)),
                ticket_server,
                ..CompareOptions::default()
            };
            print_comparison(&idgen::compare::compare(&options), json)
        }
    }
}

fn next(count: usize, flags: &GeneratorFlags, json: bool) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=NEXT_COUNT_MAX).contains(&count),
        "--count must be from 1 to {NEXT_COUNT_MAX}, got {count}"
    );
    let config = flags.load(|s| s)?;
    let generator = Generator::new(&config.generator)?;
    let mut ids = Vec::with_capacity(count);
    generator.next_ids(count, &mut ids)?;
    if json {
        let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
        emit_json(&serde_json::json!({ "ids": ids }))
    } else {
        emit(&ids.iter().map(|id| format!("{id}\n")).collect::<String>())
    }
}

fn decode(text: &str, flags: &GeneratorFlags, json: bool) -> anyhow::Result<()> {
    let id: u64 = text
        .trim()
        .parse()
        .with_context(|| format!("{text:?} is not an ID (a decimal number below 2^63)"))?;
    let config = flags.load(|s| s)?;
    let g = &config.generator;
    let decoded = idgen::decode(id, g.layout, g.epoch_ms)?;
    if json {
        return emit_json(&decoded);
    }
    let rows = [
        ["id".to_owned(), decoded.id.to_string()],
        ["time".to_owned(), decoded.time.clone()],
        ["unix_ms".to_owned(), decoded.unix_ms.to_string()],
        ["datacenter".to_owned(), decoded.datacenter.to_string()],
        ["machine".to_owned(), decoded.machine.to_string()],
        ["sequence".to_owned(), decoded.sequence.to_string()],
    ];
    emit(&table::render(&rows))
}

fn serve(config: ServerConfig) -> anyhow::Result<()> {
    let addr: SocketAddr = config
        .bind
        .parse()
        .with_context(|| format!("bind address {:?} is not HOST:PORT", config.bind))?;
    service::logging::init(service::logging::LogFormat::Human, None).map_err(anyhow::Error::msg)?;
    // Before anything listens: no request is served under an unclaimed id.
    let claimed = idgen::machine::claim(&config)?;
    emit(&format!("{claimed}\n"))?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = service::net::bind(addr, "the ID service").await?;
        let shutdown = service::shutdown::on_signals();
        emit(&format!(
            "id service on http://{}/api/v1/ids\n",
            listener.local_addr()?
        ))?;
        idgen::http::serve_claimed(listener, &claimed, &config, shutdown.cancelled_owned()).await?;
        Ok(())
    })
}

fn print_comparison(rows: &[Approach], json: bool) -> anyhow::Result<()> {
    if json {
        return emit_json(&rows);
    }
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
    let mut cells = vec![
        [
            "approach",
            "bits",
            "sorts by time",
            "numeric",
            "IDs/s (1 thr)",
            "coordination",
        ]
        .map(str::to_owned),
    ];
    for row in rows {
        let rate = row
            .ids_per_sec
            .map_or_else(|| "-".to_owned(), |r| format!("{r:.0}"));
        cells.push([
            row.name.to_string(),
            row.bits.to_string(),
            yes_no(row.sorts_by_time),
            yes_no(row.numeric),
            rate,
            row.coordination.to_string(),
        ]);
    }
    let mut out = table::render(&cells);
    for row in rows {
        if let Some(note) = &row.note {
            out.push_str(&format!("note: {}: {note}\n", row.name));
        }
    }
    emit(&out)
}
