//! `kill -9` of `hyperscale hotel serve` between the payment saga's steps:
//! while a charge hangs before the provider takes the money, after it took
//! it, while a compensation's void hangs and while a refund's void hangs.
//! Restarted, the service finishes every saga from its log: each
//! reservation is paid with exactly one live charge, or holds no rooms and
//! no money. The provider is the fake, in this test's process, so it
//! outlives the killed service.

use crate::common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Guard, get, hyperscale, post_json, serve, wait_output};
use hotel::payment::fake::{Behaviour, FakeProvider};

fn day(days: i64) -> String {
    hotel::model::Date::today().plus(days).to_string()
}

/// Starts the service on `data` against the provider at `payments`.
fn start(data: &str, payments: &str) -> (Guard, String) {
    start_with(data, payments, &["--payment-timeout-ms", "60000"])
}

/// Starts the service on `data` against the provider at `payments`, with
/// `extra` flags.
fn start_with(data: &str, payments: &str, extra: &[&str]) -> (Guard, String) {
    let mut args = vec![
        "hotel",
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--data-dir",
        data,
        "--payments",
        payments,
    ];
    args.extend_from_slice(extra);
    let (guard, _lines, banner) = serve(args, Duration::from_secs(30));
    let addr = banner
        .strip_prefix("hotel listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected banner {banner:?}"))
        .to_owned();
    (guard, addr)
}

/// Sends a bodiless POST and returns without waiting for the answer (the
/// stream stays open so the request stays in flight).
fn fire(addr: &str, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    stream
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(30), "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn book(addr: &str, id: &str) {
    book_at(addr, id, 1);
}

fn book_at(addr: &str, id: &str, hotel: i64) {
    let body = format!(
        r#"{{"reservation_id":"{id}","hotel_id":{hotel},"room_type_id":2,"guest_id":"g","check_in":"{}","check_out":"{}"}}"#,
        day(0),
        day(2)
    );
    let (status, reply) = post_json(&format!("http://{addr}/v1/reservations"), &body);
    assert_eq!(status, 201, "{reply}");
}

fn status_of(addr: &str, id: &str) -> String {
    let (code, reply) = get(&format!("http://{addr}/v1/reservations/{id}"));
    assert_eq!(code, 200, "{reply}");
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    reply["status"].as_str().unwrap().to_owned()
}

fn kill(mut guard: Guard) {
    guard.0.kill().unwrap();
    guard.0.wait().unwrap();
}

#[test]
fn payments_survive_kill_9_between_saga_steps() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = FakeProvider::new();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let payments = format!("http://{}", listener.local_addr().unwrap());
    let router = fake.router();
    runtime.spawn(async move { axum::serve(listener, router).await });

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let seed = hyperscale()
        .args(["hotel", "seed", "--hotels", "1", "--days", "3"])
        .args(["--data-dir", data])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_output(seed, Duration::from_secs(60)).status.success());
    let hang = 30_000;

    // 1. Killed while the charge hangs before the provider takes the money.
    let (guard, addr) = start(data, &payments);
    book(&addr, "k-1");
    fake.set(Behaviour {
        hang_before_ms: hang,
        ..Behaviour::default()
    });
    let _in_flight = fire(&addr, "/v1/reservations/k-1/pay");
    wait_for("k-1's charge request", || fake.charge_requests() == 1);
    kill(guard);
    fake.set(Behaviour::default());
    let (guard, addr) = start(data, &payments);
    wait_for("k-1 paid after restart", || {
        status_of(&addr, "k-1") == "paid"
    });

    // 2. Killed after the provider took the money, before the confirm.
    book(&addr, "k-2");
    fake.set(Behaviour {
        hang_after_ms: hang,
        ..Behaviour::default()
    });
    let _in_flight = fire(&addr, "/v1/reservations/k-2/pay");
    wait_for("k-2 charged", || fake.charges().contains_key("k-2"));
    kill(guard);

    // 3. Killed while a declined payment's void hangs, and while a paid
    //    reservation's refund hangs.
    fake.set(Behaviour {
        decline: true,
        void_hang_ms: hang,
        ..Behaviour::default()
    });
    let (guard, addr) = start(data, &payments);
    // The restart's sweep settles k-2 first (its charge repeats, not doubles).
    wait_for("k-2 paid after restart", || {
        status_of(&addr, "k-2") == "paid"
    });
    book(&addr, "k-3");
    let _in_flight = fire(&addr, "/v1/reservations/k-3/pay");
    wait_for("k-3's void", || fake.void_requests() == 1);
    let _in_flight = fire(&addr, "/v1/reservations/k-1/cancel");
    wait_for("k-1's refund", || fake.void_requests() == 2);
    assert_eq!(status_of(&addr, "k-3"), "pending");
    kill(guard);

    fake.set(Behaviour::default());
    let (mut guard, addr) = start(data, &payments);
    // The restart's sweep settles k-3 (void, reject) and k-1 (void: its
    // status was already `refunded` before the kill, the money in flight).
    wait_for("k-3 rejected and k-1 refunded after restart", || {
        status_of(&addr, "k-3") == "rejected"
            && fake
                .charges()
                .get("k-1")
                .is_some_and(|charge| charge.status == "voided")
    });
    assert_eq!(status_of(&addr, "k-1"), "refunded");
    assert_eq!(status_of(&addr, "k-2"), "paid");
    let charges = fake.charges();
    assert_eq!(charges["k-1"].status, "voided");
    assert_eq!(charges["k-2"].status, "succeeded");
    assert_eq!(charges["k-2"].amount_cents, 90_000);
    assert_eq!(charges["k-3"].status, "voided");
    // Only k-2 still holds a suite (10 of them) for its two nights.
    let (code, reply) = get(&format!(
        "http://{addr}/v1/hotels/1/availability?room_type=2&check_in={}&check_out={}",
        day(0),
        day(2)
    ));
    assert_eq!(code, 200, "{reply}");
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["room_types"][0]["available"], 9, "{reply}");
    common::interrupt_and_wait(&mut guard, Duration::from_secs(10));
}

