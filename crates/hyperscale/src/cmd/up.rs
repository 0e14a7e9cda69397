//! `hyperscale up` (being built).

/// Arguments of `hyperscale up`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the verb.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`hyperscale up` is not built yet")
}
