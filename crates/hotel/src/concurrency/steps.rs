//! The SQL steps the three concurrency controls share: read a stay's nights
//! (optionally locked), check them, insert the reservation and add its rooms
//! to every night (optionally only where the version is unchanged), give
//! rooms back, and the jittered pause between retries.

use std::time::Duration;

use sqlx::{Any, Executor, Transaction};

use super::{BookError, BookRequest, Failure};
use crate::model::{Date, Reservation, Status};
use crate::store::{self, Night};

/// Sleeps a random time below a cap that doubles per attempt (1 ms .. 64 ms),
/// so retrying bookings do not collide again in lockstep.
pub(super) async fn pause(attempt: u32) {
    let cap_us = 1_000u64 << attempt.min(6);
    tokio::time::sleep(Duration::from_micros(fastrand::u64(cap_us / 2..=cap_us))).await;
}

pub(super) async fn read_nights(
    tx: &mut Transaction<'static, Any>,
    request: &BookRequest,
    lock_clause: &str,
) -> Result<Vec<Night>, sqlx::Error> {
    let sql = format!("{}{lock_clause}", store::NIGHTS_SQL);
    let rows = sqlx::query(&sql)
        .bind(request.hotel_id)
        .bind(request.room_type_id)
        .bind(request.stay.check_in.to_string())
        .bind(request.stay.check_out.to_string())
        .fetch_all(&mut **tx)
        .await?;
    rows.iter().map(Night::from_row).collect()
}

/// Every night must be on sale; with `check_rooms`, each must have `rooms`
/// left (the application-side check of the pessimistic and optimistic modes).
pub(super) fn check_nights(
    request: &BookRequest,
    nights: &[Night],
    check_rooms: bool,
) -> Result<(), Failure> {
    let on_sale: Vec<&str> = nights.iter().map(|night| night.date.as_str()).collect();
    if let Some(missing) = request
        .stay
        .each_night()
        .map(|date| date.to_string())
        .find(|date| !on_sale.contains(&date.as_str()))
    {
        return Err(Failure::Final(BookError::SoldOut(format!(
            "room type {} of hotel {} is not on sale for the night of {missing}",
            request.room_type_id, request.hotel_id
        ))));
    }
    if check_rooms
        && let Some(full) = nights
            .iter()
            .find(|night| night.available() < request.rooms)
    {
        return Err(Failure::Final(BookError::SoldOut(format!(
            "sold out: {} room(s) left for the night of {}, {} asked",
            full.available(),
            full.date,
            request.rooms
        ))));
    }
    Ok(())
}

/// Inserts the reservation and adds its rooms to every night, in date order.
/// With `versions`, each update also requires the night's version to be
/// unchanged; `Ok(None)` means one was not (the caller rolls back).
pub(super) async fn insert_and_reserve(
    tx: &mut Transaction<'static, Any>,
    request: &BookRequest,
    nights: &[Night],
    now_ms: i64,
    versions: Option<&[i64]>,
    outbox: bool,
) -> Result<Option<Reservation>, sqlx::Error> {
    let nightly_cents: i64 = nights
        .iter()
        .map(|night| night.rate_cents)
        .fold(0, i64::saturating_add);
    let reservation = Reservation {
        reservation_id: request.reservation_id.clone(),
        hotel_id: request.hotel_id,
        room_type_id: request.room_type_id,
        guest_id: request.guest_id.clone(),
        check_in: request.stay.check_in.to_string(),
        check_out: request.stay.check_out.to_string(),
        rooms: request.rooms,
        total_cents: nightly_cents.saturating_mul(request.rooms),
        status: Status::Pending,
        created_ms: now_ms,
        updated_ms: now_ms,
    };
    sqlx::query(
        "INSERT INTO reservation (reservation_id, hotel_id, room_type_id, guest_id, check_in, \
         check_out, rooms, total_cents, status, created_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&reservation.reservation_id)
    .bind(reservation.hotel_id)
    .bind(reservation.room_type_id)
    .bind(&reservation.guest_id)
    .bind(&reservation.check_in)
    .bind(&reservation.check_out)
    .bind(reservation.rooms)
    .bind(reservation.total_cents)
    .bind(reservation.status.as_str())
    .bind(reservation.created_ms)
    .bind(reservation.updated_ms)
    .execute(&mut **tx)
    .await?;
    for (index, night) in nights.iter().enumerate() {
        let base = "UPDATE room_type_inventory SET total_reserved = total_reserved + $1, \
                    version = version + 1 WHERE hotel_id = $2 AND room_type_id = $3 AND date = $4";
        let updated = match versions {
            Some(versions) => {
                let version = versions.get(index).copied().unwrap_or(-1);
                tx.execute(
                    sqlx::query(&format!("{base} AND version = $5"))
                        .bind(request.rooms)
                        .bind(request.hotel_id)
                        .bind(request.room_type_id)
                        .bind(&night.date)
                        .bind(version),
                )
                .await?
            }
            None => {
                tx.execute(
                    sqlx::query(base)
                        .bind(request.rooms)
                        .bind(request.hotel_id)
                        .bind(request.room_type_id)
                        .bind(&night.date),
                )
                .await?
            }
        };
        if updated.rows_affected() != 1 {
            return Ok(None);
        }
        if outbox {
            store::note_change(
                &mut **tx,
                request.hotel_id,
                request.room_type_id,
                &night.date,
            )
            .await?;
        }
    }
    Ok(Some(reservation))
}

/// Gives a reservation's rooms back to every night of its stay.
pub(super) async fn release(
    tx: &mut Transaction<'static, Any>,
    reservation: &Reservation,
    outbox: bool,
) -> Result<(), sqlx::Error> {
    let parse = |text: &str| Date::parse(text).map_err(|err| sqlx::Error::Decode(err.into()));
    let (from, to) = (
        parse(&reservation.check_in)?,
        parse(&reservation.check_out)?,
    );
    for day in from.days()..to.days() {
        sqlx::query(
            "UPDATE room_type_inventory SET total_reserved = total_reserved - $1, \
             version = version + 1 WHERE hotel_id = $2 AND room_type_id = $3 AND date = $4",
        )
        .bind(reservation.rooms)
        .bind(reservation.hotel_id)
        .bind(reservation.room_type_id)
        .bind(Date::from_days(day).to_string())
        .execute(&mut **tx)
        .await?;
        if outbox {
            let date = Date::from_days(day).to_string();
            store::note_change(
                &mut **tx,
                reservation.hotel_id,
                reservation.room_type_id,
                &date,
            )
            .await?;
        }
    }
    Ok(())
}
