//! Issue 15's "done when", end to end: `hyperscale up` with the files of
//! `examples/alerting/` (ports and timings shortened) runs the metrics
//! server with the example's rules and the alert manager; stopping the kv
//! system (admin `POST /systems/kv/stop`) fires `HyperscaleSystemDown`,
//! delivered to a webhook and by email to an SMTP sink (both in this test);
//! `amtool alert query` shows it; starting kv again resolves it, and the
//! resolution is delivered to both.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{interrupt_and_wait, request};

/// What the sinks received: webhook bodies and email messages.
type Received = Arc<Mutex<Vec<String>>>;

/// A sink on a free port: each connection is served by `serve` on a thread
/// of its own, keeping what it receives.
fn sink(serve: fn(TcpStream, &Received)) -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Received::default();
    let keep = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let keep = keep.clone();
            std::thread::spawn(move || serve(stream, &keep));
        }
    });
    (port, got)
}

/// A webhook receiver: every POST body is kept, 200 sent.
fn serve_hook(stream: TcpStream, keep: &Received) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut length = 0;
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line.trim().is_empty() {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        keep.lock().unwrap().push(String::from_utf8(body).unwrap());
        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        if writer.write_all(reply).is_err() {
            return;
        }
    }
}

/// An SMTP sink: every message (DATA) is kept.
fn serve_smtp(stream: TcpStream, keep: &Received) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut say = |text: &str| writer.write_all(text.as_bytes()).is_ok();
    say("220 sink ESMTP\r\n");
    let (mut message, mut in_data) = (String::new(), false);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if in_data {
            if line.trim_end_matches(['\r', '\n']) == "." {
                in_data = false;
                keep.lock().unwrap().push(std::mem::take(&mut message));
                say("250 queued\r\n");
            } else {
                message.push_str(&line);
            }
            continue;
        }
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let ok = match verb.as_str() {
            "DATA" => {
                in_data = true;
                say("354 go ahead\r\n")
            }
            "QUIT" => {
                say("221 bye\r\n");
                return;
            }
            _ => say("250 ok\r\n"),
        };
        if !ok {
            return;
        }
    }
}

