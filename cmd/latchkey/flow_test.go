package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/oauthtest"
	"github.com/latchkey/latchkey/settings"
)

// browser is an end user's browser: it keeps cookies and does not follow
// redirects, so each hop can be checked.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (b *browser) get(u string) (int, http.Header, string) {
	b.t.Helper()
	resp, err := b.c.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

// flowApp is an app with the settings an OAuth flow needs, installed for
// one organization, with one authorization-code config.
type flowApp struct {
	e        *env
	instID   string
	configID string
}

const (
	testClientID     = "latchkey-client"
	testClientSecret = "client-secret-canary-9f8e7d"
)

func newFlowApp(t testing.TB, e *env, cfg map[string]any) *flowApp {
	t.Helper()
	e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": "Acme", "slug": "acme", "return_urls": []string{"https://platform.example/done"}})
	for _, d := range []map[string]any{
		{"key": "client_id", "required": true},
		{"key": "client_secret", "secret": true, "required": true},
		{"key": "access_token", "level": "user", "secret": true},
		{"key": "refresh_token", "level": "user", "secret": true},
		{"key": "provider_user", "level": "user"},
	} {
		e.must(201, "POST", "/v1/apps/acme/settings", e.key, d)
	}
	inst := e.must(201, "POST", "/v1/installations", e.key, map[string]any{
		"app_id": "acme", "organization_id": "org-1",
		"values": map[string]string{"client_id": testClientID, "client_secret": testClientSecret},
	})
	body := map[string]any{
		"name":                  "provider",
		"access_token_setting":  "access_token",
		"refresh_token_setting": "refresh_token",
		"log_requests":          true,
	}
	for k, v := range cfg {
		body[k] = v
	}
	c := e.must(201, "POST", "/v1/apps/acme/oauth-configs", e.key, body)
	return &flowApp{e: e, instID: inst["id"].(string), configID: c["id"].(string)}
}

// link asks for an authorize link for user, as the platform would.
func (f *flowApp) link(user, returnURL string) string {
	f.e.t.Helper()
	body := map[string]any{"config_id": f.configID, "user_id": user}
	if returnURL != "" {
		body["return_url"] = returnURL
	}
	return f.e.must(201, "POST", "/v1/installations/"+f.instID+"/authorize-links", f.e.key, body)["url"].(string)
}

func (f *flowApp) resolve(user string) settings.Resolved {
	f.e.t.Helper()
	store := settings.NewStore(f.e.db.DB, f.e.cipher)
	inst, err := store.Installation(context.Background(), f.instID)
	if err != nil {
		f.e.t.Fatal(err)
	}
	r, err := store.Resolve(context.Background(), inst, user)
	if err != nil {
		f.e.t.Fatal(err)
	}
	return r
}

func newProvider(t *testing.T, e *env, method string) *oauthtest.Server {
	return oauthtest.NewServer(t, oauthtest.Options{}, oauthtest.Client{
		ID: testClientID, Secret: testClientSecret, AuthMethod: method,
		RedirectURIs: []string{e.url + "/oauth/callback"},
	})
}

func providerConfig(p *oauthtest.Server, clientAuth string) map[string]any {
	return map[string]any{
		"link_url":    p.AuthorizeURL() + "?client_id=<<client_id>>&redirect_uri=<<redirect_uri>>&response_type=code&scope=<<scope>>&state=<<state>>",
		"token_url":   p.TokenURL(),
		"scopes":      []string{"read", "offline"},
		"client_auth": clientAuth,
	}
}

