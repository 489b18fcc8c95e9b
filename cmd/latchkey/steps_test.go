package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/oauthtest"
)

// instagramSteps is Instagram's shape: the code gives a short-lived token,
// which a GET to /access_token trades for a long-lived one (60 days); the
// identity request then runs with the long-lived token.
func instagramSteps(tokens, graph *oauthtest.FaultProvider) map[string]any {
	return map[string]any{
		"link_url": tokens.URL() + "/authorize", "token_url": tokens.URL() + "/token",
		"steps": []map[string]any{{
			"name":              "long_lived",
			"url":               graph.URL() + "/access_token?grant_type=ig_exchange_token&client_secret=<<client_secret>>&access_token=<<access_token>>",
			"access_token_path": "$.access_token",
			"expires_in_path":   "$.expires_in",
		}},
		"identity_url":      graph.URL() + "/me?fields=id&access_token=<<access_token>>",
		"identity_mappings": []map[string]string{{"path": "$.id", "setting": "provider_user"}},
	}
}

// TestStepsReplaceTokens: a step trades the exchanged token for another
// (Instagram's long-lived token), the identity request runs after it with
// the new token, and what a step gave is stored even when a later one
// fails; a failed step fails the sign-in, the exchanged tokens kept.
func TestStepsReplaceTokens(t *testing.T) {
	e := newEnv(t)
	tokens := oauthtest.NewFaultProvider(t)
	graph := oauthtest.NewFaultProvider(t)
	f := newFlowApp(t, e, instagramSteps(tokens, graph))
	const short, long = "IGQVJ-short-lived-token-0001", "IGQVJ-long-lived-token-0002"

	graph.Then(oauthtest.TokenJSON(map[string]any{"access_token": long, "token_type": "bearer", "expires_in": 5183944}),
		oauthtest.TokenJSON(map[string]any{"id": "17841400000000001"}))
	if status, page := f.connectWith(t, tokens, "user-1", oauthtest.TokenJSON(map[string]any{"access_token": short, "expires_in": 3600})); status != 200 {
		t.Fatalf("connect: %d %s", status, page)
	}
	reqs := graph.Requests()
	if len(reqs) != 2 || reqs[0].Path != "/access_token" || reqs[0].Query.Get("access_token") != short ||
		reqs[0].Query.Get("client_secret") != testClientSecret || reqs[1].Path != "/me" || reqs[1].Query.Get("access_token") != long {
		t.Fatalf("steps sent %+v", reqs)
	}
	if v := f.resolve("user-1").Values; v["access_token"] != long || v["provider_user"] != "17841400000000001" {
		t.Errorf("stored access_token %q, provider_user %q; want the long-lived token and the id", v["access_token"], v["provider_user"])
	}
	c := f.connection(t, "user-1")
	if exp, _ := time.Parse(time.RFC3339, c["expires_at"].(string)); time.Until(exp) < 59*24*time.Hour || c["last_error"] != nil && c["last_error"] != "" {
		t.Errorf("connection after the steps: %v; want the long-lived token's 60 days", c)
	}
	kinds := map[any]int{}
	for _, r := range e.must(200, "GET", "/v1/installations/"+f.instID+"/oauth-requests", e.key, nil)["requests"].([]any) {
		kinds[r.(map[string]any)["kind"]]++
	}
	if kinds["exchange"] != 1 || kinds["step"] != 1 || kinds["identity"] != 1 {
		t.Errorf("request log kinds = %v, want an exchange, a step and an identity request", kinds)
	}

	// The step fails: the sign-in says which step and why, and the
	// exchanged token is stored (the code is spent).
	graph.Then(oauthtest.Response{Status: 400, Body: `{"error":{"message":"Invalid OAuth access token","type":"OAuthException"}}`})
	status, page := f.connectWith(t, tokens, "user-2", oauthtest.TokenJSON(map[string]any{"access_token": short + "-2", "expires_in": 3600}))
	if status != http.StatusBadGateway || !strings.Contains(page, "long_lived") {
		t.Errorf("failed step: %d %s", status, page)
	}
	if v := f.resolve("user-2").Values; v["access_token"] != short+"-2" {
		t.Errorf("after a failed step access_token = %q, want the exchanged one", v["access_token"])
	}
	if c := f.connection(t, "user-2"); c["status"] != "connected" || !strings.Contains(c["last_error"].(string), `step "long_lived" was answered 400`) {
		t.Errorf("connection after a failed step: %v", c)
	}

	// The identity request after it fails: the step's token is stored.
	graph.Then(oauthtest.TokenJSON(map[string]any{"access_token": long + "-3", "expires_in": 5183944}), oauthtest.Response{Status: 500})
	if status, _ := f.connectWith(t, tokens, "user-3", oauthtest.TokenJSON(map[string]any{"access_token": short + "-3"})); status != http.StatusBadGateway {
		t.Errorf("failed identity request after a step: %d", status)
	}
	if v := f.resolve("user-3").Values; v["access_token"] != long+"-3" {
		t.Errorf("a later failure lost the step's token: access_token = %q", v["access_token"])
	}
	if c := f.connection(t, "user-3"); !strings.Contains(c["last_error"].(string), "identity request failed") {
		t.Errorf("connection = %v", c)
	}

	// A malformed lifetime in a step's answer does not cost the token it
	// came with: the default lifetime is assumed, and the problem said.
	graph.Then(oauthtest.TokenJSON(map[string]any{"access_token": long + "-4", "expires_in": "two months"}), oauthtest.TokenJSON(map[string]any{"id": "17841400000000004"}))
	if status, _ := f.connectWith(t, tokens, "user-4", oauthtest.TokenJSON(map[string]any{"access_token": short + "-4"})); status != http.StatusBadGateway {
		t.Errorf("a step's malformed expires_in: %d, want the problem reported", status)
	}
	if v := f.resolve("user-4").Values; v["access_token"] != long+"-4" {
		t.Errorf("a malformed expires_in lost the step's token: access_token = %q", v["access_token"])
	}
	if c := f.connection(t, "user-4"); !strings.Contains(c["last_error"].(string), "default lifetime") {
		t.Errorf("connection = %v", c)
	}

	for _, secret := range []string{testClientSecret, short, long} {
		if strings.Contains(e.output(), secret) {
			t.Errorf("%q appears in a response or log", secret)
		}
	}
	if !strings.Contains(e.storedText(t), "[REDACTED]") {
		t.Error("the request log redacted nothing: the step's URL carries the client secret and the token")
	}
}

