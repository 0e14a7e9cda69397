//! `hyperscale ring` (being built).

/// Arguments of `hyperscale ring`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the verb.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`hyperscale ring` is not built yet")
}