// TestAuthorizationCodeFlow runs the whole flow against a real OAuth 2.0
// server (fosite): link, consent, callback, exchange with PKCE, tokens stored.
func TestAuthorizationCodeFlow(t *testing.T) {
	for _, tt := range []struct{ clientAuth, method string }{
		{"basic", oauthtest.AuthBasic},
		{"body", oauthtest.AuthPost},
	} {
		t.Run(tt.clientAuth, func(t *testing.T) {
			e := newEnv(t)
			p := newProvider(t, e, tt.method)
			f := newFlowApp(t, e, providerConfig(p, tt.clientAuth))

			b := newBrowser(t)
			status, hdr, _ := b.get(f.link("user-1", ""))
			if status != http.StatusFound {
				t.Fatalf("authorize link answered %d, want 302", status)
			}
			toProvider := hdr.Get("Location")
			if q := mustURL(t, toProvider).Query(); q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256" || len(q.Get("state")) < 22 {
				t.Fatalf("link lacks PKCE or a strong state: %s", toProvider)
			}
			back, err := p.Consent(toProvider, true)
			if err != nil {
				t.Fatal(err)
			}
			status, _, page := b.get(back.String())
			if status != http.StatusOK || !strings.Contains(page, "Connected") {
				t.Fatalf("callback answered %d:\n%s", status, page)
			}

			reqs := p.TokenRequests()
			if len(reqs) != 1 {
				t.Fatalf("provider saw %d token requests, want 1", len(reqs))
			}
			if got := reqs[0]; got.BasicAuth != (tt.clientAuth == "basic") || got.Form.Get("code_verifier") == "" || got.Status != 200 {
				t.Errorf("token request: basic=%v verifier=%q status=%d", got.BasicAuth, got.Form.Get("code_verifier"), got.Status)
			}
			r := f.resolve("user-1")
			if r.Values["access_token"] == "" || r.Values["refresh_token"] == "" {
				t.Fatalf("tokens not stored: %v", r.Secret)
			}
			// The stored access token is real: the provider's API accepts it.
			req, _ := http.NewRequest("GET", p.MeURL(), nil)
			req.Header.Set("Authorization", "Bearer "+r.Values["access_token"])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("provider API answered %d to the stored token", resp.StatusCode)
			}

			conns := e.must(200, "GET", "/v1/installations/"+f.instID+"/connections?user_id=user-1", e.key, nil)["connections"].([]any)
			if len(conns) != 1 || conns[0].(map[string]any)["status"] != "connected" || conns[0].(map[string]any)["expires_at"] == nil {
				t.Errorf("connections = %v", conns)
			}

			// A second callback with the same state (double click) makes no
			// second exchange.
			status, _, page = b.get(back.String())
			if status != http.StatusGone || len(p.TokenRequests()) != 1 {
				t.Errorf("replayed callback: %d, %d token requests\n%s", status, len(p.TokenRequests()), page)
			}

			// The request log has the exchange, with every secret redacted.
			entries := e.must(200, "GET", "/v1/apps/acme/oauth-configs/"+f.configID+"/requests", e.key, nil)["requests"].([]any)
			if len(entries) != 1 || entries[0].(map[string]any)["status"] != float64(200) {
				t.Fatalf("request log = %v", entries)
			}
			e.must(200, "GET", "/v1/installations/"+f.instID+"/oauth-requests", e.key, nil)
			out := e.output()
			for name, s := range map[string]string{
				"client secret": testClientSecret, "access token": r.Values["access_token"],
				"refresh token": r.Values["refresh_token"], "code": back.Query().Get("code"),
				"verifier": reqs[0].Form.Get("code_verifier"),
			} {
				if strings.Contains(out, s) {
					t.Errorf("the %s appears in a response or log", name)
				}
			}
		})
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestCallbackRedirectsToReturnURL(t *testing.T) {
	e := newEnv(t)
	p := newProvider(t, e, oauthtest.AuthBasic)
	f := newFlowApp(t, e, providerConfig(p, "basic"))
	e.must(422, "POST", "/v1/installations/"+f.instID+"/authorize-links", e.key,
		map[string]any{"config_id": f.configID, "user_id": "u", "return_url": "https://evil.example/steal"})

	b := newBrowser(t)
	_, hdr, _ := b.get(f.link("user-1", "https://platform.example/done"))
	back, err := p.Consent(hdr.Get("Location"), true)
	if err != nil {
		t.Fatal(err)
	}
	status, hdr, _ := b.get(back.String())
	loc := mustURL(t, hdr.Get("Location"))
	if status != http.StatusFound || loc.Host != "platform.example" || loc.Query().Get("status") != "connected" || loc.Query().Get("user_id") != "user-1" {
		t.Fatalf("callback answered %d to %s", status, loc)
	}
	if strings.Contains(loc.RawQuery, "token") || strings.Contains(loc.RawQuery, back.Query().Get("code")) {
		t.Errorf("return URL carries a credential: %s", loc)
	}
}