// TestStepsOnRefresh: Bullhorn's shape. After the code exchange, a login
// with the access token gives a REST session token and a per-tenant URL;
// it is repeated after each refresh, under the refresh's lock, so that
// calls carry the session of the current token.
func TestStepsOnRefresh(t *testing.T) {
	e := newEnv(t)
	p := newProvider(t, e, oauthtest.AuthBasic)
	rest := oauthtest.NewFaultProvider(t)
	steps := []map[string]any{{
		"name": "login", "method": "POST",
		"url": rest.URL() + "/rest-services/login?version=2.0&access_token=<<access_token>>",
		"mappings": []map[string]any{
			{"path": "$.BhRestToken", "setting": "bh_rest_token", "required": true},
			{"path": "$.restUrl", "setting": "rest_url", "required": true}},
		"on_refresh": true,
	}}
	f := newFlowApp(t, e, providerConfig(p, "basic"))
	for _, d := range []map[string]any{{"key": "bh_rest_token", "level": "user", "secret": true}, {"key": "rest_url", "level": "user"}} {
		e.must(201, "POST", "/v1/apps/acme/settings", e.key, d)
	}
	e.must(200, "PATCH", "/v1/apps/acme/oauth-configs/"+f.configID, e.key, map[string]any{"steps": steps})

	var mu sync.Mutex
	var sessions []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sessions = append(sessions, r.Header.Get("BhRestToken"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"data":[]}`))
	}))
	t.Cleanup(api.Close)
	e.must(201, "POST", "/v1/apps/acme/apis", e.key, map[string]any{"name": "bullhorn", "base_url": api.URL, "config_id": f.configID,
		"headers": map[string]string{"BhRestToken": "<<bh_rest_token>>"}})
	call := func() proxied {
		return e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/bullhorn/proxy/entity/Candidate", nil, "")
	}

	rest.Then(oauthtest.TokenJSON(map[string]any{"BhRestToken": "bh-session-0001", "restUrl": "https://rest9.bullhornstaffing.com/rest-services/abc/"}))
	f.connect(t, p, "user-1")
	first := f.resolve("user-1").Values
	if first["bh_rest_token"] != "bh-session-0001" || first["rest_url"] != "https://rest9.bullhornstaffing.com/rest-services/abc/" {
		t.Fatalf("after connecting: bh_rest_token %q, rest_url %q", first["bh_rest_token"], first["rest_url"])
	}
	if r := call(); r.status != 200 {
		t.Fatalf("call: %d %s", r.status, r.body)
	}

	// The token expires: the refresh is followed by a new login with the
	// new token, and the call carries the new session. The login runs
	// under the renewal's lease, given back after it.
	login := oauthtest.TokenJSON(map[string]any{"BhRestToken": "bh-session-0002", "restUrl": "https://rest9.bullhornstaffing.com/rest-services/abc/"})
	var leasedDuringLogin int64
	login.Before = func() { leasedDuringLogin = e.leases() }
	rest.Then(login)
	f.expire(t)
	if r := call(); r.status != 200 {
		t.Fatalf("call after expiry: %d %s", r.status, r.body)
	}
	if leasedDuringLogin != 1 || e.leases() != 0 {
		t.Errorf("leases held during the login: %d, after: %d; want 1, 0", leasedDuringLogin, e.leases())
	}
	second := f.resolve("user-1").Values
	logins := rest.Requests()
	if second["access_token"] == first["access_token"] || len(logins) != 2 || logins[1].Method != "POST" ||
		logins[0].Query.Get("access_token") != first["access_token"] || logins[1].Query.Get("access_token") != second["access_token"] {
		t.Fatalf("logins %+v; tokens %q then %q", logins, first["access_token"], second["access_token"])
	}
	mu.Lock()
	if len(sessions) != 2 || sessions[0] != "bh-session-0001" || sessions[1] != "bh-session-0002" {
		t.Errorf("calls carried sessions %q, want the first then the renewed one", sessions)
	}
	mu.Unlock()

	// The login fails after a refresh: the call says why, the renewed
	// tokens are stored all the same, and the connection records it.
	rest.Then(oauthtest.Response{Status: 500, Body: `{"errorMessage":"login failed"}`})
	f.expire(t)
	if r := call(); r.status != http.StatusBadGateway || !strings.Contains(r.body, `step \"login\" was answered 500`) {
		t.Errorf("call with a failed login: %d %s", r.status, r.body)
	}
	third := f.resolve("user-1").Values
	if third["access_token"] == second["access_token"] || third["refresh_token"] == "" {
		t.Errorf("the renewed tokens were not stored")
	}
	if c := f.connection(t, "user-1"); c["status"] != "connected" || !strings.Contains(c["last_error"].(string), "the token was renewed, but step") {
		t.Errorf("connection = %v", c)
	}
	for _, secret := range []string{first["access_token"], second["access_token"], "bh-session-0001", "bh-session-0002"} {
		if strings.Contains(e.output(), secret) {
			t.Errorf("a token or session appears in a response or log")
		}
	}
}

