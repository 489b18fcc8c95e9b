-- +goose Up
CREATE TABLE accounts (
    id         text PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    created_at datetime NOT NULL
);

CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    account_id   text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         text NOT NULL,
    prefix       text NOT NULL,
    hash         text NOT NULL UNIQUE,
    created_at   datetime NOT NULL,
    last_used_at datetime
);

CREATE TABLE apps (
    id          text PRIMARY KEY,
    account_id  text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        text NOT NULL,
    slug        text NOT NULL UNIQUE,
    description text NOT NULL DEFAULT '',
    logo_url    text NOT NULL DEFAULT '',
    created_at  datetime NOT NULL,
    updated_at  datetime NOT NULL
);
CREATE INDEX apps_account_id ON apps (account_id);

CREATE TABLE setting_definitions (
    id            text PRIMARY KEY,
    app_id        text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    key           text NOT NULL,
    level         text NOT NULL CHECK (level IN ('organization', 'user')),
    label         text NOT NULL DEFAULT '',
    description   text NOT NULL DEFAULT '',
    secret        integer NOT NULL DEFAULT 0,
    required      integer NOT NULL DEFAULT 0,
    default_value text,
    pattern       text,
    position      integer NOT NULL,
    created_at    datetime NOT NULL,
    updated_at    datetime NOT NULL,
    UNIQUE (app_id, key)
);

CREATE TABLE installations (
    id              text PRIMARY KEY,
    app_id          text NOT NULL REFERENCES apps (id) ON DELETE RESTRICT,
    organization_id text NOT NULL,
    created_at      datetime NOT NULL,
    updated_at      datetime NOT NULL,
    UNIQUE (app_id, organization_id)
);

CREATE TABLE organization_values (
    installation_id text NOT NULL REFERENCES installations (id) ON DELETE CASCADE,
    key             text NOT NULL,
    value           text NOT NULL,
    encrypted       integer NOT NULL,
    updated_at      datetime NOT NULL,
    PRIMARY KEY (installation_id, key)
);

CREATE TABLE user_values (
    installation_id text NOT NULL REFERENCES installations (id) ON DELETE CASCADE,
    user_id         text NOT NULL,
    key             text NOT NULL,
    value           text NOT NULL,
    encrypted       integer NOT NULL,
    updated_at      datetime NOT NULL,
    PRIMARY KEY (installation_id, user_id, key)
);

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
