package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// fieldErrors returns the field names of a 422 problem's errors.
func fieldErrors(t *testing.T, p map[string]any) map[string]string {
	t.Helper()
	out := map[string]string{}
	list, _ := p["errors"].([]any)
	for _, item := range list {
		m := item.(map[string]any)
		out[m["field"].(string)] = m["message"].(string)
	}
	return out
}

func wantFields(t *testing.T, p map[string]any, fields ...string) {
	t.Helper()
	got := fieldErrors(t, p)
	for _, f := range fields {
		if _, ok := got[f]; !ok {
			t.Errorf("problem does not name field %q; got %v", f, got)
		}
	}
	if len(got) != len(fields) {
		t.Errorf("problem names %d fields %v, want exactly %v", len(got), got, fields)
	}
}

func TestAppsCRUD(t *testing.T) {
	e := newEnv(t)
	created := e.must(201, "POST", "/v1/apps", e.key, map[string]any{
		"name": "Acme CRM", "description": "Sync contacts", "logo_url": "https://acme.example/logo.png",
	})
	id := created["id"].(string)
	if created["slug"] != "acme-crm" {
		t.Errorf("slug = %v, want derived acme-crm", created["slug"])
	}
	for _, ref := range []string{id, "acme-crm"} {
		got := e.must(200, "GET", "/v1/apps/"+ref, e.key, nil)
		if got["id"] != id {
			t.Errorf("GET %s: id %v, want %v", ref, got["id"], id)
		}
	}
	list := e.must(200, "GET", "/v1/apps", e.key, nil)
	if n := len(list["apps"].([]any)); n != 1 {
		t.Fatalf("list has %d apps, want 1", n)
	}
	updated := e.must(200, "PATCH", "/v1/apps/"+id, e.key, map[string]any{"name": "Acme CRM 2", "slug": "acme2"})
	if updated["name"] != "Acme CRM 2" || updated["slug"] != "acme2" || updated["description"] != "Sync contacts" {
		t.Errorf("PATCH result = %v", updated)
	}

	e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": "Other", "slug": "other"})
	p := e.must(409, "PATCH", "/v1/apps/other", e.key, map[string]any{"slug": "acme2"})
	wantFields(t, p, "slug")
	e.must(201, "POST", "/v1/apps", e.other, map[string]any{"name": "Copy", "slug": "acme2"}) // slugs are per account

	p = e.must(422, "POST", "/v1/apps", e.key, map[string]any{"name": "", "slug": "Bad Slug", "logo_url": "javascript:alert(1)"})
	wantFields(t, p, "name", "slug", "logo_url")
	p = e.must(422, "POST", "/v1/apps", e.key, map[string]any{"name": "x", "slug": "01a207bd-0dda-7938-aad2-889dcd079a4b"})
	wantFields(t, p, "slug")
	p = e.must(422, "PATCH", "/v1/apps/"+id, e.key, map[string]any{"logo_url": "https://user:pw@acme.example/x.png"})
	wantFields(t, p, "logo_url")

	e.must(204, "DELETE", "/v1/apps/"+id, e.key, nil)
	e.must(404, "GET", "/v1/apps/"+id, e.key, nil)
	e.must(404, "DELETE", "/v1/apps/"+id, e.key, nil)
}

