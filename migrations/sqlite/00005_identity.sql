-- +goose Up
-- An optional identity request run after each code exchange (and on
-- demand): its response's values go into settings through the mappings.
ALTER TABLE oauth_configs ADD COLUMN identity_url text NOT NULL DEFAULT '';
ALTER TABLE oauth_configs ADD COLUMN identity_method text NOT NULL DEFAULT 'GET';
ALTER TABLE oauth_configs ADD COLUMN identity_headers text NOT NULL DEFAULT '{}';
ALTER TABLE oauth_configs ADD COLUMN identity_mappings text NOT NULL DEFAULT '[]';

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
