package main

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/oauthtest"
)

// connect runs the authorization-code flow for user against provider p,
// as an end user would, and fails the test unless it ends connected.
func (f *flowApp) connect(t *testing.T, p *oauthtest.Server, user string) {
	t.Helper()
	b := newBrowser(t)
	_, hdr, _ := b.get(f.link(user, ""))
	back, err := p.Consent(hdr.Get("Location"), true)
	if err != nil {
		t.Fatal(err)
	}
	if status, _, page := b.get(back.String()); status != http.StatusOK {
		t.Fatalf("callback answered %d:\n%s", status, page)
	}
}

// addAPI defines an API of the flow app that calls base with the access
// token as a bearer token.
func (f *flowApp) addAPI(t *testing.T, name, base string) {
	t.Helper()
	f.e.must(201, "POST", "/v1/apps/acme/apis", f.e.key, map[string]any{
		"name": name, "base_url": base, "config_id": f.configID,
		"headers": map[string]string{"Authorization": "Bearer <<access_token>>"},
	})
}

// expire makes Latchkey believe every stored access token has expired.
func (f *flowApp) expire(t *testing.T) {
	t.Helper()
	if err := f.e.db.Exec("UPDATE connections SET expires_at = ?", time.Now().Add(-time.Minute).UTC()).Error; err != nil {
		t.Fatal(err)
	}
	f.e.sqlChanged()
}

// proxied is what a call through the proxy returned.
type proxied struct {
	status int
	header http.Header
	body   string
}

// proxy calls an API through Latchkey at base (a server's URL) with the
// API key. Bodies are the provider's, so they are not checked against
// openapi.yaml; Latchkey's own errors are checked by the tests.
func (e *env) proxy(base, method, path string, header http.Header, body string) proxied {
	e.t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+e.key)
	resp, err := noRedirects.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	e.mu.Lock()
	e.bodies.Write(raw)
	e.mu.Unlock()
	return proxied{resp.StatusCode, resp.Header, string(raw)}
}

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (p proxied) problemCode(t *testing.T) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(p.body), &m); err != nil || p.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("not a problem document (%d): %s", p.status, p.body)
	}
	code, _ := m["code"].(string)
	return code
}

func TestAPIDefinitions(t *testing.T) {
	e := newEnv(t)
	p := newProvider(t, e, oauthtest.AuthBasic)
	f := newFlowApp(t, e, providerConfig(p, "basic"))
	tests := []struct {
		name   string
		body   map[string]any
		fields []string
	}{
		{"unknown variable", map[string]any{"name": "x", "base_url": "https://<<nope>>.example/api"}, []string{"base_url"}},
		{"base with query", map[string]any{"name": "x", "base_url": "https://api.example/v1?key=1"}, []string{"base_url"}},
		{"reserved and injected headers", map[string]any{"name": "x", "base_url": "https://api.example",
			"headers": map[string]string{"Host": "evil", "X-Forwarded-For": "1.2.3.4", "X-Key": "a\r\nX-Evil: 1", "Bad Name": "x"}},
			[]string{"headers.Host", "headers.X-Forwarded-For", "headers.X-Key", "headers.Bad Name"}},
		{"bad name and method", map[string]any{"name": "Bad Name", "base_url": "https://api.example", "methods": []string{"GET", "BREW"}}, []string{"name", "methods[1]"}},
		{"unknown config", map[string]any{"name": "x", "base_url": "https://api.example", "config_id": "nope"}, []string{"config_id"}},
		{"query with unknown variable", map[string]any{"name": "x", "base_url": "https://api.example", "query": map[string]string{"key": "<<api_key>>"}}, []string{"query.key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantFields(t, e.must(422, "POST", "/v1/apps/acme/apis", e.key, tt.body), tt.fields...)
		})
	}
	p1 := e.must(422, "POST", "/v1/apps/acme/apis", e.key, map[string]any{"name": "x", "base_url": "https://api.example/<<nope>>"})
	if pos := p1["errors"].([]any)[0].(map[string]any)["position"]; pos != float64(20) {
		t.Errorf("unknown variable at position %v, want 20", pos)
	}

	f.addAPI(t, "crm", "https://api.example/v2")
	got := e.must(200, "GET", "/v1/apps/acme/apis/crm", e.key, nil)
	if got["config_id"] != f.configID || len(got["methods"].([]any)) != 5 {
		t.Errorf("GET = %v", got)
	}
	e.must(409, "POST", "/v1/apps/acme/apis", e.key, map[string]any{"name": "crm", "base_url": "https://api.example"})
	e.must(200, "PATCH", "/v1/apps/acme/apis/crm", e.key, map[string]any{"methods": []string{"GET"}, "query": map[string]string{"client": "<<client_id>>"}})
	if n := len(e.must(200, "GET", "/v1/apps/acme/apis", e.key, nil)["apis"].([]any)); n != 1 {
		t.Errorf("list has %d APIs", n)
	}
	e.must(404, "GET", "/v1/apps/acme/apis/crm", e.other, nil)
	// The config is in use: deleting it would break the API.
	e.must(409, "DELETE", "/v1/apps/acme/oauth-configs/"+f.configID, e.key, nil)
	e.must(200, "PATCH", "/v1/apps/acme/apis/crm", e.key, map[string]any{"config_id": nil})
	e.must(204, "DELETE", "/v1/apps/acme/oauth-configs/"+f.configID, e.key, nil)
	e.must(204, "DELETE", "/v1/apps/acme/apis/crm", e.key, nil)
	e.must(404, "GET", "/v1/apps/acme/apis/crm", e.key, nil)
}