func TestRequestErrors(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": "A", "slug": "a"})
	tests := []struct {
		name        string
		method      string
		path        string
		key         string
		body        any
		contentType string
		want        int
		field       string
	}{
		{"no key", "GET", "/v1/apps", "", nil, "", 401, ""},
		{"unknown key", "GET", "/v1/apps", "lk_unknown", nil, "", 401, ""},
		{"not a key", "GET", "/v1/apps", "nope", nil, "", 401, ""},
		{"bad JSON", "POST", "/v1/apps", "KEY", `{"name": `, "", 400, ""},
		{"broken JSON", "POST", "/v1/apps", "KEY", `{"name" "x"}`, "", 400, ""},
		{"empty body", "POST", "/v1/apps", "KEY", ``, "application/json", 400, ""},
		{"array body", "POST", "/v1/apps", "KEY", `[1]`, "", 400, ""},
		{"two values", "POST", "/v1/apps", "KEY", `{"name":"x"} {}`, "", 400, ""},
		{"wrong type", "POST", "/v1/apps", "KEY", `{"name": 42}`, "", 422, "name"},
		{"unknown field", "POST", "/v1/apps", "KEY", `{"name": "x", "colour": "red"}`, "", 422, "colour"},
		{"wrong content type", "POST", "/v1/apps", "KEY", `name=x`, "application/x-www-form-urlencoded", 400, ""},
		{"too large", "POST", "/v1/apps", "KEY", `{"name": "` + strings.Repeat("x", 2<<20) + `"}`, "", 413, ""},
		{"nested wrong type", "POST", "/v1/installations", "KEY", `{"app_id":"a","organization_id":"o","values":{"k":1}}`, "", 422, "values"},
		{"no route", "GET", "/v1/nothing", "KEY", nil, "", 404, ""},
		// Echo answers 404 (not 405) for an unknown method under a group with middleware.
		{"wrong method", "PUT", "/v1/apps", "KEY", nil, "", 404, ""},
		{"wrong method outside /v1", "POST", "/healthz", "", nil, "", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.key
			if key == "KEY" {
				key = e.key
			}
			r := e.call(tt.method, tt.path, key, tt.body)
			if tt.contentType != "" {
				r = e.callWithType(tt.method, tt.path, key, tt.body.(string), tt.contentType)
			}
			if r.status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.status, tt.want, r.body)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Errorf("Content-Type = %q, want application/problem+json", ct)
			}
			p := r.json(t)
			if p["status"] != float64(tt.want) || p["detail"] == "" || p["request_id"] == "" {
				t.Errorf("problem = %v", p)
			}
			if tt.field != "" {
				wantFields(t, p, tt.field)
			}
			if strings.Contains(string(r.body), "xxxxxxxx") {
				t.Error("the problem echoes the request body")
			}
		})
	}
}

func (e *env) callWithType(method, path, key, body, contentType string) response {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return response{status: resp.StatusCode, header: resp.Header, body: []byte(b.String())}
}

// setupApp creates an app with a typical set of settings and returns its id.
func setupApp(e *env) string {
	e.t.Helper()
	a := e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": "Acme CRM", "slug": "acme"})
	for _, d := range []map[string]any{
		{"key": "client_id", "label": "Client ID", "description": "From the provider console", "required": true},
		{"key": "client_secret", "label": "Client secret", "secret": true, "required": true},
		{"key": "subdomain", "label": "Subdomain", "pattern": "[a-z0-9-]+", "default": "www"},
		{"key": "region", "label": "Region", "pattern": "eu|us"},
		{"key": "access_token", "level": "user", "secret": true},
		{"key": "refresh_token", "level": "user", "secret": true},
		{"key": "account_name", "level": "user"},
	} {
		e.must(201, "POST", "/v1/apps/acme/settings", e.key, d)
	}
	return a["id"].(string)
}

