-- +goose NO TRANSACTION
-- +goose Up
-- A slug names an app within its account: two accounts may both have an
-- app "crm", and a taken slug must not reveal that another account uses it.
--
-- SQLite cannot drop the UNIQUE of a column, so apps is rebuilt the way
-- https://www.sqlite.org/lang_altertable.html#otheralter says. Foreign keys
-- must be off while the old table is dropped, or the drop would cascade to
-- every table that references apps; that pragma is a no-op inside a
-- transaction, so this file runs without goose's and opens its own.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE apps_new (
    id          text PRIMARY KEY,
    account_id  text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        text NOT NULL,
    slug        text NOT NULL,
    description text NOT NULL DEFAULT '',
    logo_url    text NOT NULL DEFAULT '',
    created_at  datetime NOT NULL,
    updated_at  datetime NOT NULL,
    return_urls text NOT NULL DEFAULT '[]'
);
INSERT INTO apps_new (id, account_id, name, slug, description, logo_url, created_at, updated_at, return_urls)
    SELECT id, account_id, name, slug, description, logo_url, created_at, updated_at, return_urls FROM apps;
DROP TABLE apps;
ALTER TABLE apps_new RENAME TO apps;
-- It leads with account_id, so it also serves what apps_account_id did.
CREATE UNIQUE INDEX apps_account_slug ON apps (account_id, slug);
COMMIT;
PRAGMA foreign_keys = ON;

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
