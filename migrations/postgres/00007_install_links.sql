-- +goose Up
-- Install links: short-lived, single-use links to the hosted install page
-- for one app and organization. Only a hash of the link's token is kept.
-- used_at is set, in the same transaction as the installation it made,
-- when the form is submitted successfully.
CREATE TABLE install_links (
    id              text PRIMARY KEY,
    token_hash      text NOT NULL UNIQUE,
    app_id          text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    organization_id text NOT NULL,
    user_id         text NOT NULL DEFAULT '',
    installation_id text REFERENCES installations (id) ON DELETE SET NULL,
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,
    created_at      timestamptz NOT NULL
);
CREATE INDEX install_links_expires_at ON install_links (expires_at);

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