func TestSettingDefinitions(t *testing.T) {
	e := newEnv(t)
	setupApp(e)
	list := e.must(200, "GET", "/v1/apps/acme/settings", e.key, nil)["settings"].([]any)
	var keys []string
	for _, d := range list {
		keys = append(keys, d.(map[string]any)["key"].(string))
	}
	if got, want := strings.Join(keys, ","), "client_id,client_secret,subdomain,region,access_token,refresh_token,account_name"; got != want {
		t.Errorf("settings in order %s, want %s", got, want)
	}
	d := e.must(200, "GET", "/v1/apps/acme/settings/client_id", e.key, nil)
	if d["level"] != "organization" || d["required"] != true || d["label"] != "Client ID" {
		t.Errorf("client_id = %v", d)
	}

	tests := []struct {
		name   string
		body   map[string]any
		want   int
		fields []string
	}{
		{"bad key", map[string]any{"key": "Client-ID"}, 422, []string{"key"}},
		{"no key", map[string]any{"label": "x"}, 422, []string{"key"}},
		{"bad level", map[string]any{"key": "x", "level": "team"}, 422, []string{"level"}},
		{"bad pattern", map[string]any{"key": "x", "pattern": "a("}, 422, []string{"pattern"}},
		{"secret default", map[string]any{"key": "x", "secret": true, "default": "hunter2"}, 422, []string{"default"}},
		{"default fails pattern", map[string]any{"key": "x", "pattern": "[0-9]+", "default": "abc"}, 422, []string{"default"}},
		{"taken key", map[string]any{"key": "client_id"}, 409, []string{"key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := e.must(tt.want, "POST", "/v1/apps/acme/settings", e.key, tt.body)
			wantFields(t, p, tt.fields...)
			if strings.Contains(string(e.output()), "hunter2") {
				t.Error("a secret default was echoed")
			}
		})
	}

	got := e.must(200, "PATCH", "/v1/apps/acme/settings/region", e.key, map[string]any{"label": "Data region", "pattern": "", "position": 0})
	if got["label"] != "Data region" || got["pattern"] != nil || got["position"] != float64(0) {
		t.Errorf("PATCH region = %v", got)
	}
	p := e.must(422, "PATCH", "/v1/apps/acme/settings/region", e.key, map[string]any{"key": "zone", "level": "user"})
	wantFields(t, p, "key", "level")
	e.must(404, "PATCH", "/v1/apps/acme/settings/nope", e.key, map[string]any{"label": "x"})
	e.must(204, "DELETE", "/v1/apps/acme/settings/region", e.key, nil)
	e.must(404, "GET", "/v1/apps/acme/settings/region", e.key, nil)
}

