package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestOAuthConfigValidation(t *testing.T) {
	e := newEnv(t)
	setupApp(e)
	base := func(extra map[string]any) map[string]any {
		m := map[string]any{
			"name":                 "p",
			"link_url":             "https://provider.example/authorize?client_id=<<client_id>>&state=<<state>>",
			"token_url":            "https://provider.example/token",
			"access_token_setting": "access_token",
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name   string
		body   map[string]any
		fields []string
		pos    map[string]float64
	}{
		{"unknown variable", base(map[string]any{"link_url": "https://p.example/a?x=<<nope>>"}), []string{"link_url"}, map[string]float64{"link_url": 22}},
		{"broken JSON body", base(map[string]any{"body_format": "json", "token_body": `{"code": "<<auth_code>>",}`}), []string{"token_body"}, nil},
		{"placeholder outside a JSON string", base(map[string]any{"body_format": "json", "token_body": `{"n": <<auth_code>>}`}), []string{"token_body"}, nil},
		{"bad JSONPath", base(map[string]any{"access_token_path": "$.a[?(", "mappings": []map[string]string{{"path": "nope", "setting": "account_name"}}}), []string{"access_token_path", "mappings[0].path"}, nil},
		{"token setting not user-level", base(map[string]any{"access_token_setting": "client_id", "refresh_token_setting": "missing"}), []string{"access_token_setting", "refresh_token_setting"}, nil},
		{"no token setting", base(map[string]any{"access_token_setting": ""}), []string{"access_token_setting"}, nil},
		{"header injection", base(map[string]any{"headers": map[string]string{"X-A": "a\r\nX-B: b", "Host": "evil", "Bad Name": "x"}}), []string{"headers.X-A", "headers.Host", "headers.Bad Name"}, nil},
		{"enums", base(map[string]any{"grant_type": "implicit", "client_auth": "jwt", "pkce": "plain", "body_format": "xml"}), []string{"grant_type", "client_auth", "pkce", "body_format"}, nil},
		{"client credentials with user tokens and a link", base(map[string]any{"grant_type": "client_credentials"}), []string{"link_url", "access_token_setting"}, nil},
		{"refresh_token grant without its setting", base(map[string]any{"grant_type": "refresh_token", "link_url": ""}), []string{"refresh_token_setting"}, nil},
		{"refresh tuning", base(map[string]any{"refresh_margin_seconds": -1, "default_expires_in": 5, "expired_statuses": []int{200}, "expired_body_path": "nope"}),
			[]string{"refresh_margin_seconds", "default_expires_in", "expired_statuses[0]", "expired_body_path"}, nil},
		{"required", map[string]any{"name": "x"}, []string{"link_url", "token_url", "access_token_setting"}, nil},
		{"malformed tag", base(map[string]any{"token_url": "https://p.example/<<Bad>>"}), []string{"token_url"}, map[string]float64{"token_url": 18}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := e.must(422, "POST", "/v1/apps/acme/oauth-configs", e.key, tt.body)
			wantFields(t, p, tt.fields...)
			for _, item := range p["errors"].([]any) {
				m := item.(map[string]any)
				if want, ok := tt.pos[m["field"].(string)]; ok && m["position"] != want {
					t.Errorf("%s: position %v, want %v (%s)", m["field"], m["position"], want, m["message"])
				}
			}
		})
	}

	// A setting the developer fixed cannot receive tokens.
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "fixed_token", "level": "user", "visibility": "read_only", "default": "x"})
	wantFields(t, e.must(422, "POST", "/v1/apps/acme/oauth-configs", e.key, base(map[string]any{"access_token_setting": "fixed_token"})), "access_token_setting")

	c := e.must(201, "POST", "/v1/apps/acme/oauth-configs", e.key, base(map[string]any{"client_auth": "basic", "body_format": "json"}))
	if body := c["token_body"].(string); !strings.Contains(body, `"code":"<<auth_code>>"`) || strings.Contains(body, "client_secret") {
		t.Errorf("default JSON token body for basic auth = %s", body)
	}
	e.must(409, "POST", "/v1/apps/acme/oauth-configs", e.key, base(nil))
	id := c["id"].(string)
	got := e.must(200, "PATCH", "/v1/apps/acme/oauth-configs/"+id, e.key, map[string]any{"scopes": []string{"a", "b"}, "scope_separator": ","})
	if got["scope_separator"] != "," || len(got["scopes"].([]any)) != 2 || got["client_auth"] != "basic" {
		t.Errorf("PATCH = %v", got)
	}
	e.must(422, "PATCH", "/v1/apps/acme/oauth-configs/"+id, e.key, map[string]any{"token_url": ""})
	e.must(200, "GET", "/v1/apps/acme/oauth-configs/"+id, e.key, nil)
	if n := len(e.must(200, "GET", "/v1/apps/acme/oauth-configs", e.key, nil)["oauth_configs"].([]any)); n != 1 {
		t.Errorf("list has %d configs", n)
	}
	e.must(404, "GET", "/v1/apps/acme/oauth-configs/"+id, e.other, nil)
	e.must(204, "DELETE", "/v1/apps/acme/oauth-configs/"+id, e.key, nil)
	e.must(404, "GET", "/v1/apps/acme/oauth-configs/"+id, e.key, nil)
}