// TestStateChecks sends callbacks with bad states: none reaches the token URL.
func TestStateChecks(t *testing.T) {
	e := newEnv(t)
	p := newProvider(t, e, oauthtest.AuthBasic)
	f := newFlowApp(t, e, providerConfig(p, "basic"))

	// start returns the state of a fresh trip to the provider and the
	// browser that started it.
	start := func() (*browser, string) {
		b := newBrowser(t)
		_, hdr, _ := b.get(f.link("user-1", ""))
		return b, mustURL(t, hdr.Get("Location")).Query().Get("state")
	}
	cb := e.url + "/oauth/callback?code=some-code&state="

	b, _ := start()
	if status, _, page := b.get(e.url + "/oauth/callback?code=x"); status != 400 || !strings.Contains(page, "no state") {
		t.Errorf("missing state: %d\n%s", status, page)
	}
	if status, _, _ := b.get(cb + "unknown-state-value"); status != 410 {
		t.Errorf("unknown state: %d", status)
	}

	b, state := start()
	if err := e.db.Exec("UPDATE oauth_states SET expires_at = ?", time.Now().Add(-time.Minute).UTC()).Error; err != nil {
		t.Fatal(err)
	}
	if status, _, page := b.get(cb + state); status != 410 || !strings.Contains(page, "expired") {
		t.Errorf("expired state: %d\n%s", status, page)
	}

	// Another browser (an attacker who got hold of a state) is refused,
	// and the state stays usable by the browser that started the flow.
	owner, state := start()
	if status, _, page := newBrowser(t).get(cb + state); status != 403 || !strings.Contains(page, "another browser") {
		t.Errorf("another browser: %d\n%s", status, page)
	}
	// The owner's callback reaches the provider, whose code is fake: the
	// provider refuses it, and that is the only token request of this test.
	if status, _, page := owner.get(cb + state); status != 502 || !strings.Contains(page, "invalid_grant") {
		t.Errorf("owner's callback: %d\n%s", status, page)
	}
	if status, _, _ := owner.get(cb + state); status != 410 {
		t.Errorf("replay: %d", status)
	}

	// Access denied at the consent screen: a readable page, no exchange.
	b = newBrowser(t)
	_, hdr, _ := b.get(f.link("user-1", ""))
	back, err := p.Consent(hdr.Get("Location"), false)
	if err != nil {
		t.Fatal(err)
	}
	if status, _, page := b.get(back.String()); status != 403 || !strings.Contains(page, "did not allow") {
		t.Errorf("denied: %d\n%s", status, page)
	}
	if n := len(p.TokenRequests()); n != 1 {
		t.Errorf("provider saw %d token requests, want only the owner's 1", n)
	}
	if len(f.resolve("user-1").Values) != 2 {
		t.Errorf("tokens were stored: %v", f.resolve("user-1").Secret)
	}

	// Links: unknown and expired.
	if status, _, _ := b.get(e.url + "/oauth/authorize/not-a-link"); status != 410 {
		t.Errorf("unknown link: %d", status)
	}
	link := f.link("user-1", "")
	e.db.Exec("UPDATE authorize_links SET expires_at = ?", time.Now().Add(-time.Second).UTC())
	if status, _, _ := b.get(link); status != 410 {
		t.Errorf("expired link: %d", status)
	}
}

// faultCase is a misbehaving token endpoint and what the user must be told.
type faultCase struct {
	name     string
	cfg      map[string]any
	response oauthtest.Response
	status   int
	message  string
}