// TestCallRefreshesExpiredToken: an expired token is refreshed before the
// call (proactively), a token the API refuses is refreshed once and the
// call retried (reactively), and the refresh token rotates each time.
func TestCallRefreshesExpiredToken(t *testing.T) {
	e := newEnv(t)
	p := newProvider(t, e, oauthtest.AuthBasic)
	f := newFlowApp(t, e, providerConfig(p, "basic"))
	f.connect(t, p, "user-1")
	f.addAPI(t, "me", p.URL())
	call := func() proxied {
		return e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/me/proxy/api/me", nil, "")
	}

	if r := call(); r.status != 200 || !strings.Contains(r.body, `"id":"alice"`) {
		t.Fatalf("call with a fresh token: %d %s", r.status, r.body)
	}
	if n := p.Issued("refresh_token"); n != 0 {
		t.Fatalf("a fresh token was refreshed %d times", n)
	}

	first := f.resolve("user-1")
	f.expire(t)
	if r := call(); r.status != 200 {
		t.Fatalf("call with an expired token: %d %s", r.status, r.body)
	}
	second := f.resolve("user-1")
	if p.Issued("refresh_token") != 1 || second.Values["access_token"] == first.Values["access_token"] ||
		second.Values["refresh_token"] == first.Values["refresh_token"] {
		t.Fatalf("proactive refresh: %d refreshes, tokens rotated: %v", p.Issued("refresh_token"), second.Values["refresh_token"] != first.Values["refresh_token"])
	}

	// The provider no longer accepts the stored token (say it was
	// revoked): one refresh, one retry.
	e.must(200, "PATCH", "/v1/installations/"+f.instID+"/users/user-1/settings", e.key,
		map[string]any{"values": map[string]any{"access_token": "revoked-token"}})
	if r := call(); r.status != 200 {
		t.Fatalf("call with a refused token: %d %s", r.status, r.body)
	}
	if n := p.Issued("refresh_token"); n != 2 {
		t.Errorf("reactive refresh: %d refreshes in all, want 2", n)
	}
	conns := e.must(200, "GET", "/v1/installations/"+f.instID+"/connections?user_id=user-1", e.key, nil)["connections"].([]any)
	if c := conns[0].(map[string]any); c["status"] != "connected" || c["refreshed_at"] == nil {
		t.Errorf("connection = %v", c)
	}

	// The platform may make the call itself with the rendered headers.
	h := e.must(200, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/me/headers", e.key, nil)
	if h["headers"].(map[string]any)["Authorization"] != "Bearer "+f.resolve("user-1").Values["access_token"] {
		t.Errorf("headers = %v", h)
	}
}

// TestRefreshTokenReuseMarksReauthorization: a refresh token that was
// already used (as after a lost rotation) is refused by the server, which
// revokes the whole grant (reuse detection); Latchkey marks the connection
// and answers an error with a fresh authorize link.
func TestRefreshTokenReuseMarksReauthorization(t *testing.T) {
	e := newEnv(t)
	p := newProvider(t, e, oauthtest.AuthBasic)
	f := newFlowApp(t, e, providerConfig(p, "basic"))
	f.connect(t, p, "user-1")
	f.addAPI(t, "me", p.URL())
	old := f.resolve("user-1").Values["refresh_token"]
	f.expire(t)
	call := func() proxied {
		return e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/me/proxy/api/me", nil, "")
	}
	if r := call(); r.status != 200 {
		t.Fatalf("first refresh: %d %s", r.status, r.body)
	}
	// Put the spent refresh token back and expire the access token.
	e.must(200, "PATCH", "/v1/installations/"+f.instID+"/users/user-1/settings", e.key,
		map[string]any{"values": map[string]any{"refresh_token": old}})
	f.expire(t)
	r := call()
	if r.status != http.StatusConflict || r.problemCode(t) != "reauthorization_required" {
		t.Fatalf("reused refresh token: %d %s", r.status, r.body)
	}
	var problem struct {
		AuthorizeURL string `json:"authorize_url"`
	}
	json.Unmarshal([]byte(r.body), &problem)
	if !strings.HasPrefix(problem.AuthorizeURL, e.url+"/oauth/authorize/") {
		t.Errorf("no authorize link in %s", r.body)
	}
	conns := e.must(200, "GET", "/v1/installations/"+f.instID+"/connections?user_id=user-1", e.key, nil)["connections"].([]any)
	if c := conns[0].(map[string]any); c["status"] != "reauthorization_required" || !strings.Contains(c["last_error"].(string), "invalid_grant") {
		t.Errorf("connection = %v", c)
	}
	// Until the user connects again, calls do not reach the provider.
	before := len(p.TokenRequests())
	if r := call(); r.status != http.StatusConflict || len(p.TokenRequests()) != before {
		t.Errorf("call after reauthorization was required: %d, %d new token requests", r.status, len(p.TokenRequests())-before)
	}
	// The link in the error starts a flow that connects the user again.
	b := newBrowser(t)
	_, hdr, _ := b.get(problem.AuthorizeURL)
	back, err := p.Consent(hdr.Get("Location"), true)
	if err != nil {
		t.Fatal(err)
	}
	if status, _, page := b.get(back.String()); status != 200 {
		t.Fatalf("reconnecting: %d\n%s", status, page)
	}
	if r := call(); r.status != 200 {
		t.Errorf("call after reconnecting: %d %s", r.status, r.body)
	}
}

// TestRefreshFailuresKeepTokens: a refresh that times out or fails with
// 5xx keeps the stored tokens, records the error, and the next call, once
// the provider recovers, succeeds.
func TestRefreshFailuresKeepTokens(t *testing.T) {
	e := newEnvWith(t, func(c *configT) { c.OutboundTimeout = 300 * time.Millisecond })
	fault := oauthtest.NewFaultProvider(t)
	var mu sync.Mutex
	valid := "at-1"
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+valid {
			w.WriteHeader(401)
			return
		}
		io.WriteString(w, "ok "+valid)
	}))
	t.Cleanup(api.Close)
	f := newFlowApp(t, e, map[string]any{"link_url": fault.URL() + "/authorize", "token_url": fault.URL() + "/token"})
	f.addAPI(t, "api", api.URL)
	fault.Then(oauthtest.TokenJSON(map[string]any{"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 3600}))
	b := newBrowser(t)
	_, hdr, _ := b.get(f.link("user-1", ""))
	state := mustURL(t, hdr.Get("Location")).Query().Get("state")
	if status, _, page := b.get(e.url + "/oauth/callback?code=c&state=" + url.QueryEscape(state)); status != 200 {
		t.Fatalf("callback: %d\n%s", status, page)
	}
	call := func() proxied {
		return e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/api/proxy/", nil, "")
	}

	for _, tt := range []struct {
		name   string
		fault  oauthtest.Response
		status int
	}{
		{"timeout", oauthtest.Timeout(time.Second), http.StatusGatewayTimeout},
		{"503", oauthtest.Response{Status: 503, Body: `{"error":"temporarily_unavailable"}`}, http.StatusBadGateway},
		{"429", oauthtest.Response{Status: 429, Header: http.Header{"Retry-After": {"0"}}}, http.StatusBadGateway},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f.expire(t)
			before := len(fault.Requests())
			fault.Then(tt.fault)
			r := call()
			if r.status != tt.status {
				t.Fatalf("call during the outage: %d %s", r.status, r.body)
			}
			// Transient failures are retried, three tries in all.
			if n := len(fault.Requests()) - before; n != 3 {
				t.Errorf("%d refresh tries, want 3", n)
			}
			if v := f.resolve("user-1").Values; v["access_token"] != "at-1" || v["refresh_token"] != "rt-1" {
				t.Fatalf("stored tokens changed after a failed refresh: %q %q", v["access_token"], v["refresh_token"])
			}
			conns := e.must(200, "GET", "/v1/installations/"+f.instID+"/connections", e.key, nil)["connections"].([]any)
			if c := conns[0].(map[string]any); c["status"] != "connected" || c["last_error"] == "" {
				t.Errorf("connection after the outage = %v", c)
			}
		})
	}

	// The provider recovers; it omits the refresh token, so the old one is kept.
	mu.Lock()
	valid = "at-2"
	mu.Unlock()
	fault.Then(oauthtest.TokenJSON(map[string]any{"access_token": "at-2", "expires_in": 3600}))
	if r := call(); r.status != 200 || r.body != "ok at-2" {
		t.Fatalf("call after recovery: %d %s", r.status, r.body)
	}
	last := fault.Requests()[len(fault.Requests())-1]
	if last.Form.Get("grant_type") != "refresh_token" || last.Form.Get("refresh_token") != "rt-1" {
		t.Errorf("refresh request form = %v", last.Form)
	}
	if v := f.resolve("user-1").Values; v["access_token"] != "at-2" || v["refresh_token"] != "rt-1" {
		t.Errorf("after recovery: %q %q", v["access_token"], v["refresh_token"])
	}
	conns := e.must(200, "GET", "/v1/installations/"+f.instID+"/connections", e.key, nil)["connections"].([]any)
	if c := conns[0].(map[string]any); c["last_error"] != "" {
		t.Errorf("last_error not cleared: %v", c)
	}
}

