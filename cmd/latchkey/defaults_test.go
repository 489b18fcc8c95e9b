package main

import (
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/oauthtest"
)

// TestDefaultBodiesFollowTheConfig: a default body is computed when it is
// used, so changing pkce, client_auth or grant_type changes it, while a
// body the developer wrote stays as written until it is emptied again.
func TestDefaultBodiesFollowTheConfig(t *testing.T) {
	e := newEnv(t)
	setupApp(e)
	c := e.must(201, "POST", "/v1/apps/acme/oauth-configs", e.key, map[string]any{
		"name": "p", "link_url": "https://provider.example/authorize?client_id=<<client_id>>",
		"token_url": "https://provider.example/token", "access_token_setting": "access_token",
		"refresh_token_setting": "refresh_token",
	})
	path := "/v1/apps/acme/oauth-configs/" + c["id"].(string)
	if body := c["token_body"].(string); !strings.Contains(body, "code_verifier=<<code_verifier>>") {
		t.Fatalf("default token body with PKCE = %s", body)
	}
	c = e.must(200, "PATCH", path, e.key, map[string]any{"pkce": "off"})
	if body := c["token_body"].(string); strings.Contains(body, "code_verifier") {
		t.Errorf("token body after pkce off = %s", body)
	}
	c = e.must(200, "PATCH", path, e.key, map[string]any{"client_auth": "basic"})
	if body := c["token_body"].(string); strings.Contains(body, "client_secret") || strings.Contains(c["refresh_body"].(string), "client_secret") {
		t.Errorf("bodies after client_auth basic = %s, %s", body, c["refresh_body"])
	}
	written := "grant_type=authorization_code&code=<<auth_code>>&code_verifier=<<code_verifier>>"
	e.must(200, "PATCH", path, e.key, map[string]any{"token_body": written})
	c = e.must(200, "PATCH", path, e.key, map[string]any{"pkce": "S256", "client_auth": "body"})
	if c["token_body"] != written {
		t.Errorf("a written body changed with pkce: %s", c["token_body"])
	}
	c = e.must(200, "PATCH", path, e.key, map[string]any{"token_body": ""})
	if body := c["token_body"].(string); !strings.Contains(body, "client_secret=<<client_secret>>") || !strings.Contains(body, "code_verifier") {
		t.Errorf("token body back to the default = %s", body)
	}
}

// TestPastedCodeAfterPKCEOff: a config created with PKCE and then switched
// off exchanges a pasted code, which has no verifier.
func TestPastedCodeAfterPKCEOff(t *testing.T) {
	e := newEnv(t)
	p := newProvider(t, e, oauthtest.AuthBasic)
	f := newFlowApp(t, e, providerConfig(p, "basic"))
	e.must(200, "PATCH", "/v1/apps/acme/oauth-configs/"+f.configID, e.key, map[string]any{"pkce": "off"})
	path := "/v1/installations/" + f.instID + "/oauth-configs/" + f.configID
	e.must(200, "POST", path+"/code", e.key, map[string]any{"code": pastedCode(t, e, p), "user_id": "user-1"})
}

// TestClientCredentialsOwnBody: a client_credentials config never sends a
// refresh request, so the default refresh body's <<client_id>> does not
// make the app need a client_id setting.
func TestClientCredentialsOwnBody(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": "Acme", "slug": "acme"})
	for _, d := range []map[string]any{
		{"key": "api_key", "secret": true},
		{"key": "service_token", "secret": true},
	} {
		e.must(201, "POST", "/v1/apps/acme/settings", e.key, d)
	}
	cfg := map[string]any{
		"name": "cc", "grant_type": "client_credentials", "token_url": "https://provider.example/token",
		"access_token_setting": "service_token", "token_body": "grant_type=client_credentials&key=<<api_key>>",
	}
	e.must(201, "POST", "/v1/apps/acme/oauth-configs", e.key, cfg)
	// The default token body still needs client_id: that one is sent.
	delete(cfg, "token_body")
	cfg["name"] = "cc2"
	wantFields(t, e.must(422, "POST", "/v1/apps/acme/oauth-configs", e.key, cfg), "token_body")
}

// TestFlowVariableKeys: a setting named like a flow variable would be
// shadowed in every template, so it is refused when it is defined;
// refresh_token, the usual setting for the refresh token, is not.
func TestFlowVariableKeys(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": "Acme", "slug": "acme"})
	for _, k := range []string{"redirect_uri", "state", "scope", "code_verifier", "code_challenge", "auth_code"} {
		p := e.must(422, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": k})
		wantFields(t, p, "key")
		if !strings.Contains(string(mustJSON(t, p)), "flow variable") {
			t.Errorf("%s: %v", k, p)
		}
	}
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "refresh_token", "level": "user", "secret": true})
}
