-- +goose Up
-- How refresh requests are sent when not as token requests (Instagram
-- refreshes long-lived tokens with a GET); '' follows token_method.
ALTER TABLE oauth_configs ADD COLUMN refresh_method text NOT NULL DEFAULT '';

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