// TestStepsValidation: steps are checked on save like every other field,
// each error naming the step's field.
func TestStepsValidation(t *testing.T) {
	e := newEnv(t)
	tokens := oauthtest.NewFaultProvider(t)
	f := newFlowApp(t, e, map[string]any{"link_url": tokens.URL() + "/authorize", "token_url": tokens.URL() + "/token"})
	path := "/v1/apps/acme/oauth-configs/" + f.configID
	bad := e.must(422, "PATCH", path, e.key, map[string]any{"steps": []map[string]any{
		{"name": "identity", "url": "https://api.example/a"},
		{"name": "two", "method": "POST", "url": "https://api.example/<<nope>>"},
		{"name": "two", "url": "https://api.example/c", "body": "x=1"},
		{"name": "four", "url": "https://api.example/d", "mappings": []map[string]any{{"path": "$.t", "setting": "access_token"}}},
		{"name": "five", "url": "https://api.example/e", "access_token_path": "$[", "headers": map[string]string{"Content-Length": "1"}},
	}})
	wantFields(t, bad, "steps[0].name", "steps[1].url", "steps[2].name", "steps[2].body", "steps[3].mappings[0].setting",
		"steps[4].access_token_path", "steps[4].headers.Content-Length")
	six := make([]map[string]any, 6)
	for i := range six {
		six[i] = map[string]any{"name": "s" + string(rune('a'+i)), "url": "https://api.example/"}
	}
	if e.specAccepts("PATCH", path, e.key, map[string]any{"steps": six}) {
		t.Error("openapi.yaml accepts six steps")
	}
	got := e.must(200, "PATCH", path, e.key, map[string]any{"steps": []map[string]any{{"name": "long_lived", "url": "https://api.example/x?t=<<access_token>>"}}})
	st := got["steps"].([]any)[0].(map[string]any)
	if st["method"] != "GET" || st["on_refresh"] != false {
		t.Errorf("a step's defaults: %v", st)
	}
}

