//! `hyperscale up` end to end, as a real process: it prints the systems table,
//! serves the console and the admin endpoint, and exits 0 on SIGINT.

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Guard, Lines, get, interrupt_and_wait, post_json};

/// Starts `hyperscale up --ephemeral-ports` with `extra` arguments, on a
/// fresh data directory and lock directory (kept alive by the first item).
pub(crate) fn start_up(extra: &[&str]) -> ([tempfile::TempDir; 2], Guard, Lines) {
    let data = tempfile::tempdir().unwrap();
    let locks = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_hyperscale"))
        .env("TMPDIR", locks.path())
        // Scrape often, so rate() over the last minute has points quickly.
        .env("HYPERSCALE_UP_METRICS__SCRAPE_INTERVAL_MS", "500")
        .args(["up", "--ephemeral-ports"])
        .args(extra)
        .arg("--data-dir")
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut guard = Guard(child);
    let lines = Lines::new(guard.0.stdout.take().unwrap());
    ([data, locks], guard, lines)
}

#[test]
fn up_serves_console_and_admin_then_exits_cleanly_on_sigint() {
    let (_dirs, mut guard, lines) = start_up(&[]);
    let (mut console, mut admin, mut id_claim, mut gateway) = (None, None, None, None);
    let (mut s3, mut prometheus, mut hotel) = (None, None, None);
    // The SYSTEM column of the table, up to the admin row.
    let (mut systems, mut in_table) = (Vec::new(), false);
    while console.is_none()
        || prometheus.is_none()
        || admin.is_none()
        || id_claim.is_none()
        || gateway.is_none()
        || s3.is_none()
        || hotel.is_none()
    {
        let line = lines.next_within(Duration::from_secs(60));
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.first() {
            Some(&"SYSTEM") => in_table = true,
            Some(&"admin") => in_table = false,
            Some(name) if in_table => systems.push(name.to_string()),
            _ => {}
        }
        match words.first() {
            Some(&"console") => console = Some(words[2].to_string()),
            Some(&"admin") => admin = Some(words[2].to_string()),
            Some(&"gateway") => gateway = Some(words[2].to_string()),
            Some(&"metrics") => {
                // Its protocol column has spaces: take the address.
                let addr = words
                    .iter()
                    .find(|w| w.parse::<std::net::SocketAddr>().is_ok());
                prometheus = addr.map(|a| a.to_string());
            }
            Some(&"id:") => id_claim = Some(line.clone()),
            Some(&"s3:") => s3 = Some(line.clone()),
            Some(&"hotel:") => hotel = Some(line.clone()),
            _ => {}
        }
    }
    let (console, admin) = (console.unwrap(), admin.unwrap());
    // The ID service claimed its machine id out of the box, and says how.
    let id_claim = id_claim.unwrap();
    assert!(
        id_claim.contains("machine id") && id_claim.contains("lock file"),
        "{id_claim}"
    );
    let (status, page) = get(&format!("http://{console}/"));
    assert_eq!(status, 200);
    assert!(
        page.contains("<strong>console</strong>"),
        "console lists itself: {page}"
    );
    // Systems report up moments after the table is printed; poll, bounded.
    let started = Instant::now();
    let (mut status, mut health) = get(&format!("http://{admin}/healthz"));
    while status != 200 && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        (status, health) = get(&format!("http://{admin}/healthz"));
    }
    assert_eq!(status, 200, "{health}");
    let (status, metrics) = get(&format!("http://{admin}/metrics"));
    assert_eq!(status, 200);
    assert!(
        metrics.contains("hyperscale_system_up{system=\"console\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hyperscale_system_up{system=\"mq\"} 1"),
        "the Kafka-protocol broker runs under up too: {metrics}"
    );

    assert!(
        metrics.contains("hyperscale_system_up{system=\"s3\"} 1"),
        "the S3 object store runs under up too: {metrics}"
    );
    // Its printed line is a command that works: aws-cli with the printed
    // key lists the (empty) store.
    let s3 = s3.unwrap();
    let words: Vec<&str> = s3.split_whitespace().collect();
    let var = |name: &str| {
        words
            .iter()
            .find_map(|w| w.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} in {s3}"))
            .to_string()
    };
    let endpoint = words[words.iter().position(|w| *w == "--endpoint-url").unwrap() + 1];
    let listed = Command::new("aws")
        .env("AWS_ACCESS_KEY_ID", var("AWS_ACCESS_KEY_ID="))
        .env("AWS_SECRET_ACCESS_KEY", var("AWS_SECRET_ACCESS_KEY="))
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .args(["--endpoint-url", endpoint, "s3", "ls"])
        .output()
        .expect("aws-cli (scripts/test installs it)");
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );

    // The shortener behind the gateway hands out links on the gateway's
    // address, and refuses a long URL that leads back through the gateway
    // (a redirect loop) -- issue 9, item 5.
    let gateway = gateway.unwrap();
    let shorten = format!("http://{gateway}/api/v1/data/shorten");
    let (status, reply) = post_json(&shorten, r#"{"longUrl":"https://example.com/a"}"#);
    assert_eq!(status, 201, "{reply}");
    assert!(reply.contains(&format!("http://{gateway}/")), "{reply}");
    let looping = format!(r#"{{"longUrl":"http://{gateway}/abc"}}"#);
    let (status, reply) = post_json(&shorten, &looping);
    assert_eq!(status, 400, "{reply}");

    // The metrics server scrapes the admin endpoint from the start: `up`
    // and every system's metrics are queryable with PromQL (issue 14).
    let prometheus = prometheus.unwrap();
    let query = |q: &str| get(&format!("http://{prometheus}/api/v1/query?query={q}"));
    let started = Instant::now();
    let (mut status, mut reply) = query("up");
    while !reply.contains(r#""value":["#) && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
        (status, reply) = query("up");
    }
    assert_eq!(status, 200, "{reply}");
    assert!(
        reply.contains(r#""job":"hyperscale""#) && reply.contains(r#""1"]"#),
        "{reply}"
    );
    // Each system is its own scrape target, scraped on its own schedule:
    // poll until every one has been (bounded).
    let expected = [
        "console",
        "kv",
        "mq",
        "s3",
        "metrics",
        "gateway",
        "shortener",
        "hotel",
    ];
    let missing = |reply: &str| {
        expected
            .into_iter()
            .find(|system| !reply.contains(&format!(r#"{{"system":"{system}"}}"#)))
    };
    let started = Instant::now();
    let (mut status, mut reply) = query("sum%20by%20(system)%20(hyperscale_system_up)");
    while missing(&reply).is_some() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
        (status, reply) = query("sum%20by%20(system)%20(hyperscale_system_up)");
    }
    assert_eq!(status, 200, "{reply}");
    assert_eq!(missing(&reply), None, "{reply}");
    // `hyperscale metrics query` prints the same as a table, a range and JSON.
    let cli = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_hyperscale"))
            .args(["metrics", "query", "--server"])
            .arg(format!("http://{prometheus}"))
            .args(extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            stderr,
        )
    };
    let (ok, table, err) = cli(&["up"]);
    assert!(ok, "{err}");
    assert!(table.starts_with("SERIES"), "{table}");
    assert!(
        table.contains(r#"up{instance="#) && table.contains(r#"job="hyperscale""#),
        "{table}"
    );
    let (ok, table, err) = cli(&["hyperscale_system_up", "--range", "5m", "--step", "1s"]);
    assert!(
        ok && table.contains("POINTS") && table.contains(r#"system="kv""#),
        "{table}{err}"
    );
    let (ok, json, err) = cli(&["count(hyperscale_system_up)", "--json"]);
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["resultType"], "vector", "{json}");
    let (ok, _, err) = cli(&["sum("]);
    assert!(!ok && err.contains("bad_data"), "{err}");
    // Every system is a scrape target; the console charts request rates.
    crate::up_metrics::check(&console, &prometheus, &systems);
    // The booking page behind the gateway, and the API with its key.
    crate::up_hotel::check(&console, &gateway, &hotel.unwrap());

    let exit = interrupt_and_wait(&mut guard, Duration::from_secs(5));
    assert!(exit.success(), "exit status {exit}");
}

#[test]
fn a_port_in_use_is_one_clear_line_and_a_failure() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hyperscale"))
        .args(["up", "--admin-bind", "127.0.0.1:0", "--console-bind"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot bind the console") && stderr.contains("already"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_bad_config_file_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("up.toml");
    std::fs::write(&config, "[console]\nbindd = \"127.0.0.1:1\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hyperscale"))
        .arg("up")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("console.bindd"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

#[test]
fn a_data_dir_that_is_a_file_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hyperscale"))
        .args([
            "up",
            "--console-bind",
            "127.0.0.1:0",
            "--admin-bind",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not a directory") && stderr.contains("--data-dir"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

/// `hyperscale up --kv-nodes 3`: three cluster nodes in the table; a key
/// written through the first reads back through the third.
#[test]
fn up_with_kv_nodes_serves_a_three_node_cluster() {
    let (_dirs, mut guard, lines) = start_up(&["--kv-nodes", "3"]);
    let mut nodes: Vec<String> = Vec::new();
    while nodes.len() < 3 {
        let line = lines.next_within(Duration::from_secs(60));
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first().is_some_and(|w| w.starts_with("kv-node")) {
            nodes.push(words[2].to_string());
        }
    }
    let connect = |addr: &str| {
        let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
        client
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap()
    };
    let mut first = connect(&nodes[0]);
    // The nodes answer -CLUSTERDOWN until they know each other.
    let started = Instant::now();
    while redis::cmd("SET")
        .arg("greeting")
        .arg("hello")
        .query::<()>(&mut first)
        .is_err()
    {
        assert!(started.elapsed() < Duration::from_secs(30), "never formed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let got: String = redis::cmd("GET")
        .arg("greeting")
        .query(&mut connect(&nodes[2]))
        .unwrap();
    assert_eq!(got, "hello");
    let exit = interrupt_and_wait(&mut guard, Duration::from_secs(5));
    assert!(exit.success(), "exit status {exit}");
}
