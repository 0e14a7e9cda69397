//! `hyperscale kv serve` on a data directory another server holds: it must
//! fail before announcing anything, and say why once (it used to print its
//! listening banner first, and the lock error twice).

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::{hyperscale, serve, wait_output};

#[test]
fn a_second_server_on_a_locked_dir_fails_once_without_a_banner() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let args = ["kv", "serve", "--bind", "127.0.0.1:0", "--data-dir", data];
    let (_first, _lines, banner) = serve(args, Duration::from_secs(30));
    assert!(
        banner.starts_with("kv server (Lsm engine) on "),
        "{banner:?}"
    );

    let second = hyperscale()
        .args(["kv", "serve", "--bind", "127.0.0.1:0", "--data-dir", data])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = wait_output(second, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(!stdout.contains("kv server"), "banner printed: {stdout:?}");
    assert_eq!(
        stderr.matches("locked by another process").count(),
        1,
        "{stderr:?}"
    );
    assert!(stderr.contains("cannot open the lsm engine"), "{stderr:?}");
}
