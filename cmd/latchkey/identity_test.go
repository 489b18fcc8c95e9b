package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/oauthtest"
)

// pastedCode gets an authorization code from the provider's consent page
// without Latchkey, as a developer copying a "self client" code would.
func pastedCode(t *testing.T, e *env, p *oauthtest.Server) string {
	t.Helper()
	q := url.Values{"client_id": {testClientID}, "redirect_uri": {e.url + "/oauth/callback"},
		"response_type": {"code"}, "scope": {"read offline"}, "state": {"pasted-code-state"}}
	back, err := p.Consent(p.AuthorizeURL()+"?"+q.Encode(), true)
	if err != nil {
		t.Fatal(err)
	}
	code := back.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", back)
	}
	return code
}

// TestPastedCodeAndIdentity: a code pasted by hand is exchanged as the
// callback would, the identity request maps the provider's user into
// settings, and "check now" runs it again.
func TestPastedCodeAndIdentity(t *testing.T) {
	e := newEnv(t)
	p := newProvider(t, e, oauthtest.AuthBasic)
	cfg := providerConfig(p, "basic")
	cfg["pkce"] = "off"
	cfg["identity_url"] = p.MeURL()
	cfg["identity_headers"] = map[string]string{"Authorization": "Bearer <<access_token>>"}
	cfg["identity_mappings"] = []map[string]string{{"path": "$.id", "setting": "provider_user"}}
	cfg["log_requests"] = true
	f := newFlowApp(t, e, cfg)
	path := "/v1/installations/" + f.instID + "/oauth-configs/" + f.configID

	wantFields(t, e.must(422, "POST", path+"/code", e.key, map[string]any{"code": "x"}), "user_id")
	wantFields(t, e.must(422, "POST", path+"/code", e.key, map[string]any{"code": " ", "user_id": "user-1"}), "code")
	code := pastedCode(t, e, p)
	got := e.must(200, "POST", path+"/code", e.key, map[string]any{"code": code, "user_id": "user-1"})
	if got["connection"].(map[string]any)["status"] != "connected" || !strings.Contains(got["extracted"].(map[string]any)["access_token"].(string), "****") {
		t.Errorf("pasted code: %v", got)
	}
	v := f.resolve("user-1").Values
	if v["provider_user"] != "alice" || v["access_token"] == "" {
		t.Fatalf("after the pasted code: provider_user=%q", v["provider_user"])
	}
	// Check now: the identity request with the stored token.
	e.must(200, "PATCH", "/v1/installations/"+f.instID+"/users/user-1/settings", e.key,
		map[string]any{"values": map[string]any{"provider_user": "stale"}})
	checked := e.must(200, "POST", path+"/check", e.key, map[string]any{"user_id": "user-1"})
	if checked["identity"].(map[string]any)["provider_user"] != "alice" || f.resolve("user-1").Values["provider_user"] != "alice" {
		t.Errorf("check: %v", checked)
	}
	// The request log keeps identity requests apart from token requests.
	kinds := map[any]int{}
	for _, r := range e.must(200, "GET", "/v1/installations/"+f.instID+"/oauth-requests", e.key, nil)["requests"].([]any) {
		kinds[r.(map[string]any)["kind"]]++
	}
	if kinds["exchange"] != 1 || kinds["identity"] != 2 {
		t.Errorf("request log kinds = %v, want 1 exchange and 2 identity", kinds)
	}

	// The same code again: the provider refuses it, nothing changes.
	r := e.call("POST", path+"/code", e.key, map[string]any{"code": code, "user_id": "user-1"})
	if r.status != http.StatusBadGateway || !strings.Contains(string(r.body), "invalid_grant") {
		t.Errorf("replayed code: %d %s", r.status, r.body)
	}
	if f.resolve("user-1").Values["access_token"] != v["access_token"] {
		t.Error("a failed exchange changed the stored token")
	}
	// The replay made the provider revoke the tokens of that code (RFC 6749
	// §4.1.2): the check fails, says so and records it.
	if r := e.call("POST", path+"/check", e.key, map[string]any{"user_id": "user-1"}); r.status != http.StatusBadGateway || !strings.Contains(string(r.body), "answered 401") {
		t.Errorf("check with a revoked token: %d %s", r.status, r.body)
	}
	conns := e.must(200, "GET", "/v1/installations/"+f.instID+"/connections?user_id=user-1", e.key, nil)["connections"].([]any)
	if c := conns[0].(map[string]any); !strings.Contains(c["last_error"].(string), "401") {
		t.Errorf("connection after a failed check: %v", c)
	}

	// The callback runs the identity request too.
	f.connect(t, p, "user-2")
	if got := f.resolve("user-2").Values["provider_user"]; got != "alice" {
		t.Errorf("after the callback provider_user = %q", got)
	}

	// A config with PKCE cannot take a pasted code; the error says why.
	e.must(200, "PATCH", "/v1/apps/acme/oauth-configs/"+f.configID, e.key, map[string]any{"pkce": "S256", "token_body": ""})
	if r := e.call("POST", path+"/code", e.key, map[string]any{"code": pastedCode(t, e, p), "user_id": "user-3"}); r.status != 422 || !strings.Contains(string(r.body), "pkce") {
		t.Errorf("pasted code with PKCE: %d %s", r.status, r.body)
	}
	if strings.Contains(e.output(), v["access_token"]) {
		t.Error("the access token appears in a response or log")
	}
}

