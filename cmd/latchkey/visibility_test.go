package main

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/oauthtest"
	"github.com/latchkey/latchkey/settings"
)

// resolveInst resolves an installation's values through the store, as the
// flows and the proxy do.
func (e *env) resolveInst(instID, userID string) (settings.Resolved, error) {
	e.t.Helper()
	store := settings.NewStore(e.db.DB, e.cipher)
	inst, err := store.Installation(context.Background(), instID)
	if err != nil {
		e.t.Fatal(err)
	}
	return store.Resolve(context.Background(), inst, userID)
}

// definitionColumns reads what a definition row holds at rest.
func (e *env) definitionColumns(key string) (defaultValue, fixedSecret *string) {
	e.t.Helper()
	var row struct {
		DefaultValue *string
		FixedSecret  *string
	}
	if err := e.db.Raw("SELECT default_value, fixed_secret FROM setting_definitions WHERE key = ?", key).Scan(&row).Error; err != nil {
		e.t.Fatal(err)
	}
	return row.DefaultValue, row.FixedSecret
}

func (e *env) storedValues(table, key string) int64 {
	e.t.Helper()
	var n int64
	if err := e.db.Raw("SELECT COUNT(*) FROM "+table+" WHERE key = ?", key).Scan(&n).Error; err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestVisibility covers each visibility through the REST API: definitions,
// the install prompt, the values, the writes that must be refused, and
// Resolve.
func TestVisibility(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": "Acme", "slug": "acme"})
	fixed, userFixed, rejected := canary(t), canary(t), canary(t)
	for _, d := range []map[string]any{
		{"key": "tenant", "label": "Tenant", "required": true},
		{"key": "region", "label": "Region", "visibility": "read_only", "default": "eu", "pattern": "eu|us"},
		{"key": "api_host", "visibility": "hidden", "default": "api.acme.example"},
		{"key": "signing_key", "visibility": "hidden", "secret": true, "required": true, "default": fixed},
		{"key": "plan", "level": "user", "visibility": "read_only", "default": "free"},
		{"key": "user_salt", "level": "user", "visibility": "hidden", "secret": true, "default": userFixed},
	} {
		got := e.must(201, "POST", "/v1/apps/acme/settings", e.key, d)
		want := d["visibility"]
		if want == nil {
			want = "editable"
		}
		if got["visibility"] != want || got["default_set"] != (d["default"] != nil) {
			t.Errorf("created %s = %v", d["key"], got)
		}
	}
	for _, key := range []string{"signing_key", "user_salt"} {
		got := e.must(200, "GET", "/v1/apps/acme/settings/"+key, e.key, nil)
		if got["default"] != nil || got["default_set"] != true || got["secret"] != true || got["visibility"] != "hidden" {
			t.Errorf("%s = %v, want a write-only default", key, got)
		}
		def, sealed := e.definitionColumns(key)
		if def != nil || sealed == nil || strings.Contains(*sealed, fixed) || strings.Contains(*sealed, userFixed) {
			t.Errorf("%s at rest: default_value %v, fixed_secret not sealed", key, def)
		}
	}
	if def, sealed := e.definitionColumns("api_host"); def == nil || *def != "api.acme.example" || sealed != nil {
		t.Errorf("a non-secret hidden value is kept as a plain default: %v %v", def, sealed)
	}

	t.Run("definition errors", func(t *testing.T) {
		tests := []struct {
			name  string
			body  map[string]any
			field string
		}{
			{"read_only without default", map[string]any{"key": "x", "visibility": "read_only"}, "default"},
			{"hidden without default", map[string]any{"key": "x", "visibility": "hidden"}, "default"},
			{"hidden secret without default", map[string]any{"key": "x", "visibility": "hidden", "secret": true}, "default"},
			{"secret read_only", map[string]any{"key": "x", "visibility": "read_only", "secret": true, "default": rejected}, "visibility"},
			{"editable secret default", map[string]any{"key": "x", "secret": true, "default": rejected}, "default"},
			{"hidden secret failing pattern", map[string]any{"key": "x", "visibility": "hidden", "secret": true, "pattern": "[0-9]+", "default": rejected}, "default"},
			{"unknown visibility", map[string]any{"key": "x", "visibility": "secretive", "default": "a"}, "visibility"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wantFields(t, e.must(422, "POST", "/v1/apps/acme/settings", e.key, tt.body), tt.field)
			})
		}
		e.must(404, "GET", "/v1/apps/acme/settings/x", e.key, nil)
	})

	prompt := e.must(200, "GET", "/v1/apps/acme/install-prompt", e.key, nil)["fields"].([]any)
	if len(prompt) != 2 {
		t.Fatalf("prompt = %v, want tenant and region only", prompt)
	}
	tenant, region := prompt[0].(map[string]any), prompt[1].(map[string]any)
	if tenant["key"] != "tenant" || tenant["read_only"] != false || region["key"] != "region" || region["read_only"] != true || region["default"] != "eu" {
		t.Errorf("prompt fields = %v, %v", tenant, region)
	}

	// Organizations cannot set fixed values, nor remove them; a refused
	// install stores nothing.
	p := e.must(422, "POST", "/v1/installations", e.key, map[string]any{
		"app_id": "acme", "organization_id": "org-1",
		"values": map[string]string{"tenant": "t1", "region": "us", "api_host": "evil.example", "signing_key": rejected},
	})
	wantFields(t, p, "values.region", "values.api_host", "values.signing_key")
	if msg := fieldErrors(t, p)["values.signing_key"]; !strings.Contains(msg, "fixed by the app developer") {
		t.Errorf("message = %q", msg)
	}
	if n := len(e.must(200, "GET", "/v1/installations", e.key, nil)["installations"].([]any)); n != 0 {
		t.Fatalf("a refused install stored %d installations", n)
	}
	// signing_key is required, but its fixed value counts.
	inst := e.must(201, "POST", "/v1/installations", e.key, map[string]any{
		"app_id": "acme", "organization_id": "org-1", "values": map[string]string{"tenant": "t1"},
	})
	id := inst["id"].(string)
	byKey := settingsByKey(t, inst["settings"])
	if len(byKey) != 2 || byKey["tenant"]["read_only"] != false {
		t.Errorf("installation settings = %v, want tenant and region, no hidden ones", byKey)
	}
	if v := byKey["region"]; v["read_only"] != true || v["value"] != "eu" || v["source"] != "default" || v["set"] != false {
		t.Errorf("region = %v", v)
	}
	orgPath, userPath := "/v1/installations/"+id+"/settings", "/v1/installations/"+id+"/users/u1/settings"
	p = e.must(422, "PATCH", orgPath, e.key, map[string]any{"values": map[string]any{"region": "us", "api_host": nil, "signing_key": "", "tenant": "t2"}})
	wantFields(t, p, "values.region", "values.api_host", "values.signing_key")
	p = e.must(422, "PATCH", userPath, e.key, map[string]any{"values": map[string]any{"plan": "pro", "user_salt": rejected}})
	wantFields(t, p, "values.plan", "values.user_salt")
	user := settingsByKey(t, e.must(200, "GET", userPath, e.key, nil)["settings"])
	if len(user) != 1 || user["plan"]["value"] != "free" || user["plan"]["read_only"] != true {
		t.Errorf("user settings = %v, want plan only", user)
	}
	if got := settingsByKey(t, e.must(200, "GET", orgPath, e.key, nil)["settings"]); got["tenant"]["value"] != "t1" {
		t.Errorf("a refused PATCH changed tenant: %v", got)
	}

	// Resolve always uses the developer's values, whatever rows are stored
	// (here written behind the API's back).
	for _, q := range []string{
		"INSERT INTO organization_values (installation_id, key, value, encrypted, updated_at) VALUES (?, 'region', 'us', ?, CURRENT_TIMESTAMP)",
		"INSERT INTO organization_values (installation_id, key, value, encrypted, updated_at) VALUES (?, 'signing_key', 'planted', ?, CURRENT_TIMESTAMP)",
		"INSERT INTO user_values (installation_id, user_id, key, value, encrypted, updated_at) VALUES (?, 'u1', 'plan', 'pro', ?, CURRENT_TIMESTAMP)",
	} {
		if err := e.db.Exec(q, id, false).Error; err != nil {
			t.Fatal(err)
		}
	}
	e.sqlChanged()
	r, err := e.resolveInst(id, "u1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"tenant": "t1", "region": "eu", "api_host": "api.acme.example", "signing_key": fixed, "plan": "free", "user_salt": userFixed}
	for k, v := range want {
		if r.Values[k] != v {
			t.Errorf("Resolve %s = %q, want %q", k, r.Values[k], v)
		}
	}
	if !r.Secret["signing_key"] || !r.Secret["user_salt"] || r.Secret["api_host"] {
		t.Errorf("secret flags = %v", r.Secret)
	}
	if v := settingsByKey(t, e.must(200, "GET", orgPath, e.key, nil)["settings"])["region"]; v["value"] != "eu" || v["set"] != false {
		t.Errorf("region with a planted row = %v", v)
	}

	e.must(200, "GET", "/v1/apps/acme/settings", e.key, nil)
	e.must(200, "GET", "/v1/installations/"+id, e.key, nil)
	out := e.output()
	for _, s := range []string{fixed, userFixed, rejected} {
		if strings.Contains(out, s) {
			t.Errorf("secret %s appears in a response or log", s)
		}
	}
}

// TestVisibilityHiddenClientCredentials gives an app its own client id and
// secret as hidden settings: a basic-auth config accepts them (they are
// organization-level), explain masks the secret, and a real authorization
// code flow against the in-process provider authenticates with them.
func TestVisibilityHiddenClientCredentials(t *testing.T) {
	e := newEnv(t)
	clientSecret := canary(t)
	p := oauthtest.NewServer(t, oauthtest.Options{}, oauthtest.Client{
		ID: testClientID, Secret: clientSecret, AuthMethod: oauthtest.AuthBasic,
		RedirectURIs: []string{e.url + "/oauth/callback"},
	})
	e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": "Acme", "slug": "acme"})
	for _, d := range []map[string]any{
		{"key": "client_id", "visibility": "hidden", "default": testClientID},
		{"key": "client_secret", "visibility": "hidden", "secret": true, "default": clientSecret},
		{"key": "access_token", "level": "user", "secret": true},
		{"key": "refresh_token", "level": "user", "secret": true},
	} {
		e.must(201, "POST", "/v1/apps/acme/settings", e.key, d)
	}
	if n := len(e.must(200, "GET", "/v1/apps/acme/install-prompt", e.key, nil)["fields"].([]any)); n != 0 {
		t.Errorf("the prompt asks for %d fields, want none", n)
	}
	inst := e.must(201, "POST", "/v1/installations", e.key, map[string]any{"app_id": "acme", "organization_id": "org-1"})
	instID := inst["id"].(string)
	body := providerConfig(p, "basic")
	body["name"], body["access_token_setting"], body["refresh_token_setting"], body["log_requests"] = "provider", "access_token", "refresh_token", true
	cfgID := e.must(201, "POST", "/v1/apps/acme/oauth-configs", e.key, body)["id"].(string)

	x := e.must(200, "POST", "/v1/apps/acme/oauth-configs/"+cfgID+"/explain", e.key, map[string]any{"installation_id": instID, "user_id": "user-1"})
	if problems := x["problems"].([]any); len(problems) != 0 {
		t.Fatalf("explain problems = %v", problems)
	}
	tr := x["token_request"].(map[string]any)
	if auth := tr["headers"].(map[string]any)["Authorization"]; auth != "Basic ****" {
		t.Errorf("explained Authorization = %v, want Basic ****", auth)
	}
	vars := map[string]map[string]any{}
	for _, v := range x["variables"].([]any) {
		m := v.(map[string]any)
		vars[m["name"].(string)] = m
	}
	if cs := vars["client_secret"]; cs["secret"] != true || cs["value"] != nil || cs["source"] == "missing" {
		t.Errorf("client_secret variable = %v", cs)
	}
	if ci := vars["client_id"]; ci["value"] != testClientID {
		t.Errorf("client_id variable = %v", ci)
	}
	if link, _ := x["link_url"].(string); !strings.Contains(link, "client_id="+testClientID) {
		t.Errorf("link_url = %q", link)
	}

	b := newBrowser(t)
	link := e.must(201, "POST", "/v1/installations/"+instID+"/authorize-links", e.key, map[string]any{"config_id": cfgID, "user_id": "user-1"})["url"].(string)
	status, hdr, _ := b.get(link)
	if status != http.StatusFound {
		t.Fatalf("authorize link answered %d", status)
	}
	back, err := p.Consent(hdr.Get("Location"), true)
	if err != nil {
		t.Fatal(err)
	}
	if status, _, page := b.get(back.String()); status != http.StatusOK || !strings.Contains(page, "Connected") {
		t.Fatalf("callback answered %d:\n%s", status, page)
	}
	reqs := p.TokenRequests()
	if len(reqs) != 1 || !reqs[0].BasicAuth || reqs[0].Status != 200 {
		t.Fatalf("token requests = %+v, want one accepted with Basic auth", reqs)
	}
	r, err := e.resolveInst(instID, "user-1")
	if err != nil || r.Values["access_token"] == "" {
		t.Fatalf("tokens not stored: %v", err)
	}
	e.must(200, "GET", "/v1/apps/acme/oauth-configs/"+cfgID+"/requests", e.key, nil)
	e.must(200, "GET", "/v1/apps/acme/settings/client_secret", e.key, nil)
	e.must(200, "GET", "/v1/installations/"+instID, e.key, nil)

	out := e.output()
	basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(testClientID) + ":" + url.QueryEscape(clientSecret)))
	for name, s := range map[string]string{"client secret": clientSecret, "Basic credentials": basic} {
		if strings.Contains(out, s) {
			t.Errorf("the %s appear in a response or log", name)
		}
	}
}

