-- +goose Up
-- A config's own redirect URI (empty: Latchkey's callback URL), for
-- providers that accept only a URI on the platform's domain, and a
-- description for the developer.
ALTER TABLE oauth_configs ADD COLUMN redirect_uri text NOT NULL DEFAULT '';
ALTER TABLE oauth_configs ADD COLUMN description text NOT NULL DEFAULT '';

-- Settings only Latchkey writes (visibility managed): tokens and mapped
-- values, never asked of installers.
-- SQLite cannot change a CHECK constraint: the table is copied into a new
-- one (nothing references it, and its only index is the UNIQUE below).
CREATE TABLE setting_definitions_new (
    id            text PRIMARY KEY,
    app_id        text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    key           text NOT NULL,
    level         text NOT NULL CHECK (level IN ('organization', 'user')),
    label         text NOT NULL DEFAULT '',
    description   text NOT NULL DEFAULT '',
    secret        integer NOT NULL DEFAULT 0,
    required      integer NOT NULL DEFAULT 0,
    default_value text,
    pattern       text,
    position      integer NOT NULL,
    created_at    datetime NOT NULL,
    updated_at    datetime NOT NULL,
    visibility    text NOT NULL DEFAULT 'editable'
        CHECK (visibility IN ('editable', 'read_only', 'hidden', 'managed')),
    fixed_secret  text,
    UNIQUE (app_id, key)
);
INSERT INTO setting_definitions_new
    (id, app_id, key, level, label, description, secret, required, default_value, pattern, position, created_at, updated_at, visibility, fixed_secret)
SELECT id, app_id, key, level, label, description, secret, required, default_value, pattern, position, created_at, updated_at, visibility, fixed_secret
FROM setting_definitions;
DROP TABLE setting_definitions;
ALTER TABLE setting_definitions_new RENAME TO setting_definitions;

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
