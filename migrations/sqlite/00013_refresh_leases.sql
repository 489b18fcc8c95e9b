-- +goose Up
-- Who is renewing a connection's tokens now, across replicas: a lease
-- claimed in a short statement and held, with no transaction open, for the
-- provider's round trip (see oauthconfig.Refresher). It expires, so a
-- replica that dies holding one blocks nobody for long.
CREATE TABLE refresh_leases (
    key        text PRIMARY KEY, -- a hash of installation, owner and config
    owner      text NOT NULL,
    expires_at datetime NOT NULL
);

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