// TestVisibilityCiphertextBound copies a hidden secret's sealed value into
// another definition's row, of the same app and of another app: it must
// not decrypt there.
func TestVisibilityCiphertextBound(t *testing.T) {
	e := newEnv(t)
	ids := map[string]string{}
	for _, slug := range []string{"victim", "attacker"} {
		a := e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": slug, "slug": slug})
		for _, key := range []string{"signing_key", "other_key"} {
			e.must(201, "POST", "/v1/apps/"+slug+"/settings", e.key, map[string]any{
				"key": key, "visibility": "hidden", "secret": true, "default": key + "-of-" + slug,
			})
		}
		inst := e.must(201, "POST", "/v1/installations", e.key, map[string]any{"app_id": slug, "organization_id": "org-1"})
		ids[slug], ids[slug+"-inst"] = a["id"].(string), inst["id"].(string)
	}
	if r, err := e.resolveInst(ids["attacker-inst"], ""); err != nil || r.Values["signing_key"] != "signing_key-of-attacker" {
		t.Fatalf("before: %v %v", err, r.Values)
	}
	moves := []struct {
		name             string
		fromApp, fromKey string
		toApp, toKey     string
	}{
		{"another key of the same app", "attacker", "other_key", "attacker", "signing_key"},
		{"the same key of another app", "victim", "signing_key", "attacker", "signing_key"},
	}
	for _, m := range moves {
		t.Run(m.name, func(t *testing.T) {
			if err := e.db.Exec("UPDATE setting_definitions SET fixed_secret = (SELECT fixed_secret FROM setting_definitions WHERE app_id = ? AND key = ?) WHERE app_id = ? AND key = ?",
				ids[m.fromApp], m.fromKey, ids[m.toApp], m.toKey).Error; err != nil {
				t.Fatal(err)
			}
			_, err := e.resolveInst(ids["attacker-inst"], "")
			if !errs.Is(err, errs.Internal) || !strings.Contains(err.Error(), m.toKey) || strings.Contains(err.Error(), "-of-") {
				t.Fatalf("Resolve with a moved ciphertext: err = %v, want a decrypt error naming %s and no value", err, m.toKey)
			}
			// A new fixed value repairs the row.
			e.must(200, "PATCH", "/v1/apps/attacker/settings/"+m.toKey, e.key, map[string]any{"default": "signing_key-of-attacker"})
			if r, err := e.resolveInst(ids["attacker-inst"], ""); err != nil || r.Values["signing_key"] != "signing_key-of-attacker" {
				t.Fatalf("after repair: %v", err)
			}
		})
	}
}