// TestExpiredBodyCondition: a provider that answers an expired token with
// 200 and an error in the body gets one refresh and one retry.
func TestExpiredBodyCondition(t *testing.T) {
	e := newEnv(t)
	tokens := oauthtest.NewFaultProvider(t)
	api := oauthtest.NewFaultProvider(t)
	f := newFlowApp(t, e, map[string]any{"link_url": tokens.URL() + "/authorize", "token_url": tokens.URL() + "/token",
		"expired_body_path": "$.error", "expired_body_value": "token_expired"})
	f.addAPI(t, "api", api.URL())
	tokens.Then(oauthtest.TokenJSON(map[string]any{"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 3600}))
	b := newBrowser(t)
	_, hdr, _ := b.get(f.link("user-1", ""))
	state := mustURL(t, hdr.Get("Location")).Query().Get("state")
	if status, _, page := b.get(e.url + "/oauth/callback?code=c&state=" + url.QueryEscape(state)); status != 200 {
		t.Fatalf("callback: %d\n%s", status, page)
	}
	tokens.Then(oauthtest.TokenJSON(map[string]any{"access_token": "at-2", "expires_in": 3600}))
	api.Then(oauthtest.TokenJSON(map[string]any{"ok": false, "error": "token_expired"}), oauthtest.TokenJSON(map[string]any{"ok": true}))
	r := e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/api/proxy/items", nil, "")
	if r.status != 200 || !strings.Contains(r.body, `"ok":true`) {
		t.Fatalf("call: %d %s", r.status, r.body)
	}
	seen := api.Requests()
	if len(seen) != 2 || seen[0].Header.Get("Authorization") != "Bearer at-1" || seen[1].Header.Get("Authorization") != "Bearer at-2" {
		t.Errorf("API saw %d requests: %v", len(seen), seen)
	}
	// Another error in the body is the API's answer, passed on as it is.
	api.Then(oauthtest.TokenJSON(map[string]any{"ok": false, "error": "not_found"}))
	if r := e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/api/proxy/items", nil, ""); r.status != 200 || !strings.Contains(r.body, "not_found") {
		t.Errorf("other error: %d %s", r.status, r.body)
	}
	if n := len(tokens.Requests()); n != 2 {
		t.Errorf("%d token requests, want the exchange and one refresh", n)
	}
}

// TestConcurrentRefreshAcrossReplicas: 200 calls at once for one user with
// an expired token, spread over two servers on one PostgreSQL, make exactly
// one refresh request, and all succeed.
func TestConcurrentRefreshAcrossReplicas(t *testing.T) {
	e := newEnv(t)
	if e.db.URL == "" {
		t.Skip("replicas share PostgreSQL; an embedded SQLite database serves one process")
	}
	p := newProvider(t, e, oauthtest.AuthBasic)
	f := newFlowApp(t, e, providerConfig(p, "basic"))
	f.connect(t, p, "user-1")
	f.addAPI(t, "me", p.URL())
	second := e.replica()
	f.expire(t)

	const calls = 200
	var wg sync.WaitGroup
	statuses := make([]int, calls)
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := e.url
			if i%2 == 1 {
				base = second
			}
			statuses[i] = e.proxy(base, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/me/proxy/api/me", nil, "").status
		}()
	}
	wg.Wait()
	failed := 0
	for _, s := range statuses {
		if s != 200 {
			failed++
		}
	}
	refreshes := 0
	for _, r := range p.TokenRequests() {
		if r.GrantType == "refresh_token" {
			refreshes++
		}
	}
	if failed > 0 || refreshes != 1 {
		t.Errorf("%d of %d calls failed; %d refresh requests, want 1", failed, calls, refreshes)
	}
}

// replica starts another server on e's database, as a second replica of
// the service would be, and returns its URL.
func (e *env) replica() string {
	u, _ := e.replicaWithJobs()
	return u
}

// replicaWithJobs is replica, also returning the replica's background jobs
// (not started).
func (e *env) replicaWithJobs() (string, *background) {
	e.t.Helper()
	log := slog.New(slog.NewJSONHandler(lockedWriter{&e.mu, &e.logs}, nil))
	srv := httptest.NewUnstartedServer(nil)
	cfg := e.cfg
	cfg.PublicURL = "http://" + srv.Listener.Addr().String()
	db := e.db.DB
	if e.db.URL != "" {
		db = e.db.Reopen(e.t) // a replica has its own connection pool
	}
	handler, jobs := newServer(cfg, db, e.cipher, log)
	jobs.listen(e.t)
	e.buses = append(e.buses, jobs.bus)
	srv.Config.Handler = handler
	srv.Start()
	e.t.Cleanup(srv.Close)
	return srv.URL, jobs
}

// TestProxy checks what passes through the proxy and what may not.
func TestProxy(t *testing.T) {
	e := newEnv(t)
	elsewhere := oauthtest.NewFaultProvider(t)
	type seen struct {
		method, path, rawQuery, body string
		header                       http.Header
	}
	var mu sync.Mutex
	var got []seen
	release := make(chan struct{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, string(body), r.Header.Clone()})
		mu.Unlock()
		switch r.URL.Path {
		case "/base/stream":
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: first\n\n")
			w.(http.Flusher).Flush()
			<-release // the second event waits until the caller has the first
			io.WriteString(w, "data: second\n\n")
		case "/base/moved":
			http.Redirect(w, r, elsewhere.URL()+"/steal", http.StatusFound)
		default:
			w.Header().Set("X-Upstream", "yes")
			w.WriteHeader(201)
			io.WriteString(w, "created")
		}
	}))
	t.Cleanup(api.Close)
	f := newFlowApp(t, e, map[string]any{"link_url": "https://p.example/a", "token_url": "https://p.example/t"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "api_key", "secret": true})
	e.must(200, "PATCH", "/v1/installations/"+f.instID+"/settings", e.key, map[string]any{"values": map[string]any{"api_key": "key-canary-51"}})
	e.must(201, "POST", "/v1/apps/acme/apis", e.key, map[string]any{
		"name": "plain", "base_url": api.URL + "/base", "methods": []string{"GET", "POST"},
		"headers": map[string]string{"X-Api-Key": "<<api_key>>", "X-Account": "<<provider_user>>"},
		"query":   map[string]string{"client": "<<client_id>>"},
	})
	path := "/v1/installations/" + f.instID + "/users/user-1/apis/plain/proxy/"
	e.must(200, "PATCH", "/v1/installations/"+f.instID+"/users/user-1/settings", e.key, map[string]any{"values": map[string]any{"provider_user": "u-1"}})

	r := e.proxy(e.url, "POST", path+"items/a%20b?x=1&client=evil", http.Header{
		"Content-Type": {"application/json"}, "X-Custom": {"kept"}, "X-Forwarded-For": {"6.6.6.6"},
		"X-Api-Key": {"caller-key"}, "Cookie": {"session=1"},
	}, `{"n":1}`)
	if r.status != 201 || r.body != "created" || r.header.Get("X-Upstream") != "yes" {
		t.Fatalf("POST: %d %s %v", r.status, r.body, r.header)
	}
	s := got[len(got)-1]
	if s.method != "POST" || s.path != "/base/items/a%20b" || s.body != `{"n":1}` {
		t.Errorf("upstream saw %s %s %q", s.method, s.path, s.body)
	}
	q, _ := url.ParseQuery(s.rawQuery)
	if q.Get("x") != "1" || len(q["client"]) != 1 || q.Get("client") != testClientID {
		t.Errorf("upstream query = %s", s.rawQuery)
	}
	for name, want := range map[string]string{"X-Api-Key": "key-canary-51", "X-Account": "u-1", "X-Custom": "kept",
		"Content-Type": "application/json", "Authorization": "", "X-Forwarded-For": "", "Cookie": ""} {
		if v := s.header.Get(name); v != want {
			t.Errorf("upstream header %s = %q, want %q", name, v, want)
		}
	}

	// Paths that would leave the base URL are refused before anything is sent.
	before := len(got)
	for _, p := range []string{"/%2F%2Fevil.example/x", "//evil.example/x", "../x", "a/%2e%2e/x", "a%5cb", "a/./b"} {
		if r := e.proxy(e.url, "GET", path+p, nil, ""); r.status != 422 || r.problemCode(t) != "invalid" {
			t.Errorf("path %q: %d %s", p, r.status, r.body)
		}
	}
	if len(got) != before {
		t.Errorf("escaping paths reached the API %d times", len(got)-before)
	}
	// "@evil" is only a path segment on the API's own host.
	if r := e.proxy(e.url, "GET", path+"@evil.example/x", nil, ""); r.status != 201 || got[len(got)-1].path != "/base/@evil.example/x" {
		t.Errorf("@ path: %d, upstream saw %q", r.status, got[len(got)-1].path)
	}

	// Methods the API does not allow.
	if r := e.proxy(e.url, "DELETE", path+"items", nil, ""); r.status != 405 || r.problemCode(t) != "method_not_allowed" {
		t.Errorf("DELETE: %d %s", r.status, r.body)
	}

	// A setting value with CR/LF cannot become a header: nothing is sent.
	e.must(200, "PATCH", "/v1/installations/"+f.instID+"/users/user-1/settings", e.key,
		map[string]any{"values": map[string]any{"provider_user": "u-1\r\nX-Evil: 1"}})
	before = len(got)
	if r := e.proxy(e.url, "GET", path+"items", nil, ""); r.status != 422 || len(got) != before {
		t.Errorf("CR/LF in a header value: %d %s; %d requests sent", r.status, r.body, len(got)-before)
	}
	e.must(200, "PATCH", "/v1/installations/"+f.instID+"/users/user-1/settings", e.key,
		map[string]any{"values": map[string]any{"provider_user": "u-1"}})

	// A redirect comes back as it is; its target gets nothing, least of
	// all the credentials.
	if r := e.proxy(e.url, "GET", path+"moved", nil, ""); r.status != 302 || !strings.HasPrefix(r.header.Get("Location"), elsewhere.URL()) {
		t.Errorf("redirect: %d %v", r.status, r.header)
	}
	if n := len(elsewhere.Requests()); n != 0 {
		t.Errorf("the redirect target got %d requests", n)
	}

	// Streaming: the first event arrives while the API is still writing.
	req, _ := http.NewRequest("GET", e.url+path+"stream", nil)
	req.Header.Set("Authorization", "Bearer "+e.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	line, err := rd.ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event: %q %v", line, err)
	}
	close(release)
	rest, _ := io.ReadAll(rd)
	if !strings.Contains(string(rest), "data: second") {
		t.Errorf("rest of the stream: %q", rest)
	}

	if strings.Contains(e.output(), "key-canary-51") {
		t.Error("the API key setting appears in a response or log")
	}
}

