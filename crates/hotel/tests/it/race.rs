//! The chapter's races, over HTTP against a real server, for every
//! concurrency mode on SQLite and on PostgreSQL: 1,000 guests for the last
//! room, one guest's double click, and the overbooking limit under load.

use std::collections::BTreeMap;
use std::sync::Arc;

use hotel::Mode;

use crate::support::{Db, Server, booking};

/// Sends `bodies` all at once; returns the count of each status.
pub(crate) async fn storm(
    server: &Arc<Server>,
    bodies: Vec<serde_json::Value>,
) -> BTreeMap<u16, usize> {
    let barrier = Arc::new(tokio::sync::Barrier::new(bodies.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for body in bodies {
        let (server, barrier) = (server.clone(), barrier.clone());
        tasks.spawn(async move {
            barrier.wait().await;
            server.book(&body).await
        });
    }
    let mut statuses = BTreeMap::new();
    while let Some(result) = tasks.join_next().await {
        let (status, body) = result.unwrap();
        if status != 201 && status != 200 {
            assert_eq!(status, 409, "unexpected answer: {body}");
            let message = body["error"].as_str().unwrap();
            assert!(message.contains("sold out"), "{message}");
        }
        *statuses.entry(status).or_default() += 1;
    }
    statuses
}

/// 1,000 concurrent bookings of a two-night stay with one room left: exactly
/// one reservation, every other guest told "sold out".
async fn last_room(db: Db, mode: Mode) {
    // 5 ms between check and write: without the mode's lock or version
    // check, many guests would pass the check before the first one writes.
    let server = Arc::new(Server::start(db, mode, 1.0, |config| config.hold_ms = 5).await);
    server.hotel_with_rooms(1, 1, 10).await;
    let bodies = (0..1000)
        .map(|i| booking(&format!("r-{i}"), &format!("guest-{i}"), 3, 5, 1))
        .collect();
    let statuses = storm(&server, bodies).await;
    assert_eq!(
        statuses.get(&201),
        Some(&1),
        "{mode:?} on {db:?}: {statuses:?}"
    );
    assert_eq!(
        statuses.get(&409),
        Some(&999),
        "{mode:?} on {db:?}: {statuses:?}"
    );
    assert_eq!(server.reserved(3, 5).await, [1, 1]);
    assert_eq!(server.reserved(1, 3).await, [0, 0]);
    let reservations = server.booker.store().reservations_of(1, 1).await.unwrap();
    assert_eq!(reservations.len(), 1);
    let metrics = server.booker.metrics();
    assert_eq!(metrics.created.get(), 1);
    assert_eq!(metrics.sold_out.get(), 999);
    if mode == Mode::Constraint {
        // The constraint did the work...
        assert!(metrics.check_violations.get() > 0);
    } else {
        // ...and the other modes never needed it.
        assert_eq!(
            metrics.check_violations.get(),
            0,
            "{mode:?} relied on the constraint"
        );
    }
}

/// The same request (same reservation_id) sent 20 times at once: one
/// reservation, every answer the same reservation.
async fn double_click(db: Db, mode: Mode) {
    let server = Arc::new(Server::start(db, mode, 1.0, |_| {}).await);
    server.hotel_with_rooms(5, 1, 10).await;
    let body = booking("click-1", "alice", 2, 4, 2);
    let statuses = storm(&server, vec![body.clone(); 20]).await;
    assert_eq!(statuses.get(&201), Some(&1), "{statuses:?}");
    assert_eq!(statuses.get(&200), Some(&19), "{statuses:?}");
    assert_eq!(server.reserved(2, 4).await, [2, 2]);
    assert_eq!(
        server
            .booker
            .store()
            .reservations_of(1, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    let (status, again) = server.book(&body).await;
    assert_eq!(status, 200);
    assert_eq!(again["reservation_id"], "click-1");
    assert_eq!(again["rooms"], 2);
}

/// 10 rooms, 10 % overbooking: 11 rooms sell, not one more, under 60
/// concurrent single-room bookings.
async fn overbooking_limit(db: Db, mode: Mode) {
    // An optimistic conflict means another booking committed on that night,
    // and only 11 can: 20 retries are enough for nobody to give up.
    let server = Arc::new(
        Server::start(db, mode, 1.10, |config| {
            config.retries_max = 20;
            config.hold_ms = 5;
        })
        .await,
    );
    server.hotel_with_rooms(10, 1, 10).await;
    let bodies = (0..60)
        .map(|i| booking(&format!("o-{i}"), "guest", 1, 3, 1))
        .collect();
    let statuses = storm(&server, bodies).await;
    assert_eq!(statuses.get(&201), Some(&11), "{statuses:?}");
    assert_eq!(server.reserved(1, 3).await, [11, 11]);
    // A cancellation frees exactly one room, which sells again, once.
    let sold = server.booker.store().reservations_of(1, 1).await.unwrap();
    assert_eq!(sold.len(), 11);
    let cancel = format!("/v1/reservations/{}/cancel", sold[0].reservation_id);
    let response = server
        .client
        .post(server.url(&cancel))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.reserved(1, 3).await, [10, 10]);
    let (status, _) = server.book(&booking("late", "guest", 1, 3, 1)).await;
    assert_eq!(status, 201);
    let (status, _) = server.book(&booking("later", "guest", 1, 3, 1)).await;
    assert_eq!(status, 409);
    assert_eq!(server.reserved(1, 3).await, [11, 11]);
}

macro_rules! per_mode {
    ($($name:ident: $scenario:ident($db:expr, $mode:expr);)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            $scenario($db, $mode).await;
        }
    )*};
}

per_mode! {
    last_room_sqlite_pessimistic: last_room(Db::Sqlite, Mode::Pessimistic);
    last_room_sqlite_optimistic: last_room(Db::Sqlite, Mode::Optimistic);
    last_room_sqlite_constraint: last_room(Db::Sqlite, Mode::Constraint);
    last_room_postgres_pessimistic: last_room(Db::Postgres, Mode::Pessimistic);
    last_room_postgres_optimistic: last_room(Db::Postgres, Mode::Optimistic);
    last_room_postgres_constraint: last_room(Db::Postgres, Mode::Constraint);
    double_click_sqlite_pessimistic: double_click(Db::Sqlite, Mode::Pessimistic);
    double_click_sqlite_optimistic: double_click(Db::Sqlite, Mode::Optimistic);
    double_click_sqlite_constraint: double_click(Db::Sqlite, Mode::Constraint);
    double_click_postgres_pessimistic: double_click(Db::Postgres, Mode::Pessimistic);
    double_click_postgres_optimistic: double_click(Db::Postgres, Mode::Optimistic);
    double_click_postgres_constraint: double_click(Db::Postgres, Mode::Constraint);
    overbooking_sqlite_pessimistic: overbooking_limit(Db::Sqlite, Mode::Pessimistic);
    overbooking_sqlite_optimistic: overbooking_limit(Db::Sqlite, Mode::Optimistic);
    overbooking_sqlite_constraint: overbooking_limit(Db::Sqlite, Mode::Constraint);
    overbooking_postgres_pessimistic: overbooking_limit(Db::Postgres, Mode::Pessimistic);
    overbooking_postgres_optimistic: overbooking_limit(Db::Postgres, Mode::Optimistic);
    overbooking_postgres_constraint: overbooking_limit(Db::Postgres, Mode::Constraint);
}