func TestInstallAndValues(t *testing.T) {
	e := newEnv(t)
	appID := setupApp(e)

	prompt := e.must(200, "GET", "/v1/apps/acme/install-prompt", e.key, nil)
	fields := prompt["fields"].([]any)
	if len(fields) != 4 {
		t.Fatalf("prompt has %d fields, want the 4 organization-level ones: %v", len(fields), fields)
	}
	first, third := fields[0].(map[string]any), fields[2].(map[string]any)
	if first["key"] != "client_id" || first["label"] != "Client ID" || first["required"] != true || first["description"] != "From the provider console" {
		t.Errorf("first prompt field = %v", first)
	}
	if third["key"] != "subdomain" || third["default"] != "www" {
		t.Errorf("third prompt field = %v", third)
	}

	// Every problem at once, and nothing stored.
	p := e.must(422, "POST", "/v1/installations", e.key, map[string]any{
		"app_id": "acme", "organization_id": "org-1",
		"values": map[string]string{"subdomain": "NOT VALID", "colour": "red", "access_token": "t"},
	})
	wantFields(t, p, "values.client_id", "values.client_secret", "values.subdomain", "values.colour", "values.access_token")
	if strings.Contains(string(e.output()), "NOT VALID") {
		t.Error("a rejected value was echoed")
	}
	if n := len(e.must(200, "GET", "/v1/installations", e.key, nil)["installations"].([]any)); n != 0 {
		t.Fatalf("a failed install stored %d installations", n)
	}
	p = e.must(422, "POST", "/v1/installations", e.key, map[string]any{"app_id": "acme", "organization_id": "", "values": map[string]string{}})
	wantFields(t, p, "organization_id")
	p = e.must(422, "POST", "/v1/installations", e.key, map[string]any{"organization_id": "org-1"})
	wantFields(t, p, "app_id")
	e.must(404, "POST", "/v1/installations", e.key, map[string]any{"app_id": "nope", "organization_id": "org-1"})

	inst := e.must(201, "POST", "/v1/installations", e.key, map[string]any{
		"app_id": appID, "organization_id": "org-1",
		"values": map[string]string{"client_id": "cid-123", "client_secret": "cs-secret-value"},
	})
	instID := inst["id"].(string)
	byKey := settingsByKey(t, inst["settings"])
	if v := byKey["client_id"]; v["value"] != "cid-123" || v["set"] != true || v["source"] != "stored" {
		t.Errorf("client_id = %v", v)
	}
	if v := byKey["client_secret"]; v["set"] != true || v["secret"] != true || v["value"] != nil {
		t.Errorf("client_secret = %v, want set and no value", v)
	}
	if v := byKey["subdomain"]; v["value"] != "www" || v["source"] != "default" || v["set"] != false {
		t.Errorf("subdomain = %v, want the default", v)
	}
	if v := byKey["region"]; v["source"] != "none" || v["value"] != nil {
		t.Errorf("region = %v, want unset", v)
	}

	e.must(409, "POST", "/v1/installations", e.key, map[string]any{
		"app_id": "acme", "organization_id": "org-1",
		"values": map[string]string{"client_id": "x", "client_secret": "y"},
	})
	e.must(200, "GET", "/v1/installations/"+instID, e.key, nil)
	list := e.must(200, "GET", "/v1/installations?app_id=acme&organization_id=org-1", e.key, nil)["installations"].([]any)
	if len(list) != 1 {
		t.Errorf("filtered list has %d installations, want 1", len(list))
	}
	if n := len(e.must(200, "GET", "/v1/installations?organization_id=org-2", e.key, nil)["installations"].([]any)); n != 0 {
		t.Errorf("org-2 has %d installations, want 0", n)
	}

	// Organization values change later, all or nothing.
	got := e.must(200, "PATCH", "/v1/installations/"+instID+"/settings", e.key, map[string]any{
		"values": map[string]any{"region": "eu", "subdomain": "acme"},
	})
	byKey = settingsByKey(t, got["settings"])
	if byKey["region"]["value"] != "eu" || byKey["subdomain"]["value"] != "acme" {
		t.Errorf("after PATCH: %v", got)
	}
	p = e.must(422, "PATCH", "/v1/installations/"+instID+"/settings", e.key, map[string]any{
		"values": map[string]any{"client_id": nil, "region": "mars", "subdomain": "ok"},
	})
	wantFields(t, p, "values.client_id", "values.region")
	byKey = settingsByKey(t, e.must(200, "GET", "/v1/installations/"+instID+"/settings", e.key, nil)["settings"])
	if byKey["subdomain"]["value"] != "acme" || byKey["client_id"]["value"] != "cid-123" {
		t.Errorf("a rejected PATCH changed values: %v", byKey)
	}
	got = e.must(200, "PATCH", "/v1/installations/"+instID+"/settings", e.key, map[string]any{"values": map[string]any{"region": nil}})
	if settingsByKey(t, got["settings"])["region"]["set"] != false {
		t.Error("null did not remove region")
	}

	// User values.
	userPath := "/v1/installations/" + instID + "/users/user%2F42/settings"
	got = e.must(200, "GET", userPath, e.key, nil)
	if got["user_id"] != "user/42" {
		t.Errorf("user_id = %v, want user/42", got["user_id"])
	}
	got = e.must(200, "PATCH", userPath, e.key, map[string]any{"values": map[string]any{"access_token": "at-1", "account_name": "Jo"}})
	byKey = settingsByKey(t, got["settings"])
	if byKey["access_token"]["set"] != true || byKey["access_token"]["value"] != nil || byKey["account_name"]["value"] != "Jo" {
		t.Errorf("user values = %v", byKey)
	}
	p = e.must(422, "PATCH", userPath, e.key, map[string]any{"values": map[string]any{"client_id": "x", "nope": "y"}})
	wantFields(t, p, "values.client_id", "values.nope")
	other := e.must(200, "GET", "/v1/installations/"+instID+"/users/someone-else/settings", e.key, nil)
	if settingsByKey(t, other["settings"])["account_name"]["set"] != false {
		t.Error("another user sees this user's values")
	}

	e.must(204, "DELETE", "/v1/installations/"+instID, e.key, nil)
	e.must(404, "GET", "/v1/installations/"+instID, e.key, nil)
	e.must(404, "GET", userPath, e.key, nil)
}

