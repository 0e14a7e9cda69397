-- Cold storage: reservations whose stay ended long ago move here (see
-- src/archive.rs), out of the hot table's indexes; still readable by id.
CREATE TABLE reservation_archive (
    reservation_id TEXT PRIMARY KEY,
    hotel_id BIGINT NOT NULL,
    room_type_id BIGINT NOT NULL,
    guest_id TEXT NOT NULL,
    check_in TEXT NOT NULL,
    check_out TEXT NOT NULL,
    rooms BIGINT NOT NULL,
    total_cents BIGINT NOT NULL,
    status TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    archived_ms BIGINT NOT NULL
);

CREATE INDEX reservation_archive_by_guest ON reservation_archive (guest_id);
