//! `hyperscale ratelimit`: try rate-limit rules and compare the algorithms
//! (chapter 4).
//!
//! - `check --rules FILE --descriptor k=v ...` prints which limits of a rules
//!   file match a request and what each decides (`--requests N` sends N in a
//!   row, to watch a limit run out).
//! - `rules --rules FILE` validates a rules file and lists its limits.
//! - `simulate --rate R --window W --burst-pattern P` replays one traffic
//!   pattern through one algorithm or all five side by side, tick by tick, so
//!   the chapter's comparisons (the fixed window's boundary burst, the token
//!   bucket's burst) can be seen. Every verb takes `--json`.

use anyhow::Context;
use clap::Subcommand;
use ratelimit::algorithm::{Algorithm, Quota};
use ratelimit::metrics::Metrics;
use ratelimit::simulate::{self, Simulation};
use ratelimit::store::Store;
use ratelimit::store::memory::{MemoryConfig, MemoryStore};
use ratelimit::{Descriptors, FailurePolicy, RateLimiter, Rules, RulesHandle, Verdict};
use std::path::PathBuf;
use std::sync::Arc;

use crate::output::{emit, emit_json};
use crate::table;

/// Arguments of `hyperscale ratelimit`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Which limits match a request, and what they decide.
    Check(CheckArgs),
    /// Validate a rules file and list its limits.
    Rules(RulesArgs),
    /// Replay a traffic pattern through the algorithms, side by side.
    Simulate(SimulateArgs),
}

#[derive(clap::Args)]
struct CheckArgs {
    /// The rules file (YAML).
    #[arg(long, value_name = "FILE")]
    rules: PathBuf,
    /// A request attribute, e.g. `remote_address=10.0.0.1`, `path=/limited/x`,
    /// `header:x-tenant=acme`. Repeat for several.
    #[arg(long = "descriptor", value_name = "KEY=VALUE")]
    descriptors: Vec<String>,
    /// How many identical requests to send in a row.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    requests: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct RulesArgs {
    /// The rules file (YAML).
    #[arg(long, value_name = "FILE")]
    rules: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct SimulateArgs {
    /// One algorithm (token_bucket, leaking_bucket, fixed_window,
    /// sliding_window_log, sliding_window_counter) or `all`.
    #[arg(long, default_value = "all")]
    algorithm: String,
    /// Requests allowed per window.
    #[arg(long)]
    rate: u64,
    /// The window: `1s`, `500ms`, `1m`.
    #[arg(long, default_value = "1s")]
    window: String,
    /// Token bucket size / leaking bucket queue (default: the rate).
    #[arg(long)]
    burst: Option<u64>,
    /// Traffic: `AT:COUNT` or `FROM-TO/EVERY:COUNT`, comma-separated, e.g.
    /// `59s:10,60s:10` (a window-boundary burst) or `0-10/100ms:1`.
    #[arg(long, value_name = "PATTERN")]
    burst_pattern: String,
    /// Row granularity of the table.
    #[arg(long, default_value = "1s")]
    tick: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.verb {
        Verb::Check(args) => check(args),
        Verb::Rules(args) => rules(args),
        Verb::Simulate(args) => simulate(args),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<()> {
    let rules = Rules::load(&args.rules)?;
    let mut request = Descriptors::new();
    for pair in &args.descriptors {
        request.parse_pair(pair).map_err(anyhow::Error::msg)?;
    }
    let store = Store::Memory(Arc::new(MemoryStore::new(&MemoryConfig::default())));
    let limiter = RateLimiter::new(
        RulesHandle::new(rules),
        store,
        Metrics::new(),
        FailurePolicy::Open,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let verdicts: Vec<Verdict> = runtime.block_on(async {
        let mut all = Vec::new();
        for _ in 0..args.requests {
            all.push(limiter.check(&request).await);
        }
        all
    });
    if args.json {
        let json: Vec<_> = verdicts
            .iter()
            .enumerate()
            .map(|(i, v)| verdict_json(i + 1, v))
            .collect();
        return emit_json(&json);
    }
    if verdicts.first().is_none_or(|v| v.limits.is_empty()) {
        return emit("no limit matches this request: it is never limited\n");
    }
    let mut rows = vec![header(&[
        "request",
        "rule",
        "algorithm",
        "limit",
        "decision",
        "remaining",
        "retry after",
    ])];
    for (i, verdict) in verdicts.iter().enumerate() {
        for l in &verdict.limits {
            rows.push(vec![
                (i + 1).to_string(),
                l.rule.name.clone(),
                l.rule.algorithm.to_string(),
                format!("{}/{}s", l.decision.limit, l.rule.window_seconds),
                l.outcome.label().to_owned(),
                l.decision.remaining.to_string(),
                if l.decision.allowed {
                    "-".into()
                } else {
                    simulate::seconds(l.decision.retry_after_ns)
                },
            ]);
        }
    }
    let last = verdicts.last().is_none_or(|v| v.allowed);
    emit(&format!(
        "{}last request: {}\n",
        table::render(&rows),
        if last { "admitted" } else { "rejected (429)" }
    ))
}

fn verdict_json(request: usize, verdict: &Verdict) -> serde_json::Value {
    let limits: Vec<_> = verdict
        .limits
        .iter()
        .map(|l| {
            serde_json::json!({
                "rule": l.rule.name,
                "algorithm": l.rule.algorithm,
                "limit": l.decision.limit,
                "window_seconds": l.rule.window_seconds,
                "shadow": l.rule.shadow,
                "outcome": l.outcome.label(),
                "remaining": l.decision.remaining,
                "retry_after_ms": l.decision.retry_after_ns / 1_000_000,
                "counter_key": l.counter_key,
            })
        })
        .collect();
    serde_json::json!({ "request": request, "allowed": verdict.allowed, "limits": limits })
}

fn rules(args: RulesArgs) -> anyhow::Result<()> {
    let rules = Rules::load(&args.rules)?;
    if args.json {
        let list: Vec<_> = rules
            .all
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name, "algorithm": r.algorithm, "requests_per_unit": r.nominal.limit,
                    "window_seconds": r.window_seconds, "burst": r.nominal.burst,
                    "enforced_limit": r.enforced.limit, "shadow": r.shadow,
                    "mode": format!("{:?}", r.mode).to_lowercase(),
                })
            })
            .collect();
        return emit_json(&serde_json::json!({ "domain": rules.domain, "limits": list }));
    }
    let mut rows = vec![header(&[
        "rule",
        "algorithm",
        "limit",
        "burst",
        "mode",
        "shadow",
    ])];
    for r in &rules.all {
        rows.push(vec![
            r.name.clone(),
            r.algorithm.to_string(),
            format!("{}/{}s", r.nominal.limit, r.window_seconds),
            r.nominal.burst.to_string(),
            format!("{:?}", r.mode).to_lowercase(),
            r.shadow.to_string(),
        ]);
    }
    emit(&format!(
        "{}: valid, domain {:?}, {} limit(s)\n{}",
        args.rules.display(),
        rules.domain,
        rules.all.len(),
        table::render(&rows)
    ))
}

fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let algorithms: Vec<Algorithm> = if args.algorithm.eq_ignore_ascii_case("all") {
        Algorithm::ALL.to_vec()
    } else {
        vec![args.algorithm.parse().map_err(anyhow::Error::msg)?]
    };
    let window_ns = simulate::parse_duration(&args.window)
        .map_err(anyhow::Error::msg)
        .context("--window")?;
    let tick_ns = simulate::parse_duration(&args.tick)
        .map_err(anyhow::Error::msg)
        .context("--tick")?;
    let quota = Quota::with_burst(args.rate, window_ns, args.burst.unwrap_or(args.rate))?;
    let bursts = simulate::parse_pattern(&args.burst_pattern)
        .map_err(anyhow::Error::msg)
        .context("--burst-pattern")?;
    let sim = simulate::run(&algorithms, &quota, &bursts, tick_ns);
    if args.json {
        return emit_json(&sim);
    }
    emit(&simulation_text(&sim, &args))
}

fn simulation_text(sim: &Simulation, args: &SimulateArgs) -> String {
    let title = format!(
        "{} requests per {} (burst {}); admitted per tick of {}:\n",
        args.rate,
        args.window,
        args.burst.unwrap_or(args.rate),
        args.tick
    );
    let mut head = vec!["tick".to_owned(), "offered".to_owned()];
    head.extend(sim.algorithms.iter().map(|a| a.to_string()));
    let mut rows = vec![head];
    for row in &sim.rows {
        let mut cells = vec![simulate::seconds(row.at_ns), row.offered.to_string()];
        cells.extend(row.admitted.iter().map(u64::to_string));
        rows.push(cells);
    }
    let offered: u64 = sim.rows.iter().map(|r| r.offered).sum();
    let mut total = vec!["total".to_owned(), offered.to_string()];
    total.extend(sim.admitted_total.iter().map(u64::to_string));
    rows.push(total);
    let mut peak = vec![format!("max in any {}", args.window), "".to_owned()];
    peak.extend(sim.max_in_any_window.iter().map(u64::to_string));
    rows.push(peak);
    format!(
        "{title}{}(leaking bucket: admitted requests wait in its queue; its peak counts departures)\n",
        table::render(&rows)
    )
}

fn header(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}