func settingsByKey(t *testing.T, v any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, item := range v.([]any) {
		m := item.(map[string]any)
		out[m["key"].(string)] = m
	}
	return out
}

func TestDeletesThatWouldLoseValues(t *testing.T) {
	e := newEnv(t)
	setupApp(e)
	inst := e.must(201, "POST", "/v1/installations", e.key, map[string]any{
		"app_id": "acme", "organization_id": "org-1",
		"values": map[string]string{"client_id": "a", "client_secret": "b"},
	})
	id := inst["id"].(string)
	e.must(200, "PATCH", "/v1/installations/"+id+"/users/u1/settings", e.key, map[string]any{"values": map[string]any{"access_token": "t"}})

	e.must(409, "DELETE", "/v1/apps/acme", e.key, nil)
	e.must(409, "DELETE", "/v1/apps/acme/settings/access_token", e.key, nil)
	e.must(409, "PATCH", "/v1/apps/acme/settings/access_token", e.key, map[string]any{"secret": false})
	e.must(400, "DELETE", "/v1/apps/acme/settings/access_token?delete_values=maybe", e.key, nil)
	e.must(204, "DELETE", "/v1/apps/acme/settings/access_token?delete_values=true", e.key, nil)
	byKey := settingsByKey(t, e.must(200, "GET", "/v1/installations/"+id+"/users/u1/settings", e.key, nil)["settings"])
	if _, ok := byKey["access_token"]; ok {
		t.Error("access_token still listed after delete")
	}
	// A setting without values goes without asking.
	e.must(204, "DELETE", "/v1/apps/acme/settings/refresh_token", e.key, nil)

	e.must(204, "DELETE", "/v1/installations/"+id, e.key, nil)
	e.must(204, "DELETE", "/v1/apps/acme", e.key, nil)
}

// TestTenantIsolation checks another account's key sees none of acme's
// things, and gets 404, not 403, so ids do not even leak their existence.
func TestTenantIsolation(t *testing.T) {
	e := newEnv(t)
	appID := setupApp(e)
	inst := e.must(201, "POST", "/v1/installations", e.key, map[string]any{
		"app_id": "acme", "organization_id": "org-1",
		"values": map[string]string{"client_id": "a", "client_secret": "b"},
	})
	id := inst["id"].(string)
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/apps/" + appID},
		{"GET", "/v1/apps/acme"},
		{"PATCH", "/v1/apps/acme"},
		{"DELETE", "/v1/apps/acme"},
		{"GET", "/v1/apps/acme/settings"},
		{"POST", "/v1/apps/acme/settings"},
		{"GET", "/v1/apps/acme/settings/client_id"},
		{"PATCH", "/v1/apps/acme/settings/client_id"},
		{"DELETE", "/v1/apps/acme/settings/client_id"},
		{"GET", "/v1/apps/acme/install-prompt"},
		{"GET", "/v1/installations/" + id},
		{"DELETE", "/v1/installations/" + id},
		{"GET", "/v1/installations/" + id + "/settings"},
		{"PATCH", "/v1/installations/" + id + "/settings"},
		{"GET", "/v1/installations/" + id + "/users/u1/settings"},
		{"PATCH", "/v1/installations/" + id + "/users/u1/settings"},
		{"GET", "/v1/installations?app_id=acme"},
	} {
		var body any
		switch c.method {
		case "POST":
			body = map[string]any{"key": "stolen"}
		case "PATCH":
			body = map[string]any{}
		}
		e.must(404, c.method, c.path, e.other, body)
	}
	e.must(404, "POST", "/v1/installations", e.other, map[string]any{"app_id": appID, "organization_id": "org-9"})
	if n := len(e.must(200, "GET", "/v1/apps", e.other, nil)["apps"].([]any)); n != 0 {
		t.Errorf("globex lists %d apps", n)
	}
	if n := len(e.must(200, "GET", "/v1/installations", e.other, nil)["installations"].([]any)); n != 0 {
		t.Errorf("globex lists %d installations", n)
	}
	// Nothing changed for acme.
	e.must(200, "GET", "/v1/apps/acme/settings/client_id", e.key, nil)
	e.must(200, "GET", "/v1/installations/"+id, e.key, nil)
}

