-- +goose Up
-- How token and refresh requests are sent: the method (POST, or GET for
-- providers that take the parameters in the URL), where the parameters go
-- (the body, or the URL's query with no body), and the Content-Type of the
-- body when the provider wants another than its format's.
ALTER TABLE oauth_configs ADD COLUMN token_method text NOT NULL DEFAULT 'POST';
ALTER TABLE oauth_configs ADD COLUMN token_params text NOT NULL DEFAULT 'body';
ALTER TABLE oauth_configs ADD COLUMN content_type text NOT NULL DEFAULT '';

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
