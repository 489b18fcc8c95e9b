-- +goose Up
-- One check value per encryption key id: a constant sealed with that key,
-- written by the first server (or reencrypt) that runs with the key and
-- never changed. Every server opens the values of its keys at start and in
-- its readiness probe, and refuses a key that does not open its own: a key
-- with the right id and other bytes is found before it seals anything. A
-- row outlives its key's removal, so a key id names one key for good.
CREATE TABLE key_checks (
    key_id     text PRIMARY KEY,
    sealed     text NOT NULL,
    created_at timestamptz NOT NULL
);

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
