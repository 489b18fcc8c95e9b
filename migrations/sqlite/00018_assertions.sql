-- +goose Up
-- Signed JWT assertions (RFC 7523): for client authentication
-- (private_key_jwt, client_secret_jwt) and for the jwt_bearer grant. The
-- key is a secret setting; extra claims are templates.
ALTER TABLE oauth_configs ADD COLUMN assertion_key_setting text NOT NULL DEFAULT '';
ALTER TABLE oauth_configs ADD COLUMN assertion_alg text NOT NULL DEFAULT '';
ALTER TABLE oauth_configs ADD COLUMN assertion_claims text NOT NULL DEFAULT '{}';

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
