-- The chapter's data model. One file for SQLite and PostgreSQL: only types
-- both understand (BIGINT, TEXT), dates as ISO text (text order = date order).
CREATE TABLE hotel (
    hotel_id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE room_type (
    hotel_id BIGINT NOT NULL REFERENCES hotel (hotel_id),
    room_type_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    base_rate_cents BIGINT NOT NULL CHECK (base_rate_cents >= 0),
    PRIMARY KEY (hotel_id, room_type_id)
);

-- One row per room type per night. `version` is the optimistic lock;
-- `check_room_count` is the database-constraint control (the notes'
-- total_inventory - total_reserved >= 0, widened by the overbooking percent).
CREATE TABLE room_type_inventory (
    hotel_id BIGINT NOT NULL,
    room_type_id BIGINT NOT NULL,
    date TEXT NOT NULL,
    total_inventory BIGINT NOT NULL CHECK (total_inventory >= 0),
    total_reserved BIGINT NOT NULL CHECK (total_reserved >= 0),
    overbooking_pct BIGINT NOT NULL CHECK (overbooking_pct BETWEEN 100 AND 200),
    version BIGINT NOT NULL,
    PRIMARY KEY (hotel_id, room_type_id, date),
    FOREIGN KEY (hotel_id, room_type_id) REFERENCES room_type (hotel_id, room_type_id),
    CONSTRAINT check_room_count CHECK (total_reserved * 100 <= total_inventory * overbooking_pct)
);

CREATE TABLE room_type_rate (
    hotel_id BIGINT NOT NULL,
    room_type_id BIGINT NOT NULL,
    date TEXT NOT NULL,
    rate_cents BIGINT NOT NULL CHECK (rate_cents >= 0),
    PRIMARY KEY (hotel_id, room_type_id, date),
    FOREIGN KEY (hotel_id, room_type_id) REFERENCES room_type (hotel_id, room_type_id)
);

-- reservation_id is chosen by the client: the primary key is the
-- idempotency key's uniqueness constraint (a double click inserts once).
CREATE TABLE reservation (
    reservation_id TEXT PRIMARY KEY,
    hotel_id BIGINT NOT NULL,
    room_type_id BIGINT NOT NULL,
    guest_id TEXT NOT NULL,
    check_in TEXT NOT NULL,
    check_out TEXT NOT NULL,
    rooms BIGINT NOT NULL CHECK (rooms >= 1),
    total_cents BIGINT NOT NULL,
    status TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    FOREIGN KEY (hotel_id, room_type_id) REFERENCES room_type (hotel_id, room_type_id)
);

CREATE INDEX reservation_by_guest ON reservation (guest_id);
CREATE INDEX reservation_by_hotel ON reservation (hotel_id, room_type_id, check_in);
