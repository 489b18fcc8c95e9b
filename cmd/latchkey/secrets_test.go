package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/settings"
)

func canary(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	rand.Read(b)
	return "canary-" + hex.EncodeToString(b)
}

// TestSecretsNeverLeak stores unique secret values through every write path
// and then searches every response, every log line and the database's raw
// rows for them.
func TestSecretsNeverLeak(t *testing.T) {
	e := newEnv(t)
	setupApp(e)
	orgSecret, orgSecret2, userSecret, badSecret := canary(t), canary(t), canary(t), canary(t)

	inst := e.must(201, "POST", "/v1/installations", e.key, map[string]any{
		"app_id": "acme", "organization_id": "org-1",
		"values": map[string]string{"client_id": "cid", "client_secret": orgSecret},
	})
	id := inst["id"].(string)
	e.must(200, "PATCH", "/v1/installations/"+id+"/settings", e.key, map[string]any{"values": map[string]any{"client_secret": orgSecret2}})
	e.must(200, "PATCH", "/v1/installations/"+id+"/users/u1/settings", e.key, map[string]any{"values": map[string]any{"access_token": userSecret}})
	// Rejected writes must not echo the secret either.
	e.must(422, "POST", "/v1/installations", e.key, map[string]any{
		"app_id": "acme", "organization_id": "org-2",
		"values": map[string]string{"client_secret": badSecret, "nope": badSecret},
	})
	e.must(422, "PATCH", "/v1/installations/"+id+"/users/u1/settings", e.key, map[string]any{"values": map[string]any{"client_secret": badSecret}})
	e.must(409, "PATCH", "/v1/apps/acme/settings/client_secret", e.key, map[string]any{"secret": false})
	for _, path := range []string{"/v1/installations/" + id, "/v1/installations/" + id + "/settings", "/v1/installations/" + id + "/users/u1/settings", "/v1/installations"} {
		e.must(200, "GET", path, e.key, nil)
	}

	out := e.output()
	for _, s := range []string{orgSecret, orgSecret2, userSecret, badSecret} {
		if strings.Contains(out, s) {
			t.Errorf("secret %s appears in a response or log", s)
		}
	}

	// At rest: every stored row of a secret setting is ciphertext.
	var rows []struct{ Value string }
	if err := e.db.Raw("SELECT value FROM organization_values UNION ALL SELECT value FROM user_values").Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	// cid, the two client_secret writes (one row) and the user's token.
	if len(rows) != 3 {
		t.Fatalf("read %d stored values, want 3: the at-rest check would check nothing", len(rows))
	}
	for _, r := range rows {
		for _, s := range []string{orgSecret, orgSecret2, userSecret} {
			if strings.Contains(r.Value, s) {
				t.Errorf("secret %s is stored in plain text", s)
			}
		}
	}

	// The store can still read them back, for the flows that need them.
	store := settings.NewStore(e.db.DB, e.cipher)
	installation, err := store.Installation(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	r, err := store.Resolve(context.Background(), installation, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Values["client_secret"] != orgSecret2 || r.Values["access_token"] != userSecret || r.Values["subdomain"] != "www" {
		t.Errorf("Resolve = wrong values (secret flags %v)", r.Secret)
	}
}

// TestCiphertextBoundToRow copies one organization's sealed secret into
// another organization's row, as an attacker with database access might: it
// must not decrypt there.
func TestCiphertextBoundToRow(t *testing.T) {
	e := newEnv(t)
	setupApp(e)
	ids := map[string]string{}
	for _, org := range []string{"victim", "attacker"} {
		inst := e.must(201, "POST", "/v1/installations", e.key, map[string]any{
			"app_id": "acme", "organization_id": org,
			"values": map[string]string{"client_id": org, "client_secret": "secret-of-" + org},
		})
		ids[org] = inst["id"].(string)
		e.must(200, "PATCH", "/v1/installations/"+ids[org]+"/users/u1/settings", e.key, map[string]any{"values": map[string]any{"access_token": "token-of-" + org}})
	}
	ctx := context.Background()
	store := settings.NewStore(e.db.DB, e.cipher)
	for _, table := range []string{"organization_values", "user_values"} {
		key := map[string]string{"organization_values": "client_secret", "user_values": "access_token"}[table]
		if err := e.db.Exec("UPDATE "+table+" SET value = (SELECT value FROM "+table+" WHERE installation_id = ? AND key = ?) WHERE installation_id = ? AND key = ?",
			ids["victim"], key, ids["attacker"], key).Error; err != nil {
			t.Fatal(err)
		}
		inst, _ := store.Installation(ctx, ids["attacker"])
		_, err := store.Resolve(ctx, inst, "u1")
		if !errs.Is(err, errs.Internal) || !strings.Contains(err.Error(), key) {
			t.Fatalf("%s: Resolve with a moved ciphertext: err = %v, want a decrypt error naming %s", table, err, key)
		}
		if strings.Contains(err.Error(), "secret-of-victim") || strings.Contains(err.Error(), "token-of-victim") {
			t.Fatal("the error shows the victim's secret")
		}
		// Restore the attacker's own row for the next table's check.
		e.must(200, "PATCH", "/v1/installations/"+ids["attacker"]+"/settings", e.key, map[string]any{"values": map[string]any{"client_secret": "secret-of-attacker"}})
	}
	// Moving a user's token to another user of the same installation fails too.
	if err := e.db.Exec("INSERT INTO user_values (installation_id, user_id, key, value, encrypted, updated_at) SELECT installation_id, 'u2', key, value, encrypted, updated_at FROM user_values WHERE installation_id = ? AND user_id = 'u1'", ids["victim"]).Error; err != nil {
		t.Fatal(err)
	}
	inst, _ := store.Installation(ctx, ids["victim"])
	if _, err := store.Resolve(ctx, inst, "u2"); err == nil {
		t.Fatal("a token copied to another user decrypted")
	}
	if r, err := store.Resolve(ctx, inst, "u1"); err != nil || r.Values["access_token"] != "token-of-victim" {
		t.Fatalf("victim's own row: %v", err)
	}
}