// TestIdentityFailureKeepsTokens: when the identity request fails after
// an exchange, the exchange's tokens are stored all the same (the code is
// spent: they could never be had again), the end user sees the failure and
// the connection says why.
func TestIdentityFailureKeepsTokens(t *testing.T) {
	e := newEnv(t)
	tokens := oauthtest.NewFaultProvider(t)
	identity := oauthtest.NewFaultProvider(t)
	f := newFlowApp(t, e, map[string]any{"link_url": tokens.URL() + "/authorize", "token_url": tokens.URL() + "/token",
		"identity_url": identity.URL() + "/me", "identity_headers": map[string]string{"Authorization": "Bearer <<access_token>>"},
		"identity_mappings": []map[string]string{{"path": "$.user.id", "setting": "provider_user"}}})
	tokens.Then(oauthtest.TokenJSON(map[string]any{"access_token": "at-1", "refresh_token": "rt-1"}))
	for _, tt := range []struct {
		name    string
		resp    oauthtest.Response
		message string
	}{
		{"401", oauthtest.Response{Status: 401, Body: `{"error":"invalid_token"}`}, "answered 401"},
		{"missing field", oauthtest.TokenJSON(map[string]any{"user": map[string]any{"name": "x"}}), "no value at $.user.id"},
		{"not JSON", oauthtest.HTML(200), "not JSON"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			identity.Then(tt.resp)
			b := newBrowser(t)
			_, hdr, _ := b.get(f.link("user-1", ""))
			state := mustURL(t, hdr.Get("Location")).Query().Get("state")
			status, _, page := b.get(e.url + "/oauth/callback?code=c&state=" + url.QueryEscape(state))
			if status != http.StatusBadGateway || !strings.Contains(page, tt.message) {
				t.Errorf("callback: %d, want 502 with %q\n%s", status, tt.message, page)
			}
			if v := f.resolve("user-1").Values; v["access_token"] != "at-1" || v["refresh_token"] != "rt-1" || v["provider_user"] != "" {
				t.Errorf("after a failed identity request: tokens %q %q, identity %q; want the tokens and no identity", v["access_token"], v["refresh_token"], v["provider_user"])
			}
			conns := e.must(200, "GET", "/v1/installations/"+f.instID+"/connections?user_id=user-1", e.key, nil)["connections"].([]any)
			if c := conns[0].(map[string]any); c["status"] != "connected" || !strings.Contains(c["last_error"].(string), "identity request failed") || !strings.Contains(c["last_error"].(string), tt.message) {
				t.Errorf("connection = %v", c)
			}
			last := identity.Requests()[len(identity.Requests())-1]
			if last.Header.Get("Authorization") != "Bearer at-1" {
				t.Errorf("identity request carried %q", last.Header.Get("Authorization"))
			}
		})
	}
}

