-- +goose Up
-- A config's own redirect URI (empty: Latchkey's callback URL), for
-- providers that accept only a URI on the platform's domain, and a
-- description for the developer.
ALTER TABLE oauth_configs ADD COLUMN redirect_uri text NOT NULL DEFAULT '';
ALTER TABLE oauth_configs ADD COLUMN description text NOT NULL DEFAULT '';

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
