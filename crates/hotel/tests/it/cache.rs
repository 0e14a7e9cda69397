//! The inventory cache in our own `kv` server (in process): after random,
//! interleaved sequences of bookings, cancellations, inventory and rate
//! changes, the cache converges to the database within a bound; searches
//! are then served from it; a stale cache never lets a booking through.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hotel::Mode;
use hotel::cache::InventoryCache;
use hotel::model::Date;
use serde_json::json;

use crate::support::{Db, Server, booking, day};

/// Convergence bound: 100 relay rounds of 20 ms, generous for a loaded CI.
const BOUND: Duration = Duration::from_secs(2);

fn kv_server() -> kv::EmbeddedServer {
    let config = kv::Config {
        engine: kv::config::EngineKind::Memory,
        ..kv::Config::default()
    };
    kv::EmbeddedServer::start(config).unwrap()
}

async fn cached(url: &str) -> (Arc<Server>, InventoryCache) {
    let url = url.to_string();
    let server = Server::start(Db::Sqlite, Mode::Optimistic, 1.0, |config| {
        config.cache = url.clone();
        config.outbox_poll_ms = 20;
    })
    .await;
    server.hotel_with_rooms(10, 1, 11).await;
    let reader = InventoryCache::connect(&url, Duration::from_secs(60), 1_000)
        .await
        .unwrap();
    (Arc::new(server), reader)
}

/// Whether every night 1..11 of hotel 1, room type 1 is cached as it is in
/// the database.
async fn converged(server: &Server, cache: &InventoryCache) -> bool {
    for night in 1..11 {
        let from = Date::today().plus(night);
        let cached = cache.nights(1, 1, from, from.plus(1)).await;
        let stored = server
            .booker
            .store()
            .nights(1, 1, &day(night), &day(night + 1))
            .await
            .unwrap();
        if cached.as_ref() != Some(&stored) {
            return false;
        }
    }
    true
}

async fn wait_converged(server: &Server, cache: &InventoryCache) -> Duration {
    let started = Instant::now();
    while !converged(server, cache).await {
        assert!(
            started.elapsed() < BOUND,
            "the cache did not converge within {BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

/// One random operation; its answer may be a refusal (sold out, below what
/// is reserved), which commits nothing.
async fn random_op(server: &Server, rng: &mut fastrand::Rng, id: usize) {
    let from = rng.i64(1..10);
    let to = rng.i64(from + 1..=(from + 3).min(11));
    match rng.u8(0..10) {
        0..=5 => {
            let body = booking(&format!("op-{id}"), "g", from, to, rng.i64(1..=3));
            server.book(&body).await;
        }
        6 | 7 => {
            let victim = rng.usize(0..=id);
            server
                .post(&format!("/v1/reservations/op-{victim}/cancel"))
                .await;
        }
        8 => {
            let body = json!({"from": day(from), "to": day(to), "total_inventory": rng.i64(5..20)});
            let url = server.url("/v1/hotels/1/room-types/1/inventory");
            server.client.put(url).json(&body).send().await.unwrap();
        }
        _ => {
            let body =
                json!({"from": day(from), "to": day(to), "rate_cents": rng.i64(5_000..20_000)});
            let url = server.url("/v1/hotels/1/room-types/1/rates");
            server.client.put(url).json(&body).send().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cache_converges_after_any_sequence_of_commits() {
    let kv = kv_server();
    let (server, cache) = cached(&kv.url()).await;
    wait_converged(&server, &cache).await;
    for seed in 0..4u64 {
        // Eight writers at once, 25 operations each, searches in between.
        let mut writers = tokio::task::JoinSet::new();
        for writer in 0..8usize {
            let server = server.clone();
            writers.spawn(async move {
                let mut rng = fastrand::Rng::with_seed(seed * 100 + writer as u64);
                for op in 0..25 {
                    let id = (seed as usize * 8 + writer) * 25 + op;
                    random_op(&server, &mut rng, id).await;
                    if op % 5 == 0 {
                        let path = format!(
                            "/v1/hotels/1/availability?check_in={}&check_out={}",
                            day(1),
                            day(5)
                        );
                        assert_eq!(server.get(&path).await.0, 200);
                    }
                }
            });
        }
        while let Some(done) = writers.join_next().await {
            done.unwrap();
        }
        wait_converged(&server, &cache).await;
        // Then bookings alone (each kind of commit must feed the stream by
        // itself, not ride on a later inventory change of the same night),
        // with rooms to spare so that they commit.
        server
            .put_ok(
                "/v1/hotels/1/room-types/1/inventory",
                json!({"from": day(1), "to": day(11), "total_inventory": 1_000}),
            )
            .await;
        wait_converged(&server, &cache).await;
        for extra in 0..4 {
            let night = (seed as i64 * 3 + extra) % 10 + 1;
            let body = booking(&format!("last-{seed}-{extra}"), "h", night, night + 1, 1);
            assert_eq!(server.book(&body).await.0, 201);
        }
        let took = wait_converged(&server, &cache).await;
        eprintln!("seed {seed}: converged {took:?} after the last commit");
    }
    // Converged: a search answers exactly what the database holds.
    let path = format!(
        "/v1/hotels/1/availability?room_type=1&check_in={}&check_out={}",
        day(1),
        day(11)
    );
    let (status, reply) = server.get(&path).await;
    assert_eq!(status, 200, "{reply}");
    let stored = server
        .booker
        .store()
        .nights(1, 1, &day(1), &day(11))
        .await
        .unwrap();
    let served: Vec<i64> = reply["room_types"][0]["nights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|night| night["total_reserved"].as_i64().unwrap())
        .collect();
    let expected: Vec<i64> = stored.iter().map(|night| night.total_reserved).collect();
    assert_eq!(served, expected);
}

#[tokio::test]
async fn a_stale_cache_never_lets_a_booking_through() {
    let kv = kv_server();
    let (server, cache) = cached(&kv.url()).await;
    server
        .put_ok(
            "/v1/hotels/1/room-types/1/inventory",
            json!({"from": day(2), "to": day(3), "total_inventory": 1}),
        )
        .await;
    assert_eq!(server.book(&booking("s-1", "a", 2, 3, 1)).await.0, 201);
    wait_converged(&server, &cache).await;
    // And the relay has nothing left to copy (it would overwrite the lie).
    let pool = server.booker.store().pool().clone();
    let started = Instant::now();
    loop {
        let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inventory_outbox")
            .fetch_one(&pool)
            .await
            .unwrap();
        if pending == 0 {
            break;
        }
        assert!(started.elapsed() < BOUND, "{pending} notes left");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The cache is made to lie: the night looks empty again.
    let mut stale = server
        .booker
        .store()
        .nights(1, 1, &day(2), &day(3))
        .await
        .unwrap()
        .remove(0);
    stale.total_reserved = 0;
    cache.put(1, 1, &day(2), Some(&stale)).await.unwrap();
    let path = format!(
        "/v1/hotels/1/availability?room_type=1&check_in={}&check_out={}",
        day(2),
        day(3)
    );
    let (_, reply) = server.get(&path).await;
    assert_eq!(
        reply["room_types"][0]["available"], 1,
        "served from the cache"
    );
    // The booking re-checks the database: sold out, not a double booking.
    let (status, reply) = server.book(&booking("s-2", "b", 2, 3, 1)).await;
    assert_eq!(status, 409, "{reply}");
    assert_eq!(server.reserved(2, 3).await, [1]);
}
