//! `hyperscale id` (being built).

/// Arguments of `hyperscale id`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the verb.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`hyperscale id` is not built yet")
}
