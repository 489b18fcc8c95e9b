-- +goose Up
-- How configs keep tokens fresh, and where their tokens live.
ALTER TABLE oauth_configs ADD COLUMN token_level text NOT NULL DEFAULT 'user';
ALTER TABLE oauth_configs ADD COLUMN refresh_margin_seconds integer NOT NULL DEFAULT 0;
ALTER TABLE oauth_configs ADD COLUMN default_expires_in integer NOT NULL DEFAULT 3600;
ALTER TABLE oauth_configs ADD COLUMN expired_statuses text NOT NULL DEFAULT '[401]';
ALTER TABLE oauth_configs ADD COLUMN expired_body_path text NOT NULL DEFAULT '';
ALTER TABLE oauth_configs ADD COLUMN expired_body_value text NOT NULL DEFAULT '';

-- A connection of organization-level tokens (client credentials) has
-- user_id ''. issued_at is when the current access token was obtained, so
-- that the refresh margin can be a share of its lifetime.
ALTER TABLE connections ADD COLUMN issued_at datetime;
ALTER TABLE connections ADD COLUMN last_error text NOT NULL DEFAULT '';
ALTER TABLE connections ADD COLUMN last_error_at datetime;

CREATE TABLE apis (
    id          text PRIMARY KEY,
    app_id      text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    methods     text NOT NULL DEFAULT '[]',
    base_url    text NOT NULL,
    config_id   text REFERENCES oauth_configs (id),
    headers     text NOT NULL DEFAULT '{}',
    query       text NOT NULL DEFAULT '{}',
    created_at  datetime NOT NULL,
    updated_at  datetime NOT NULL,
    UNIQUE (app_id, name)
);
CREATE INDEX apis_config ON apis (config_id);

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
