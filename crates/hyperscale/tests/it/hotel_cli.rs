//! `hyperscale hotel seed` and `hyperscale hotel serve` as real processes:
//! seeded hotels are on sale through the served API, a booking holds a
//! room, a bad flag is one clear line and a non-zero exit.

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::{get, hyperscale, interrupt_and_wait, post_json, serve, wait_output};

/// `days` from today (UTC), as the server counts them.
fn day(days: i64) -> String {
    hotel::model::Date::today().plus(days).to_string()
}

#[test]
fn seed_then_serve_then_book() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let seed = hyperscale()
        .args([
            "hotel",
            "seed",
            "--hotels",
            "3",
            "--days",
            "5",
            "--json",
            "--data-dir",
            data,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(seed, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["hotels"], 3);
    assert_eq!(summary["inventory_rows"], 3 * 2 * 5);

    let (mut guard, _lines, banner) = serve(
        [
            "hotel",
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            data,
            "--concurrency",
            "constraint",
        ],
        Duration::from_secs(30),
    );
    let addr = banner
        .strip_prefix("hotel listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected banner {banner:?}"))
        .to_owned();
    assert!(banner.contains("constraint concurrency"), "{banner}");
    let (status, hotel) = get(&format!("http://{addr}/v1/hotels/2"));
    assert_eq!(status, 200, "{hotel}");
    assert!(hotel.contains("Suite"), "{hotel}");
    let (status, doc) = get(&format!("http://{addr}/openapi.json"));
    assert_eq!(status, 200);
    assert!(doc.contains("/v1/reservations"));
    // Seeded nights start today: book the suite for the first two.
    let (check_in, check_out) = (day(0), day(2));
    let body = format!(
        r#"{{"reservation_id":"cli-1","hotel_id":2,"room_type_id":2,"guest_id":"g","check_in":"{check_in}","check_out":"{check_out}"}}"#
    );
    let (status, reply) = post_json(&format!("http://{addr}/v1/reservations"), &body);
    assert_eq!(status, 201, "{reply}");
    let (status, reply) = get(&format!("http://{addr}/v1/reservations/cli-1"));
    assert_eq!(status, 200);
    assert!(reply.contains("\"total_cents\":90000"), "{reply}");
    let (status, reply) = get(&format!(
        "http://{addr}/v1/hotels/2/availability?room_type=2&check_in={check_in}&check_out={check_out}"
    ));
    assert_eq!(status, 200);
    assert!(reply.contains("\"available\":9"), "{reply}");
    assert!(interrupt_and_wait(&mut guard, Duration::from_secs(10)).success());
}

#[test]
fn bad_flags_are_one_clear_line() {
    for (args, needle) in [
        (
            &[
                "hotel",
                "serve",
                "--concurrency",
                "chaotic",
                "--bind",
                "127.0.0.1:0",
            ][..],
            "concurrency must be pessimistic, optimistic or constraint",
        ),
        (
            &["hotel", "seed", "--hotels", "0"][..],
            "--hotels must be 1..=100000",
        ),
        (
            &[
                "hotel",
                "serve",
                "--overbooking",
                "3",
                "--bind",
                "127.0.0.1:0",
            ][..],
            "overbooking must be between 1.0 and 2.0",
        ),
    ] {
        let child = hyperscale()
            .args(args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_output(child, Duration::from_secs(30));
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}

#[test]
fn bench_sweeps_contention_and_draws_a_png() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("contention.png");
    let child = hyperscale()
        .args([
            "bench",
            "hotel",
            "--bookings",
            "40",
            "--workers",
            "8",
            "--sweep",
            "1,4",
            "--json",
            "--plot",
        ])
        .arg(&png)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = report["results"].as_array().unwrap();
    // Three modes at two points each, every booking accounted for.
    assert_eq!(results.len(), 6, "{report}");
    for result in results {
        assert_eq!(result["contention"], "spread", "{result}");
        let accounted = result["booked"].as_u64().unwrap()
            + result["failed"].as_u64().unwrap()
            + result["sold_out"].as_u64().unwrap();
        assert_eq!(accounted, 40, "{result}");
    }
    let hotels: Vec<_> = results
        .iter()
        .map(|r| r["hotels"].as_i64().unwrap())
        .collect();
    assert_eq!(hotels, [1, 4, 1, 4, 1, 4]);
    // A PNG of the documented size: signature, then IHDR's width and height.
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1400, 560));

    let child = hyperscale()
        .args(["bench", "hotel", "--sweep", "0", "--plot"])
        .arg(&png)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, Duration::from_secs(30));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--sweep takes hotel counts"), "{stderr}");
}
