//! Request bodies and their bounds: every string and number a client sends
//! is checked here before it reaches the database.

use axum::http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{ApiError, error};
use crate::concurrency::BookRequest;
use crate::model::Stay;

/// Longest id a client may choose (reservation and guest ids).
pub const KEY_CHARS_MAX: usize = 64;
/// Longest hotel or room type name.
pub const NAME_CHARS_MAX: usize = 200;
/// Most room types of one hotel.
pub const ROOM_TYPES_MAX: usize = 100;
/// Most nights one inventory or rate update covers.
pub const RANGE_DAYS_MAX: i64 = 366;
/// Most rooms of one type in one hotel.
pub const INVENTORY_MAX: i64 = 100_000;
/// Highest price, in cents (a million a night).
pub const CENTS_MAX: i64 = 100_000_000;
/// Highest hotel or room type id (exact in a JavaScript number).
pub const ID_MAX: i64 = (1 << 53) - 1;

/// Parses a JSON body, refusing unknown fields, with serde's line and column.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|err| error(StatusCode::BAD_REQUEST, format!("bad JSON body: {err}")))
}

/// Parses a numeric id from a path or query.
pub fn parse_id(what: &str, text: &str) -> Result<i64, ApiError> {
    match text.parse::<i64>() {
        Ok(id) if (1..=ID_MAX).contains(&id) => Ok(id),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            format!(
                "{what} must be a whole number from 1 to {ID_MAX}, not `{}`",
                text.chars().take(40).collect::<String>()
            ),
        )),
    }
}

/// Checks a client-chosen key: 1 to 64 of `A-Z a-z 0-9 - _ . :`.
fn key<'a>(what: &str, text: &'a str) -> Result<&'a str, ApiError> {
    let ok = !text.is_empty()
        && text.len() <= KEY_CHARS_MAX
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if ok {
        Ok(text)
    } else {
        Err(error(
            StatusCode::BAD_REQUEST,
            format!(
                "{what} must be 1 to {KEY_CHARS_MAX} characters of A-Z a-z 0-9 - _ . : (a UUID works)"
            ),
        ))
    }
}

/// Checks a reservation id.
pub fn reservation_id(text: &str) -> Result<&str, ApiError> {
    key("reservation_id", text)
}

/// Checks a guest id (the alphabet of reservation ids).
pub fn guest_id(text: &str) -> Result<&str, ApiError> {
    key("guest_id", text)
}

/// Most reservations one guest listing returns.
pub const LIST_MAX: i64 = 1_000;

/// `?limit=` of a listing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// At most this many (default 100, at most [`LIST_MAX`]).
    pub limit: Option<i64>,
}

/// Checks a display name.
pub fn name(text: &str) -> Result<&str, ApiError> {
    let trimmed = text.trim();
    if trimmed.is_empty()
        || trimmed.chars().count() > NAME_CHARS_MAX
        || trimmed.chars().any(char::is_control)
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("name must be 1 to {NAME_CHARS_MAX} printable characters"),
        ));
    }
    Ok(trimmed)
}

/// Checks a count in `0..=max`.
pub fn count(what: &str, value: i64, max: i64) -> Result<i64, ApiError> {
    if (0..=max).contains(&value) {
        Ok(value)
    } else {
        Err(error(
            StatusCode::BAD_REQUEST,
            format!("{what} must be 0 to {max}, not {value}"),
        ))
    }
}

/// Checks an amount of money in cents.
pub fn cents(what: &str, value: i64) -> Result<i64, ApiError> {
    count(what, value, CENTS_MAX)
}

/// `PUT /v1/hotels/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HotelInput {
    /// Display name.
    pub name: String,
}

/// `PUT /v1/hotels/{id}/room-types/{rt}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomTypeInput {
    /// Display name.
    pub name: String,
    /// Price of a night without a specific rate.
    pub base_rate_cents: i64,
}

/// `PUT .../inventory`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryInput {
    /// First night.
    pub from: String,
    /// Night after the last.
    pub to: String,
    /// Physical rooms each night.
    pub total_inventory: i64,
}

/// `PUT .../rates`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatesInput {
    /// First night.
    pub from: String,
    /// Night after the last.
    pub to: String,
    /// Price of one room per night.
    pub rate_cents: i64,
}

/// The availability query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityQuery {
    /// One room type, or every one.
    pub room_type: Option<String>,
    /// First night.
    pub check_in: String,
    /// Departure day.
    pub check_out: String,
}

/// `POST /v1/reservations`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReservationInput {
    /// The idempotency key (required).
    pub reservation_id: Option<String>,
    /// The hotel.
    pub hotel_id: i64,
    /// The room type.
    pub room_type_id: i64,
    /// Who books.
    pub guest_id: String,
    /// First night.
    pub check_in: String,
    /// Departure day.
    pub check_out: String,
    /// Rooms for every night (default 1).
    pub rooms: Option<i64>,
}

/// Validates a reservation body into a [`BookRequest`].
pub fn book_request(
    input: ReservationInput,
    rooms_max: i64,
    stay: impl FnOnce(&str, &str) -> Result<Stay, ApiError>,
) -> Result<BookRequest, ApiError> {
    let Some(reservation_id) = input.reservation_id else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "reservation_id is required: the client picks it (e.g. a UUID) so a retried request books once",
        ));
    };
    reservation_id_checked(&reservation_id)?;
    key("guest_id", &input.guest_id)?;
    let hotel_id = parse_id("hotel_id", &input.hotel_id.to_string())?;
    let room_type_id = parse_id("room_type_id", &input.room_type_id.to_string())?;
    let rooms = input.rooms.unwrap_or(1);
    if !(1..=rooms_max).contains(&rooms) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("rooms must be 1 to {rooms_max}, not {rooms}"),
        ));
    }
    let stay = stay(&input.check_in, &input.check_out)?;
    Ok(BookRequest {
        reservation_id,
        hotel_id,
        room_type_id,
        guest_id: input.guest_id,
        stay,
        rooms,
    })
}

fn reservation_id_checked(text: &str) -> Result<(), ApiError> {
    reservation_id(text).map(|_| ())
}
