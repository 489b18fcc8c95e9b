package main

import (
	"html"
	"net/url"
	"strings"
	"testing"
)

// usedSettingsApp is setupApp's app with an OAuth config and an API that
// use most of its settings, installed with a region stored.
func usedSettingsApp(t *testing.T, e *env) (configID, instID string) {
	t.Helper()
	setupApp(e)
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "spare"})
	c := e.must(201, "POST", "/v1/apps/acme/oauth-configs", e.key, map[string]any{
		"name":                  "crm-login",
		"link_url":              "https://<<subdomain>>.provider.example/authorize?client_id=<<client_id>>&state=<<state>>",
		"token_url":             "https://<<subdomain>>.provider.example/token",
		"access_token_setting":  "access_token",
		"refresh_token_setting": "refresh_token",
		"headers":               map[string]string{"X-Region": "<<region>>"},
		"mappings":              []map[string]string{{"path": "$.user.name", "setting": "account_name"}},
	})
	configID = c["id"].(string)
	e.must(201, "POST", "/v1/apps/acme/apis", e.key, map[string]any{
		"name": "crm", "base_url": "https://<<subdomain>>.provider.example/api", "config_id": configID,
		"headers": map[string]string{"Authorization": "Bearer <<access_token>>"},
		"query":   map[string]string{"region": "<<region>>"},
	})
	inst := e.must(201, "POST", "/v1/installations", e.key, map[string]any{
		"app_id": "acme", "organization_id": "org-1",
		"values": map[string]string{"client_id": "cid", "client_secret": "cs", "region": "eu"},
	})
	return configID, inst["id"].(string)
}

// TestDeleteUsedSetting: a setting that an OAuth config or an API uses is
// not deleted, whatever delete_values says; the answer names each of them
// and the fields that use it, so the developer knows what to change first.
func TestDeleteUsedSetting(t *testing.T) {
	e := newEnv(t)
	configID, instID := usedSettingsApp(t, e)
	for _, tt := range []struct {
		key  string
		want []string // in the detail
	}{
		{"subdomain", []string{`OAuth config "crm-login" (link_url, token_url)`, `API "crm" (base_url)`}},
		// client_id and client_secret are in the default token and
		// refresh bodies the config's fields make (see Config.Body).
		{"client_id", []string{`OAuth config "crm-login" (link_url, token_body, refresh_body)`}},
		{"client_secret", []string{`OAuth config "crm-login" (token_body, refresh_body)`}},
		{"access_token", []string{`OAuth config "crm-login" (access_token_setting)`, `API "crm" (headers.Authorization)`}},
		{"refresh_token", []string{`OAuth config "crm-login" (refresh_token_setting)`}},
		{"account_name", []string{`OAuth config "crm-login" (mappings[0].setting)`}},
		{"region", []string{`OAuth config "crm-login" (headers.X-Region)`, `API "crm" (query.region)`}},
	} {
		t.Run(tt.key, func(t *testing.T) {
			for _, path := range []string{"/v1/apps/acme/settings/" + tt.key, "/v1/apps/acme/settings/" + tt.key + "?delete_values=true"} {
				p := e.must(409, "DELETE", path, e.key, nil)
				detail := p["detail"].(string)
				if !strings.HasPrefix(detail, `setting "`+tt.key+`" is used by `) {
					t.Errorf("DELETE %s: detail %q", path, detail)
				}
				for _, w := range tt.want {
					if !strings.Contains(detail, w) {
						t.Errorf("DELETE %s: detail %q does not say %s", path, detail, w)
					}
				}
				if n := strings.Count(detail, "OAuth config ") + strings.Count(detail, "API "); n != len(tt.want) {
					t.Errorf("DELETE %s: detail %q names %d configs and APIs, want %d", path, detail, n, len(tt.want))
				}
			}
			e.must(200, "GET", "/v1/apps/acme/settings/"+tt.key, e.key, nil)
		})
	}
	// The region refused with delete_values=true kept its value.
	vals := settingsByKey(t, e.must(200, "GET", "/v1/installations/"+instID+"/settings", e.key, nil)["settings"])
	if vals["region"]["value"] != "eu" {
		t.Errorf("region after the refused deletes: %v", vals["region"])
	}

	// An unused setting goes as before; so does the region once neither
	// the config nor the API names it (its value with it).
	e.must(204, "DELETE", "/v1/apps/acme/settings/spare", e.key, nil)
	e.must(200, "PATCH", "/v1/apps/acme/oauth-configs/"+configID, e.key, map[string]any{"headers": map[string]string{}})
	p := e.must(409, "DELETE", "/v1/apps/acme/settings/region?delete_values=true", e.key, nil)
	if d := p["detail"].(string); strings.Contains(d, "OAuth config") || !strings.Contains(d, `API "crm" (query.region)`) {
		t.Errorf("detail after the config let go of region: %q", d)
	}
	e.must(200, "PATCH", "/v1/apps/acme/apis/crm", e.key, map[string]any{"query": map[string]string{}})
	e.must(409, "DELETE", "/v1/apps/acme/settings/region", e.key, nil) // its value is stored
	e.must(204, "DELETE", "/v1/apps/acme/settings/region?delete_values=true", e.key, nil)

	// Another app's config that uses a setting of the same key does not
	// hold this app's back.
	e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": "Other", "slug": "other"})
	e.must(201, "POST", "/v1/apps/other/settings", e.key, map[string]any{"key": "subdomain"})
	e.must(204, "DELETE", "/v1/apps/other/settings/subdomain", e.key, nil)
}