/// `seed --shards 4`, `fake-payments` and `serve --shards 4 --payments URL`
/// as real processes: bookings land on their hotels' shards (one file per
/// shard), pay through the separate provider, a provider told to decline
/// (`PUT /control`) gets a 402, and the guest's reservations fan out.
#[test]
fn sharded_service_pays_through_the_fake_payments_process() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let seed = hyperscale()
        .args([
            "hotel", "seed", "--hotels", "8", "--days", "3", "--shards", "4",
        ])
        .args(["--data-dir", data])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_output(seed, Duration::from_secs(60)).status.success());
    for shard in 0..4 {
        let file = dir.path().join(format!("hotel-shard-{shard}-of-4.db"));
        assert!(file.exists(), "{}", file.display());
    }
    let (mut provider, _lines, banner) = serve(
        ["hotel", "fake-payments", "--bind", "127.0.0.1:0"],
        Duration::from_secs(30),
    );
    let payments = format!(
        "http://{}",
        banner.strip_prefix("fake payments listening on ").unwrap()
    );
    let (mut guard, addr) = start_with(data, &payments, &["--shards", "4"]);
    for hotel in [3, 6] {
        book_at(&addr, &format!("s-{hotel}"), hotel);
    }
    let (status, reply) = post_json(&format!("http://{addr}/v1/reservations/s-3/pay"), "");
    assert_eq!(status, 200, "{reply}");
    assert_eq!(status_of(&addr, "s-3"), "paid");
    let (status, reply) = common::request(
        "PUT",
        &format!("{payments}/control"),
        &[("Content-Type", "application/json")],
        r#"{"decline":true}"#,
    );
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = post_json(&format!("http://{addr}/v1/reservations/s-6/pay"), "");
    assert_eq!(status, 402, "{reply}");
    assert_eq!(status_of(&addr, "s-6"), "rejected");
    let (status, reply) = get(&format!("http://{addr}/v1/guests/g/reservations"));
    assert_eq!(status, 200, "{reply}");
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(
        reply["reservations"].as_array().unwrap().len(),
        2,
        "{reply}"
    );
    let (_, charges) = get(&format!("{payments}/v1/charges"));
    assert!(charges.contains("\"s-3\""), "{charges}");
    assert!(
        !charges.contains("s-6\",\"amount_cents\":90000,\"status\":\"succeeded"),
        "{charges}"
    );
    common::interrupt_and_wait(&mut guard, Duration::from_secs(10));
    common::interrupt_and_wait(&mut provider, Duration::from_secs(10));
}
