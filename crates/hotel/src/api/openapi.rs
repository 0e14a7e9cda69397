//! The OpenAPI 3.1 document served at `/openapi.json`, written by hand: the
//! API is small, and a generator crate would cost more build time than the
//! document is long.

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn id_param(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}})
}

/// The document.
pub fn document() -> Value {
    let reservation = json!({"200": {"description": "the reservation", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Reservation"}}}},
        "404": error_response("no such reservation"), "409": error_response("not allowed from the current status"),
        "503": error_response("database unavailable")});
    let reservation_path = |summary: &str| {
        json!({"post": {"summary": summary,
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": reservation}})
    };
    let range_body = |field: &str| {
        json!({"required": true, "content": {"application/json": {"schema": {
        "type": "object", "required": ["from", "to", field], "additionalProperties": false,
        "properties": {"from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"},
            field: {"type": "integer", "minimum": 0}}}}}})
    };
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Hyperscale hotel reservation", "version": env!("CARGO_PKG_VERSION"),
            "description": "Inventory per room type per night; idempotent bookings keyed by a client-chosen reservation_id."},
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": {
            "/v1/hotels/{hotel_id}": {
                "get": {"summary": "A hotel and its room types", "parameters": [id_param("hotel_id")],
                    "responses": {"200": {"description": "the hotel"}, "404": error_response("no such hotel")}},
                "put": {"summary": "Create or rename a hotel", "parameters": [id_param("hotel_id")],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object",
                        "required": ["name"], "properties": {"name": {"type": "string", "maxLength": 200}}}}}},
                    "responses": {"200": {"description": "saved"}, "400": error_response("bad input")}}},
            "/v1/hotels/{hotel_id}/availability": {"get": {"summary": "Rooms left for every night of a stay",
                "parameters": [id_param("hotel_id"),
                    {"name": "room_type", "in": "query", "schema": {"type": "integer"}},
                    {"name": "check_in", "in": "query", "required": true, "schema": {"type": "string", "format": "date"}},
                    {"name": "check_out", "in": "query", "required": true, "schema": {"type": "string", "format": "date"}}],
                "responses": {"200": {"description": "per room type: the minimum available over the stay, and each night"},
                    "400": error_response("bad dates (past, check_out <= check_in, over the stay limit)"),
                    "404": error_response("unknown hotel or room type")}}},
            "/v1/hotels/{hotel_id}/room-types/{room_type_id}": {"put": {"summary": "Create or update a room type",
                "parameters": [id_param("hotel_id"), id_param("room_type_id")],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object",
                    "required": ["name", "base_rate_cents"], "properties": {"name": {"type": "string"},
                    "base_rate_cents": {"type": "integer", "minimum": 0}}}}}},
                "responses": {"200": {"description": "saved"}, "404": error_response("no such hotel")}}},
            "/v1/hotels/{hotel_id}/room-types/{room_type_id}/inventory": {"put": {
                "summary": "Set the physical room count for the nights [from, to) (overbooking applied)",
                "parameters": [id_param("hotel_id"), id_param("room_type_id")], "requestBody": range_body("total_inventory"),
                "responses": {"200": {"description": "saved"}, "409": error_response("below what is already reserved")}}},
            "/v1/hotels/{hotel_id}/room-types/{room_type_id}/rates": {"put": {
                "summary": "Set the nightly rate for [from, to)",
                "parameters": [id_param("hotel_id"), id_param("room_type_id")], "requestBody": range_body("rate_cents"),
                "responses": {"200": {"description": "saved"}}}},
            "/v1/reservations": {"post": {"summary": "Book (idempotent by reservation_id)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReservationRequest"}}}},
                "responses": {
                    "201": {"description": "booked", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Reservation"}}}},
                    "200": {"description": "a repeat: the first result (header Idempotent-Replayed: true)"},
                    "400": error_response("bad input or missing reservation_id"),
                    "404": error_response("unknown hotel or room type"),
                    "409": error_response("sold out, or too much contention"),
                    "422": error_response("reservation_id already used with a different body"),
                    "503": error_response("database unavailable")}}},
            "/v1/reservations/{id}": {"get": {"summary": "A reservation",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": reservation}},
            "/v1/guests/{guest_id}/reservations": {"get": {"summary": "A guest's reservations on every shard, newest first",
                "parameters": [{"name": "guest_id", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
                "responses": {"200": {"description": "the reservations"}, "400": error_response("bad guest id or limit")}}},
            "/v1/reservations/{id}/cancel": reservation_path("Cancel (refund if paid); releases the rooms"),
            "/v1/reservations/{id}/pay": {"post": {"summary": "Pay through the payment saga (charge keyed by the reservation id, then confirm; on failure the reservation is rejected and its rooms released)",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": reservation["200"].clone(), "402": error_response("payment failed; the reservation is rejected"),
                    "404": error_response("no such reservation"), "409": error_response("not pending"),
                    "503": error_response("database or payment provider unavailable; settled in the background")}}},
            "/v1/reservations/{id}/check-in": reservation_path("The guest arrived")
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}},
                "ReservationRequest": {"type": "object", "additionalProperties": false,
                    "required": ["reservation_id", "hotel_id", "room_type_id", "guest_id", "check_in", "check_out"],
                    "properties": {"reservation_id": {"type": "string", "maxLength": 64},
                        "hotel_id": {"type": "integer"}, "room_type_id": {"type": "integer"},
                        "guest_id": {"type": "string", "maxLength": 64},
                        "check_in": {"type": "string", "format": "date"}, "check_out": {"type": "string", "format": "date"},
                        "rooms": {"type": "integer", "minimum": 1, "default": 1}}},
                "Reservation": {"type": "object", "properties": {"reservation_id": {"type": "string"},
                    "hotel_id": {"type": "integer"}, "room_type_id": {"type": "integer"}, "guest_id": {"type": "string"},
                    "check_in": {"type": "string"}, "check_out": {"type": "string"}, "rooms": {"type": "integer"},
                    "total_cents": {"type": "integer"},
                    "status": {"enum": ["pending", "paid", "checked_in", "canceled", "refunded", "rejected"]},
                    "created_ms": {"type": "integer"}, "updated_ms": {"type": "integer"}}}
            }
        }
    })
}
