//! The REST surface, JSON in and out.
//!
//! Guests: `GET /v1/hotels/{id}/availability?room_type=&check_in=&check_out=`,
//! `POST /v1/reservations` (the body's `reservation_id` is the idempotency
//! key: a repeat returns the first result with `200` and
//! `Idempotent-Replayed: true`; the same key with another body is `422`; no
//! key is `400`), `GET /v1/reservations/{id}`, `POST
//! /v1/reservations/{id}/cancel` (a paid one is refunded through the payment
//! saga), `/pay` (the payment saga: 200 paid, 402 failed and rejected) and
//! `/check-in`; `GET /v1/guests/{id}/reservations` (every shard). Hotel staff: `PUT /v1/hotels/{id}`, `PUT
//! /v1/hotels/{id}/room-types/{rt}`, `PUT .../inventory`, `PUT .../rates`.
//! `GET /openapi.json` describes it all.
//!
//! Every error is `{"error": "..."}`: 400 bad input, 401 no key, 404
//! unknown, 409 sold out or a forbidden status change or contention, 422 a
//! reused key, 503 database down. Bodies are bounded (`body_bytes_max`),
//! unknown JSON fields rejected, every number bounded before use.

mod input;
mod manage;
pub mod openapi;
pub mod page;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::json;

use crate::concurrency::{BookError, BookRequest, Booked, db_error};
use crate::config::Config;
use crate::model::{Date, Event, Overbooking, Status, Stay, StayLimits};
use crate::shard::{Shard, Shards};
use crate::store::{Night, Store};

pub use input::{parse_body, parse_id};

/// What every handler shares.
pub struct Api {
    /// The databases, by hotel id (bookings, status changes, payments).
    pub shards: Shards,
    /// Where availability searches read nights first.
    pub cache: Option<crate::cache::InventoryCache>,
    /// Stay bounds.
    pub limits: StayLimits,
    /// Applied to inventory as it is set.
    pub overbooking: Overbooking,
    /// Most rooms per reservation.
    pub rooms_max: i64,
    /// `Bearer <key>` and the bare key, when auth is on.
    pub api_key: Option<String>,
}

impl Api {
    /// The database of a hotel's shard.
    pub(crate) fn store(&self, hotel_id: i64) -> &Store {
        self.shards.of_hotel(hotel_id).booker.store()
    }

    /// The shard of a reservation, after checking its id; 404 when no shard
    /// has it.
    async fn reservation_shard(&self, id: &str) -> Result<&Shard, ApiError> {
        input::reservation_id(id)?;
        self.shards
            .of_reservation(id)
            .await
            .map_err(|err| book_error(&err))?
            .ok_or_else(|| error(StatusCode::NOT_FOUND, format!("no reservation `{id}`")))
    }

    /// Books `request` on its hotel's shard, claiming its id first (see
    /// [`crate::shard`]): the API's booking and the page's.
    pub(crate) async fn book(&self, request: &BookRequest) -> Result<Booked, ApiError> {
        let now = now_ms();
        self.shards
            .claim(&request.reservation_id, request.hotel_id, now)
            .await
            .map_err(|err| book_error(&err))?;
        let shard = self.shards.of_hotel(request.hotel_id);
        shard
            .booker
            .book(request, now)
            .await
            .map_err(|err| book_error(&err))
    }
}

/// The routes.
pub fn router(api: Arc<Api>, config: &Config) -> Router {
    let v1 = Router::new()
        .route(
            "/v1/hotels/{hotel_id}",
            put(manage::put_hotel).get(manage::get_hotel),
        )
        .route("/v1/hotels/{hotel_id}/availability", get(availability))
        .route(
            "/v1/hotels/{hotel_id}/room-types/{room_type_id}",
            put(manage::put_room_type),
        )
        .route(
            "/v1/hotels/{hotel_id}/room-types/{room_type_id}/inventory",
            put(manage::put_inventory),
        )
        .route(
            "/v1/hotels/{hotel_id}/room-types/{room_type_id}/rates",
            put(manage::put_rates),
        )
        .route("/v1/reservations", post(create_reservation))
        .route("/v1/reservations/{id}", get(get_reservation))
        .route(
            "/v1/guests/{guest_id}/reservations",
            get(guest_reservations),
        )
        .route("/v1/reservations/{id}/cancel", post(cancel))
        .route("/v1/reservations/{id}/pay", post(pay))
        .route("/v1/reservations/{id}/check-in", post(check_in))
        .route_layer(middleware::from_fn_with_state(api.clone(), authenticate));
    Router::new()
        .merge(v1)
        .merge(page::router())
        .route("/openapi.json", get(|| async { Json(openapi::document()) }))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint; see /openapi.json") })
        .layer(DefaultBodyLimit::max(config.body_bytes_max))
        .with_state(api)
}