// TestRevokeKey: an account lists its keys without the keys themselves and
// revokes one; another account's key is not found.
func TestRevokeKey(t *testing.T) {
	e := newEnv(t)
	second := e.newKey("acme")
	if r := e.call("GET", "/v1/apps", second, nil); r.status != 200 {
		t.Fatalf("the second key: %d", r.status)
	}
	keys := e.must(200, "GET", "/v1/keys", e.key, nil)["keys"].([]any)
	if len(keys) != 2 || strings.Contains(fmt.Sprint(keys), second) {
		t.Fatalf("keys = %v", keys)
	}
	id := keys[1].(map[string]any)["id"].(string)
	e.must(404, "DELETE", "/v1/keys/"+id, e.other, nil)
	e.must(204, "DELETE", "/v1/keys/"+id, e.key, nil)
	if r := e.call("GET", "/v1/apps", second, nil); r.status != http.StatusUnauthorized {
		t.Errorf("a revoked key: %d", r.status)
	}
	e.must(404, "DELETE", "/v1/keys/"+id, e.key, nil)
	e.must(200, "GET", "/v1/apps", e.key, nil)
}

// TestSettingTypes: url and host settings take only values of their type,
// checked at install and on every change, with a message that never quotes
// the value.
func TestSettingTypes(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": "Acme", "slug": "acme"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "api_domain", "type": "url"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "looker_host", "type": "host"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "plain"})
	wantFields(t, e.must(422, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "x", "type": "url", "default": "ftp://x"}), "default")
	if got := e.must(200, "GET", "/v1/apps/acme/settings/plain", e.key, nil)["type"]; got != "string" {
		t.Errorf("default type = %v", got)
	}
	if got := e.must(200, "GET", "/v1/apps/acme/install-prompt", e.key, nil)["fields"].([]any)[0].(map[string]any)["type"]; got != "url" {
		t.Errorf("the prompt's type = %v", got)
	}
	for _, bad := range []map[string]string{
		{"api_domain": "api.example.com"},
		{"api_domain": "https://api.example.com/v1?x=1"},
		{"api_domain": "https://user:pw@api.example.com"},
		{"api_domain": "https://api.example.com/#frag"},
		{"looker_host": "looker.example.com:99999"},
		{"looker_host": "https://looker.example.com"},
		{"looker_host": "bad host"},
	} {
		p := e.must(422, "POST", "/v1/installations", e.key, map[string]any{"app_id": "acme", "organization_id": "org-1", "values": bad})
		for k, v := range bad {
			wantFields(t, p, "values."+k)
			if strings.Contains(fmt.Sprint(p), v) {
				t.Errorf("the problem quotes the value %q", v)
			}
		}
	}
	inst := e.must(201, "POST", "/v1/installations", e.key, map[string]any{"app_id": "acme", "organization_id": "org-1",
		"values": map[string]string{"api_domain": "https://api.eu.example.com/v1", "looker_host": "looker.example.com:19999", "plain": "anything at all"}})
	id := inst["id"].(string)
	for _, ok := range []string{"10.0.0.1:8080", "[2001:db8::1]:443", "2001:db8::1", "example.com"} {
		e.must(200, "PATCH", "/v1/installations/"+id+"/settings", e.key, map[string]any{"values": map[string]any{"looker_host": ok}})
	}
	e.must(422, "PATCH", "/v1/installations/"+id+"/settings", e.key, map[string]any{"values": map[string]any{"api_domain": "not a url"}})
	// The type cannot change under stored values.
	e.must(409, "PATCH", "/v1/apps/acme/settings/api_domain", e.key, map[string]any{"type": "string"})
}
