//! `hyperscale crawler` end to end with the real binary: the synthetic web
//! crawled with a page limit then resumed (also after `kill -9`), the status
//! and pages verbs, robots checks, and the coverage of a real documentation
//! site served by nginx compared with `wget --spider --recursive`.

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{hyperscale, serve, wait_output};

/// Runs the binary to completion (bounded); output goes through files, not
/// pipes, so a report bigger than a pipe buffer cannot block the child.
fn run_ok(args: &[&str]) -> (String, String) {
    let (mut out_file, mut err_file) =
        (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
    let child = hyperscale()
        .args(args)
        .stdout(out_file.try_clone().unwrap())
        .stderr(err_file.try_clone().unwrap())
        .spawn()
        .unwrap();
    let out = wait_output(child, Duration::from_secs(120));
    let read = |file: &mut std::fs::File| {
        let mut text = String::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_string(&mut text).unwrap();
        text
    };
    let (stdout, stderr) = (read(&mut out_file), read(&mut err_file));
    assert!(out.status.success(), "hyperscale {args:?} failed: {stderr}");
    (stdout, stderr)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn fetched_html(dir: &Path) -> BTreeSet<String> {
    let (out, _) = run_ok(&[
        "crawler",
        "pages",
        "--data-dir",
        dir.to_str().unwrap(),
        "--json",
    ]);
    json(&out)
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["outcome"] == "fetched" && p["status"] == 200 && p["content_type"] == "text/html"
        })
        .map(|p| p["url"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn crawler_crawls_the_test_web_with_a_limit_then_resumes_after_kill_9() {
    let (_web, _lines, seed) = serve(
        [
            "crawler",
            "testweb",
            "--hosts",
            "5",
            "--pages",
            "150",
            "--slow-ms",
            "10",
        ],
        Duration::from_secs(30),
    );
    let tmp = tempfile::tempdir().unwrap();
    let seeds = tmp.path().join("seeds.txt");
    std::fs::write(&seeds, format!("# the test web\n{seed}\n")).unwrap();
    let dir = tmp.path().join("crawl");
    let (s, d) = (seeds.to_str().unwrap(), dir.to_str().unwrap());
    let common = [
        "crawler",
        "crawl",
        "--seeds",
        s,
        "--data-dir",
        d,
        "--delay-ms",
        "10",
        "--scope",
        "same-domain",
    ];

    let mut args = common.to_vec();
    args.extend(["--max-pages", "20", "--json"]);
    let (out, _) = run_ok(&args);
    let first = json(&out);
    assert_eq!(first["state"], "max_pages");
    assert!(first["pages_done"].as_u64().unwrap() >= 20);

    // Resume, and kill -9 once it has made progress.
    let mut child = hyperscale()
        .args(common)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = std::fs::read_to_string(dir.join("status.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["pages_done"].as_u64())
            .unwrap_or(0);
        if done > 40 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the resumed crawl made no progress"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let mut args = common.to_vec();
    args.push("--json");
    let (out, err) = run_ok(&args);
    assert!(err.contains("resuming:"), "{err}");
    assert!(err.contains("frontier 0"), "no final progress line: {err}");
    let last = json(&out);
    assert_eq!(last["state"], "complete");
    let (status, _) = run_ok(&["crawler", "status", "--data-dir", d, "--json"]);
    assert_eq!(json(&status)["state"], "complete");
    // 5 hosts x 30 pages, minus host 3 (robots.txt 503 = disallow all).
    let pages = fetched_html(&dir);
    let regular = pages.iter().filter(|u| u.contains("/p/")).count();
    assert_eq!(regular, 4 * 30 - 3, "{pages:?}"); // host 2's /p/3, /p/13, /p/23 answer 500
}

#[test]
fn crawler_robots_verb_says_allowed_or_disallowed() {
    let tmp = tempfile::tempdir().unwrap();
    let robots = tmp.path().join("robots.txt");
    std::fs::write(
        &robots,
        "User-agent: *\nDisallow: /private/\n\nUser-agent: badbot\nDisallow: /\n",
    )
    .unwrap();
    let r = robots.to_str().unwrap();
    let (out, _) = run_ok(&[
        "crawler",
        "robots",
        "--robots",
        r,
        "--agent",
        "mybot",
        "--json",
        "http://a.b/x",
        "http://a.b/private/y",
    ]);
    let verdicts = json(&out);
    assert_eq!(verdicts[0]["allowed"], true);
    assert_eq!(verdicts[1]["allowed"], false);
    let (out, _) = run_ok(&[
        "crawler",
        "robots",
        "--robots",
        r,
        "--agent",
        "badbot",
        "http://a.b/x",
    ]);
    assert!(out.contains("disallowed"), "{out}");
}

/// nginx's master, stopped with SIGTERM so it takes its workers along (a
/// SIGKILLed master leaves them running, holding the ports).
struct Nginx(std::process::Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Copies `from` into `to`, following symlinks (Debian links some pages).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if std::fs::metadata(entry.path()).unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// HTML pages wget found: lines `... URL:<url> [len/len] -> "..."` (a GET)
/// or `... URL: <url> 200 OK` (a HEAD), keeping `.html` URLs.
fn wget_pages(log: &str) -> BTreeSet<String> {
    log.lines()
        .filter_map(|line| {
            let rest = line.split_once("URL:")?.1.trim_start();
            let url = rest.split_whitespace().next()?;
            let ok = rest.contains(" -> ") || rest.ends_with("200 OK");
            (ok && url.ends_with(".html")).then(|| url.to_string())
        })
        .collect()
}

#[test]
fn crawler_coverage_of_nginx_served_docs_equals_wget_spider() {
    let docs = Path::new("/usr/share/doc/debian/FAQ");
    // Debian installs nginx in /usr/sbin, not on every user's PATH.
    let nginx = if Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    };
    for (what, ok) in [
        ("nginx", Command::new(nginx).arg("-v").output().is_ok()),
        (
            "wget",
            Command::new("wget").arg("--version").output().is_ok(),
        ),
        ("debian-faq", docs.join("index.en.html").exists()),
    ] {
        assert!(
            ok,
            "{what} is not installed (scripts/test installs nginx, wget and debian-faq)"
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    // nginx's workers may run as nobody: the tree must be world-readable.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let site = tmp.path().join("site");
    copy_tree(docs, &site);
    let (p1, p2) = (testkit::free_port(), testkit::free_port());
    let t = tmp.path().display();
    let conf = tmp.path().join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nworker_processes 1;\npid {t}/nginx.pid;\nerror_log {t}/error.log;\nevents {{}}\n\
             http {{\n access_log off;\n include /etc/nginx/mime.types;\n client_body_temp_path {t}/tmp;\n\
             proxy_temp_path {t}/tmp;\n fastcgi_temp_path {t}/tmp;\n uwsgi_temp_path {t}/tmp;\n scgi_temp_path {t}/tmp;\n\
             server {{ listen 127.0.0.1:{p1}; root {s}; index index.en.html; }}\n\
             server {{ listen 127.0.0.1:{p2}; root {s}; index index.en.html; }}\n}}\n",
            s = site.display()
        ),
    )
    .unwrap();
    let _nginx = Nginx(
        Command::new(nginx)
            .args([
                "-c",
                conf.to_str().unwrap(),
                "-p",
                tmp.path().to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let seeds: Vec<String> = [p1, p2]
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}/index.en.html"))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", p2)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not start: {}",
            std::fs::read_to_string(tmp.path().join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let spider = tmp.path().join("spider");
    std::fs::create_dir_all(&spider).unwrap();
    let wget_log = tmp.path().join("wget.log");
    let status = Command::new("wget")
        .args([
            "--spider",
            "-r",
            "-l",
            "inf",
            "-nv",
            "-o",
            wget_log.to_str().unwrap(),
        ])
        .args(&seeds)
        .current_dir(&spider)
        .status()
        .unwrap();
    // wget exits 8 when some link answered an error (the FAQ links a few
    // files Debian does not ship); the log still lists what it found.
    assert!(
        matches!(status.code(), Some(0 | 8)),
        "wget failed: {status:?}"
    );
    let expected = wget_pages(&std::fs::read_to_string(&wget_log).unwrap());
    assert!(expected.len() > 30, "wget found only {expected:?}");

    let seeds_file = tmp.path().join("seeds.txt");
    std::fs::write(&seeds_file, seeds.join("\n")).unwrap();
    let dir = tmp.path().join("crawl");
    run_ok(&[
        "crawler",
        "crawl",
        "--seeds",
        seeds_file.to_str().unwrap(),
        "--data-dir",
        dir.to_str().unwrap(),
        "--delay-ms",
        "0",
        "--scope",
        "same-host",
        "--json",
    ]);
    let ours = fetched_html(&dir);
    assert_eq!(ours, expected, "coverage differs from wget --spider");
}

#[test]
fn bench_crawler_runs_child_crawls_and_reports_rates_and_rss() {
    let (out, _) = run_ok(&[
        "bench",
        "crawler",
        "--hosts",
        "5",
        "--pages",
        "50",
        "--concurrency",
        "4",
        "--runs",
        "1",
        "--queued",
        "2000",
        "--queued-pages",
        "20",
        "--no-scrapy",
        "--json",
    ]);
    let report = json(&out);
    let run = &report["runs"][0];
    assert_eq!(run["system"], "hyperscale");
    assert!(run["pages"].as_u64().unwrap() > 50, "{run}");
    assert!(run["peak_rss_kib"].as_u64().unwrap() > 0);
    assert!(run["fetch_p99_ms"].as_f64().unwrap() > 0.0);
    let queued = &report["queued_runs"][0];
    assert!(queued["queued"].as_u64().unwrap() >= 2000, "{queued}");
    assert!(report["medians"][0]["pages_per_s"].as_f64().unwrap() > 0.0);
}
