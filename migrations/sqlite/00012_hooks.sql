-- +goose Up
-- Inbound provider webhooks (app/hooks). A source is one public URL,
-- /hooks/{id}, where a provider sends an app's events: how to verify them,
-- how to answer the provider's handshakes, and how to find the
-- installation (and user) an event belongs to. The id is 256 random bits,
-- so the URL cannot be guessed. The JSON columns name settings and headers,
-- never a secret: secrets stay in settings, sealed.
CREATE TABLE webhook_sources (
    id           text PRIMARY KEY,
    app_id       text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    name         text NOT NULL,
    verification text NOT NULL,
    handshake    text NOT NULL DEFAULT '',
    routing      text NOT NULL,
    event_type   text NOT NULL DEFAULT '{}',
    event_id     text NOT NULL DEFAULT '{}',
    created_at   datetime NOT NULL,
    updated_at   datetime NOT NULL
);
CREATE INDEX webhook_sources_app ON webhook_sources (app_id);

-- Provider event ids seen lately, per source: a second delivery of the same
-- event within the window is dropped. The primary key makes the check and
-- the claim one statement (INSERT ... ON CONFLICT DO NOTHING).
CREATE TABLE webhook_events_seen (
    source_id text NOT NULL REFERENCES webhook_sources (id) ON DELETE CASCADE,
    event_id  text NOT NULL,
    seen_at   datetime NOT NULL,
    PRIMARY KEY (source_id, event_id)
);
CREATE INDEX webhook_events_seen_at ON webhook_events_seen (seen_at);

-- Routing finds the installation whose organization-level setting equals a
-- value from the event (a Slack team id, a shop domain), and the user whose
-- user-level setting does. Only values stored in the clear can match
-- (routing settings must not be secret), so the indexes leave sealed rows
-- out. They hold the value's first 200 characters, not the whole value,
-- which may be 64 KiB: PostgreSQL refuses btree entries over about 2.7 kB.
-- Queries compare the same prefix, then the whole value.
CREATE INDEX organization_values_lookup ON organization_values (key, substr(value, 1, 200))
    WHERE NOT encrypted;
CREATE INDEX user_values_lookup ON user_values (installation_id, key, substr(value, 1, 200))
    WHERE NOT encrypted;

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
