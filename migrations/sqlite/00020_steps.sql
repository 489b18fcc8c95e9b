-- +goose Up
-- Requests run after the token request (Instagram's long-lived token,
-- Bullhorn's REST login), as JSON.
ALTER TABLE oauth_configs ADD COLUMN steps text NOT NULL DEFAULT '[]';

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