// TestTemplateFunctionsInAFlow: a hand-built Basic header with template
// functions authenticates at the real authorization server, and a call to
// an unknown function is refused on save with its position.
func TestTemplateFunctionsInAFlow(t *testing.T) {
	e := newEnv(t)
	p := newProvider(t, e, oauthtest.AuthBasic)
	cfg := providerConfig(p, "body")
	cfg["token_body"] = "grant_type=authorization_code&code=<<auth_code>>&redirect_uri=<<redirect_uri>>&code_verifier=<<code_verifier>>"
	cfg["headers"] = map[string]string{"Authorization": `Basic <<base64(urlencode(client_id) ":" urlencode(client_secret))>>`}
	f := newFlowApp(t, e, cfg)
	f.connect(t, p, "user-1")
	reqs := p.TokenRequests()
	if len(reqs) != 1 || !reqs[0].BasicAuth || reqs[0].Status != 200 || reqs[0].Form.Get("client_secret") != "" {
		t.Fatalf("token request: %+v", reqs)
	}
	bad := e.must(422, "PATCH", "/v1/apps/acme/oauth-configs/"+f.configID, e.key,
		map[string]any{"headers": map[string]string{"X-Sig": "<<sha1(client_id)>>"}})
	item := bad["errors"].([]any)[0].(map[string]any)
	if item["field"] != "headers.X-Sig" || item["position"] != float64(2) || !strings.Contains(item["message"].(string), "base64") {
		t.Errorf("unknown function: %v", item)
	}
	// Explained, the header shows masked: it uses the client secret.
	got := e.must(200, "POST", "/v1/apps/acme/oauth-configs/"+f.configID+"/explain", e.key,
		map[string]any{"installation_id": f.instID, "user_id": "user-1"})
	if out := string(mustJSON(t, got)); strings.Contains(out, testClientSecret) || !strings.Contains(out, "Basic ****") {
		t.Errorf("explain shows %s", out)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCheckSaysWhyTheIdentityRequestFailed: /check answers a refused
// identity request with the provider's status and the start of its answer,
// secrets redacted, in the problem and in the connection's last_error; the
// connection stays connected (its tokens are not the question).
func TestCheckSaysWhyTheIdentityRequestFailed(t *testing.T) {
	e := newEnv(t)
	tokens := oauthtest.NewFaultProvider(t)
	identity := oauthtest.NewFaultProvider(t)
	f := newFlowApp(t, e, map[string]any{"link_url": tokens.URL() + "/authorize", "token_url": tokens.URL() + "/token",
		"identity_url": identity.URL() + "/me", "identity_headers": map[string]string{"Authorization": "Bearer <<access_token>>"},
		"identity_mappings": []map[string]string{{"path": "$.user.id", "setting": "provider_user"}}})
	tokens.Then(oauthtest.TokenJSON(map[string]any{"access_token": "at-secret-1", "refresh_token": "rt-1", "expires_in": 3600}))
	identity.Then(oauthtest.TokenJSON(map[string]any{"user": map[string]any{"id": "alice"}}))
	b := newBrowser(t)
	_, hdr, _ := b.get(f.link("user-1", ""))
	state := mustURL(t, hdr.Get("Location")).Query().Get("state")
	if status, _, page := b.get(e.url + "/oauth/callback?code=c&state=" + url.QueryEscape(state)); status >= 400 {
		t.Fatalf("callback: %d\n%s", status, page)
	}

	identity.Then(oauthtest.Response{Status: 403, Body: `{"error":"insufficient_scope","seen":"Bearer at-secret-1"}`})
	r := e.call("POST", "/v1/installations/"+f.instID+"/oauth-configs/"+f.configID+"/check", e.key, map[string]any{"user_id": "user-1"})
	var p map[string]any
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	detail, _ := p["detail"].(string)
	if r.status != http.StatusBadGateway || !strings.Contains(detail, "answered 403") || !strings.Contains(detail, "insufficient_scope") || strings.Contains(detail, "at-secret-1") {
		t.Errorf("check: %d %s", r.status, r.body)
	}
	conns := e.must(200, "GET", "/v1/installations/"+f.instID+"/connections?user_id=user-1", e.key, nil)["connections"].([]any)
	c := conns[0].(map[string]any)
	last, _ := c["last_error"].(string)
	if c["status"] != "connected" || !strings.Contains(last, "answered 403") || !strings.Contains(last, "insufficient_scope") || strings.Contains(last, "at-secret-1") {
		t.Errorf("connection after a failed check: %v", c)
	}
}

// TestIdentityArray: an identity answer that is a list (Atlassian's
// accessible-resources) is read, and a path that names a setting picks the
// installation's own entry.
func TestIdentityArray(t *testing.T) {
	e := newEnv(t)
	tokens := oauthtest.NewFaultProvider(t)
	identity := oauthtest.NewFaultProvider(t)
	f := newFlowApp(t, e, map[string]any{"link_url": tokens.URL() + "/authorize", "token_url": tokens.URL() + "/token"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "site_url", "type": "url"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "cloud_id", "level": "user"})
	path := "/v1/apps/acme/oauth-configs/" + f.configID
	// A placeholder outside a quoted string could change the path.
	wantFields(t, e.must(422, "PATCH", path, e.key, map[string]any{"identity_url": identity.URL() + "/resources",
		"identity_mappings": []map[string]string{{"path": `$[?(@.url == <<site_url>>)].id`, "setting": "cloud_id"}}}), "identity_mappings[0].path")
	e.must(200, "PATCH", path, e.key, map[string]any{"identity_url": identity.URL() + "/resources",
		"identity_headers":  map[string]string{"Authorization": "Bearer <<access_token>>"},
		"identity_mappings": []map[string]string{{"path": `$[?(@.url == "<<site_url>>")].id`, "setting": "cloud_id"}, {"path": "$[0].id", "setting": "provider_user"}}})
	e.must(200, "PATCH", "/v1/installations/"+f.instID+"/settings", e.key, map[string]any{"values": map[string]any{"site_url": `https://b.example.net`}})
	identity.Then(oauthtest.Response{Body: `[{"id":"c1","url":"https://a.example.net"},{"id":"c2","url":"https://b.example.net"}]`})
	if status, page := f.connectWith(t, tokens, "user-1", oauthtest.TokenJSON(map[string]any{"access_token": "at-1", "expires_in": 3600})); status != 200 {
		t.Fatalf("connect: %d %s", status, page)
	}
	if v := f.resolve("user-1").Values; v["cloud_id"] != "c2" || v["provider_user"] != "c1" {
		t.Errorf("cloud_id %q, provider_user %q; want c2 and c1", v["cloud_id"], v["provider_user"])
	}
}
