-- +goose Up
-- What a setting's values are: text (string), an absolute http(s) URL
-- without query or fragment, usable as a URL template's prefix (url), or a
-- host name or IP with an optional port (host). Checked when values are
-- stored.
ALTER TABLE setting_definitions ADD COLUMN type text NOT NULL DEFAULT 'string';

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