/// Waits (bounded) until one of `got` satisfies `probe`; returns it.
fn received(got: &Received, what: &str, probe: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        if let Some(hit) = got.lock().unwrap().iter().find(|m| probe(m)) {
            return hit.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "no {what} within 40 s; received: {:?}",
            got.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The webhook body (Alertmanager's JSON) of a `status` notification about
/// kv being down.
fn kv_down(body: &str, status: &str) -> bool {
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    json["status"] == status
        && json["alerts"].as_array().unwrap().iter().any(|alert| {
            alert["status"] == status
                && alert["labels"]["alertname"] == "HyperscaleSystemDown"
                && alert["labels"]["system"] == "kv"
                && alert["labels"]["severity"] == "page"
        })
}

/// The example's files with the sinks' ports and short timings, in `dir`.
fn write_example(dir: &Path, hook_port: u16, smtp_port: u16) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/alerting");
    let read = |name: &str| std::fs::read_to_string(example.join(name)).unwrap();
    let edit = |name: &str, edits: &[(&str, &str)]| {
        let mut text = read(name);
        for (from, to) in edits {
            assert!(text.contains(from), "{name} has no {from:?}");
            text = text.replace(from, to);
        }
        std::fs::write(dir.join(name), text).unwrap();
    };
    edit(
        "rules.yml",
        &[("interval: 5s", "interval: 500ms"), ("for: 10s", "for: 1s")],
    );
    edit(
        "alertmanager.yml",
        &[
            ("127.0.0.1:5001", &format!("127.0.0.1:{hook_port}")),
            ("127.0.0.1:2525", &format!("127.0.0.1:{smtp_port}")),
            ("group_wait: 5s", "group_wait: 500ms"),
            ("group_interval: 30s", "group_interval: 1s"),
        ],
    );
    // start_up scrapes every 500 ms (its environment overrides the file).
    let tokens = format!(
        "config = \"alertmanager.yml\"\ntokens = [\"{TOKEN}:silencer\"]\n\n\
         [admin]\nbind = \"127.0.0.1:0\"\ntoken = \"{ADMIN_TOKEN}\""
    );
    edit("up.toml", &[("config = \"alertmanager.yml\"", &tokens)]);
}

/// The admin endpoint's token (`[admin] token`): stop/start need it.
const ADMIN_TOKEN: &str = "admin-t0ken-of-the-test";

/// The token that may change silences (`[alerts] tokens`).
const TOKEN: &str = "t0ken-of-the-test";

/// `amtool alert query` against our alert manager, if amtool is installed.
fn amtool_query(alerts: &str) -> Option<String> {
    let out = match Command::new("amtool")
        .args(["alert", "query", "--alertmanager.url"])
        .arg(format!("http://{alerts}"))
        .arg("alertname=HyperscaleSystemDown")
        .output()
    {
        Ok(out) => out,
        Err(err) => {
            eprintln!(
                "SKIPPED the amtool check: amtool is not installed ({err}); \
                 scripts/test installs Debian prometheus-alertmanager"
            );
            return None;
        }
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn stopping_a_system_under_up_fires_an_alert_to_webhook_and_email_then_resolves() {
    let (hook_port, hooks) = sink(serve_hook);
    let (smtp_port, emails) = sink(serve_smtp);
    let config = tempfile::tempdir().unwrap();
    write_example(config.path(), hook_port, smtp_port);
    let up_toml = config.path().join("up.toml");
    let (_dirs, mut guard, lines) = crate::up::start_up(&["--config", up_toml.to_str().unwrap()]);
    let (mut admin, mut alerts, mut kv, mut console) = (None, None, None, None);
    while admin.is_none() || alerts.is_none() || kv.is_none() || console.is_none() {
        let line = lines.next_within(Duration::from_secs(60));
        let words: Vec<&str> = line.split_whitespace().collect();
        let addr = || {
            words
                .iter()
                .find(|w| w.parse::<std::net::SocketAddr>().is_ok())
                .map(|w| w.to_string())
        };
        match words.first() {
            Some(&"admin") => admin = addr(),
            Some(&"alerts") => alerts = addr(),
            Some(&"kv") => kv = addr(),
            Some(&"console") => console = addr(),
            _ => {}
        }
    }
    let (admin, alerts, kv) = (admin.unwrap(), alerts.unwrap(), kv.unwrap());
    let console = console.unwrap();
    let ping = || TcpStream::connect(&kv).is_ok();
    assert!(ping(), "kv serves before the stop");

    // Nothing fires while every system is up (a scrape or two first).
    std::thread::sleep(Duration::from_secs(2));
    assert!(hooks.lock().unwrap().is_empty(), "{:?}", hooks.lock());

    let stop = format!("http://{admin}/systems/kv/stop");
    let (status, reply) = request("POST", &stop, &[], "");
    assert_eq!(status, 401, "stop without the admin token: {reply}");
    let wrong = [("authorization", "Bearer not-the-token")];
    assert_eq!(request("POST", &stop, &wrong, "").0, 401);
    assert!(ping(), "a refused stop leaves kv serving");
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let auth = [("authorization", bearer.as_str())];
    let (status, reply) = request("POST", &stop, &auth, "");
    assert_eq!(status, 202, "{reply}");
    let started = Instant::now();
    while ping() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "kv still serves"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, reply) = request(
        "POST",
        &format!("http://{admin}/systems/nope/stop"),
        &auth,
        "",
    );
    assert_eq!(status, 404, "{reply}");
    assert!(reply.contains("kv"), "names the systems that can: {reply}");

    // Fired: the webhook (Alertmanager's JSON) and an email.
    received(&hooks, "firing webhook", |body| kv_down(body, "firing"));
    let email = received(&emails, "firing email", |m| {
        m.contains("Subject: [FIRING") && m.contains("\"system\":\"kv\"")
    });
    assert!(email.contains("HyperscaleSystemDown"), "{email}");
    assert!(email.contains("To: oncall@example.test"), "{email}");
    if let Some(listed) = amtool_query(&alerts) {
        assert!(
            listed.contains("HyperscaleSystemDown") && listed.contains("is down"),
            "{listed}"
        );
    }
    console_pages_while_firing(&console);

    // kv returns: it serves again and the alert resolves, on both channels.
    let start = format!("http://{admin}/systems/kv/start");
    let (status, reply) = request("POST", &start, &auth, "");
    assert_eq!(status, 202, "{reply}");
    let started = Instant::now();
    while !ping() {
        assert!(started.elapsed() < Duration::from_secs(10), "kv not back");
        std::thread::sleep(Duration::from_millis(50));
    }
    received(&hooks, "resolved webhook", |body| kv_down(body, "resolved"));
    received(&emails, "resolved email", |m| {
        m.contains("Subject: [RESOLVED]") && m.contains("\"system\":\"kv\"")
    });

    // The console's history shows both transitions and the deliveries.
    let (status, page) = common::get(&format!("http://{console}/alerts/history"));
    assert_eq!(status, 200);
    for what in ["firing", "resolved", "oncall (attempt 1)", "expired"] {
        assert!(page.contains(what), "no {what:?} in the history: {page}");
    }

    let exit = interrupt_and_wait(&mut guard, Duration::from_secs(5));
    assert!(exit.success(), "exit status {exit}");
}

/// The console's alert page lists the firing alert; its silence form
/// needs the token, creates a silence the page then lists, and its expire
/// form expires it.
fn console_pages_while_firing(console: &str) {
    let page = || {
        let (status, page) = common::get(&format!("http://{console}/alerts"));
        assert_eq!(status, 200, "{page}");
        page
    };
    let firing = page();
    assert!(
        firing.contains("<strong>HyperscaleSystemDown</strong>")
            && firing.contains("system=&quot;kv&quot;")
            && firing.contains("class=\"down\">firing"),
        "{firing}"
    );
    let form = |path: &str, body: &str| {
        request(
            "POST",
            &format!("http://{console}{path}"),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body,
        )
    };
    let silence = "matchers=alertname%3DNotThisOne%2C+job%3D~%22k.*%22&minutes=30&author=test&comment=maintenance";
    let (status, refused) = form("/alerts/silences", silence);
    assert_eq!(status, 400, "{refused}");
    assert!(refused.contains("401"), "{refused}");
    let (status, reply) = form("/alerts/silences", &format!("{silence}&token={TOKEN}"));
    assert_eq!(status, 303, "{reply}");
    let listed = page();
    let row = listed
        .split("<tr>")
        .find(|row| row.contains("NotThisOne"))
        .unwrap_or_else(|| panic!("the silence is listed: {listed}"));
    assert!(
        row.contains("job=~&quot;k.*&quot;") && row.contains(">active<"),
        "{row}"
    );
    let id_at = row.find("/alerts/silences/").unwrap() + "/alerts/silences/".len();
    let id = &row[id_at..id_at + row[id_at..].find('/').unwrap()];
    let expire = format!("/alerts/silences/{id}/expire");
    let (status, refused) = form(&expire, "token=wrong");
    assert_eq!(status, 400, "{refused}");
    let (status, reply) = form(&expire, &format!("token={TOKEN}"));
    assert_eq!(status, 303, "{reply}");
    let listed = page();
    let row = listed.split("<tr>").find(|row| row.contains(id)).unwrap();
    assert!(row.contains(">expired<"), "{row}");
    // A bad matcher is the page's error, not a silence.
    let (status, refused) = form(
        "/alerts/silences",
        &format!("matchers=nope&minutes=5&comment=x&token={TOKEN}"),
    );
    assert_eq!(status, 400, "{refused}");
    assert!(refused.contains("no operator"), "{refused}");
}