// TestClientCredentialsAndPassword: tokens without an end user at the
// provider, fetched when first needed or on demand, against the real
// authorization server.
func TestClientCredentialsAndPassword(t *testing.T) {
	for _, method := range []string{oauthtest.AuthBasic, oauthtest.AuthPost} {
		t.Run("client_credentials/"+method, func(t *testing.T) {
			e := newEnv(t)
			p := newProvider(t, e, method)
			clientAuth := map[string]string{oauthtest.AuthBasic: "basic", oauthtest.AuthPost: "body"}[method]
			f := newFlowApp(t, e, providerConfig(p, clientAuth))
			e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "app_token", "secret": true})
			cc := e.must(201, "POST", "/v1/apps/acme/oauth-configs", e.key, map[string]any{
				"name": "service", "grant_type": "client_credentials", "token_url": p.TokenURL(),
				"client_auth": clientAuth, "scopes": []string{"read"}, "access_token_setting": "app_token",
			})
			if cc["token_level"] != "organization" {
				t.Errorf("token_level = %v", cc["token_level"])
			}
			e.must(201, "POST", "/v1/apps/acme/apis", e.key, map[string]any{
				"name": "svc", "base_url": p.URL(), "config_id": cc["id"],
				"headers": map[string]string{"Authorization": "Bearer <<app_token>>"},
			})
			r := e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/apis/svc/proxy/api/me", nil, "")
			if r.status != 200 || !strings.Contains(r.body, `"id":"`+testClientID+`"`) {
				t.Fatalf("call: %d %s", r.status, r.body)
			}
			if p.Issued("client_credentials") != 1 {
				t.Errorf("%d client_credentials tokens issued", p.Issued("client_credentials"))
			}
			// A second call uses the stored token.
			e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/apis/svc/proxy/api/me", nil, "")
			if p.Issued("client_credentials") != 1 {
				t.Errorf("the stored token was not reused")
			}
			// Retrieve a token now, as a developer checking the config.
			got := e.must(200, "POST", "/v1/installations/"+f.instID+"/oauth-configs/"+cc["id"].(string)+"/token", e.key, map[string]any{})
			if ex := got["extracted"].(map[string]any)["app_token"].(string); !strings.Contains(ex, "****") {
				t.Errorf("extracted = %v", got["extracted"])
			}
			if p.Issued("client_credentials") != 2 || got["connection"].(map[string]any)["status"] != "connected" {
				t.Errorf("token now: %d issued, %v", p.Issued("client_credentials"), got["connection"])
			}
			e.must(422, "POST", "/v1/installations/"+f.instID+"/oauth-configs/"+f.configID+"/token", e.key, map[string]any{})
			wantFields(t, e.must(422, "POST", "/v1/installations/"+f.instID+"/authorize-links", e.key,
				map[string]any{"config_id": cc["id"], "user_id": "user-1"}), "config_id")
			if strings.Contains(e.output(), f.resolve("").Values["app_token"]) {
				t.Error("the client credentials token appears in a response or log")
			}
		})
	}

	t.Run("password", func(t *testing.T) {
		e := newEnv(t)
		p := newProvider(t, e, oauthtest.AuthBasic)
		f := newFlowApp(t, e, providerConfig(p, "basic"))
		e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "username", "level": "user"})
		e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "password", "level": "user", "secret": true})
		pw := e.must(201, "POST", "/v1/apps/acme/oauth-configs", e.key, map[string]any{
			"name": "pw", "grant_type": "password", "token_url": p.TokenURL(), "client_auth": "basic",
			"scopes": []string{"read", "offline"}, "access_token_setting": "access_token", "refresh_token_setting": "refresh_token",
		})
		e.must(200, "PATCH", "/v1/installations/"+f.instID+"/users/user-1/settings", e.key,
			map[string]any{"values": map[string]any{"username": "alice", "password": "alice-password"}})
		path := "/v1/installations/" + f.instID + "/oauth-configs/" + pw["id"].(string) + "/token"
		e.must(422, "POST", path, e.key, map[string]any{})
		got := e.must(200, "POST", path, e.key, map[string]any{"user_id": "user-1"})
		if p.Issued("password") != 1 || got["extracted"].(map[string]any)["refresh_token"] == "" {
			t.Fatalf("password grant: %d issued, %v", p.Issued("password"), got)
		}
		e.must(201, "POST", "/v1/apps/acme/apis", e.key, map[string]any{
			"name": "me", "base_url": p.URL(), "config_id": pw["id"],
			"headers": map[string]string{"Authorization": "Bearer <<access_token>>"},
		})
		f.expire(t)
		r := e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/me/proxy/api/me", nil, "")
		if r.status != 200 || !strings.Contains(r.body, `"id":"alice"`) || p.Issued("refresh_token") != 1 {
			t.Errorf("call after expiry: %d %s; %d refreshes", r.status, r.body, p.Issued("refresh_token"))
		}
		if strings.Contains(e.output(), "alice-password") {
			t.Error("the password appears in a response or log")
		}
	})
}

