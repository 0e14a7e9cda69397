//! What the S3 fault tests share: an access key made by `hyperscale s3 keys create`,
//! a boto3 writer that streams PUTs from four threads and prints each
//! acknowledgement, and the check that every acknowledged (and every listed) object
//! reads back whole. Each object's bytes are derived from its key (one or two
//! data-store chunks), so even a PUT that committed unacknowledged is checked.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{Guard, Lines, hyperscale, wait_output};

/// A fresh access key (id, secret) in the store at `data` (the server is not running).
pub(crate) fn create_key(data: &str) -> (String, String) {
    let out = wait_output(
        hyperscale()
            .args(["s3", "keys", "create", "--json", "--data-dir", data])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let k: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        k["access_key"].as_str().unwrap().to_string(),
        k["secret_key"].as_str().unwrap().to_string(),
    )
}

/// The boto3 script: `write` (with `ROUND` in the environment) or `verify` (the
/// acknowledged keys on stdin).
const WRITER: &str = r#"
import hashlib, os, sys, threading
import boto3
from botocore.config import Config

def content(key):
    n = int(key.rsplit("-", 1)[1])
    size = 9_000_000 if n % 9 == 4 else (70_000 if n % 2 else 1_000)
    seed = hashlib.sha256(key.encode()).digest()
    return (seed * (size // 32 + 1))[:size]

s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"],
                  config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30))
mode = sys.argv[1]
if mode == "write":
    try:
        s3.create_bucket(Bucket="crash")
    except Exception:
        pass
    print("ready", flush=True)
    lock = threading.Lock()
    def run(t):
        i = 0
        while True:
            key = "r%s-t%d-%d" % (os.environ["ROUND"], t, i)
            try:
                s3.put_object(Bucket="crash", Key=key, Body=content(key))
            except Exception:
                return
            with lock:
                print("ack " + key, flush=True)
            i += 1
    threads = [threading.Thread(target=run, args=(t,)) for t in range(4)]
    for th in threads: th.start()
    for th in threads: th.join()
else:
    acked = sys.stdin.read().split()
    for key in acked:
        body = s3.get_object(Bucket="crash", Key=key)["Body"].read()
        assert body == content(key), "acknowledged %s differs (%d bytes)" % (key, len(body))
    listed = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="crash"):
        for o in page.get("Contents", []):
            body = s3.get_object(Bucket="crash", Key=o["Key"])["Body"].read()
            assert body == content(o["Key"]) and o["Size"] == len(body), "%s is damaged" % o["Key"]
            listed += 1
    assert listed >= len(set(acked)), (listed, len(set(acked)))
    print("verified %d acknowledged, %d listed" % (len(acked), listed))
"#;

fn python(endpoint: &str, key: &(String, String), args: &[&str]) -> Command {
    let mut c = Command::new("python3");
    c.arg("-c")
        .arg(WRITER)
        .args(args)
        .env("S3_ENDPOINT", endpoint)
        .env("AWS_ACCESS_KEY_ID", &key.0)
        .env("AWS_SECRET_ACCESS_KEY", &key.1)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    c
}

/// A running boto3 writer: PUTs into bucket `crash` until its server fails or it is
/// stopped.
pub(crate) struct PutStream {
    lines: Lines,
    _writer: Guard,
}

impl PutStream {
    /// Starts the writer (keys `r{round}-t{thread}-{n}`) once the bucket exists.
    pub(crate) fn start(endpoint: &str, key: &(String, String), round: u32) -> Self {
        let mut writer = python(endpoint, key, &["write"])
            .env("ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run python3 with boto3 (scripts/test installs it)");
        let lines = Lines::new(writer.stdout.take().unwrap());
        let writer = Guard(writer);
        assert_eq!(lines.next_within(Duration::from_secs(60)), "ready");
        PutStream {
            lines,
            _writer: writer,
        }
    }

    /// The next `n` acknowledged keys (waiting for them).
    pub(crate) fn take(&self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                let line = self.lines.next_within(Duration::from_secs(120));
                line.strip_prefix("ack ").unwrap().to_string()
            })
            .collect()
    }

    /// Stops the writer; returns the keys it acknowledged that `take` did not return.
    pub(crate) fn stop(self) -> Vec<String> {
        let PutStream { lines, _writer } = self;
        drop(_writer);
        lines
            .rest_within(Duration::from_secs(30))
            .iter()
            .filter_map(|l| l.strip_prefix("ack ").map(str::to_string))
            .collect()
    }
}

/// Checks that every key of `acked`, and every object listed, reads back whole;
/// `when` names the moment in the failure message.
pub(crate) fn verify(endpoint: &str, key: &(String, String), acked: &[String], when: &str) {
    let mut v = python(endpoint, key, &["verify"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = v.stdin.take().unwrap();
        stdin.write_all(acked.join("\n").as_bytes()).unwrap();
    }
    let out = wait_output(v, Duration::from_secs(300));
    assert!(
        out.status.success(),
        "{when}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