func TestExplainAndTestExtraction(t *testing.T) {
	e := newEnv(t)
	setupApp(e)
	secret := canary(t)
	inst := e.must(201, "POST", "/v1/installations", e.key, map[string]any{
		"app_id": "acme", "organization_id": "org-1",
		"values": map[string]string{"client_id": "cid-1", "client_secret": secret},
	})
	c := e.must(201, "POST", "/v1/apps/acme/oauth-configs", e.key, map[string]any{
		"name":                 "p",
		"link_url":             "https://<<subdomain>>.provider.example/authorize?client_id=<<client_id>>&scope=<<scope>>",
		"token_url":            "https://<<subdomain>>.provider.example/token",
		"access_token_setting": "access_token",
		"scopes":               []string{"read", "write"},
		"headers":              map[string]string{"X-Region": "<<region>>"},
		"mappings":             []map[string]string{{"path": "$.user.name", "setting": "account_name"}},
	})
	path := "/v1/apps/acme/oauth-configs/" + c["id"].(string)
	x := e.must(200, "POST", path+"/explain", e.key, map[string]any{"installation_id": inst["id"], "user_id": "u1"})
	link, _ := x["link_url"].(string)
	if !strings.HasPrefix(link, "https://www.provider.example/authorize?") || !strings.Contains(link, "client_id=cid-1") ||
		!strings.Contains(link, "state=STATE") || !strings.Contains(link, "code_challenge_method=S256") || !strings.Contains(link, "scope=read+write") {
		t.Errorf("link_url = %q", link)
	}
	if _, ok := x["token_request"]; ok {
		t.Error("token_request rendered although region has no value")
	}
	problems := x["problems"].([]any)
	if len(problems) == 0 || !strings.Contains(problems[0].(string), "<<region>>") {
		t.Errorf("problems = %v, want one naming <<region>>", problems)
	}
	vars := map[string]map[string]any{}
	for _, v := range x["variables"].([]any) {
		m := v.(map[string]any)
		vars[m["name"].(string)] = m
	}
	if vars["subdomain"]["source"] != "default" || vars["client_id"]["source"] != "organization" || vars["region"]["source"] != "missing" ||
		vars["client_secret"]["secret"] != true || vars["client_secret"]["value"] != nil || vars["scope"]["value"] != "read write" {
		t.Errorf("variables = %v", vars)
	}
	e.must(200, "PATCH", "/v1/installations/"+inst["id"].(string)+"/settings", e.key, map[string]any{"values": map[string]any{"region": "eu"}})
	x = e.must(200, "POST", path+"/explain", e.key, map[string]any{"installation_id": inst["id"], "user_id": "u1"})
	tr := x["token_request"].(map[string]any)
	if body := tr["body"].(string); !strings.Contains(body, "client_secret=****") || !strings.Contains(body, "code=****") {
		t.Errorf("token body = %s", body)
	}
	if strings.Contains(e.output(), secret) {
		t.Error("explain shows the client secret")
	}

	got := e.must(200, "POST", path+"/test-extraction", e.key, map[string]any{
		"response":       map[string]any{"access_token": "abcdefghijklmnop", "expires_in": "60", "user": map[string]any{"name": "Jo"}},
		"callback_query": map[string]string{"code": "the-code-123", "state": "s"},
	})
	if got["access_token"] != "abcd**** (16 characters)" || got["expires_in"] != float64(60) || got["extra"].(map[string]any)["account_name"] != "Jo" || got["auth_code"] != "the-**** (12 characters)" {
		t.Errorf("test-extraction = %v", got)
	}
	p := e.must(422, "POST", path+"/test-extraction", e.key, map[string]any{"response": map[string]any{"token": "x"}})
	if !strings.Contains(p["errors"].([]any)[0].(map[string]any)["message"].(string), "$.access_token") {
		t.Errorf("missing token problem = %v", p)
	}
	e.must(422, "POST", path+"/test-extraction", e.key, map[string]any{"response": "<html>"})
	e.must(404, "POST", path+"/explain", e.key, map[string]any{"installation_id": "01a207fa-3fb6-7861-a9fd-110be34ab354", "user_id": "u1"})
}

