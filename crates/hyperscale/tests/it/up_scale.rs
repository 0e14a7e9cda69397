//! `hyperscale up --config examples/scale/<stage>.toml`: every stage of
//! chapter 1 starts (on ephemeral ports, all stages at once), the console's
//! `/api/topology` lists the stage's boxes all up, and a link shortened
//! through the front door redirects through it. The load-balancer stage
//! also proves the stateless web tier (one session, alternate web servers)
//! and draws a failover when a web server is stopped.

use crate::common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Guard, Lines, get, interrupt_and_wait, post_json};

/// Each stage and the boxes it must run, front to back.
const STAGES: &[(&str, &[&str])] = &[
    ("1-single-server", &["web-1"]),
    ("2-data-tier", &["web-1", "db"]),
    ("3-load-balancer", &["lb", "web-1", "web-2", "db"]),
    (
        "4-replicas",
        &["lb", "web-1", "web-2", "db", "db-replica-1", "db-replica-2"],
    ),
    (
        "5-cache",
        &[
            "lb",
            "web-1",
            "web-2",
            "cache",
            "db",
            "db-replica-1",
            "db-replica-2",
        ],
    ),
    (
        "6-cdn",
        &[
            "cdn",
            "lb",
            "web-1",
            "web-2",
            "cache",
            "db",
            "db-replica-1",
            "db-replica-2",
        ],
    ),
    (
        "7-datacenters",
        &[
            "lb",
            "web-east-1",
            "web-east-2",
            "web-west-1",
            "web-west-2",
            "cache",
            "db",
            "db-replica-1",
            "db-replica-2",
        ],
    ),
];

struct Running {
    _dirs: [tempfile::TempDir; 2],
    guard: Guard,
    /// The BOX column of the printed table.
    boxes: Vec<String>,
    front: String,
    console: String,
}

fn start(stage: &str) -> Running {
    let data = tempfile::tempdir().unwrap();
    let locks = tempfile::tempdir().unwrap();
    let config = format!(
        "{}/../../examples/scale/{stage}.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let child = Command::new(env!("CARGO_BIN_EXE_hyperscale"))
        .env("TMPDIR", locks.path())
        .args(["up", "--ephemeral-ports", "--config", &config, "--data-dir"])
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut guard = Guard(child);
    let lines = Lines::new(guard.0.stdout.take().unwrap());
    let (mut boxes, mut in_table) = (Vec::new(), false);
    let (mut front, mut console) = (None, None);
    while front.is_none() || console.is_none() {
        let line = lines.next_within(Duration::from_secs(60));
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["BOX", ..] => in_table = true,
            [] => in_table = false,
            ["front", "door:", url] => front = Some(url.to_string()),
            ["console:", url] => console = Some(url.trim_end_matches("/topology").to_string()),
            [name, ..] if in_table => boxes.push(name.to_string()),
            _ => {}
        }
    }
    Running {
        _dirs: [data, locks],
        guard,
        boxes,
        front: front.unwrap(),
        console: console.unwrap(),
    }
}

