-- +goose Up
-- A slug names an app within its account: two accounts may both have an
-- app "crm", and a taken slug must not reveal that another account uses it.
ALTER TABLE apps DROP CONSTRAINT apps_slug_key;
CREATE UNIQUE INDEX apps_account_slug ON apps (account_id, slug);
-- The new index leads with account_id, so it serves what this one did.
DROP INDEX apps_account_id;

-- +goose Down
-- Forward-only: Latchkey never rolls a schema back.
