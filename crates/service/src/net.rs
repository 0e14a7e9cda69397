//! Binding listeners and preparing data directories with errors a user can act
//! on. "Address in use (os error 98)" does not say which of a dozen servers
//! failed or what to do; these helpers do.

use std::net::SocketAddr;
use std::path::Path;

use tokio::net::TcpListener;

/// Binds `addr` for the server called `what`, explaining common failures.
pub async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|err| {
        let hint = match err.kind() {
            std::io::ErrorKind::AddrInUse => {
                "another process is listening there: stop it or choose another address"
            }
            std::io::ErrorKind::PermissionDenied => {
                "ports below 1024 need privileges: choose a port above 1024"
            }
            std::io::ErrorKind::AddrNotAvailable => {
                "that IP is not assigned to this machine: use 127.0.0.1 or 0.0.0.0"
            }
            _ => "check the address",
        };
        anyhow::anyhow!("cannot bind {what} to {addr}: {err} ({hint})")
    })
}

/// Creates `dir` if needed and checks it is a writable directory, so a system
/// fails at start with a clear line instead of at its first write.
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    let shown = dir.display();
    if dir.exists() && !dir.is_dir() {
        anyhow::bail!("data dir {shown} exists but is not a directory: pass another --data-dir");
    }
    std::fs::create_dir_all(dir)
        .map_err(|err| anyhow::anyhow!("cannot create data dir {shown}: {err}"))?;
    let probe = dir.join(".hyperscale-write-probe");
    std::fs::write(&probe, b"probe")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|err| {
            anyhow::anyhow!("data dir {shown} is not writable: {err} (fix its permissions or pass another --data-dir)")
        })
}
