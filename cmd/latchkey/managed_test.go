package main

import (
	"net/url"
	"strings"
	"testing"
)

// TestManagedSetting: the organization-level setting that receives a
// client-credentials token is managed: never asked of installers (API
// prompt and hosted page), refused when they send it, shown to readers as
// set or not, and filled by Latchkey with the provider's token.
func TestManagedSetting(t *testing.T) {
	e := newEnv(t)
	a := newHostedApp(t, e, "")
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "app_token", "label": "App token", "secret": true, "visibility": "managed"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "app_user", "visibility": "managed"})
	wantFields(t, e.must(422, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "bad1", "visibility": "managed", "default": "x"}), "default")
	wantFields(t, e.must(422, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "bad2", "visibility": "managed", "required": true}), "required")

	// A token target: access_token_setting and mappings.
	cc := e.must(201, "POST", "/v1/apps/acme/oauth-configs", e.key, map[string]any{
		"name": "service", "grant_type": "client_credentials", "token_url": a.p.TokenURL(),
		"client_auth": "basic", "scopes": []string{"read"}, "access_token_setting": "app_token",
		"mappings": []map[string]string{{"path": "$.token_type", "setting": "app_user"}},
	})

	for _, f := range e.must(200, "GET", "/v1/apps/acme/install-prompt", e.key, nil)["fields"].([]any) {
		if k := f.(map[string]any)["key"]; k == "app_token" || k == "app_user" {
			t.Errorf("the install prompt asks for %v", k)
		}
	}
	b := newPage(e)
	link := a.installLink("org-42", "")
	r := b.get(link)
	if doc := unescaped(r); strings.Contains(doc, "app_token") || strings.Contains(doc, "App token") {
		t.Error("the hosted install page asks for the managed setting")
	}
	// A crafted form field is not taken: the install would be a 422.
	r = b.post(link, url.Values{"_csrf": {csrf(t, r)}, "client_id": {testClientID}, "client_secret": {testClientSecret}, "app_token": {"installer-canary"}})
	if r.status >= 400 {
		t.Fatalf("install: %d\n%s", r.status, r.body)
	}

	wantFields(t, e.must(422, "POST", "/v1/installations", e.key, map[string]any{"app_id": "acme", "organization_id": "org-api",
		"values": map[string]string{"client_id": testClientID, "client_secret": testClientSecret, "app_token": "x"}}), "values.app_token")
	inst := e.must(201, "POST", "/v1/installations", e.key, map[string]any{"app_id": "acme", "organization_id": "org-api",
		"values": map[string]string{"client_id": testClientID, "client_secret": testClientSecret}})
	instID := inst["id"].(string)
	wantFields(t, e.must(422, "PATCH", "/v1/installations/"+instID+"/settings", e.key,
		map[string]any{"values": map[string]any{"app_user": "x", "app_token": nil}}), "values.app_token", "values.app_user")

	// Latchkey stores the provider's token and mapped value in them.
	e.must(200, "POST", "/v1/installations/"+instID+"/oauth-configs/"+cc["id"].(string)+"/token", e.key, map[string]any{})
	res, err := e.resolveInst(instID, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Values["app_token"] == "" || res.Values["app_user"] == "" {
		t.Fatalf("after the token request: app_token set %v, app_user %q", res.Values["app_token"] != "", res.Values["app_user"])
	}
	vals := e.must(200, "GET", "/v1/installations/"+instID+"/settings", e.key, nil)["settings"].([]any)
	seen := 0
	for _, v := range vals {
		m := v.(map[string]any)
		if k := m["key"]; k == "app_token" || k == "app_user" {
			seen++
			if m["set"] != true || m["managed"] != true || m["value"] != nil {
				t.Errorf("value of managed %v = %v", k, m)
			}
		}
	}
	if seen != 2 {
		t.Errorf("%d managed settings in the values, want 2: %v", seen, vals)
	}
}