// TestOptionalHeaderAndQuery: an API's header or query parameter whose
// only placeholder is optional (<<name?>>) is left out when the setting
// has no value, and sent when it has one.
func TestOptionalHeaderAndQuery(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var got *http.Request
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r
		mu.Unlock()
	}))
	t.Cleanup(api.Close)
	e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": "Acme", "slug": "acme"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "company_id"})
	e.must(201, "POST", "/v1/apps/acme/apis", e.key, map[string]any{"name": "api", "base_url": api.URL,
		"headers": map[string]string{"Procore-Company-Id": "<<company_id?>>"}, "query": map[string]string{"company": "<<company_id?>>"}})
	wantFields(t, e.must(422, "POST", "/v1/apps/acme/apis", e.key, map[string]any{"name": "bad", "base_url": api.URL + "/<<company_id?>>"}), "base_url")
	inst := e.must(201, "POST", "/v1/installations", e.key, map[string]any{"app_id": "acme", "organization_id": "org-1"})["id"].(string)
	call := func() *http.Request {
		t.Helper()
		if r := e.proxy(e.url, "GET", "/v1/installations/"+inst+"/apis/api/proxy/x", nil, ""); r.status != 200 {
			t.Fatalf("call: %d %s", r.status, r.body)
		}
		mu.Lock()
		defer mu.Unlock()
		return got
	}
	if r := call(); r.Header.Get("Procore-Company-Id") != "" || r.URL.Query().Has("company") {
		t.Errorf("without a value: header %q, query %q", r.Header.Get("Procore-Company-Id"), r.URL.RawQuery)
	}
	e.must(200, "PATCH", "/v1/installations/"+inst+"/settings", e.key, map[string]any{"values": map[string]any{"company_id": "42"}})
	if r := call(); r.Header.Get("Procore-Company-Id") != "42" || r.URL.Query().Get("company") != "42" {
		t.Errorf("with a value: header %q, query %q", r.Header.Get("Procore-Company-Id"), r.URL.RawQuery)
	}
}

