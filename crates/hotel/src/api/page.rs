//! The booking page: the flow a guest sees — pick a hotel and dates, see
//! what is free and at what price, book. Server-rendered HTML with plain
//! forms (no script), like the shortener's and the console's pages.
//!
//! `GET /hotel/` searches (`?hotel_id=&check_in=&check_out=`) and renders a
//! form per room type with rooms left; `POST /hotel/book` books it. Each
//! rendered form carries a fresh `reservation_id`: the idempotency key of
//! the API, so a double click or a reload that re-posts the form books once
//! and shows the same reservation. The page talks to the booking engine
//! directly, not through `/v1`: it is the public face (the gateway rate
//! limits it), while `/v1` keeps its API key.

use std::sync::Arc;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use service::html::escape;

use super::{Api, ApiError, error, input, parse_id, search, stay};
use crate::model::{Date, Reservation};

/// Where the page lives (the gateway routes this prefix to the service).
pub const PAGE_PATH: &str = "/hotel/";

/// The page's routes.
pub fn router() -> Router<Arc<Api>> {
    Router::new()
        .route("/hotel", get(index))
        .route("/hotel/", get(index))
        .route("/hotel/book", post(book))
}

const STYLE: &str = "
body { font: 16px/1.5 system-ui, sans-serif; margin: 3rem auto; max-width: 46rem; color: #1d2430; padding: 0 1rem; }
h1 { font-size: 1.7rem; } form.search { display: flex; flex-wrap: wrap; gap: .6rem; align-items: end; }
label { display: grid; font-size: .85rem; color: #5a6473; }
input { font: inherit; padding: .45rem .6rem; border: 1px solid #c5ccd6; border-radius: 6px; }
button { font: inherit; padding: .45rem 1rem; border: 0; border-radius: 6px; background: #1a5fb4; color: white; cursor: pointer; }
table { border-collapse: collapse; width: 100%; margin-top: 1.2rem; }
td, th { padding: .5rem .6rem; text-align: left; border-bottom: 1px solid #e3e7ee; vertical-align: middle; }
td form { display: flex; gap: .4rem; } td input { width: 7rem; } td input.rooms { width: 3.5rem; }
.result { margin-top: 1.5rem; padding: 1rem; background: #eef6ee; border-radius: 8px; }
.error { margin-top: 1.5rem; padding: 1rem; background: #fbeaea; border-radius: 8px; color: #8c1d18; }
code { font: 14px ui-monospace, monospace; } small { color: #5a6473; }
";

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>{body}\
         <p><small>API: <code>/v1/hotels/{{id}}/availability</code>, <code>POST /v1/reservations</code>, \
         <code>/openapi.json</code> &middot; Hotel reservation, System Design Interview vol. 2.</small></p>\
         </body></html>",
        escape(title)
    )
}

/// The search query; every field optional (an empty page shows the form).
#[derive(Deserialize, Default)]
pub struct SearchQuery {
    hotel_id: Option<String>,
    check_in: Option<String>,
    check_out: Option<String>,
}

/// What the book form posts.
#[derive(Deserialize)]
pub struct BookForm {
    reservation_id: String,
    hotel_id: String,
    room_type_id: String,
    check_in: String,
    check_out: String,
    guest_id: String,
    rooms: String,
}

/// A fresh idempotency key for one rendered form: 128 random bits.
fn fresh_reservation_id() -> String {
    format!("web-{:032x}", fastrand::Rng::new().u128(..))
}

fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn search_form(hotel_id: &str, check_in: &str, check_out: &str) -> String {
    format!(
        "<form class=\"search\" method=\"get\" action=\"{PAGE_PATH}\">\
         <label>Hotel <input name=\"hotel_id\" value=\"{}\" inputmode=\"numeric\" required></label>\
         <label>Check-in <input name=\"check_in\" type=\"date\" value=\"{}\" required></label>\
         <label>Check-out <input name=\"check_out\" type=\"date\" value=\"{}\" required></label>\
         <button type=\"submit\">Search</button></form>",
        escape(hotel_id),
        escape(check_in),
        escape(check_out)
    )
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    (status, Html(layout(title, body))).into_response()
}

fn error_box(err: &ApiError) -> String {
    format!("<div class=\"error\">{}</div>", escape(&err.1))
}

async fn index(
    State(api): State<Arc<Api>>,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let tomorrow = Date::today().plus(1);
    let hotel_id = query.hotel_id.unwrap_or_else(|| "1".into());
    let check_in = query.check_in.unwrap_or_else(|| tomorrow.to_string());
    let check_out = query
        .check_out
        .unwrap_or_else(|| tomorrow.plus(2).to_string());
    let mut body = format!(
        "<h1>Book a room</h1>{}",
        search_form(&hotel_id, &check_in, &check_out)
    );
    let (status, results) = match results(&api, &hotel_id, &check_in, &check_out).await {
        Ok(html) => (StatusCode::OK, html),
        Err(err) => (err.0, error_box(&err)),
    };
    body.push_str(&results);
    page(status, "Book a room", &body)
}

/// The availability table, with a book form per room type that has rooms.
async fn results(
    api: &Api,
    hotel_id: &str,
    check_in: &str,
    check_out: &str,
) -> Result<String, ApiError> {
    let hotel_id = parse_id("hotel", hotel_id)?;
    let stay = stay(api, check_in, check_out)?;
    let (name, room_types) = search(api, hotel_id, &stay, None).await?;
    let mut rows = String::new();
    for room_type in room_types {
        let price = room_type
            .total_cents
            .map(money)
            .unwrap_or_else(|| "not on sale".into());
        let action = if room_type.available > 0 {
            format!(
                "<form method=\"post\" action=\"{PAGE_PATH}book\">\
                 <input type=\"hidden\" name=\"reservation_id\" value=\"{id}\">\
                 <input type=\"hidden\" name=\"hotel_id\" value=\"{hotel_id}\">\
                 <input type=\"hidden\" name=\"room_type_id\" value=\"{room_type_id}\">\
                 <input type=\"hidden\" name=\"check_in\" value=\"{check_in}\">\
                 <input type=\"hidden\" name=\"check_out\" value=\"{check_out}\">\
                 <input name=\"guest_id\" placeholder=\"your guest id\" required maxlength=\"{max}\" \
                 pattern=\"[A-Za-z0-9._:\\-]+\" title=\"letters, digits, - _ . :\">\
                 <input class=\"rooms\" name=\"rooms\" type=\"number\" min=\"1\" max=\"{rooms_max}\" value=\"1\">\
                 <button type=\"submit\">Book</button></form>",
                id = fresh_reservation_id(),
                room_type_id = room_type.room_type_id,
                check_in = stay.check_in,
                check_out = stay.check_out,
                max = input::KEY_CHARS_MAX,
                rooms_max = api.rooms_max.min(room_type.available),
            )
        } else {
            "<small>sold out</small>".into()
        };
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{price}</td><td>{action}</td></tr>",
            escape(&room_type.name),
            room_type.available
        ));
    }
    Ok(format!(
        "<h2>{} <small>{} night(s), {} to {}</small></h2>\
         <table><thead><tr><th>Room</th><th>Left</th><th>Price per room</th><th>Book</th></tr></thead>\
         <tbody>{rows}</tbody></table>",
        escape(&name),
        stay.nights(),
        stay.check_in,
        stay.check_out
    ))
}

async fn book(
    State(api): State<Arc<Api>>,
    form: Result<Form<BookForm>, FormRejection>,
) -> Response {
    match booked(&api, form).await {
        Ok((reservation, replayed)) => {
            let status = if replayed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            let again = if replayed {
                " <small>(this form was sent before: same reservation, booked once)</small>"
            } else {
                ""
            };
            let body = format!(
                "<h1>Booked</h1><div class=\"result\">Reservation <code id=\"reservation\">{id}</code>{again}<br>\
                 hotel {hotel}, room type {room_type}, {rooms} room(s), {check_in} to {check_out}<br>\
                 total <strong>{total}</strong>, status <strong>{status_word}</strong></div>\
                 <p><code>GET /v1/reservations/{id}</code> reads it back (with the API key).</p>\
                 <p><a href=\"{PAGE_PATH}\">&larr; search again</a></p>",
                id = escape(&reservation.reservation_id),
                hotel = reservation.hotel_id,
                room_type = reservation.room_type_id,
                rooms = reservation.rooms,
                check_in = escape(&reservation.check_in),
                check_out = escape(&reservation.check_out),
                total = money(reservation.total_cents),
                status_word = reservation.status.as_str(),
            );
            page(status, "Booked", &body)
        }
        Err(err) => {
            let body = format!(
                "<h1>Not booked</h1>{}<p><a href=\"{PAGE_PATH}\">&larr; search again</a></p>",
                error_box(&err)
            );
            page(err.0, "Not booked", &body)
        }
    }
}

/// Validates the form like the API's body and books it; `true` when the
/// same form had already booked.
async fn booked(
    api: &Api,
    form: Result<Form<BookForm>, FormRejection>,
) -> Result<(Reservation, bool), ApiError> {
    let Form(form) = form.map_err(|rejection| error(rejection.status(), rejection.body_text()))?;
    let rooms = form
        .rooms
        .trim()
        .parse::<i64>()
        .map_err(|_| error(StatusCode::BAD_REQUEST, "rooms must be a whole number"))?;
    let body = input::ReservationInput {
        reservation_id: Some(form.reservation_id),
        hotel_id: parse_id("hotel_id", &form.hotel_id)?,
        room_type_id: parse_id("room_type_id", &form.room_type_id)?,
        guest_id: form.guest_id.trim().to_string(),
        check_in: form.check_in,
        check_out: form.check_out,
        rooms: Some(rooms),
    };
    let request = input::book_request(body, api.rooms_max, |a, b| stay(api, a, b))?;
    let booked = api.book(&request).await?;
    Ok((booked.reservation, booked.replayed))
}
