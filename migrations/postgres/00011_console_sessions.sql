-- +goose Up
-- Developer console sessions. A developer signs in by pasting an API key;
-- the browser then holds a random session id in a cookie, and only its
-- hash is kept here. A session ends at expires_at (absolute), when it has
-- been idle too long (last_seen_at), on sign-out, and with its key or
-- account.
CREATE TABLE console_sessions (
    id_hash      text PRIMARY KEY,
    account_id   text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    key_id       text NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    key_prefix   text NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX console_sessions_expires_at ON console_sessions (expires_at);

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
