-- +goose Up
-- An app's webhook endpoints; secret is sealed (AES-GCM, bound to the row).
CREATE TABLE webhooks (
    id         text PRIMARY KEY,
    app_id     text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    url        text NOT NULL,
    secret     text NOT NULL,
    events     text NOT NULL DEFAULT '[]',
    created_at datetime NOT NULL
);
CREATE INDEX webhooks_app ON webhooks (app_id);

-- The outbox: an event is written here in the same transaction as the
-- change it reports, and delivered at least once by any replica.
CREATE TABLE webhook_deliveries (
    id              text PRIMARY KEY,
    webhook_id      text NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event           text NOT NULL,
    payload         text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at datetime NOT NULL,
    locked_until    datetime,
    delivered_at    datetime,
    failed_at       datetime,
    last_status     integer NOT NULL DEFAULT 0,
    last_error      text NOT NULL DEFAULT '',
    created_at      datetime NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at);

-- Providers revoke refresh tokens left unused: connections of a config with
-- keepalive_seconds > 0 are refreshed when idle that long.
ALTER TABLE oauth_configs ADD COLUMN keepalive_seconds integer NOT NULL DEFAULT 0;

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
