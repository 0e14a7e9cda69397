//! `hyperscale estimate` (being built).

/// Arguments of `hyperscale estimate`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the verb.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`hyperscale estimate` is not built yet")
}
