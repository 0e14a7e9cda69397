//! `hyperscale ratelimit` (being built).

/// Arguments of `hyperscale ratelimit`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the verb.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`hyperscale ratelimit` is not built yet")
}
