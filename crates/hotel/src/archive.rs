//! Cold storage: reservations whose stay ended more than `archive_after_days`
//! ago move from `reservation` to `reservation_archive`, as the notes keep
//! only current data hot; `GET /v1/reservations/{id}` (and the idempotency
//! check) still find them there.
//!
//! Only reservations that no longer change move: their stay is over and
//! they are not `pending` (a pending one may still have a payment saga
//! running). Each batch moves in one transaction (copy, then delete), so a
//! crash leaves a reservation in exactly one of the two tables.

use sqlx::Row;

use crate::model::{Date, Reservation};
use crate::store::{self, Store};

/// Reservations moved per transaction.
const BATCH: i64 = 500;

/// The columns both tables share.
const COLUMNS: &str = "reservation_id, hotel_id, room_type_id, guest_id, check_in, check_out, \
     rooms, total_cents, status, created_ms, updated_ms";

/// The check-out date before which reservations are archived, `days`
/// before `today`.
pub fn cutoff(today: Date, days: i64) -> String {
    today.plus(-days).to_string()
}

/// Moves every settled reservation that checked out before `before`
/// (`YYYY-MM-DD`) to the archive, in batches; returns how many moved.
pub async fn archive_before(store: &Store, before: &str, now_ms: i64) -> Result<u64, sqlx::Error> {
    let mut moved = 0;
    loop {
        let mut tx = store
            .pool()
            .begin_with(store.backend().begin_write())
            .await?;
        let ids: Vec<String> = sqlx::query(
            "SELECT reservation_id FROM reservation WHERE check_out < $1 AND status <> 'pending' \
             ORDER BY check_out, reservation_id LIMIT $2",
        )
        .bind(before)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get("reservation_id"))
        .collect::<Result<_, _>>()?;
        for id in &ids {
            sqlx::query(&format!(
                "INSERT INTO reservation_archive ({COLUMNS}, archived_ms) \
                 SELECT {COLUMNS}, $2 FROM reservation WHERE reservation_id = $1"
            ))
            .bind(id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM reservation WHERE reservation_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        moved += ids.len() as u64;
        if (ids.len() as i64) < BATCH {
            return Ok(moved);
        }
    }
}

/// An archived reservation by id.
pub async fn archived(
    store: &Store,
    reservation_id: &str,
) -> Result<Option<Reservation>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM reservation_archive WHERE reservation_id = $1"
    ))
    .bind(reservation_id)
    .fetch_optional(store.pool())
    .await?;
    row.as_ref().map(store::reservation_from_row).transpose()
}

/// How many reservations are archived (for tests and audits).
pub async fn archived_count(store: &Store) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM reservation_archive")
        .fetch_one(store.pool())
        .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cutoff_is_days_before_today() {
        let today = super::Date::parse("2030-03-01").unwrap();
        assert_eq!(super::cutoff(today, 1), "2030-02-28");
        assert_eq!(super::cutoff(today, 0), "2030-03-01");
    }
}