// TestUpdateThatBreaksAConfig: a change to a setting that a config's
// validation would refuse (the url setting that starts a token URL made a
// string, a token setting fixed by the developer) is refused the same
// way, naming the config, the field and why; other changes go through.
func TestUpdateThatBreaksAConfig(t *testing.T) {
	e := newEnv(t)
	setupApp(e)
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "base_url", "type": "url"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "svc_token", "secret": true})
	e.must(201, "POST", "/v1/apps/acme/oauth-configs", e.key, map[string]any{
		"name": "svc", "grant_type": "client_credentials", "token_url": "<<base_url>>/oauth/token",
		"access_token_setting": "svc_token", "client_auth": "basic",
	})
	p := e.must(409, "PATCH", "/v1/apps/acme/settings/base_url", e.key, map[string]any{"type": "string"})
	if d := p["detail"].(string); !strings.Contains(d, `OAuth config "svc" (token_url: starts with <<base_url>>, which must be a setting of type url`) {
		t.Errorf("detail %q", d)
	}
	if d := e.must(200, "GET", "/v1/apps/acme/settings/base_url", e.key, nil); d["type"] != "url" {
		t.Errorf("base_url after the refused change: %v", d)
	}
	p = e.must(409, "PATCH", "/v1/apps/acme/settings/svc_token", e.key, map[string]any{"visibility": "hidden", "default": "s3cret-canary-x1"})
	if d := p["detail"].(string); !strings.Contains(d, `OAuth config "svc" (access_token_setting: setting "svc_token" is fixed by the app developer`) {
		t.Errorf("detail %q", d)
	}
	if strings.Contains(e.output(), "s3cret-canary-x1") {
		t.Error("a refused secret default was echoed")
	}
	e.must(200, "PATCH", "/v1/apps/acme/settings/base_url", e.key, map[string]any{"label": "Region's API", "pattern": "https://.*"})
	// An API uses settings by name only: any change but a delete is fine.
	e.must(201, "POST", "/v1/apps/acme/apis", e.key, map[string]any{"name": "crm", "base_url": "https://api.example/<<region>>"})
	e.must(200, "PATCH", "/v1/apps/acme/settings/region", e.key, map[string]any{"visibility": "hidden", "default": "eu"})
}

// TestConsoleDeleteUsedSetting: the console's delete of a used setting
// says what the API says.
func TestConsoleDeleteUsedSetting(t *testing.T) {
	e := newEnv(t)
	usedSettingsApp(t, e)
	want := e.must(409, "DELETE", "/v1/apps/acme/settings/subdomain", e.key, nil)["detail"].(string)
	b := newConsoleClient(e)
	b.signIn(e.key)
	b.must(b.get("/console/apps/acme/settings/subdomain"), 200, "")
	r := b.must(b.post("/console/apps/acme/settings/subdomain/delete", url.Values{"delete_values": {"true"}}), 409, "")
	// The page writes it as a sentence: "Setting ... first."
	if doc := html.UnescapeString(string(r.body)); !strings.Contains(doc, want[1:]) {
		t.Errorf("the page does not say %q:\n%s", want, doc)
	}
	e.must(200, "GET", "/v1/apps/acme/settings/subdomain", e.key, nil)
}

// TestDeleteSettingOfWebhookSource: a setting that a webhook source
// verifies or routes its events with is not deleted, nor made not secret:
// the source would refuse every event as unverified, or route none.
func TestDeleteSettingOfWebhookSource(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": "Acme", "slug": "acme"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "github_secret", "secret": true, "visibility": "hidden", "default": "gh-webhook-secret-1"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "github_installation_id"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "spare"})
	e.must(201, "POST", "/v1/apps/acme/webhook-sources", e.key, map[string]any{
		"name":         "github",
		"verification": map[string]any{"method": "hmac_sha256", "secret_setting": "github_secret", "signature_header": "X-Hub-Signature-256", "signature_prefix": "sha256="},
		"routing":      map[string]any{"organization": map[string]any{"path": "$.installation.id", "setting": "github_installation_id"}},
	})
	for key, want := range map[string]string{
		"github_secret":          `webhook source "github" (verification.secret_setting)`,
		"github_installation_id": `webhook source "github" (routing.organization.setting)`,
	} {
		p := e.must(409, "DELETE", "/v1/apps/acme/settings/"+key, e.key, nil)
		if detail, _ := p["detail"].(string); !strings.Contains(detail, want) {
			t.Errorf("DELETE %s: detail %q does not say %s", key, detail, want)
		}
	}
	p := e.must(409, "PATCH", "/v1/apps/acme/settings/github_secret", e.key, map[string]any{"secret": false, "default": "shown"})
	if detail, _ := p["detail"].(string); !strings.Contains(detail, `webhook source "github" (verification.secret_setting: must be a secret setting`) {
		t.Errorf("PATCH secret false: detail %q", p["detail"])
	}
	e.must(204, "DELETE", "/v1/apps/acme/settings/spare", e.key, nil)
}
