-- The payment saga's log: one row per reservation that started paying, its
-- step written in the same transaction as the reservation's status, so a
-- restart knows which step to resume (see src/saga.rs).
CREATE TABLE payment_saga (
    reservation_id TEXT PRIMARY KEY,
    step TEXT NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),
    attempts BIGINT NOT NULL,
    charge_id TEXT,
    error TEXT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);

CREATE INDEX payment_saga_by_step ON payment_saga (step, updated_ms);
