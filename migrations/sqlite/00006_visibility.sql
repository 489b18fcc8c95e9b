-- +goose Up
-- Setting visibility: editable settings are filled in by organizations and
-- users; read_only and hidden ones have one value fixed by the app
-- developer (the default). A hidden secret setting's value is kept sealed
-- in fixed_secret (bound to the app and key), never in default_value.
ALTER TABLE setting_definitions ADD COLUMN visibility text NOT NULL DEFAULT 'editable'
    CHECK (visibility IN ('editable', 'read_only', 'hidden'));
ALTER TABLE setting_definitions ADD COLUMN fixed_secret text;

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
