//! Binding listeners and preparing data directories with errors a user can act
//! on. "Address in use (os error 98)" does not say which of a dozen servers
//! failed or what to do; these helpers do.
//!
//! Also the thread-per-core serving model ([`bind_reuseport`],
//! [`spawn_reuseport_workers`], [`serve_workers`], [`accept`]): N single-threaded runtimes, each accepting
//! on a listener of its own on the same address (`SO_REUSEPORT`, the kernel
//! spreads connections over them), the way nginx runs one event loop per
//! worker. A connection then lives on one thread from accept to close: no
//! work stealing, no cross-thread wakeups, and state a thread keeps for
//! itself (upstream connection pools) needs no lock.

use std::net::SocketAddr;
use std::path::Path;

use tokio::net::TcpListener;

/// Binds `addr` for the server called `what`, explaining common failures.
pub async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|err| explain_bind_error(err, addr, what))
}

/// Binds `addr` with `SO_REUSEPORT` (and `SO_REUSEADDR`), so that more
/// listeners can bind the same address: one per serving thread. Must run
/// inside the tokio runtime that will accept on the listener.
pub fn bind_reuseport(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    };
    socket
        .and_then(|socket| {
            socket.set_reuseaddr(true)?;
            socket.set_reuseport(true)?;
            socket.bind(addr)?;
            socket.listen(1024)
        })
        .map_err(|err| explain_bind_error(err, addr, what))
}

/// Starts `count` threads, each running a single-threaded tokio runtime
/// that binds its own `SO_REUSEPORT` listener on `addr` (an address already
/// bound with [`bind_reuseport`], so not port 0) and runs `serve` on it.
/// Returns once every thread has bound (or the first bind error); join the
/// handles after shutdown to wait for the threads' drains.
pub fn spawn_reuseport_workers<F, Fut>(
    count: usize,
    addr: SocketAddr,
    what: &str,
    serve: F,
) -> anyhow::Result<Vec<std::thread::JoinHandle<anyhow::Result<()>>>>
where
    F: Fn(TcpListener) -> Fut + Send + Clone + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    assert!(addr.port() != 0, "workers bind the first listener's port");
    let mut handles = Vec::with_capacity(count);
    for index in 1..=count {
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        let serve = serve.clone();
        let name = what.to_string();
        let handle = std::thread::Builder::new()
            .name(format!("{name}-worker-{index}"))
            .spawn(move || -> anyhow::Result<()> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let listener = match bind_reuseport(addr, &name) {
                        Ok(listener) => listener,
                        Err(err) => {
                            let _ = bound_tx.send(Err(err.to_string()));
                            return Err(err);
                        }
                    };
                    let _ = bound_tx.send(Ok(()));
                    serve(listener).await
                })
            })?;
        handles.push(handle);
        match bound_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => anyhow::bail!("worker {index}: {err}"),
            Err(_) => anyhow::bail!("worker {index} of {what} died before binding"),
        }
    }
    Ok(handles)
}

/// Serves with `serve` on `listener` on the calling runtime and on
/// `workers - 1` more threads ([`spawn_reuseport_workers`]) until every
/// one returns; `ready` runs once all are listening. With `workers > 1`,
/// bind `listener` with [`bind_reuseport`] and call this on a
/// current-thread runtime, so that the caller is one worker too. A worker
/// thread that fails or panics is logged; the result is the caller's own.
pub async fn serve_workers<F, Fut>(
    listener: TcpListener,
    workers: usize,
    what: &str,
    serve: F,
    ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()>
where
    F: Fn(TcpListener) -> Fut + Send + Clone + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    assert!(workers >= 1, "at least the calling runtime serves");
    let addr = listener.local_addr()?;
    let others = if workers > 1 {
        spawn_reuseport_workers(workers - 1, addr, what, serve.clone())?
    } else {
        Vec::new()
    };
    ready(addr);
    let served = serve(listener).await;
    let what = what.to_string();
    let joined = tokio::task::spawn_blocking(move || {
        for worker in others {
            match worker.join() {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!("{what} worker failed: {err:#}"),
                Err(_) => tracing::error!("{what} worker panicked"),
            }
        }
    });
    let _ = joined.await;
    served
}

/// The next connection on `listener`, or `None` once `shutdown` is
/// cancelled. An accept error (EMFILE and friends) is logged and retried
/// after 50 ms instead of spinning.
pub async fn accept(
    listener: &TcpListener,
    shutdown: &crate::Shutdown,
) -> Option<(tokio::net::TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => return Some(accepted),
                Err(err) => {
                    tracing::warn!("accept failed: {err}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// The serving threads `workers` asks for: 0 means one per CPU this
/// process may run on.
pub fn worker_count(workers: usize) -> usize {
    match workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

fn explain_bind_error(err: std::io::Error, addr: SocketAddr, what: &str) -> anyhow::Error {
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