// TestExplainSteps: explain shows each step, and the identity request
// last, as it would be sent after a code exchange: secrets masked, the
// tokens still to come as placeholders.
func TestExplainSteps(t *testing.T) {
	e := newEnv(t)
	tokens := oauthtest.NewFaultProvider(t)
	graph := oauthtest.NewFaultProvider(t)
	f := newFlowApp(t, e, instagramSteps(tokens, graph))
	got := e.must(200, "POST", "/v1/apps/acme/oauth-configs/"+f.configID+"/explain", e.key,
		map[string]any{"installation_id": f.instID, "user_id": "user-1"})
	steps, _ := got["steps"].([]any)
	if len(steps) != 2 {
		t.Fatalf("explain steps: %v", got)
	}
	first, second := steps[0].(map[string]any), steps[1].(map[string]any)
	u, _ := first["request"].(map[string]any)["url"].(string)
	if first["name"] != "long_lived" || !strings.Contains(u, "client_secret=****") || !strings.Contains(u, "access_token=****") {
		t.Errorf("explained step: %v", first)
	}
	if second["name"] != "identity" || second["request"] == nil {
		t.Errorf("explained identity request: %v", second)
	}
	if strings.Contains(string(mustJSON(t, got)), testClientSecret) {
		t.Error("explain shows the client secret")
	}
}

// TestStepsWithoutUser: a grant without an end user runs its steps after
// every token request, the first one (made for a call) included, and
// stores what they give at the installation's level.
func TestStepsWithoutUser(t *testing.T) {
	e := newEnv(t)
	p := newProvider(t, e, oauthtest.AuthBasic)
	session := oauthtest.NewFaultProvider(t)
	f := newFlowApp(t, e, providerConfig(p, "basic"))
	for _, d := range []map[string]any{{"key": "app_token", "secret": true}, {"key": "session_id", "secret": true}} {
		e.must(201, "POST", "/v1/apps/acme/settings", e.key, d)
	}
	cc := e.must(201, "POST", "/v1/apps/acme/oauth-configs", e.key, map[string]any{
		"name": "service", "grant_type": "client_credentials", "token_url": p.TokenURL(), "client_auth": "basic",
		"scopes": []string{"read"}, "access_token_setting": "app_token",
		"steps": []map[string]any{{"name": "session", "method": "POST", "url": session.URL() + "/session",
			"headers": map[string]string{"Authorization": "Bearer <<app_token>>"},
			"body":    `{"client":"<<client_id>>"}`, "content_type": "application/json",
			"mappings": []map[string]any{{"path": "$.session.id", "setting": "session_id", "required": true}}}},
	})
	e.must(201, "POST", "/v1/apps/acme/apis", e.key, map[string]any{"name": "svc", "base_url": p.URL(), "config_id": cc["id"],
		"headers": map[string]string{"Authorization": "Bearer <<app_token>>", "X-Session": "<<session_id>>"}})
	session.Then(oauthtest.TokenJSON(map[string]any{"session": map[string]any{"id": "sess-0001"}}),
		oauthtest.TokenJSON(map[string]any{"session": map[string]any{"id": "sess-0002"}}))

	if r := e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/apis/svc/proxy/api/me", nil, ""); r.status != 200 {
		t.Fatalf("call: %d %s", r.status, r.body)
	}
	reqs := session.Requests()
	if len(reqs) != 1 || reqs[0].Body != `{"client":"`+testClientID+`"}` || reqs[0].Header.Get("Content-Type") != "application/json" ||
		reqs[0].Header.Get("Authorization") != "Bearer "+f.resolve("").Values["app_token"] {
		t.Fatalf("session requests: %+v", reqs)
	}
	if got := f.resolve("").Values["session_id"]; got != "sess-0001" {
		t.Errorf("session_id = %q after the first token", got)
	}
	// A token requested now is a new one: the step runs again.
	e.must(200, "POST", "/v1/installations/"+f.instID+"/oauth-configs/"+cc["id"].(string)+"/token", e.key, map[string]any{})
	if got := f.resolve("").Values["session_id"]; got != "sess-0002" || len(session.Requests()) != 2 {
		t.Errorf("session_id = %q after a new token (%d session requests)", got, len(session.Requests()))
	}
}

