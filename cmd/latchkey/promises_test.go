package main

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/oauthtest"
)

// storedText is every text column where a provider's words can end up:
// connections, the request log and webhook payloads.
func (e *env) storedText(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{
		"SELECT last_error FROM connections",
		"SELECT url || ' ' || request_headers || ' ' || request_body || ' ' || response_headers || ' ' || response_body || ' ' || error FROM oauth_requests",
		"SELECT payload || ' ' || last_error FROM webhook_deliveries",
	} {
		var rows []string
		if err := e.db.Raw(q).Scan(&rows).Error; err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for _, r := range rows {
			b.WriteString(r + "\n")
		}
	}
	return b.String()
}

// TestProviderEchoIsRedacted: a token endpoint that quotes the request it
// got in its error_description (real ones do) must not make a secret of
// that request appear in an answer, a page, a stored row, a webhook or a
// log line.
func TestProviderEchoIsRedacted(t *testing.T) {
	e := newEnv(t)
	fault := oauthtest.NewFaultProvider(t)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(hook.Close)
	f := newFlowApp(t, e, map[string]any{"link_url": fault.URL() + "/authorize", "token_url": fault.URL() + "/token"})
	e.must(201, "POST", "/v1/apps/acme/webhooks", e.key, map[string]any{"url": hook.URL})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(api.Close)
	f.addAPI(t, "api", api.URL)
	fault.Then(oauthtest.Response{Echo: true})

	// The callback's exchange: client secret, code and PKCE verifier.
	b := newBrowser(t)
	_, hdr, _ := b.get(f.link("user-1", ""))
	state := mustURL(t, hdr.Get("Location")).Query().Get("state")
	code := "code-canary-5a4b3c2d"
	status, _, page := b.get(e.url + "/oauth/callback?code=" + code + "&state=" + url.QueryEscape(state))
	if status != http.StatusBadGateway || !strings.Contains(page, "invalid_request") {
		t.Fatalf("callback: %d\n%s", status, page)
	}
	verifier := fault.Requests()[0].Form.Get("code_verifier")
	if verifier == "" {
		t.Fatal("the exchange sent no PKCE verifier")
	}

	// A refresh at a proxied call: the refresh token.
	refresh := "refresh-canary-1f2e3d4c"
	e.must(200, "PATCH", "/v1/installations/"+f.instID+"/users/user-1/settings", e.key,
		map[string]any{"values": map[string]any{"refresh_token": refresh}})
	r := e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/api/proxy/x", nil, "")
	if r.status < 400 || !strings.Contains(r.body, "invalid_request") {
		t.Fatalf("call with a refused refresh: %d %s", r.status, r.body)
	}

	// A pasted code, with Basic client authentication: the encoded pair.
	e.must(200, "PATCH", "/v1/apps/acme/oauth-configs/"+f.configID, e.key, map[string]any{"client_auth": "basic", "pkce": "off", "token_body": "grant_type=authorization_code&code=<<auth_code>>&redirect_uri=<<redirect_uri>>"})
	pasted := "pasted-canary-77aa66bb"
	p := e.call("POST", "/v1/installations/"+f.instID+"/oauth-configs/"+f.configID+"/code", e.key, map[string]any{"code": pasted, "user_id": "user-2"})
	if p.status != http.StatusBadGateway || !strings.Contains(string(p.body), "invalid_request") {
		t.Fatalf("pasted code: %d %s", p.status, p.body)
	}
	basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(testClientID) + ":" + url.QueryEscape(testClientSecret)))
	if got := fault.Requests()[len(fault.Requests())-1].Header.Get("Authorization"); got != "Basic "+basic {
		t.Fatalf("the last request's Authorization = %q", got)
	}

	everything := page + e.output() + e.storedText(t)
	for name, s := range map[string]string{
		"client secret": testClientSecret, "code": code, "verifier": verifier,
		"refresh token": refresh, "pasted code": pasted, "basic credentials": basic,
	} {
		if strings.Contains(everything, s) {
			t.Errorf("the %s (%s) appears in an answer, page, row or log line", name, s)
		}
	}
	if !strings.Contains(e.storedText(t), "[REDACTED]") {
		t.Error("nothing was redacted: did the provider echo at all?")
	}
}
