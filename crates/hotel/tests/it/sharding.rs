//! `shards = 4`: hotels land on the shard of their id (files named by shard),
//! reservation ids stay unique across shards and are found from any
//! endpoint, a guest's reservations fan out over every shard, and the
//! 1,000-guest race for the last room still sells each hotel's room once.

use std::sync::Arc;

use hotel::Mode;
use serde_json::{Value, json};

use crate::race::storm;
use crate::support::{Db, Server, booking, day};

const SHARDS: usize = 4;

async fn sharded(db: Db, mode: Mode, hold_ms: u64) -> Arc<Server> {
    let server = Server::start(db, mode, 1.0, |config| {
        config.shards = SHARDS;
        config.hold_ms = hold_ms;
    })
    .await;
    Arc::new(server)
}

/// Hotels `1..=hotels`, each with one room type of `rooms` rooms.
async fn hotels(server: &Server, hotels: i64, rooms: i64) {
    for hotel in 1..=hotels {
        server
            .put_ok(&format!("/v1/hotels/{hotel}"), json!({"name": "H"}))
            .await;
        server
            .put_ok(
                &format!("/v1/hotels/{hotel}/room-types/1"),
                json!({"name": "Standard", "base_rate_cents": 10_000}),
            )
            .await;
        server
            .put_ok(
                &format!("/v1/hotels/{hotel}/room-types/1/inventory"),
                json!({"from": day(1), "to": day(10), "total_inventory": rooms}),
            )
            .await;
    }
}

fn at_hotel(id: &str, guest: &str, hotel: i64) -> Value {
    let mut body = booking(id, guest, 3, 5, 1);
    body["hotel_id"] = json!(hotel);
    body
}

async fn last_room_sharded(db: Db, mode: Mode) {
    let server = sharded(db, mode, 5).await;
    hotels(&server, SHARDS as i64, 1).await;
    let bodies = (0..1000)
        .map(|i| at_hotel(&format!("r-{i}"), &format!("guest-{i}"), i % 4 + 1))
        .collect();
    let statuses = storm(&server, bodies).await;
    assert_eq!(
        statuses.get(&201),
        Some(&4),
        "{mode:?} on {db:?}: {statuses:?}"
    );
    assert_eq!(
        statuses.get(&409),
        Some(&996),
        "{mode:?} on {db:?}: {statuses:?}"
    );
    for hotel in 1..=SHARDS as i64 {
        let store = server.shards.of_hotel(hotel).booker.store();
        let nights = store.nights(hotel, 1, &day(3), &day(5)).await.unwrap();
        let reserved: Vec<i64> = nights.iter().map(|night| night.total_reserved).collect();
        assert_eq!(reserved, [1, 1], "hotel {hotel}");
        assert_eq!(store.reservations_of(hotel, 1).await.unwrap().len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn last_room_sharded_sqlite_pessimistic() {
    last_room_sharded(Db::Sqlite, Mode::Pessimistic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn last_room_sharded_sqlite_optimistic() {
    last_room_sharded(Db::Sqlite, Mode::Optimistic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn last_room_sharded_sqlite_constraint() {
    last_room_sharded(Db::Sqlite, Mode::Constraint).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn last_room_sharded_postgres_optimistic() {
    last_room_sharded(Db::Postgres, Mode::Optimistic).await;
}

#[tokio::test]
async fn hotels_spread_ids_stay_unique_and_guests_fan_out() {
    let server = sharded(Db::Sqlite, Mode::Optimistic, 0).await;
    hotels(&server, 8, 5).await;
    // Two hotels per shard, each on the shard of its id.
    for (index, shard) in server.shards.all().iter().enumerate() {
        assert_eq!(shard.booker.store().hotels_count().await.unwrap(), 2);
        let hotel = if index == 0 { 4 } else { index as i64 };
        assert!(
            shard
                .booker
                .store()
                .hotel_name(hotel)
                .await
                .unwrap()
                .is_some()
        );
    }
    for hotel in 1..=8 {
        let (status, reply) = server
            .book(&at_hotel(&format!("g-{hotel}"), "gus", hotel))
            .await;
        assert_eq!(status, 201, "{reply}");
    }
    // A repeat replays; the same id for another hotel (another shard) is a 422.
    assert_eq!(server.book(&at_hotel("g-5", "gus", 5)).await.0, 200);
    let (status, reply) = server.book(&at_hotel("g-5", "gus", 6)).await;
    assert_eq!(status, 422, "{reply}");
    // Found by id on its shard, from every reservation endpoint.
    let (status, reply) = server.get("/v1/reservations/g-7").await;
    assert_eq!((status, reply["hotel_id"].as_i64()), (200, Some(7)));
    let (status, reply) = server.post("/v1/reservations/g-6/pay").await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("paid")),
        "{reply}"
    );
    let (status, reply) = server.post("/v1/reservations/g-3/cancel").await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("canceled")));
    assert_eq!(server.get("/v1/reservations/nope").await.0, 404);
    // The guest's reservations, from every shard, newest first.
    let (status, reply) = server.get("/v1/guests/gus/reservations").await;
    assert_eq!(status, 200, "{reply}");
    let listed = reply["reservations"].as_array().unwrap();
    assert_eq!(listed.len(), 8);
    let mut hotels_seen: Vec<i64> = listed
        .iter()
        .map(|r| r["hotel_id"].as_i64().unwrap())
        .collect();
    hotels_seen.sort_unstable();
    assert_eq!(hotels_seen, (1..=8).collect::<Vec<_>>());
    let (_, reply) = server.get("/v1/guests/gus/reservations?limit=3").await;
    assert_eq!(reply["reservations"].as_array().unwrap().len(), 3);
    assert_eq!(server.get("/v1/guests/bad%20id/reservations").await.0, 400);
    assert_eq!(
        server.get("/v1/guests/gus/reservations?limit=5000").await.0,
        400
    );
}