/// An error answer: `{"error": message}` with `status`.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

/// `{"error": message}` with `status`.
pub fn error(status: StatusCode, message: impl std::fmt::Display) -> ApiError {
    ApiError(status, message.to_string())
}

async fn authenticate(State(api): State<Arc<Api>>, request: Request, next: Next) -> Response {
    if let Some(key) = &api.api_key {
        let headers = request.headers();
        let bearer = service::auth::bearer(headers);
        let plain = headers
            .get("x-api-key")
            .and_then(|value| value.to_str().ok());
        let given = bearer.or(plain).unwrap_or_default();
        if !service::auth::same_secret(given.as_bytes(), key.as_bytes()) {
            return error(
                StatusCode::UNAUTHORIZED,
                "missing or wrong API key (Authorization: Bearer KEY or X-API-Key: KEY)",
            )
            .into_response();
        }
    }
    next.run(request).await
}

pub(crate) fn book_error(err: &BookError) -> ApiError {
    let status = match err {
        BookError::NotFound(_) => StatusCode::NOT_FOUND,
        BookError::SoldOut(_) | BookError::InvalidTransition(_) | BookError::Contention(_) => {
            StatusCode::CONFLICT
        }
        BookError::KeyReused(_) => StatusCode::UNPROCESSABLE_ENTITY,
        BookError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        BookError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status.is_server_error() {
        tracing::warn!("hotel request failed: {err}");
    }
    error(status, err)
}

fn db_response(err: &sqlx::Error) -> ApiError {
    book_error(&db_error(err))
}

fn now_ms() -> i64 {
    clock::now_ms() as i64
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| error(rejection.status(), rejection.body_text()))
}

/// Parses and validates a stay from two date strings.
pub(crate) fn stay(api: &Api, check_in: &str, check_out: &str) -> Result<Stay, ApiError> {
    let bad = |message: String| error(StatusCode::BAD_REQUEST, message);
    let check_in = Date::parse(check_in).map_err(|err| bad(format!("check_in: {err}")))?;
    let check_out = Date::parse(check_out).map_err(|err| bad(format!("check_out: {err}")))?;
    Stay::new(check_in, check_out, Date::today(), api.limits).map_err(bad)
}

/// One room type's availability over a stay.
pub(crate) struct RoomAvailability {
    pub(crate) room_type_id: i64,
    pub(crate) name: String,
    /// Rooms free on every night (0 when a night is not on sale).
    pub(crate) available: i64,
    /// The stay's price for one room; `None` when a night is not on sale.
    pub(crate) total_cents: Option<i64>,
    pub(crate) nights: Vec<Night>,
}

/// The hotel's name and what each of its room types (or only `wanted`)
/// has free over `stay`: the API's availability search and the page's.
pub(crate) async fn search(
    api: &Api,
    hotel_id: i64,
    stay: &Stay,
    wanted: Option<i64>,
) -> Result<(String, Vec<RoomAvailability>), ApiError> {
    let store = api.store(hotel_id);
    let (hotel_name, room_types) = manage::hotel_and_room_types(api, hotel_id).await?;
    let room_types: Vec<_> = room_types
        .into_iter()
        .filter(|(id, _, _)| wanted.is_none_or(|wanted| wanted == *id))
        .collect();
    if let Some(wanted) = wanted
        && room_types.is_empty()
    {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("hotel {hotel_id} has no room type {wanted}"),
        ));
    }
    let (from, to) = (stay.check_in.to_string(), stay.check_out.to_string());
    let mut out = Vec::with_capacity(room_types.len());
    for (room_type_id, name, _) in room_types {
        let cached = match &api.cache {
            Some(cache) => {
                let hit = cache
                    .nights(hotel_id, room_type_id, stay.check_in, stay.check_out)
                    .await;
                if hit.is_none() {
                    crate::cache::request_fill(
                        store,
                        hotel_id,
                        room_type_id,
                        stay.check_in,
                        stay.check_out,
                    )
                    .await;
                }
                hit
            }
            None => None,
        };
        let nights = match cached {
            Some(nights) => nights,
            None => store
                .nights(hotel_id, room_type_id, &from, &to)
                .await
                .map_err(|err| db_response(&err))?,
        };
        let complete = nights.len() as i64 == stay.nights();
        let available = if complete {
            nights.iter().map(Night::available).min().unwrap_or(0)
        } else {
            0
        };
        let total: i64 = nights
            .iter()
            .map(|night| night.rate_cents)
            .fold(0, i64::saturating_add);
        out.push(RoomAvailability {
            room_type_id,
            name,
            available,
            total_cents: complete.then_some(total),
            nights,
        });
    }
    Ok((hotel_name, out))
}

