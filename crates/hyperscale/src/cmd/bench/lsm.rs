//! `hyperscale bench lsm` (being built).

/// Arguments of `hyperscale bench lsm`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the benchmark.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`hyperscale bench lsm` is not built yet")
}
