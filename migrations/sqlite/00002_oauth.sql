-- +goose Up
ALTER TABLE apps ADD COLUMN return_urls text NOT NULL DEFAULT '[]';

CREATE TABLE oauth_configs (
    id                    text PRIMARY KEY,
    app_id                text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    name                  text NOT NULL,
    grant_type            text NOT NULL,
    link_url              text NOT NULL DEFAULT '',
    token_url             text NOT NULL DEFAULT '',
    refresh_url           text NOT NULL DEFAULT '',
    token_body            text NOT NULL DEFAULT '',
    refresh_body          text NOT NULL DEFAULT '',
    body_format           text NOT NULL DEFAULT 'form',
    headers               text NOT NULL DEFAULT '{}',
    client_auth           text NOT NULL DEFAULT 'body',
    auth_code_path        text NOT NULL DEFAULT '$.code',
    access_token_path     text NOT NULL DEFAULT '$.access_token',
    refresh_token_path    text NOT NULL DEFAULT '$.refresh_token',
    expires_in_path       text NOT NULL DEFAULT '$.expires_in',
    mappings              text NOT NULL DEFAULT '[]',
    access_token_setting  text NOT NULL DEFAULT '',
    refresh_token_setting text NOT NULL DEFAULT '',
    scopes                text NOT NULL DEFAULT '[]',
    scope_separator       text NOT NULL DEFAULT ' ',
    pkce                  text NOT NULL DEFAULT 'S256',
    logo_url              text NOT NULL DEFAULT '',
    log_requests          integer NOT NULL DEFAULT 0,
    created_at            datetime NOT NULL,
    updated_at            datetime NOT NULL,
    UNIQUE (app_id, name)
);

-- One row per installation, user and config that has been connected: the
-- tokens themselves live in user_values; this is their state.
CREATE TABLE connections (
    installation_id  text NOT NULL REFERENCES installations (id) ON DELETE CASCADE,
    user_id          text NOT NULL,
    config_id        text NOT NULL REFERENCES oauth_configs (id) ON DELETE CASCADE,
    status           text NOT NULL,
    expires_at       datetime,
    connected_at     datetime NOT NULL,
    refreshed_at     datetime,
    updated_at       datetime NOT NULL,
    PRIMARY KEY (installation_id, user_id, config_id)
);

CREATE TABLE authorize_links (
    id              text PRIMARY KEY,
    token_hash      text NOT NULL UNIQUE,
    installation_id text NOT NULL REFERENCES installations (id) ON DELETE CASCADE,
    config_id       text NOT NULL REFERENCES oauth_configs (id) ON DELETE CASCADE,
    user_id         text NOT NULL,
    return_url      text NOT NULL DEFAULT '',
    expires_at      datetime NOT NULL,
    created_at      datetime NOT NULL
);

CREATE TABLE oauth_states (
    state_hash      text PRIMARY KEY,
    installation_id text NOT NULL REFERENCES installations (id) ON DELETE CASCADE,
    config_id       text NOT NULL REFERENCES oauth_configs (id) ON DELETE CASCADE,
    user_id         text NOT NULL,
    code_verifier   text NOT NULL DEFAULT '',
    browser_hash    text NOT NULL,
    return_url      text NOT NULL DEFAULT '',
    expires_at      datetime NOT NULL,
    used_at         datetime,
    created_at      datetime NOT NULL
);
CREATE INDEX oauth_states_expires_at ON oauth_states (expires_at);

CREATE TABLE oauth_requests (
    id               text PRIMARY KEY,
    config_id        text NOT NULL REFERENCES oauth_configs (id) ON DELETE CASCADE,
    installation_id  text REFERENCES installations (id) ON DELETE CASCADE,
    user_id          text NOT NULL DEFAULT '',
    kind             text NOT NULL,
    method           text NOT NULL,
    url              text NOT NULL,
    request_headers  text NOT NULL DEFAULT '{}',
    request_body     text NOT NULL DEFAULT '',
    status           integer NOT NULL DEFAULT 0,
    response_headers text NOT NULL DEFAULT '{}',
    response_body    text NOT NULL DEFAULT '',
    error            text NOT NULL DEFAULT '',
    duration_ms      integer NOT NULL DEFAULT 0,
    created_at       datetime NOT NULL
);
CREATE INDEX oauth_requests_config ON oauth_requests (config_id, created_at);
CREATE INDEX oauth_requests_installation ON oauth_requests (installation_id, created_at);

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
