//! `hyperscale id serve` as real processes: two servers on default settings
//! on one host claim different machine ids and never issue the same ID, and
//! a `--count-max` no request could satisfy is refused at startup.

use crate::common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{Guard, Lines, get, hyperscale, wait_output};

/// A running `id serve`: its process, startup claim line and address.
struct Server {
    _guard: Guard,
    claim: String,
    addr: String,
}

/// Starts `hyperscale id serve` on a free port with otherwise default
/// settings; `tmp` stands in for the host's temp dir (where the default lock
/// directory lives) so the test does not touch the real one.
fn serve(tmp: &Path, extra: &[&str]) -> Server {
    let mut child = hyperscale()
        .env("TMPDIR", tmp)
        .args(["id", "serve", "--bind", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hyperscale id serve");
    let lines = Lines::new(child.stdout.take().expect("stdout is piped"));
    let guard = Guard(child);
    let claim = lines.next_within(Duration::from_secs(30));
    let listening = lines.next_within(Duration::from_secs(30));
    let addr = listening
        .strip_prefix("id service on http://")
        .and_then(|rest| rest.strip_suffix("/api/v1/ids"))
        .unwrap_or_else(|| panic!("unexpected line {listening:?}"))
        .to_owned();
    Server {
        _guard: guard,
        claim,
        addr,
    }
}

/// The machine id a claim line names: "machine id N of datacenter D (...)".
fn machine_of(claim: &str) -> u64 {
    claim
        .strip_prefix("machine id ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no machine id in {claim:?}"))
}

/// `count` IDs from the server, a thousand per request.
fn fetch_ids(server: &Server, count: usize) -> Vec<u64> {
    let mut ids = Vec::with_capacity(count);
    while ids.len() < count {
        let (status, body) = get(&format!("http://{}/api/v1/ids?count=1000", server.addr));
        assert_eq!(status, 200, "{body}");
        let body: serde_json::Value = serde_json::from_str(&body).expect("JSON reply");
        let issued = body["ids"].as_array().expect("an ids array");
        for id in issued {
            let id = id.as_str().expect("IDs are strings");
            ids.push(id.parse().expect("IDs are decimal numbers"));
        }
    }
    ids
}

#[test]
fn two_servers_on_default_settings_claim_different_machine_ids_and_never_collide() {
    let tmp = tempfile::tempdir().unwrap();
    let first = serve(tmp.path(), &[]);
    let second = serve(tmp.path(), &[]);
    for claim in [&first.claim, &second.claim] {
        assert!(claim.contains("local lock file"), "says how: {claim}");
    }
    assert_ne!(
        machine_of(&first.claim),
        machine_of(&second.claim),
        "{} / {}",
        first.claim,
        second.claim
    );
    let mut seen = HashSet::new();
    for id in fetch_ids(&first, 4000)
        .into_iter()
        .chain(fetch_ids(&second, 4000))
    {
        assert!(seen.insert(id), "ID {id} issued twice");
    }
}

#[test]
fn an_explicit_machine_id_is_used_and_said_to_be_explicit() {
    let tmp = tempfile::tempdir().unwrap();
    let server = serve(tmp.path(), &["--machine-id", "5"]);
    assert_eq!(machine_of(&server.claim), 5, "{}", server.claim);
    assert!(server.claim.contains("--machine-id"), "{}", server.claim);
}

#[test]
fn a_count_max_of_zero_is_refused_at_startup() {
    let tmp = tempfile::tempdir().unwrap();
    let child = hyperscale()
        .env("TMPDIR", tmp.path())
        .args(["id", "serve", "--bind", "127.0.0.1:0", "--count-max", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = wait_output(child, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("count_max"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
