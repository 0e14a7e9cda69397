//! `hyperscale bench kv` (being built).

/// Arguments of `hyperscale bench kv`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the benchmark.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`hyperscale bench kv` is not built yet")
}
