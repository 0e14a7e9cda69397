-- The inventory cache's change stream (CDC without extra infrastructure):
-- every transaction that changes a night's inventory or rate also upserts
-- that night here; the relay (src/outbox.rs) reads rows in order of their
-- first pending change after commit, copies the night's committed state to
-- the cache and deletes the row if `changes` did not move meanwhile.
CREATE TABLE inventory_outbox (
    hotel_id BIGINT NOT NULL,
    room_type_id BIGINT NOT NULL,
    date TEXT NOT NULL,
    changes BIGINT NOT NULL,
    changed_ms BIGINT NOT NULL,
    PRIMARY KEY (hotel_id, room_type_id, date)
);

CREATE INDEX inventory_outbox_by_time ON inventory_outbox (changed_ms);
