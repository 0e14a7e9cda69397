//! Hotel staff's endpoints: hotels, room types, inventory and rates for a
//! range of nights. Each hotel's rows live on its shard.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Api, ApiError, body_bytes, db_response, error, input, now_ms, parse_body, parse_id};
use crate::model::Date;
use crate::store::{ErrorClass, classify};

/// A 200 with `value` as JSON: the answer of every staff endpoint.
fn ok(value: Value) -> Result<Response, ApiError> {
    Ok(Json(value).into_response())
}

/// A hotel's name (404 when there is no such hotel) and its room types:
/// (id, name, base rate in cents).
pub(crate) async fn hotel_and_room_types(
    api: &Api,
    hotel_id: i64,
) -> Result<(String, Vec<(i64, String, i64)>), ApiError> {
    let store = api.store(hotel_id);
    let name = store
        .hotel_name(hotel_id)
        .await
        .map_err(|err| db_response(&err))?
        .ok_or_else(|| error(StatusCode::NOT_FOUND, format!("no hotel {hotel_id}")))?;
    let room_types = store
        .room_types(hotel_id)
        .await
        .map_err(|err| db_response(&err))?;
    Ok((name, room_types))
}

/// A write naming a room type that does not exist is a 404.
fn room_type_error(hotel_id: i64, room_type_id: i64, err: &sqlx::Error) -> ApiError {
    match classify(err) {
        ErrorClass::ForeignKey => error(
            StatusCode::NOT_FOUND,
            format!("hotel {hotel_id} has no room type {room_type_id}"),
        ),
        _ => db_response(err),
    }
}

type Ids = Result<Path<(String, String)>, axum::extract::rejection::PathRejection>;

fn two_ids(path: Ids) -> Result<(i64, i64), ApiError> {
    let Path((hotel, room_type)) =
        path.map_err(|rejection| error(StatusCode::BAD_REQUEST, rejection.body_text()))?;
    Ok((
        parse_id("hotel_id", &hotel)?,
        parse_id("room_type_id", &room_type)?,
    ))
}

pub(super) async fn put_hotel(
    State(api): State<Arc<Api>>,
    Path(hotel_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let hotel_id = parse_id("hotel_id", &hotel_id)?;
    let input: input::HotelInput = parse_body(&body_bytes(body)?)?;
    let name = input::name(&input.name)?;
    let store = api.store(hotel_id);
    store
        .put_hotel(hotel_id, name, now_ms())
        .await
        .map_err(|err| db_response(&err))?;
    ok(json!({ "hotel_id": hotel_id, "name": name }))
}

pub(super) async fn get_hotel(
    State(api): State<Arc<Api>>,
    Path(hotel_id): Path<String>,
) -> Result<Response, ApiError> {
    let hotel_id = parse_id("hotel_id", &hotel_id)?;
    let (name, room_types) = hotel_and_room_types(&api, hotel_id).await?;
    let room_types: Vec<_> = room_types
        .into_iter()
        .map(|(id, name, rate)| json!({"room_type_id": id, "name": name, "base_rate_cents": rate}))
        .collect();
    ok(json!({ "hotel_id": hotel_id, "name": name, "room_types": room_types }))
}

pub(super) async fn put_room_type(
    State(api): State<Arc<Api>>,
    path: Ids,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (hotel_id, room_type_id) = two_ids(path)?;
    let input: input::RoomTypeInput = parse_body(&body_bytes(body)?)?;
    let name = input::name(&input.name)?;
    let rate = input::cents("base_rate_cents", input.base_rate_cents)?;
    // Bounded, so an availability search over every room type is too.
    let existing = api
        .store(hotel_id)
        .room_types(hotel_id)
        .await
        .map_err(|err| db_response(&err))?;
    if existing.len() >= input::ROOM_TYPES_MAX
        && !existing.iter().any(|(id, _, _)| *id == room_type_id)
    {
        return Err(error(
            StatusCode::CONFLICT,
            format!("a hotel has at most {} room types", input::ROOM_TYPES_MAX),
        ));
    }
    api.store(hotel_id)
        .put_room_type(hotel_id, room_type_id, name, rate)
        .await
        .map_err(|err| match classify(&err) {
            ErrorClass::ForeignKey => error(StatusCode::NOT_FOUND, format!("no hotel {hotel_id}")),
            _ => db_response(&err),
        })?;
    ok(
        json!({"hotel_id": hotel_id, "room_type_id": room_type_id, "name": name, "base_rate_cents": rate}),
    )
}

/// The dates `[from, to)` of a management range: not in the past, at most
/// a year at once.
fn date_range(from: &str, to: &str) -> Result<Vec<String>, ApiError> {
    let bad = |message: String| error(StatusCode::BAD_REQUEST, message);
    let (from, to) = (
        Date::parse(from).map_err(bad)?,
        Date::parse(to).map_err(bad)?,
    );
    if to <= from {
        return Err(bad(format!("`to` {to} must be after `from` {from}")));
    }
    if from < Date::today().plus(-1) {
        return Err(bad(format!("`from` {from} is in the past")));
    }
    if to.days() - from.days() > input::RANGE_DAYS_MAX {
        return Err(bad(format!(
            "a range is at most {} days",
            input::RANGE_DAYS_MAX
        )));
    }
    Ok((from.days()..to.days())
        .map(|day| Date::from_days(day).to_string())
        .collect())
}

pub(super) async fn put_inventory(
    State(api): State<Arc<Api>>,
    path: Ids,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (hotel_id, room_type_id) = two_ids(path)?;
    let input: input::InventoryInput = parse_body(&body_bytes(body)?)?;
    let dates = date_range(&input.from, &input.to)?;
    let total = input::count(
        "total_inventory",
        input.total_inventory,
        input::INVENTORY_MAX,
    )?;
    let percent = api.overbooking.percent();
    api.store(hotel_id)
        .set_inventory(hotel_id, room_type_id, &dates, total, percent)
        .await
        .map_err(|err| match classify(&err) {
            ErrorClass::Check => error(
                StatusCode::CONFLICT,
                format!(
                    "cannot set total_inventory to {total}: a night already has more rooms reserved"
                ),
            ),
            _ => room_type_error(hotel_id, room_type_id, &err),
        })?;
    ok(
        json!({"hotel_id": hotel_id, "room_type_id": room_type_id, "nights": dates.len(),
            "total_inventory": total, "overbooking_pct": percent}),
    )
}

pub(super) async fn put_rates(
    State(api): State<Arc<Api>>,
    path: Ids,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (hotel_id, room_type_id) = two_ids(path)?;
    let input: input::RatesInput = parse_body(&body_bytes(body)?)?;
    let dates = date_range(&input.from, &input.to)?;
    let rate = input::cents("rate_cents", input.rate_cents)?;
    api.store(hotel_id)
        .set_rates(hotel_id, room_type_id, &dates, rate)
        .await
        .map_err(|err| room_type_error(hotel_id, room_type_id, &err))?;
    ok(
        json!({"hotel_id": hotel_id, "room_type_id": room_type_id, "nights": dates.len(), "rate_cents": rate}),
    )
}