// TestTokenRequestShapes: token requests as GET with the parameters in
// the query, as POST with them in the query and no body, and with the
// Content-Type and Accept a provider wants.
func TestTokenRequestShapes(t *testing.T) {
	for _, tt := range []struct {
		name               string
		cfg                map[string]any
		method, ctype, acc string
		inQuery            bool
	}{
		{"GET", map[string]any{"token_method": "GET"}, "GET", "", "application/json", true},
		{"POST with a query", map[string]any{"token_params": "query"}, "POST", "", "application/json", true},
		{"vendor media types", map[string]any{"content_type": "application/vnd.api+json", "headers": map[string]string{"Accept": "application/vnd.api+json"}}, "POST", "application/vnd.api+json", "application/vnd.api+json", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			fault := oauthtest.NewFaultProvider(t)
			cfg := map[string]any{"link_url": fault.URL() + "/authorize", "token_url": fault.URL() + "/token?v=1"}
			for k, v := range tt.cfg {
				cfg[k] = v
			}
			f := newFlowApp(t, e, cfg)
			if status, page := f.connectWith(t, fault, "user-1", oauthtest.TokenJSON(map[string]any{"access_token": "at-1", "expires_in": 3600})); status != 200 {
				t.Fatalf("connect: %d %s", status, page)
			}
			r := fault.Requests()[0]
			if r.Method != tt.method || r.Header.Get("Content-Type") != tt.ctype && tt.ctype != "" || r.Header.Get("Accept") != tt.acc {
				t.Errorf("request: %s, Content-Type %q, Accept %q", r.Method, r.Header.Get("Content-Type"), r.Header.Get("Accept"))
			}
			if got := r.Query.Get("code"); (got == "c") != tt.inQuery || r.Query.Get("v") != "1" {
				t.Errorf("query %v (code in the query: %v)", r.Query, tt.inQuery)
			}
			if tt.inQuery && r.Body != "" {
				t.Errorf("a body with the parameters in the query: %q", r.Body)
			}
		})
	}
	e := newEnv(t)
	setupApp(e)
	base := map[string]any{"name": "p", "link_url": "https://p.example/a", "token_url": "https://p.example/t", "access_token_setting": "access_token"}
	for field, bad := range map[string]map[string]any{
		"token_method": {"token_method": "PUT"},
		"token_params": {"token_params": "query", "body_format": "json"},
		"content_type": {"content_type": "not a type"},
	} {
		body := map[string]any{}
		for k, v := range base {
			body[k] = v
		}
		for k, v := range bad {
			body[k] = v
		}
		wantFields(t, e.must(422, "POST", "/v1/apps/acme/oauth-configs", e.key, body), field)
	}
}

