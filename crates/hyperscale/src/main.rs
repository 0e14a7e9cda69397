//! `hyperscale`: one binary for every system of the book.
//!
//! This file only parses arguments and hands each verb to its module under
//! `cmd/`; the systems themselves live in their own crates. Errors reach the
//! user as one line on stderr and a non-zero exit code, never a backtrace.

mod cmd;
mod output;
mod table;

use clap::{Parser, Subcommand};

/// Every system of *System Design Interview*, built for real.
#[derive(Parser)]
#[command(name = "hyperscale", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log line format: `human` or `json`.
    #[arg(long, global = true, default_value = "human")]
    log_format: service::logging::LogFormat,
    /// Log level or filter (`debug`, `info,kv=trace`); default from
    /// HYPERSCALE_LOG or RUST_LOG, else `info`.
    #[arg(long, global = true)]
    log_level: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Start every system in one process and serve the web console.
    Up(cmd::up::Args),
    /// Back-of-the-envelope estimation (chapter 2).
    Estimate(cmd::estimate::Args),
    /// Consistent hashing (chapter 5).
    Ring(cmd::ring::Args),
    /// The Redis-compatible key-value server (chapter 6).
    Kv(cmd::kv::Args),
    /// The Kafka-compatible message queue (vol. 2).
    Mq(cmd::mq::Args),
    /// Rate limiting rules and algorithms (chapter 4).
    Ratelimit(cmd::ratelimit::Args),
    /// The API gateway: reverse proxy, load balancing, rate limits (chapters 1, 4).
    Gateway(cmd::gateway::Args),
    /// Snowflake unique IDs (chapter 7).
    Id(cmd::id::Args),
    /// The URL shortener (chapter 8).
    Shortener(cmd::shortener::Args),
    /// The web crawler (chapter 9).
    Crawler(cmd::crawler::Args),
    /// The S3-compatible object store (vol. 2).
    S3(cmd::s3::Args),
    /// Hotel reservation: idempotent bookings, three concurrency controls (vol. 2).
    Hotel(cmd::hotel::Args),
    /// Metrics monitoring: a time-series database with PromQL (vol. 2).
    Metrics(cmd::metrics::Args),
    /// Alerting: the alert manager (Alertmanager API v2) and its clients (vol. 2).
    Alerts(cmd::alerts::Args),
    /// Built-in load generators.
    Bench(cmd::bench::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Err(err) = service::logging::init(cli.log_format, cli.log_level.as_deref()) {
        output::note(&format!("error: {err}\n"));
        return std::process::ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Up(args) => cmd::up::run(args),
        Command::Estimate(args) => cmd::estimate::run(args),
        Command::Ring(args) => cmd::ring::run(args),
        Command::Kv(args) => cmd::kv::run(args),
        Command::Mq(args) => cmd::mq::run(args),
        Command::Ratelimit(args) => cmd::ratelimit::run(args),
        Command::Gateway(args) => cmd::gateway::run(args),
        Command::Id(args) => cmd::id::run(args),
        Command::Shortener(args) => cmd::shortener::run(args),
        Command::Metrics(args) => cmd::metrics::run(args),
        Command::Alerts(args) => cmd::alerts::run(args),
        Command::S3(args) => cmd::s3::run(args),
        Command::Crawler(args) => cmd::crawler::run(args),
        Command::Hotel(args) => cmd::hotel::run(args),
        Command::Bench(args) => cmd::bench::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the whole context chain on one line: "what failed: why".
            output::note(&format!("error: {err:#}\n"));
            std::process::ExitCode::FAILURE
        }
    }
}