/// Polls `/api/topology` until every box reports up (bounded).
fn wait_all_up(running: &Running, expected: &[&str]) -> String {
    let started = Instant::now();
    loop {
        let (status, body) = get(&format!("{}/api/topology", running.console));
        assert_eq!(status, 200, "{body}");
        let all_up = expected
            .iter()
            .all(|name| body.contains(&format!("\"{name}\":\"up\"")));
        if all_up {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not every box came up: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A raw request returning status, headers and body (for cookies and
/// `X-Served-By`).
fn raw(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let extra: String = headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}\r\n"))
        .collect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
}

/// Shortens a URL through the front door and follows the short link.
fn shorten_and_follow(front: &str, stage: &str) {
    let long = format!("https://example.com/{stage}");
    let (status, body) = post_json(
        &format!("{front}/api/v1/data/shorten"),
        &format!("{{\"longUrl\":\"{long}\"}}"),
    );
    assert!(status == 200 || status == 201, "{stage}: {status} {body}");
    let code = body
        .split("\"code\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("{stage}: no code in {body}"));
    // Reads may go to a replica: give replication a moment, bounded.
    let started = Instant::now();
    loop {
        let (status, head, _) = raw("GET", &format!("{front}/{code}"), &[], "");
        if (301..=308).contains(&status) {
            assert_eq!(header(&head, "location"), Some(long.as_str()), "{stage}");
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{stage}: the short link answers {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One session, requests alternating over web-1 and web-2 through the load
/// balancer: every answer knows the user, and the visit count goes on.
fn sessions_survive_alternating_servers(front: &str) {
    let (status, head, _) = raw(
        "POST",
        &format!("{front}/account/login"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "user=ada",
    );
    assert_eq!(status, 303, "{head}");
    let cookie = header(&head, "set-cookie").unwrap().to_string();
    assert!(
        cookie.contains("httponly") && cookie.contains("samesite=lax"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    let mut served_by = std::collections::BTreeSet::new();
    for visit in 1..=6 {
        let (status, head, body) =
            raw("GET", &format!("{front}/account"), &[("Cookie", &pair)], "");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("<span id=\"user\">ada</span>"), "{body}");
        assert!(
            body.contains(&format!("<span id=\"visits\">{visit}</span>")),
            "visit {visit}: {body}"
        );
        served_by.insert(header(&head, "x-served-by").unwrap().to_string());
    }
    assert_eq!(
        served_by.into_iter().collect::<Vec<_>>(),
        ["web-1", "web-2"],
        "round robin sends one session to both web servers"
    );
    // A forged cookie is a stranger.
    let forged = format!("{}0", &pair[..pair.len() - 1]);
    let (status, _, _) = raw(
        "GET",
        &format!("{front}/account"),
        &[("Cookie", &forged)],
        "",
    );
    assert_eq!(status, 401);
}

/// Stopping web-2 from the console: the load balancer takes it out of
/// rotation, the console records the failover, the front door keeps working.
fn a_stopped_web_server_is_a_failover(running: &Running) {
    let console = &running.console;
    let (status, _, _) = raw("POST", &format!("{console}/topology/web-2/stop"), &[], "");
    assert_eq!(status, 303);
    let started = Instant::now();
    loop {
        let (_, body) = get(&format!("{console}/api/topology"));
        if body.contains("web-2 left rotation") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no failover drawn: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for _ in 0..4 {
        let (status, head, _) = raw("GET", &format!("{}/", running.front), &[], "");
        assert_eq!(status, 200);
        assert_eq!(header(&head, "x-served-by"), Some("web-1"));
    }
    let (_, page) = get(&format!("{console}/topology"));
    assert!(page.contains("left rotation"), "{page}");
}

#[test]
fn every_stage_of_chapter_one_runs_and_draws_its_topology() {
    // All stages at once: their start-up overlaps, the test takes one
    // stage's time rather than seven.
    let mut running: Vec<(&str, &[&str], Running)> = STAGES
        .iter()
        .map(|(stage, boxes)| (*stage, *boxes, start(stage)))
        .collect();
    for (stage, expected, run) in &running {
        assert_eq!(run.boxes, *expected, "{stage}: the printed table");
        let topology = wait_all_up(run, expected);
        for name in *expected {
            assert!(
                topology.contains(&format!("\"name\":\"{name}\"")),
                "{stage}: {name} missing from {topology}"
            );
        }
        let (status, page) = get(&format!("{}/topology", run.console));
        assert_eq!(status, 200);
        for name in *expected {
            assert!(
                page.contains(&format!("data-box=\"{name}\"")),
                "{stage}: {page}"
            );
        }
        shorten_and_follow(&run.front, stage);
    }
    let (_, _, stage3) = &running[2];
    sessions_survive_alternating_servers(&stage3.front);
    a_stopped_web_server_is_a_failover(stage3);
    // The CDN stage: the second read of the page is a cache hit.
    let (_, _, stage6) = &running[5];
    let (_, _, _) = raw("GET", &format!("{}/", stage6.front), &[], "");
    let (status, head, _) = raw("GET", &format!("{}/", stage6.front), &[], "");
    assert_eq!(status, 200);
    assert_eq!(header(&head, "x-cache"), Some("hit"), "{head}");
    // Rates are drawn per box: the stage-3 front door has served requests.
    let (_, topology) = get(&format!("{}/api/topology", stage3.console));
    assert!(topology.contains("\"rates\":{"), "{topology}");
    for (stage, _, run) in &mut running {
        let status = interrupt_and_wait(&mut run.guard, Duration::from_secs(15));
        assert!(status.success(), "{stage}: {status}");
    }
}
