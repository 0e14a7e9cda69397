//! `hyperscale gateway` (being built).

/// Arguments of `hyperscale gateway`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the verb.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`hyperscale gateway` is not built yet")
}
