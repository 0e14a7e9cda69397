//! `kill -9` of `hyperscale s3 serve` during a stream of PUTs (boto3, four threads,
//! objects of one or two data-store chunks): after a restart every acknowledged object
//! reads back byte for byte, and every object listed is whole (each object's bytes are
//! derived from its key, so even a PUT that committed unacknowledged is checked).
//! Three rounds on one data directory.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{Guard, Lines, hyperscale, serve, wait_output};

pub(crate) const WRITER: &str = r#"
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

pub(crate) fn python(endpoint: &str, key: &(String, String), args: &[&str]) -> Command {
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

fn start(data: &str) -> (Guard, String) {
    let (guard, _lines, banner) = serve(
        ["s3", "serve", "--bind", "127.0.0.1:0", "--data-dir", data],
        Duration::from_secs(30),
    );
    let addr = banner
        .strip_prefix("s3 listening on ")
        .unwrap_or_else(|| panic!("unexpected banner {banner:?}"))
        .to_string();
    (guard, format!("http://{addr}"))
}

#[test]
fn acknowledged_puts_survive_kill_9_of_the_s3_server() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("s3");
    let data = data.to_str().unwrap();
    let out = wait_output(
        hyperscale()
            .args(["s3", "keys", "create", "--json", "--data-dir", data])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(30),
    );
    assert!(out.status.success());
    let k: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = (
        k["access_key"].as_str().unwrap().to_string(),
        k["secret_key"].as_str().unwrap().to_string(),
    );
    let mut acked: Vec<String> = Vec::new();
    for round in 0..3 {
        let (mut server, endpoint) = start(data);
        let mut writer = python(&endpoint, &key, &["write"])
            .env("ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run python3 with boto3 (scripts/test installs it)");
        let lines = Lines::new(writer.stdout.take().unwrap());
        let writer = Guard(writer);
        assert_eq!(lines.next_within(Duration::from_secs(60)), "ready");
        // Kill after a number of acknowledgements that varies by round.
        for _ in 0..(15 + 10 * round) {
            let line = lines.next_within(Duration::from_secs(120));
            acked.push(line.strip_prefix("ack ").unwrap().to_string());
        }
        server.0.kill().unwrap();
        server.0.wait().unwrap();
        // The writer's threads fail and it exits; keep what it acknowledged before.
        for line in lines.rest_within(Duration::from_secs(60)) {
            acked.push(line.strip_prefix("ack ").unwrap().to_string());
        }
        drop(writer);

        let (_server, endpoint) = start(data);
        let mut verify = python(&endpoint, &key, &["verify"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = verify.stdin.take().unwrap();
            stdin.write_all(acked.join("\n").as_bytes()).unwrap();
        }
        let out = wait_output(verify, Duration::from_secs(300));
        assert!(
            out.status.success(),
            "round {round}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