// TestBaseURLSetting: a token URL may start with a url setting (Zoho's
// accounts server, Pipedrive's api_domain) followed by a path; another
// setting there is refused at save.
func TestBaseURLSetting(t *testing.T) {
	e := newEnv(t)
	fault := oauthtest.NewFaultProvider(t)
	f := newFlowApp(t, e, map[string]any{"link_url": fault.URL() + "/authorize", "token_url": fault.URL() + "/token"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "accounts_server", "type": "url"})
	path := "/v1/apps/acme/oauth-configs/" + f.configID
	wantFields(t, e.must(422, "PATCH", path, e.key, map[string]any{"token_url": "<<client_id>>/oauth/v2/token"}), "token_url")
	e.must(200, "PATCH", path, e.key, map[string]any{"token_url": "<<accounts_server>>/oauth/v2/token"})
	e.must(200, "PATCH", "/v1/installations/"+f.instID+"/settings", e.key, map[string]any{"values": map[string]any{"accounts_server": fault.URL() + "/eu"}})
	if status, page := f.connectWith(t, fault, "user-1", oauthtest.TokenJSON(map[string]any{"access_token": "at-1", "expires_in": 3600})); status != 200 {
		t.Fatalf("connect: %d %s", status, page)
	}
	if got := fault.Requests()[0].Path; got != "/eu/oauth/v2/token" {
		t.Errorf("the token request went to %q", got)
	}
}

