//! Logs through `tracing`: human-readable lines by default, JSON lines with
//! `--log-format json` for log shippers.
//!
//! The level comes from `--log-level` (highest), then `HYPERSCALE_LOG` or
//! `RUST_LOG`, then `info`. It accepts full `EnvFilter` directives such as
//! `info,kv=debug`, so one noisy module can be turned up alone.

use std::str::FromStr;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Coloured-free, aligned lines for a terminal.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "human" | "text" => Ok(Self::Human),
            "json" => Ok(Self::Json),
            other => Err(format!(
                "unknown log format `{other}`: use `human` or `json`"
            )),
        }
    }
}

/// Installs the global subscriber. Calling it twice is harmless (the second
/// call is ignored), which keeps tests that start servers simple.
pub fn init(format: LogFormat, level: Option<&str>) -> Result<(), String> {
    let directives = level
        .map(str::to_string)
        .or_else(|| std::env::var("HYPERSCALE_LOG").ok())
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_string());
    let filter = EnvFilter::try_new(&directives)
        .map_err(|err| format!("bad log level `{directives}`: {err}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _already_set = match format {
        LogFormat::Human => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    Ok(())
}
