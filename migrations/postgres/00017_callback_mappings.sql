-- +goose Up
-- Values of the provider's redirect to store with the tokens (QuickBooks'
-- realmId, Zoho's accounts-server): query parameter -> setting.
ALTER TABLE oauth_configs ADD COLUMN callback_mappings text NOT NULL DEFAULT '[]';

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
