-- +goose Up
-- Mutual-TLS client certificates (RFC 8705): the organization-level
-- secret settings holding a config's client certificate chain and its
-- private key, presented by its token, refresh and identity requests and
-- by calls to its APIs.
ALTER TABLE oauth_configs ADD COLUMN client_cert_setting text NOT NULL DEFAULT '';
ALTER TABLE oauth_configs ADD COLUMN client_key_setting text NOT NULL DEFAULT '';

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
