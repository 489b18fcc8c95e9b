-- +goose Up
-- A config's own redirect URI (empty: Latchkey's callback URL), for
-- providers that accept only a URI on the platform's domain, and a
-- description for the developer.
ALTER TABLE oauth_configs ADD COLUMN redirect_uri text NOT NULL DEFAULT '';
ALTER TABLE oauth_configs ADD COLUMN description text NOT NULL DEFAULT '';

-- Settings only Latchkey writes (visibility managed): tokens and mapped
-- values, never asked of installers.
ALTER TABLE setting_definitions DROP CONSTRAINT setting_definitions_visibility_check;
ALTER TABLE setting_definitions ADD CONSTRAINT setting_definitions_visibility_check
    CHECK (visibility IN ('editable', 'read_only', 'hidden', 'managed'));

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
