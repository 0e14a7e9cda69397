//! `hyperscale kv` (being built).

/// Arguments of `hyperscale kv`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the verb.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`hyperscale kv` is not built yet")
}
