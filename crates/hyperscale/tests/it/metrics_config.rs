//! `hyperscale metrics serve --config FILE`: the TOML settings take effect
//! (the address, the data directory, a scrape config relative to the file),
//! flags override them, and a bad key or duration is one clear line.

use std::time::Duration;

use crate::common::{get, hyperscale, serve, wait_output};

#[test]
fn a_config_file_sets_address_data_dir_and_scrape_config() {
    let dir = tempfile::tempdir().unwrap();
    let api = format!("127.0.0.1:{}", testkit::free_port());
    let admin = format!("127.0.0.1:{}", testkit::free_port());
    // The server scrapes its own admin endpoint, named in a file next to
    // the TOML and referred to by a relative path.
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "scrape_configs: [{{job_name: self, scrape_interval: 1s, \
             static_configs: [{{targets: ['{admin}']}}]}}]\n"
        ),
    )
    .unwrap();
    let config = dir.path().join("metrics.toml");
    std::fs::write(
        &config,
        format!(
            "bind = \"127.0.0.1:1\"\ndata_dir = \"{}\"\nretention_raw = \"2d\"\n\
             scrape_config = \"prometheus.yml\"\n",
            dir.path().join("db").display()
        ),
    )
    .unwrap();
    // --bind overrides the file's (unusable) address.
    let (_guard, _lines, banner) = serve(
        [
            "metrics",
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--bind",
            &api,
            "--admin-bind",
            &admin,
        ],
        Duration::from_secs(30),
    );
    assert!(banner.contains(&api), "{banner}");
    assert!(
        dir.path().join("db").is_dir(),
        "the file's data_dir is used"
    );
    let started = std::time::Instant::now();
    loop {
        let (_, body) = get(&format!("http://{api}/api/v1/query?query=up"));
        if body.contains(r#""job":"self""#) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{body}");
        std::thread::sleep(Duration::from_millis(200));
    }

    for (toml, key) in [
        ("retention_raw = \"7\"\n", "retention_raw"),
        ("no_such_key = 1\n", "no_such_key"),
    ] {
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, toml).unwrap();
        let child = hyperscale()
            .args(["metrics", "serve", "--config", bad.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_output(child, Duration::from_secs(20));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(key), "{stderr}");
    }
}