// TestCallbackMappings: values of the provider's redirect (Zoho's
// accounts-server, QuickBooks' realmId) are checked against their
// settings, used by the code exchange, and stored with the tokens; one that
// does not fit its setting stops the flow before any token request.
func TestCallbackMappings(t *testing.T) {
	e := newEnv(t)
	fault := oauthtest.NewFaultProvider(t)
	f := newFlowApp(t, e, map[string]any{"link_url": fault.URL() + "/authorize", "token_url": fault.URL() + "/token"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "accounts_server", "type": "url", "pattern": `http://127\.0\.0\.1:[0-9]+/(eu|us)`})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "realm_id", "pattern": "[0-9]+"})
	path := "/v1/apps/acme/oauth-configs/" + f.configID
	wantFields(t, e.must(422, "PATCH", path, e.key, map[string]any{"callback_mappings": []map[string]string{{"param": "state", "setting": "nope"}}}),
		"callback_mappings[0].param", "callback_mappings[0].setting")
	e.must(200, "PATCH", path, e.key, map[string]any{"token_url": "<<accounts_server>>/oauth/v2/token",
		"callback_mappings": []map[string]string{{"param": "accounts-server", "setting": "accounts_server"}, {"param": "realmId", "setting": "realm_id"}}})
	callback := func(user, server string) (int, string) {
		fault.Then(oauthtest.TokenJSON(map[string]any{"access_token": "at-" + user, "expires_in": 3600}))
		b := newBrowser(t)
		_, hdr, _ := b.get(f.link(user, ""))
		state := mustURL(t, hdr.Get("Location")).Query().Get("state")
		status, _, page := b.get(e.url + "/oauth/callback?code=c&state=" + url.QueryEscape(state) + "&accounts-server=" + url.QueryEscape(server) + "&realmId=4620816365")
		return status, page
	}
	if status, page := callback("user-1", fault.URL()+"/eu"); status != 200 {
		t.Fatalf("callback: %d %s", status, page)
	}
	if got := fault.Requests()[0].Path; got != "/eu/oauth/v2/token" {
		t.Errorf("the exchange went to %q", got)
	}
	v := f.resolve("user-1").Values
	if v["access_token"] != "at-user-1" || v["realm_id"] != "4620816365" || v["accounts_server"] != fault.URL()+"/eu" {
		t.Errorf("stored %q %q %q", v["access_token"], v["realm_id"], v["accounts_server"])
	}
	// explain shows what the redirect's values go to.
	ex := e.must(200, "POST", path+"/explain", e.key, map[string]any{"installation_id": f.instID, "user_id": "user-1"})
	if m, _ := ex["callback_mappings"].([]any); len(m) != 2 {
		t.Errorf("explain's callback_mappings = %v", ex["callback_mappings"])
	}
	// An accounts server the app does not allow: no token request is sent.
	before := len(fault.Requests())
	if status, page := callback("user-2", "https://evil.example"); status != http.StatusBadGateway || !strings.Contains(page, "accounts-server") {
		t.Errorf("a foreign accounts server: %d %s", status, page)
	}
	if n := len(fault.Requests()) - before; n != 0 {
		t.Errorf("%d token requests went out with a foreign accounts server", n)
	}
}

// TestJSONBodyValues: a JSON token body may place number and boolean
// settings as bare values; a text setting there is refused at save.
func TestJSONBodyValues(t *testing.T) {
	e := newEnv(t)
	fault := oauthtest.NewFaultProvider(t)
	f := newFlowApp(t, e, map[string]any{"link_url": fault.URL() + "/authorize", "token_url": fault.URL() + "/token"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "account_number", "type": "number"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "sandbox", "type": "boolean", "default": "false"})
	path := "/v1/apps/acme/oauth-configs/" + f.configID
	wantFields(t, e.must(422, "PATCH", path, e.key, map[string]any{"body_format": "json", "token_body": `{"code": "<<auth_code>>", "n": <<client_id>>}`}), "token_body")
	e.must(200, "PATCH", path, e.key, map[string]any{"body_format": "json", "pkce": "off",
		"token_body": `{"grant_type": "authorization_code", "code": "<<auth_code>>", "account": <<account_number>>, "sandbox": <<sandbox>>}`})
	wantFields(t, e.must(422, "PATCH", "/v1/installations/"+f.instID+"/settings", e.key, map[string]any{"values": map[string]any{"account_number": "12abc"}}), "values.account_number")
	e.must(200, "PATCH", "/v1/installations/"+f.instID+"/settings", e.key, map[string]any{"values": map[string]any{"account_number": "1234567"}})
	if status, page := f.connectWith(t, fault, "user-1", oauthtest.TokenJSON(map[string]any{"access_token": "at-1", "expires_in": 3600})); status != 200 {
		t.Fatalf("connect: %d %s", status, page)
	}
	if got := fault.Requests()[0].Body; got != `{"grant_type": "authorization_code", "code": "c", "account": 1234567, "sandbox": false}` {
		t.Errorf("body = %s", got)
	}
}