// TestAnswersKeepTemplatesReadable checks that JSON answers send <<var>>
// templates and URLs with & as written, not HTML-escaped.
func TestAnswersKeepTemplatesReadable(t *testing.T) {
	e := newEnv(t)
	setupApp(e)
	r := e.call("POST", "/v1/apps/acme/oauth-configs", e.key, map[string]any{
		"name":                 "p",
		"link_url":             "https://provider.example/authorize?client_id=<<client_id>>&state=<<state>>",
		"token_url":            "https://provider.example/token",
		"access_token_setting": "access_token",
	})
	if r.status != 201 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	want := `"link_url":"https://provider.example/authorize?client_id=<<client_id>>&state=<<state>>"`
	if !strings.Contains(string(r.body), want) {
		t.Errorf("answer does not hold %s:\n%s", want, r.body)
	}
	// Problems too.
	p := e.call("POST", "/v1/apps/acme/oauth-configs", e.key, map[string]any{"name": "q", "link_url": "https://p.example/a?x=<<nope>>"})
	if strings.Contains(string(p.body), `\u003c`) || strings.Contains(string(p.body), `\u0026`) {
		t.Errorf("problem is HTML-escaped:\n%s", p.body)
	}
}

// TestExplainClientCredentials: a grant without a link or a refresh is
// explained without them, and without a problem about them.
func TestExplainClientCredentials(t *testing.T) {
	e := newEnv(t)
	setupApp(e)
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "service_token", "secret": true})
	cfg := e.must(201, "POST", "/v1/apps/acme/oauth-configs", e.key, map[string]any{"name": "svc", "grant_type": "client_credentials",
		"token_url": "https://p.example/token", "access_token_setting": "service_token"})
	inst := e.must(201, "POST", "/v1/installations", e.key, map[string]any{"app_id": "acme", "organization_id": "org-1",
		"values": map[string]string{"client_id": "cid", "client_secret": "s3cret-value"}})
	got := e.must(200, "POST", "/v1/apps/acme/oauth-configs/"+cfg["id"].(string)+"/explain", e.key, map[string]any{"installation_id": inst["id"]})
	if problems, _ := got["problems"].([]any); len(problems) != 0 {
		t.Errorf("problems = %v", problems)
	}
	if got["refresh_request"] != nil {
		t.Errorf("a refresh request that is never sent: %v", got["refresh_request"])
	}
	if got["token_request"] == nil || strings.Contains(fmt.Sprint(got), "s3cret-value") {
		t.Errorf("token request = %v", got["token_request"])
	}
}