async fn availability(
    State(api): State<Arc<Api>>,
    Path(hotel_id): Path<String>,
    query: Result<Query<input::AvailabilityQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let hotel_id = parse_id("hotel_id", &hotel_id)?;
    let Query(query) =
        query.map_err(|rejection| error(StatusCode::BAD_REQUEST, rejection.body_text()))?;
    let stay = stay(&api, &query.check_in, &query.check_out)?;
    let wanted = query
        .room_type
        .as_deref()
        .map(|id| parse_id("room_type", id))
        .transpose()?;
    let (_, room_types) = search(&api, hotel_id, &stay, wanted).await?;
    let out: Vec<_> = room_types
        .into_iter()
        .map(|room_type| {
            let nights: Vec<_> = room_type
                .nights
                .iter()
                .map(|night| {
                    json!({"date": night.date, "total_inventory": night.total_inventory,
                    "total_reserved": night.total_reserved, "available": night.available(),
                    "rate_cents": night.rate_cents})
                })
                .collect();
            json!({"room_type_id": room_type.room_type_id, "name": room_type.name,
            "available": room_type.available, "total_cents": room_type.total_cents,
            "nights": nights})
        })
        .collect();
    Ok(Json(
        json!({"hotel_id": hotel_id, "check_in": stay.check_in.to_string(),
            "check_out": stay.check_out.to_string(), "nights": stay.nights(), "room_types": out}),
    )
    .into_response())
}

async fn create_reservation(
    State(api): State<Arc<Api>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let input: input::ReservationInput = parse_body(&body_bytes(body)?)?;
    let request = input::book_request(input, api.rooms_max, |a, b| stay(&api, a, b))?;
    let booked = api.book(&request).await?;
    let mut response = Json(&booked.reservation).into_response();
    if booked.replayed {
        response.headers_mut().insert(
            "idempotent-replayed",
            header::HeaderValue::from_static("true"),
        );
    } else {
        *response.status_mut() = StatusCode::CREATED;
    }
    Ok(response)
}

async fn get_reservation(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let shard = api.reservation_shard(&id).await?;
    let found = shard
        .booker
        .store()
        .reservation(&id)
        .await
        .map_err(|err| db_response(&err))?;
    let reservation =
        found.ok_or_else(|| error(StatusCode::NOT_FOUND, format!("no reservation `{id}`")))?;
    Ok(Json(reservation).into_response())
}

/// A guest's reservations over every shard (a fan-out), newest first.
async fn guest_reservations(
    State(api): State<Arc<Api>>,
    Path(guest_id): Path<String>,
    query: Result<Query<input::ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    input::guest_id(&guest_id)?;
    let Query(query) =
        query.map_err(|rejection| error(StatusCode::BAD_REQUEST, rejection.body_text()))?;
    let limit = input::count("limit", query.limit.unwrap_or(100), input::LIST_MAX)?.max(1);
    let reservations = api
        .shards
        .guest_reservations(&guest_id, limit)
        .await
        .map_err(|err| book_error(&err))?;
    Ok(Json(json!({"guest_id": guest_id, "reservations": reservations})).into_response())
}

async fn change(api: &Api, id: &str, event: Event) -> Result<Response, ApiError> {
    let shard = api.reservation_shard(id).await?;
    let (reservation, _changed) = shard
        .booker
        .change_status(id, event, now_ms())
        .await
        .map_err(|err| book_error(&err))?;
    Ok(Json(reservation).into_response())
}

async fn cancel(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let shard = api.reservation_shard(&id).await?;
    let reservation = shard
        .saga
        .cancel(&id)
        .await
        .map_err(|err| book_error(&err))?;
    Ok(Json(reservation).into_response())
}

/// Runs the payment saga: 200 with the paid reservation, or 402 when the
/// payment failed and the reservation was rejected (rooms released).
async fn pay(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let shard = api.reservation_shard(&id).await?;
    let (reservation, saga) = shard.saga.pay(&id).await.map_err(|err| book_error(&err))?;
    if matches!(reservation.status, Status::Paid | Status::CheckedIn) {
        return Ok(Json(reservation).into_response());
    }
    let reason = saga.error.unwrap_or_else(|| "payment failed".into());
    Err(error(
        StatusCode::PAYMENT_REQUIRED,
        format!(
            "payment failed ({reason}); the reservation is {} and holds no rooms",
            reservation.status.as_str()
        ),
    ))
}

async fn check_in(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    change(&api, &id, Event::CheckIn).await
}
