-- With --shards N > 1: the claim of a reservation id, on the shard its hash
-- picks, naming the hotel (hence the shard) that holds the reservation; the
-- primary key keeps an idempotency key unique over every shard.
CREATE TABLE reservation_key (
    reservation_id TEXT PRIMARY KEY,
    hotel_id BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);
