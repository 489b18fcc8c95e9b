-- +goose Up
-- What ends a user's grant, what a refusal means, and what the provider's
-- refusal of an installation's client credentials blocks.

-- Refusals that do not say "invalid_grant" but mean it, per config: error
-- codes, and a JSONPath condition on the refusal's body.
ALTER TABLE oauth_configs ADD COLUMN grant_gone_errors text NOT NULL DEFAULT '[]';
ALTER TABLE oauth_configs ADD COLUMN grant_gone_body_path text NOT NULL DEFAULT '';
ALTER TABLE oauth_configs ADD COLUMN grant_gone_body_value text NOT NULL DEFAULT '';

-- Refusals of a refresh in a row that no rule classified (counted at most
-- once a minute), the rule that declared the grant gone, and the intent
-- record of a refresh in flight (set before the request, cleared when its
-- answer is stored): one left behind means a token may have been lost.
ALTER TABLE connections ADD COLUMN refusals integer NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN last_refusal_at datetime;
ALTER TABLE connections ADD COLUMN ended_by text NOT NULL DEFAULT '';
ALTER TABLE connections ADD COLUMN refresh_started_at datetime;

-- The provider refused an installation's client credentials for a config
-- (invalid_client, unauthorized_client): no token request of that config
-- is sent for the installation until its organization settings change
-- (settings_digest is a hash of them when the refusal came).
CREATE TABLE config_errors (
    installation_id text NOT NULL REFERENCES installations (id) ON DELETE CASCADE,
    config_id       text NOT NULL REFERENCES oauth_configs (id) ON DELETE CASCADE,
    message         text NOT NULL,
    settings_digest text NOT NULL,
    created_at      datetime NOT NULL,
    PRIMARY KEY (installation_id, config_id)
);

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
