package main

import (
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/oauthtest"
)

// TestConfigRedirectURI: a config's own redirect URI, on the platform's
// domain, is what the link and the code exchange send; the platform
// forwards the browser to Latchkey's callback with the query intact, and
// the state is checked there as ever.
func TestConfigRedirectURI(t *testing.T) {
	e := newEnv(t)
	tokens := oauthtest.NewFaultProvider(t)
	own := "http://localhost:8080/oauth/forward"
	f := newFlowApp(t, e, map[string]any{
		"link_url":     tokens.URL() + "/authorize?client_id=<<client_id>>&response_type=code&redirect_uri=<<redirect_uri>>",
		"token_url":    tokens.URL() + "/token",
		"redirect_uri": own, "description": "Sign-in through the platform's registered URI",
	})
	cfgPath := "/v1/apps/acme/oauth-configs/" + f.configID
	got := e.must(200, "GET", cfgPath, e.key, nil)
	if got["redirect_uri"] != own || got["callback_url"] != e.url+"/oauth/callback" || got["description"] == "" {
		t.Errorf("config = redirect_uri %v, callback_url %v, description %v", got["redirect_uri"], got["callback_url"], got["description"])
	}

	tokens.Then(oauthtest.TokenJSON(map[string]any{"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 3600}))
	b := newBrowser(t)
	_, hdr, _ := b.get(f.link("user-1", ""))
	link := mustURL(t, hdr.Get("Location"))
	if link.Query().Get("redirect_uri") != own {
		t.Fatalf("link = %s", link)
	}
	// The platform's page forwards here with the provider's query.
	status, _, page := b.get(e.url + "/oauth/callback?code=c&state=" + url.QueryEscape(link.Query().Get("state")))
	if status >= 400 {
		t.Fatalf("callback: %d\n%s", status, page)
	}
	reqs := tokens.Requests()
	if last := reqs[len(reqs)-1]; last.Form.Get("redirect_uri") != own {
		t.Errorf("code exchange sent redirect_uri %q, want %q", last.Form.Get("redirect_uri"), own)
	}
	// A state that was not issued is refused as ever.
	if status, _, _ := b.get(e.url + "/oauth/callback?code=c&state=forged"); status < 400 {
		t.Errorf("forged state answered %d", status)
	}

	// Back to Latchkey's own callback URL.
	got = e.must(200, "PATCH", cfgPath, e.key, map[string]any{"redirect_uri": ""})
	if got["redirect_uri"] != e.url+"/oauth/callback" {
		t.Errorf("redirect_uri after reset = %v", got["redirect_uri"])
	}

	for _, tt := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"http off localhost", map[string]any{"redirect_uri": "http://platform.example/cb"}, "redirect_uri"},
		{"relative", map[string]any{"redirect_uri": "/cb"}, "redirect_uri"},
		{"fragment", map[string]any{"redirect_uri": "https://platform.example/cb#x"}, "redirect_uri"},
		{"implicit flow", map[string]any{"link_url": tokens.URL() + "/authorize?response_type=token&client_id=<<client_id>>"}, "link_url"},
		{"hybrid flow", map[string]any{"link_url": tokens.URL() + "/authorize?response_type=code+id_token"}, "link_url"},
		{"long description", map[string]any{"description": strings.Repeat("x", 1001)}, "description"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := e.must(422, "PATCH", cfgPath, e.key, tt.body)
			wantFields(t, p, tt.field)
			if tt.field == "link_url" && !strings.Contains(string(mustJSON(t, p)), "not supported") {
				t.Errorf("response_type problem: %v", p)
			}
		})
	}
	e.must(200, "PATCH", cfgPath, e.key, map[string]any{"redirect_uri": "https://platform.example/cb?x=1"})
}
