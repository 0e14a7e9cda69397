//! Graceful shutdown: one cancellation token for the whole process, cancelled
//! on SIGINT (Ctrl-C) or SIGTERM (what `kill` and service managers send).
//!
//! Every server loop selects on the token: it stops accepting, lets in-flight
//! requests finish, and returns. The supervisor gives them a drain timeout and
//! then stops waiting, so a stuck connection cannot keep the process alive.

pub use tokio_util::sync::CancellationToken as Shutdown;

/// Returns a token cancelled when the process receives SIGINT or SIGTERM.
/// Must be called inside a tokio runtime.
pub fn on_signals() -> Shutdown {
    let token = Shutdown::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested, draining");
        trigger.cancel();
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(err) => {
            tracing::warn!("cannot listen for SIGTERM ({err}); only Ctrl-C stops the process");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