// TestTokenEndpointFaults checks each failure gives a clear error and leaves
// the user's stored tokens as they were.
func TestTokenEndpointFaults(t *testing.T) {
	elsewhere := oauthtest.NewFaultProvider(t)
	cases := []faultCase{
		{name: "timeout", response: oauthtest.Timeout(2 * time.Second), status: 504, message: "did not answer in time"},
		{name: "500", response: oauthtest.Response{Status: 500, Body: "oops"}, status: 502, message: "answered 500"},
		{name: "429", response: oauthtest.Response{Status: 429, Header: http.Header{"Retry-After": {"30"}}}, status: 502, message: "rate limiting (429); retry after 30s"},
		{name: "html 200", response: oauthtest.HTML(200), status: 502, message: "HTML page"},
		{name: "bad json", response: oauthtest.Response{Body: `{"access_token": "abc",`}, status: 502, message: "not valid JSON"},
		{name: "error in 200", response: oauthtest.TokenJSON(map[string]any{"error": "invalid_grant", "error_description": "code expired"}), status: 502, message: "invalid_grant (code expired)"},
		{name: "redirect", response: oauthtest.Redirect(307, elsewhere.URL()+"/token"), status: 502, message: "redirecting to 127.0.0.1"},
		{name: "no access token", response: oauthtest.TokenJSON(map[string]any{"token": "x"}), status: 502, message: "no access token at $.access_token"},
		{name: "huge body", response: oauthtest.Response{BodyBytes: 3 << 20}, status: 502, message: "larger than the limit"},
		{name: "wrong nested path", cfg: map[string]any{"access_token_path": "$.data.token"},
			response: oauthtest.TokenJSON(map[string]any{"access_token": "flat"}), status: 502, message: "no access token at $.data.token"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnvWith(t, func(c *configT) { c.OutboundTimeout = 500 * time.Millisecond })
			fault := oauthtest.NewFaultProvider(t)
			cfg := map[string]any{"link_url": fault.URL() + "/authorize", "token_url": fault.URL() + "/token"}
			for k, v := range tt.cfg {
				cfg[k] = v
			}
			f := newFlowApp(t, e, cfg)
			e.must(200, "PATCH", "/v1/installations/"+f.instID+"/users/user-1/settings", e.key,
				map[string]any{"values": map[string]any{"access_token": "old-access", "refresh_token": "old-refresh"}})
			fault.Then(tt.response)

			b := newBrowser(t)
			_, hdr, _ := b.get(f.link("user-1", ""))
			state := mustURL(t, hdr.Get("Location")).Query().Get("state")
			status, _, page := b.get(e.url + "/oauth/callback?code=the-code&state=" + url.QueryEscape(state))
			if status != tt.status || !strings.Contains(page, tt.message) {
				t.Errorf("callback: %d, want %d with %q\n%s", status, tt.status, tt.message, page)
			}
			if r := f.resolve("user-1"); r.Values["access_token"] != "old-access" || r.Values["refresh_token"] != "old-refresh" {
				t.Error("stored tokens changed after a failed exchange")
			}
			if n := len(elsewhere.Requests()); n != 0 {
				t.Errorf("the redirect target got %d requests", n)
			}
			if n := len(fault.Requests()); n != 1 {
				t.Errorf("token endpoint got %d requests, want 1", n)
			}
		})
	}
}

