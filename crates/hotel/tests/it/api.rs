//! The REST surface: bad input gets clear JSON errors, idempotency keys
//! behave, the status machine releases rooms, auth and the OpenAPI document,
//! and a database that goes away gives 503.

use hotel::Mode;
use serde_json::json;

use crate::support::{Db, Server, booking, day};

async fn server() -> Server {
    let server = Server::start(Db::Sqlite, Mode::Optimistic, 1.0, |_| {}).await;
    server.hotel_with_rooms(3, 0, 60).await;
    server
}

/// POSTs raw bytes; returns (status, body).
async fn post_raw(server: &Server, path: &str, body: &'static str) -> (u16, serde_json::Value) {
    let response = server
        .client
        .post(server.url(path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn message(body: &serde_json::Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
}

#[tokio::test]
async fn bad_bookings_get_clear_errors() {
    let server = server().await;
    let cases = [
        (booking("a", "g", -1, 2, 1), 400, "in the past"),
        (booking("a", "g", 3, 3, 1), 400, "must be after"),
        (booking("a", "g", 4, 2, 1), 400, "must be after"),
        (booking("a", "g", 1, 32, 1), 400, "at most 30 nights"),
        (booking("a", "g", 1, 2, 0), 400, "rooms must be 1 to 10"),
        (booking("a", "g", 1, 2, 11), 400, "rooms must be 1 to 10"),
        (booking("a b", "g", 1, 2, 1), 400, "reservation_id must be"),
        (
            booking(&"x".repeat(65), "g", 1, 2, 1),
            400,
            "reservation_id must be",
        ),
        (booking("a", "", 1, 2, 1), 400, "guest_id must be"),
        (
            json!({"reservation_id": "a", "hotel_id": 1, "room_type_id": 1, "guest_id": "g",
            "check_in": "2030-02-30", "check_out": day(3)}),
            400,
            "not a date",
        ),
        (
            json!({"hotel_id": 1, "room_type_id": 1, "guest_id": "g",
            "check_in": day(1), "check_out": day(3)}),
            400,
            "reservation_id is required",
        ),
        (
            json!({"reservation_id": "a", "hotel_id": 9, "room_type_id": 1, "guest_id": "g",
            "check_in": day(1), "check_out": day(3)}),
            404,
            "hotel 9 has no room type 1",
        ),
        (
            json!({"reservation_id": "a", "hotel_id": 1, "room_type_id": 7, "guest_id": "g",
            "check_in": day(1), "check_out": day(3)}),
            404,
            "has no room type 7",
        ),
        (
            json!({"reservation_id": "a", "hotel_id": -1, "room_type_id": 1, "guest_id": "g",
            "check_in": day(1), "check_out": day(3)}),
            400,
            "hotel_id must be",
        ),
        (
            json!({"reservation_id": "a", "hotel_id": 1, "room_type_id": 1, "guest_id": "g",
            "check_in": day(1), "check_out": day(3), "price": 1}),
            400,
            "unknown field",
        ),
        // Nights beyond the inventory on sale.
        (booking("a", "g", 59, 62, 1), 409, "not on sale"),
    ];
    for (body, status, needle) in cases {
        let (got, reply) = server.book(&body).await;
        assert_eq!(got, status, "{body}: {reply}");
        assert!(message(&reply).contains(needle), "{body}: {reply}");
    }
    for raw in ["{", "[]", "", "{\"reservation_id\": 5}", "null"] {
        let (status, reply) = post_raw(&server, "/v1/reservations", raw).await;
        assert_eq!(status, 400, "{raw}");
        assert!(message(&reply).contains("bad JSON body"), "{reply}");
    }
    let huge = Box::leak(format!("{{\"guest_id\": \"{}\"}}", "x".repeat(20_000)).into_boxed_str());
    let (status, _) = post_raw(&server, "/v1/reservations", huge).await;
    assert_eq!(status, 413);
    // Nothing was booked by any of it.
    assert!(server.reserved(0, 60).await.iter().all(|&n| n == 0));
}

#[tokio::test]
async fn idempotency_key_replays_or_refuses() {
    let server = server().await;
    let body = booking("key-1", "alice", 1, 3, 1);
    let (status, first) = server.book(&body).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["status"], "pending");
    assert_eq!(first["total_cents"], 20_000);
    let response = server
        .client
        .post(server.url("/v1/reservations"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    assert_eq!(response.json::<serde_json::Value>().await.unwrap(), first);
    let (status, reply) = server.book(&booking("key-1", "alice", 1, 4, 1)).await;
    assert_eq!(status, 422);
    assert!(message(&reply).contains("already used"), "{reply}");
    assert_eq!(server.reserved(1, 4).await, [1, 1, 0]);
    let (status, got) = server.get("/v1/reservations/key-1").await;
    assert_eq!((status, &got), (200, &first));
    let (status, _) = server.get("/v1/reservations/nope").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn status_machine_releases_rooms() {
    let server = server().await;
    for id in ["s-1", "s-2", "s-3"] {
        assert_eq!(server.book(&booking(id, "bob", 1, 3, 1)).await.0, 201);
    }
    assert_eq!(server.book(&booking("s-4", "bob", 2, 3, 1)).await.0, 409);
    let post = |path: String| {
        let request = server.client.post(server.url(&path));
        async move {
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    // pending → canceled releases; a repeated cancel is a no-op.
    let (status, reply) = post("/v1/reservations/s-1/cancel".into()).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("canceled")));
    assert_eq!(server.reserved(1, 3).await, [2, 2]);
    assert_eq!(post("/v1/reservations/s-1/cancel".into()).await.0, 200);
    assert_eq!(server.reserved(1, 3).await, [2, 2]);
    let (status, reply) = post("/v1/reservations/s-1/pay".into()).await;
    assert_eq!(status, 409);
    assert!(message(&reply).contains("cannot pay a reservation that is canceled"));
    // pending → paid → checked_in keeps the rooms; paid → refunded releases.
    assert_eq!(post("/v1/reservations/s-2/check-in".into()).await.0, 409);
    assert_eq!(
        post("/v1/reservations/s-2/pay".into()).await.1["status"],
        "paid"
    );
    assert_eq!(
        post("/v1/reservations/s-2/check-in".into()).await.1["status"],
        "checked_in"
    );
    assert_eq!(
        post("/v1/reservations/s-3/pay".into()).await.1["status"],
        "paid"
    );
    assert_eq!(
        post("/v1/reservations/s-3/cancel".into()).await.1["status"],
        "refunded"
    );
    assert_eq!(server.reserved(1, 3).await, [1, 1]);
    assert_eq!(post("/v1/reservations/s-9/cancel".into()).await.0, 404);
    assert_eq!(post("/v1/reservations/bad%20id/cancel".into()).await.0, 400);
}

#[tokio::test]
async fn availability_and_management() {
    let server = server().await;
    server
        .put_ok(
            "/v1/hotels/1/room-types/1/rates",
            json!({"from": day(2), "to": day(3), "rate_cents": 15_000}),
        )
        .await;
    assert_eq!(server.book(&booking("v-1", "carol", 1, 3, 2)).await.0, 201);
    let path = format!(
        "/v1/hotels/1/availability?room_type=1&check_in={}&check_out={}",
        day(1),
        day(4)
    );
    let (status, reply) = server.get(&path).await;
    assert_eq!(status, 200, "{reply}");
    let room = &reply["room_types"][0];
    assert_eq!(room["available"], 1);
    assert_eq!(room["total_cents"], 35_000);
    let nights = room["nights"].as_array().unwrap();
    assert_eq!(nights.len(), 3);
    assert_eq!(nights[0]["total_reserved"], 2);
    assert_eq!(nights[1]["rate_cents"], 15_000);
    assert_eq!(nights[2]["available"], 3);
    // The booking priced the rate of each night.
    assert_eq!(
        server.get("/v1/reservations/v-1").await.1["total_cents"],
        50_000
    );
    // Inventory cannot drop below what is reserved.
    let response = server
        .client
        .put(server.url("/v1/hotels/1/room-types/1/inventory"))
        .json(&json!({"from": day(1), "to": day(2), "total_inventory": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    for (path, status) in [
        (
            format!(
                "/v1/hotels/2/availability?check_in={}&check_out={}",
                day(1),
                day(2)
            ),
            404,
        ),
        (
            format!(
                "/v1/hotels/1/availability?room_type=5&check_in={}&check_out={}",
                day(1),
                day(2)
            ),
            404,
        ),
        (
            format!(
                "/v1/hotels/1/availability?check_in={}&check_out={}",
                day(2),
                day(1)
            ),
            400,
        ),
        ("/v1/hotels/1/availability?check_in=x".to_string(), 400),
        ("/v1/hotels/abc".to_string(), 400),
        ("/v1/hotels/99".to_string(), 404),
        ("/nowhere".to_string(), 404),
    ] {
        let (got, reply) = server.get(&path).await;
        assert_eq!(got, status, "{path}: {reply}");
        assert!(reply["error"].is_string(), "{path}: {reply}");
    }
    for (path, body) in [
        (
            "/v1/hotels/1/room-types/1/inventory",
            json!({"from": day(1), "to": day(400), "total_inventory": 1}),
        ),
        (
            "/v1/hotels/1/room-types/1/inventory",
            json!({"from": day(1), "to": day(2), "total_inventory": -1}),
        ),
        (
            "/v1/hotels/1/room-types/1/inventory",
            json!({"from": day(-5), "to": day(2), "total_inventory": 1}),
        ),
        (
            "/v1/hotels/1/room-types/1/rates",
            json!({"from": day(1), "to": day(2), "rate_cents": -5}),
        ),
        ("/v1/hotels/1", json!({"name": ""})),
    ] {
        let response = server
            .client
            .put(server.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path} {body}");
    }
    let response = server
        .client
        .put(server.url("/v1/hotels/1/room-types/9/inventory"))
        .json(&json!({"from": day(1), "to": day(2), "total_inventory": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    // Room types are bounded per hotel (so is a search over all of them).
    for id in 2..=100 {
        let path = format!("/v1/hotels/1/room-types/{id}");
        server
            .put_ok(&path, json!({"name": "More", "base_rate_cents": 1}))
            .await;
    }
    let response = server
        .client
        .put(server.url("/v1/hotels/1/room-types/101"))
        .json(&json!({"name": "One too many", "base_rate_cents": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    server
        .put_ok(
            "/v1/hotels/1/room-types/100",
            json!({"name": "Renamed", "base_rate_cents": 2}),
        )
        .await;
    let (status, hotel) = server.get("/v1/hotels/1").await;
    assert_eq!(
        (status, hotel["room_types"][0]["name"].as_str()),
        (200, Some("Standard"))
    );
    let (status, doc) = server.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/reservations"]["post"]["responses"]["422"].is_object());
}

#[tokio::test]
async fn api_key_is_required_when_set() {
    let server = Server::start(Db::Sqlite, Mode::Constraint, 1.0, |config| {
        config.api_key = Some("s3cret".into());
    })
    .await;
    let (status, reply) = server.get("/v1/hotels/1").await;
    assert_eq!(status, 401);
    assert!(message(&reply).contains("API key"));
    let wrong = server
        .client
        .get(server.url("/v1/hotels/1"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let bearer = server
        .client
        .get(server.url("/v1/hotels/1"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 404);
    let header = server
        .client
        .get(server.url("/v1/hotels/1"))
        .header("x-api-key", "s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(header.status(), 404);
    assert_eq!(server.get("/openapi.json").await.0, 200);
}

/// PostgreSQL goes away under a running server: requests get 503 within the
/// configured timeout, not a hang, not a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_is_503() {
    let server = Server::start(Db::Postgres, Mode::Pessimistic, 1.0, |config| {
        config.db_timeout_ms = 2_000;
    })
    .await;
    server.hotel_with_rooms(3, 0, 10).await;
    assert_eq!(server.book(&booking("d-1", "dan", 1, 2, 1)).await.0, 201);
    crate::postgres::drop_database(&server.database_url).await;
    // A hang fails the test instead of stalling CI.
    let checks = async {
        for path in ["/v1/reservations/d-1", "/v1/hotels/1"] {
            let (status, reply) = server.get(path).await;
            assert_eq!(status, 503, "{path}: {reply}");
            assert!(message(&reply).contains("database unavailable"), "{reply}");
        }
        let (status, _) = server.book(&booking("d-2", "dan", 1, 2, 1)).await;
        assert_eq!(status, 503);
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), checks)
        .await
        .expect("requests to a dead database must end (503), not hang");
}
