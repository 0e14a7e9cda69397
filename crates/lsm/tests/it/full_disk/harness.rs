//! The parent side of the full-disk tests: running the child (this test binary,
//! re-executed, optionally under a file-size limit) and mounting small tmpfs file
//! systems. Kept apart from `full_disk.rs` so that file reads as the scenarios.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Which scenario the child runs; without it the child test does nothing.
pub const SCENARIO_ENV: &str = "LSM_FULL_DISK_SCENARIO";
/// The store directory of the child.
pub const DIR_ENV: &str = "LSM_FULL_DISK_DIR";
/// The file-size limit the child runs under, in bytes (it checks it got it).
pub const LIMIT_ENV: &str = "LSM_FULL_DISK_LIMIT_BYTES";
/// Set when the parent makes space after the failures: the child must then resume.
pub const RESUME_ENV: &str = "LSM_FULL_DISK_RESUME";
/// Unit of `ulimit -f` in a POSIX `sh` (bash outside POSIX mode uses 1024; the child
/// checks the limit it got in /proc/self/limits).
const ULIMIT_BLOCK_BYTES: u64 = 512;
/// Bound on one child run.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// What a child printed.
pub struct ChildOutput {
    /// Acknowledged keys, in order.
    pub acked: Vec<String>,
    /// Error texts of failed writes (or of a failed open).
    pub errors: Vec<String>,
}

/// Kills the child on drop, so a failing assertion never leaves it running.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs scenario `scenario` in a child, under a file-size limit of `limit_bytes` if given
/// (a multiple of 512), and returns what it printed; panics if the child failed. With
/// `on_full`, the child waits after its failures until `on_full` has run (the parent
/// making space), then must resume writing in the same process.
pub fn run_child(
    scenario: &str,
    dir: &Path,
    limit_bytes: Option<u64>,
    on_full: Option<&dyn Fn()>,
) -> ChildOutput {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = match limit_bytes {
        Some(bytes) => {
            assert_eq!(bytes % ULIMIT_BLOCK_BYTES, 0);
            let script = format!(
                r#"trap "" XFSZ; ulimit -f {}; exec "$0" "$@""#,
                bytes / ULIMIT_BLOCK_BYTES
            );
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(script).arg(exe);
            cmd.env(LIMIT_ENV, bytes.to_string());
            cmd
        }
        None => Command::new(exe),
    };
    if on_full.is_some() {
        cmd.env(RESUME_ENV, "1");
    }
    let child = cmd
        .args([
            "--exact",
            "full_disk::full_disk_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SCENARIO_ENV, scenario)
        .env(DIR_ENV, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let mut stdin = child.0.stdin.take();
    let stdout = child.0.stdout.take().unwrap();
    let mut stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + CHILD_TIMEOUT;
    let mut lines = Vec::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                if let (true, Some(make_space)) = (line.contains("FD-full"), on_full) {
                    make_space();
                    let stdin = stdin.as_mut().expect("stdin is piped");
                    stdin
                        .write_all(b"go\n")
                        .and_then(|()| stdin.flush())
                        .unwrap();
                }
                lines.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("child {scenario} timed out"),
        }
    }
    drop(stdin);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "child {scenario} timed out");
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = err.join().unwrap();
    let done = lines.iter().any(|l| l.contains("FD-done"));
    assert!(
        status.success() && done,
        "child {scenario} failed ({status}):\n{}\n{stderr}",
        lines
            .iter()
            .filter(|l| !l.contains("FD-ack "))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // libtest may print its own text before the first line; keys hold no spaces.
    let after = |marker: &str| -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| l.split_once(marker).map(|(_, rest)| rest.to_string()))
            .collect()
    };
    ChildOutput {
        acked: after("FD-ack "),
        errors: after("FD-err "),
    }
}

/// A tmpfs mounted on a temp dir, unmounted on drop.
pub struct Tmpfs {
    /// The mount point.
    pub dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs with mount options `options` (`size=...`, `nr_inodes=...`), or
    /// explains why not (not root, no `mount`, no permission to mount).
    pub fn mount(options: &str) -> Result<Tmpfs, String> {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| e.to_string())?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Err("not running as root".into());
        }
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(Tmpfs { dir })
    }

    /// Remounts with more room (`options`): the operator freeing space.
    pub fn grow(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "remount failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}
