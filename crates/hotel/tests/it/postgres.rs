//! A throwaway PostgreSQL cluster for the tests, like `testkit::RedisServer`
//! but started once per test binary: `initdb` in a temporary directory, the
//! server on a free port of 127.0.0.1, trust authentication, no fsync.
//!
//! The server runs under a small shell that reads its stdin, a pipe from
//! this test process: when the process exits (normally, on a panic, or
//! killed), the pipe closes, the shell stops the server and deletes the
//! directory. No cluster outlives its tests. As root (CI), PostgreSQL refuses
//! to run, so it runs as the `postgres` user the Debian package creates.
//!
//! A missing PostgreSQL is a failure, never a skip: the race tests on
//! PostgreSQL are part of the "done".

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The cluster of this test binary.
pub struct Cluster {
    /// Port on 127.0.0.1.
    pub port: u16,
    /// Holds the stdin pipe of the supervising shell open while we live.
    _child: Child,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static DATABASES: AtomicU32 = AtomicU32::new(0);

fn bin_dir() -> PathBuf {
    let on_path = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|path| PathBuf::from(path.trim()));
    if let Some(initdb) = on_path
        && let Ok(real) = std::fs::canonicalize(&initdb)
        && let Some(dir) = real.parent()
    {
        return dir.to_path_buf();
    }
    // Debian keeps the server binaries off PATH, under a versioned directory.
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|dir| dir.join("initdb").exists());
    versions.sort();
    versions.pop().expect(
        "PostgreSQL is not installed (no initdb): the hotel's PostgreSQL tests need it; \
         scripts/test installs it (apt-get install postgresql)",
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program args...`, as the `postgres` user when we are root.
fn command(root: bool, program: &Path) -> Command {
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn start() -> Cluster {
    let bin = bin_dir();
    let root = is_root();
    // Not a TempDir: the supervising shell deletes it after the server stops.
    let dir = tempfile::Builder::new()
        .prefix("hotel-pg-")
        .tempdir()
        .unwrap()
        .keep();
    if root {
        let status = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "cannot chown the cluster directory to postgres"
        );
    }
    let data = dir.join("data");
    let out = command(root, &bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = testkit::free_port();
    let script = format!(
        "\"{postgres}\" -D \"{data}\" -p {port} -k \"{dir}\" -c listen_addresses=127.0.0.1 \
         -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
         >\"{dir}/log\" 2>&1 & pid=$!; read _ignored; kill -INT $pid; wait $pid; rm -rf \"{dir}\"",
        postgres = bin.join("postgres").display(),
        data = data.display(),
        dir = dir.display(),
    );
    let child = command(root, Path::new("/bin/sh"))
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    testkit::wait_for_port(port, Duration::from_secs(30), "postgres");
    Cluster {
        port,
        _child: child,
    }
}

/// The cluster, started on first use.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(start)
}

/// A fresh, empty database on the cluster; returns its URL.
pub async fn fresh_database() -> String {
    let port = tokio::task::spawn_blocking(|| cluster().port)
        .await
        .unwrap();
    let name = format!("hotel_{}", DATABASES.fetch_add(1, Ordering::Relaxed));
    let admin = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    sqlx::any::install_default_drivers();
    // The server may still be starting (57P03) right after its port opens.
    let mut last = None;
    for _ in 0..150 {
        match sqlx::AnyConnection::connect_with_url(&admin).await {
            Ok(mut conn) => {
                use sqlx::Executor;
                conn.execute(&*format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap();
                return format!("postgres://postgres@127.0.0.1:{port}/{name}");
            }
            Err(err) => last = Some(err),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot connect to the test PostgreSQL: {last:?}");
}

/// Drops `url`'s database, closing its connections: the database is "down".
pub async fn drop_database(url: &str) {
    let (base, name) = url.rsplit_once('/').unwrap();
    let mut conn = sqlx::AnyConnection::connect_with_url(&format!("{base}/postgres"))
        .await
        .unwrap();
    use sqlx::Executor;
    conn.execute(&*format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();
}

trait ConnectUrl: Sized {
    async fn connect_with_url(url: &str) -> Result<Self, sqlx::Error>;
}

impl ConnectUrl for sqlx::AnyConnection {
    async fn connect_with_url(url: &str) -> Result<Self, sqlx::Error> {
        use sqlx::Connection;
        sqlx::AnyConnection::connect(url).await
    }
}
