//! A standalone gateway without the rest of the `hyperscale` binary, for
//! benchmarks on a busy machine (a release build of this example compiles
//! the gateway's dependencies only):
//! `cargo build --release -p gateway --example serve`, then
//! `target/release/examples/serve gateway.toml` (what `hyperscale gateway
//! serve --config gateway.toml` runs: same config loading, same runtime
//! choice, same `gateway::serve`). Ctrl-C or SIGTERM stops it.

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let file = std::env::args()
        .nth(1)
        .context("usage: serve <gateway.toml>")?;
    let file = std::path::PathBuf::from(file);
    let sources = service::ConfigSources::new(Some(file.clone()), "HYPERSCALE_GATEWAY_");
    let mut config: gateway::Config = service::config::load(&sources)?;
    config.resolve_paths(file.parent().unwrap_or(std::path::Path::new(".")));
    config.validate()?;
    let runtime = match config.workers {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        _ => tokio::runtime::Runtime::new()?,
    };
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("cannot bind {}", config.bind))?;
        let ctx = service::SystemContext::new(service::shutdown::on_signals());
        gateway::serve(listener, config, ctx).await
    })
}
