//! Cold storage: settled reservations whose stay ended more than N days ago
//! move to the archive table, and are still read by id (same body) and still
//! hold their idempotency key; pending and recent ones stay hot.

use hotel::Mode;
use hotel::archive::{archive_before, archived_count, cutoff};
use hotel::model::Date;

use crate::support::{Db, Server, booking};

#[tokio::test]
async fn old_settled_reservations_move_and_stay_readable() {
    let server = Server::start(Db::Sqlite, Mode::Optimistic, 1.0, |_| {}).await;
    server.hotel_with_rooms(5, 1, 4).await;
    for id in ["old-paid", "old-canceled", "old-pending", "recent"] {
        assert_eq!(server.book(&booking(id, "al", 1, 3, 1)).await.0, 201);
    }
    assert_eq!(server.post("/v1/reservations/old-paid/pay").await.0, 200);
    assert_eq!(
        server.post("/v1/reservations/old-canceled/cancel").await.0,
        200
    );
    // Time passes for three of them: their stays ended 40 days ago.
    let store = server.booker.store();
    let (check_in, check_out) = (Date::today().plus(-42), Date::today().plus(-40));
    for id in ["old-paid", "old-canceled", "old-pending"] {
        sqlx::query(
            "UPDATE reservation SET check_in = $1, check_out = $2 WHERE reservation_id = $3",
        )
        .bind(check_in.to_string())
        .bind(check_out.to_string())
        .bind(id)
        .execute(store.pool())
        .await
        .unwrap();
    }
    let mut bodies = Vec::new();
    for id in ["old-paid", "old-canceled"] {
        bodies.push(server.get(&format!("/v1/reservations/{id}")).await.1);
    }
    let moved = archive_before(store, &cutoff(Date::today(), 30), 1)
        .await
        .unwrap();
    assert_eq!(moved, 2);
    assert_eq!(archived_count(store).await.unwrap(), 2);
    let hot: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reservation")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(hot, 2, "the pending and the recent one stay hot");
    for (id, body) in ["old-paid", "old-canceled"].iter().zip(&bodies) {
        let (status, reply) = server.get(&format!("/v1/reservations/{id}")).await;
        assert_eq!((status, &reply), (200, body));
    }
    // The key is still taken: another booking under it is a 422.
    let (status, reply) = server.book(&booking("old-paid", "al", 2, 3, 1)).await;
    assert_eq!(status, 422, "{reply}");
    // Running again moves nothing more.
    assert_eq!(
        archive_before(store, &cutoff(Date::today(), 30), 2)
            .await
            .unwrap(),
        0
    );
    assert_eq!(server.get("/v1/reservations/recent").await.0, 200);
}