// TestTokenResponseShapes checks responses that are odd but valid.
func TestTokenResponseShapes(t *testing.T) {
	cases := []struct {
		name     string
		cfg      map[string]any
		resp     oauthtest.Response
		access   string
		refresh  string
		user     string
		lifetime float64 // seconds
	}{
		// Without expires_in, the config's default lifetime (1h), not "never".
		{name: "no expires_in", resp: oauthtest.TokenJSON(map[string]any{"access_token": "at-1"}), access: "at-1", refresh: "old-refresh", lifetime: 3600},
		{name: "expires_in as string", resp: oauthtest.TokenJSON(map[string]any{"access_token": "at-2", "refresh_token": "rt-2", "expires_in": "7200"}), access: "at-2", refresh: "rt-2", lifetime: 7200},
		{name: "form encoded", resp: oauthtest.Response{ContentType: "application/x-www-form-urlencoded", Body: "access_token=at-3&expires_in=60&scope=read"}, access: "at-3", refresh: "old-refresh", lifetime: 60},
		{name: "nested, with a mapping", cfg: map[string]any{
			"access_token_path": "$.authed_user.access_token", "refresh_token_path": "$.authed_user.refresh_token",
			"mappings": []map[string]string{{"path": "$.authed_user.id", "setting": "provider_user"}},
		}, resp: oauthtest.TokenJSON(map[string]any{"ok": true, "authed_user": map[string]any{"id": "U123", "access_token": "at-4", "refresh_token": "rt-4"}}),
			access: "at-4", refresh: "rt-4", user: "U123", lifetime: 3600},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			fault := oauthtest.NewFaultProvider(t)
			cfg := map[string]any{"link_url": fault.URL() + "/authorize", "token_url": fault.URL() + "/token", "body_format": "json"}
			for k, v := range tt.cfg {
				cfg[k] = v
			}
			f := newFlowApp(t, e, cfg)
			e.must(200, "PATCH", "/v1/installations/"+f.instID+"/users/user-1/settings", e.key,
				map[string]any{"values": map[string]any{"refresh_token": "old-refresh"}})
			fault.Then(tt.resp)
			b := newBrowser(t)
			_, hdr, _ := b.get(f.link("user-1", ""))
			state := mustURL(t, hdr.Get("Location")).Query().Get("state")
			if status, _, page := b.get(e.url + "/oauth/callback?code=the-code&state=" + url.QueryEscape(state)); status != 200 {
				t.Fatalf("callback: %d\n%s", status, page)
			}
			r := f.resolve("user-1")
			if r.Values["access_token"] != tt.access || r.Values["refresh_token"] != tt.refresh || r.Values["provider_user"] != tt.user {
				t.Errorf("stored access=%q refresh=%q user=%q", r.Values["access_token"], r.Values["refresh_token"], r.Values["provider_user"])
			}
			// The JSON body went out as JSON, with the code and the client's
			// credentials in it.
			var sent map[string]string
			if err := json.Unmarshal([]byte(fault.Requests()[0].Body), &sent); err != nil || sent["code"] != "the-code" || sent["client_secret"] != testClientSecret {
				t.Errorf("token request body = %s (%v)", fault.Requests()[0].Body, err)
			}
			conns := e.must(200, "GET", "/v1/installations/"+f.instID+"/connections", e.key, nil)["connections"].([]any)
			conn := conns[0].(map[string]any)
			expires, _ := time.Parse(time.RFC3339Nano, conn["expires_at"].(string))
			issued, _ := time.Parse(time.RFC3339Nano, conn["issued_at"].(string))
			if got := expires.Sub(issued).Seconds(); got != tt.lifetime {
				t.Errorf("token lifetime %vs, want %vs", got, tt.lifetime)
			}
		})
	}
}

// TestSSRFGuardOnTokenURL checks a server without an allow-list refuses a
// token URL on loopback, and nothing is sent there.
func TestSSRFGuardOnTokenURL(t *testing.T) {
	e := newEnvWith(t, func(c *configT) { c.OutboundAllow = nil })
	fault := oauthtest.NewFaultProvider(t)
	fault.Then(oauthtest.TokenJSON(map[string]any{"access_token": "x"}))
	f := newFlowApp(t, e, map[string]any{"link_url": fault.URL() + "/authorize", "token_url": fault.URL() + "/token"})
	b := newBrowser(t)
	_, hdr, _ := b.get(f.link("user-1", ""))
	state := mustURL(t, hdr.Get("Location")).Query().Get("state")
	status, _, page := b.get(e.url + "/oauth/callback?code=c&state=" + url.QueryEscape(state))
	if status != 502 || !strings.Contains(page, "refusing to connect to 127.0.0.1") {
		t.Errorf("callback: %d\n%s", status, page)
	}
	if n := len(fault.Requests()); n != 0 {
		t.Errorf("the refused address got %d requests", n)
	}
}

// TestConcurrentCallbacks fires the same callback many times at once, as a
// double click or a prefetching browser would: one exchange, one success.
func TestConcurrentCallbacks(t *testing.T) {
	e := newEnv(t)
	fault := oauthtest.NewFaultProvider(t)
	fault.Then(oauthtest.Response{Status: 200, Delay: 100 * time.Millisecond, Body: `{"access_token":"at","expires_in":60}`})
	f := newFlowApp(t, e, map[string]any{"link_url": fault.URL() + "/authorize", "token_url": fault.URL() + "/token"})
	b := newBrowser(t)
	_, hdr, _ := b.get(f.link("user-1", ""))
	cb := e.url + "/oauth/callback?code=c&state=" + url.QueryEscape(mustURL(t, hdr.Get("Location")).Query().Get("state"))
	statuses := make(chan int, 10)
	for i := 0; i < 10; i++ {
		go func() {
			resp, err := b.c.Get(cb)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	count := map[int]int{}
	for i := 0; i < 10; i++ {
		count[<-statuses]++
	}
	if count[200] != 1 || count[410] != 9 || len(fault.Requests()) != 1 {
		t.Fatalf("statuses %v, %d token requests; want one 200, nine 410, one request", count, len(fault.Requests()))
	}
}