// TestInstagramLongLivedTokens: Instagram's whole cycle. The code is
// exchanged with a POST; a step trades the short-lived token for a
// long-lived one, which is also what refreshes it; refreshes are GETs with
// their parameters in the query, and each answer's token is the next
// refresh's.
func TestInstagramLongLivedTokens(t *testing.T) {
	e := newEnv(t)
	tokens := oauthtest.NewFaultProvider(t)
	graph := oauthtest.NewFaultProvider(t)
	cfg := instagramSteps(tokens, graph)
	delete(cfg, "identity_url")
	delete(cfg, "identity_mappings")
	steps := cfg["steps"].([]map[string]any)
	steps[0]["refresh_token_path"] = "$.access_token"
	cfg["refresh_url"] = graph.URL() + "/refresh_access_token"
	cfg["refresh_method"] = "GET"
	cfg["refresh_body"] = "grant_type=ig_refresh_token&access_token=<<refresh_token>>"
	cfg["refresh_token_path"] = "$.refresh_token | $.access_token"
	f := newFlowApp(t, e, cfg)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) }))
	t.Cleanup(api.Close)
	f.addAPI(t, "graph", api.URL)
	const long1, long2, long3 = "IGAA-long-lived-token-0001", "IGAA-long-lived-token-0002", "IGAA-long-lived-token-0003"

	graph.Then(oauthtest.TokenJSON(map[string]any{"access_token": long1, "token_type": "bearer", "expires_in": 5183944}))
	if status, page := f.connectWith(t, tokens, "user-1", oauthtest.TokenJSON(map[string]any{"access_token": "IGAA-short-lived-0000", "user_id": 42})); status != 200 {
		t.Fatalf("connect: %d %s", status, page)
	}
	if got := tokens.Requests()[0]; got.Method != "POST" || got.Form.Get("code") != "c" {
		t.Errorf("the code exchange: %+v", got)
	}
	if v := f.resolve("user-1").Values; v["access_token"] != long1 || v["refresh_token"] != long1 {
		t.Fatalf("after connecting: access %q, refresh %q; want the long-lived token in both", v["access_token"], v["refresh_token"])
	}
	for i, next := range []string{long2, long3} {
		graph.Then(oauthtest.TokenJSON(map[string]any{"access_token": next, "token_type": "bearer", "expires_in": 5183944}))
		f.expire(t)
		if r := e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/graph/proxy/me", nil, ""); r.status != 200 {
			t.Fatalf("call after expiry: %d %s", r.status, r.body)
		}
		reqs := graph.Requests()
		got := reqs[len(reqs)-1]
		want := []string{long1, long2}[i]
		if got.Method != "GET" || got.Path != "/refresh_access_token" || got.Body != "" ||
			got.Query.Get("grant_type") != "ig_refresh_token" || got.Query.Get("access_token") != want {
			t.Errorf("refresh %d: %s %s %v body %q; want a GET with the token %s", i+1, got.Method, got.Path, got.Query, got.Body, want)
		}
		if v := f.resolve("user-1").Values; v["access_token"] != next || v["refresh_token"] != next {
			t.Errorf("after refresh %d: access %q, refresh %q; want %s in both", i+1, v["access_token"], v["refresh_token"], next)
		}
	}
	// token_method stays POST: the configuration is what says GET.
	got := e.must(200, "GET", "/v1/apps/acme/oauth-configs/"+f.configID, e.key, nil)
	if got["token_method"] != "POST" || got["refresh_method"] != "GET" {
		t.Errorf("methods: %v and %v", got["token_method"], got["refresh_method"])
	}
	wantFields(t, e.must(422, "PATCH", "/v1/apps/acme/oauth-configs/"+f.configID, e.key, map[string]any{"refresh_method": "GET", "body_format": "json"}), "refresh_body", "refresh_method")
}