// TestVisibilityChanges checks what changing a definition's visibility or
// fixed value does to stored values.
func TestVisibilityChanges(t *testing.T) {
	e := newEnv(t)
	setupApp(e)
	fixed := canary(t)
	inst := e.must(201, "POST", "/v1/installations", e.key, map[string]any{
		"app_id": "acme", "organization_id": "org-1",
		"values": map[string]string{"client_id": "cid", "client_secret": "cs", "region": "eu"},
	})
	id := inst["id"].(string)
	orgPath, userPath := "/v1/installations/"+id+"/settings", "/v1/installations/"+id+"/users/u1/settings"
	e.must(200, "PATCH", userPath, e.key, map[string]any{"values": map[string]any{"access_token": "at"}})

	// Values stored: refused unless they go too.
	p := e.must(409, "PATCH", "/v1/apps/acme/settings/region", e.key, map[string]any{"visibility": "read_only", "default": "us"})
	wantFields(t, p, "visibility")
	e.must(400, "PATCH", "/v1/apps/acme/settings/region?delete_values=maybe", e.key, map[string]any{"visibility": "read_only", "default": "us"})
	if v := settingsByKey(t, e.must(200, "GET", orgPath, e.key, nil)["settings"])["region"]; v["source"] != "stored" || v["value"] != "eu" {
		t.Fatalf("a refused change touched the value: %v", v)
	}
	d := e.must(200, "PATCH", "/v1/apps/acme/settings/region?delete_values=true", e.key, map[string]any{"visibility": "read_only", "default": "us"})
	if d["visibility"] != "read_only" || d["default"] != "us" {
		t.Errorf("region = %v", d)
	}
	if n := e.storedValues("organization_values", "region"); n != 0 {
		t.Errorf("%d region values left", n)
	}
	if v := settingsByKey(t, e.must(200, "GET", orgPath, e.key, nil)["settings"])["region"]; v["source"] != "default" || v["value"] != "us" || v["read_only"] != true {
		t.Errorf("region after the change = %v", v)
	}
	// A new fixed value applies to every installation at once.
	e.must(200, "PATCH", "/v1/apps/acme/settings/region", e.key, map[string]any{"default": "eu"})
	if r, err := e.resolveInst(id, ""); err != nil || r.Values["region"] != "eu" {
		t.Errorf("Resolve region = %q (%v), want the new fixed value", r.Values["region"], err)
	}
	wantFields(t, e.must(422, "PATCH", "/v1/apps/acme/settings/region", e.key, map[string]any{"default": ""}), "default")
	wantFields(t, e.must(422, "PATCH", "/v1/apps/acme/settings/region", e.key, map[string]any{"secret": true}), "visibility")
	// Back to editable: organizations set it again; the default stays.
	if d := e.must(200, "PATCH", "/v1/apps/acme/settings/region", e.key, map[string]any{"visibility": "editable"}); d["default"] != "eu" {
		t.Errorf("region = %v", d)
	}
	e.must(200, "PATCH", orgPath, e.key, map[string]any{"values": map[string]any{"region": "us"}})

	// No values stored: no need to ask.
	e.must(200, "PATCH", "/v1/apps/acme/settings/subdomain", e.key, map[string]any{"visibility": "hidden"})
	// A refused change rolls back the values it would have deleted.
	wantFields(t, e.must(422, "PATCH", "/v1/apps/acme/settings/access_token?delete_values=true", e.key, map[string]any{"visibility": "hidden"}), "default")
	if n := e.storedValues("user_values", "access_token"); n != 1 {
		t.Errorf("%d access_token values after a refused change, want 1", n)
	}

	// An editable secret with values becomes a hidden secret.
	d = e.must(200, "PATCH", "/v1/apps/acme/settings/client_secret?delete_values=true", e.key, map[string]any{"visibility": "hidden", "default": fixed})
	if d["default"] != nil || d["default_set"] != true || d["secret"] != true {
		t.Errorf("client_secret = %v", d)
	}
	if n := e.storedValues("organization_values", "client_secret"); n != 0 {
		t.Errorf("%d client_secret values left", n)
	}
	if r, err := e.resolveInst(id, ""); err != nil || r.Values["client_secret"] != fixed {
		t.Errorf("Resolve client_secret: %v", err)
	}
	// Its sealed value never becomes a shown default.
	wantFields(t, e.must(422, "PATCH", "/v1/apps/acme/settings/client_secret", e.key, map[string]any{"secret": false}), "default")
	d = e.must(200, "PATCH", "/v1/apps/acme/settings/client_secret", e.key, map[string]any{"secret": false, "default": "plain"})
	if def, sealed := e.definitionColumns("client_secret"); d["default"] != "plain" || def == nil || *def != "plain" || sealed != nil {
		t.Errorf("client_secret made plain = %v", d)
	}
	// A plain hidden value made secret is sealed.
	d = e.must(200, "PATCH", "/v1/apps/acme/settings/client_secret", e.key, map[string]any{"secret": true})
	if def, sealed := e.definitionColumns("client_secret"); d["default"] != nil || d["default_set"] != true || def != nil || sealed == nil {
		t.Errorf("client_secret made secret = %v", d)
	}
	if r, err := e.resolveInst(id, ""); err != nil || r.Values["client_secret"] != "plain" {
		t.Errorf("Resolve client_secret after sealing: %v", err)
	}
	// Made editable, a secret setting loses its fixed value: organizations
	// give their own again.
	d = e.must(200, "PATCH", "/v1/apps/acme/settings/client_secret", e.key, map[string]any{"visibility": "editable"})
	if d["default_set"] != false {
		t.Errorf("client_secret made editable = %v", d)
	}
	if r, err := e.resolveInst(id, ""); err != nil || r.Values["client_secret"] != "" {
		t.Errorf("Resolve client_secret after editable = %v", err)
	}
	e.must(200, "PATCH", orgPath, e.key, map[string]any{"values": map[string]any{"client_secret": "org-secret"}})
	if r, err := e.resolveInst(id, ""); err != nil || r.Values["client_secret"] != "org-secret" {
		t.Errorf("Resolve client_secret with a stored value: %v", err)
	}
	if strings.Contains(e.output(), fixed) {
		t.Error("the hidden secret appears in a response or log")
	}
}
