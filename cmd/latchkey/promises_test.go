package main

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/dbtest"
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

// connectWith runs the callback for user against a fault provider that
// answers the exchange with answer, and returns the callback's status.
func (f *flowApp) connectWith(t *testing.T, fault *oauthtest.FaultProvider, user string, answer oauthtest.Response) (int, string) {
	t.Helper()
	fault.Then(answer)
	b := newBrowser(t)
	_, hdr, _ := b.get(f.link(user, ""))
	state := mustURL(t, hdr.Get("Location")).Query().Get("state")
	status, _, page := b.get(f.e.url + "/oauth/callback?code=c&state=" + url.QueryEscape(state))
	return status, page
}

// connection returns user's connection as the REST API shows it.
func (f *flowApp) connection(t *testing.T, user string) map[string]any {
	t.Helper()
	conns := f.e.must(200, "GET", "/v1/installations/"+f.instID+"/connections?user_id="+user, f.e.key, nil)["connections"].([]any)
	if len(conns) != 1 {
		t.Fatalf("%d connections for %s", len(conns), user)
	}
	return conns[0].(map[string]any)
}

// events lists the webhook events queued so far, oldest first.
func (e *env) events(t *testing.T) []string {
	t.Helper()
	var out []string
	if err := e.db.Raw("SELECT event FROM webhook_deliveries ORDER BY created_at, id").Scan(&out).Error; err != nil {
		t.Fatal(err)
	}
	return out
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// TestRefreshAnswerWithoutMappedValue: a refresh answer that lacks a value
// the exchange had (Salesforce's instance_url) or carries one that does
// not fit its setting still has its tokens stored, and the next refresh
// sends the rotated refresh token.
func TestRefreshAnswerWithoutMappedValue(t *testing.T) {
	e := newEnv(t)
	fault := oauthtest.NewFaultProvider(t)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.Header.Get("Authorization"))) }))
	t.Cleanup(api.Close)
	f := newFlowApp(t, e, map[string]any{"link_url": fault.URL() + "/authorize", "token_url": fault.URL() + "/token"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "instance_url", "level": "user", "pattern": "https://[a-z.]+"})
	e.must(200, "PATCH", "/v1/apps/acme/oauth-configs/"+f.configID, e.key, map[string]any{
		"mappings": []map[string]any{{"path": "$.instance_url", "setting": "instance_url", "required": true}}})
	f.addAPI(t, "api", api.URL)

	// An exchange without the required value stores the tokens and says so.
	status, page := f.connectWith(t, fault, "user-1", oauthtest.TokenJSON(map[string]any{"access_token": "at-0", "refresh_token": "rt-0", "expires_in": 3600}))
	if status != http.StatusBadGateway || !strings.Contains(page, "no value at $.instance_url") {
		t.Errorf("exchange without instance_url: %d\n%s", status, page)
	}
	if v := f.resolve("user-1").Values; v["access_token"] != "at-0" || v["refresh_token"] != "rt-0" {
		t.Errorf("tokens of an exchange without a required value: %q %q", v["access_token"], v["refresh_token"])
	}

	status, page = f.connectWith(t, fault, "user-1", oauthtest.TokenJSON(map[string]any{"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 3600, "instance_url": "https://eu.example"}))
	if status != http.StatusOK {
		t.Fatalf("exchange: %d\n%s", status, page)
	}
	call := func() proxied {
		return e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/api/proxy/x", nil, "")
	}
	for i, tt := range []struct {
		answer    map[string]any
		wantError string
	}{
		{map[string]any{"access_token": "at-2", "refresh_token": "rt-2", "expires_in": 3600}, ""},
		{map[string]any{"access_token": "at-3", "refresh_token": "rt-3", "expires_in": 3600, "instance_url": "not a URL"}, `setting "instance_url"`},
	} {
		f.expire(t)
		fault.Then(oauthtest.TokenJSON(tt.answer))
		if r := call(); r.status != 200 || r.body != "Bearer "+tt.answer["access_token"].(string) {
			t.Fatalf("refresh %d: call %d %s", i, r.status, r.body)
		}
		v := f.resolve("user-1").Values
		if v["access_token"] != tt.answer["access_token"] || v["refresh_token"] != tt.answer["refresh_token"] || v["instance_url"] != "https://eu.example" {
			t.Errorf("refresh %d stored %q %q %q", i, v["access_token"], v["refresh_token"], v["instance_url"])
		}
		c := f.connection(t, "user-1")
		if c["status"] != "connected" || !strings.Contains(c["last_error"].(string), tt.wantError) || (tt.wantError == "") != (c["last_error"] == "") {
			t.Errorf("refresh %d: connection %v", i, c)
		}
	}
	// The rotated refresh token was the one sent.
	reqs := fault.Requests()
	if got := reqs[len(reqs)-1].Form.Get("refresh_token"); got != "rt-2" {
		t.Errorf("the second refresh sent %q, want the rotated rt-2", got)
	}
	// The request log says what did not fit.
	logged := e.must(200, "GET", "/v1/installations/"+f.instID+"/oauth-requests", e.key, nil)["requests"].([]any)
	if msg, _ := logged[0].(map[string]any)["error"].(string); !strings.Contains(msg, `setting "instance_url"`) || strings.Contains(msg, "not a URL") {
		t.Errorf("newest request log entry's error = %q", msg)
	}
}

// TestWrongClientSecretIsAConfigurationError: invalid_client at a refresh
// blocks the installation's config, not its users: tokens and states are
// kept, calls say which settings to fix, nothing is sent until they
// change, and the first call after the fix recovers.
func TestWrongClientSecretIsAConfigurationError(t *testing.T) {
	e := newEnv(t)
	fault := oauthtest.NewFaultProvider(t)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(hook.Close)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.Header.Get("Authorization"))) }))
	t.Cleanup(api.Close)
	f := newFlowApp(t, e, map[string]any{"link_url": fault.URL() + "/authorize", "token_url": fault.URL() + "/token"})
	f.addAPI(t, "api", api.URL)
	e.must(201, "POST", "/v1/apps/acme/webhooks", e.key, map[string]any{"url": hook.URL})
	for _, u := range []string{"user-1", "user-2"} {
		if status, page := f.connectWith(t, fault, u, oauthtest.TokenJSON(map[string]any{"access_token": "at-" + u, "refresh_token": "rt-" + u, "expires_in": 3600})); status != 200 {
			t.Fatalf("connect %s: %d %s", u, status, page)
		}
	}
	call := func(u string) proxied {
		return e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/"+u+"/apis/api/proxy/x", nil, "")
	}
	f.expire(t)
	fault.Then(oauthtest.Response{Status: 401, Body: `{"error":"invalid_client","error_description":"bad client secret"}`})
	sent := len(fault.Requests())
	for _, u := range []string{"user-1", "user-2", "user-1"} {
		r := call(u)
		if r.status != http.StatusConflict || r.problemCode(t) != "configuration_error" || !strings.Contains(r.body, "client_secret") {
			t.Fatalf("call for %s: %d %s", u, r.status, r.body)
		}
	}
	if n := len(fault.Requests()) - sent; n != 1 {
		t.Errorf("%d token requests with the refused credentials, want 1", n)
	}
	for _, u := range []string{"user-1", "user-2"} {
		if v := f.resolve(u).Values; v["access_token"] != "at-"+u || v["refresh_token"] != "rt-"+u {
			t.Errorf("%s's tokens changed: %q %q", u, v["access_token"], v["refresh_token"])
		}
		if c := f.connection(t, u); c["status"] != "configuration_error" || c["ended_by"] != "" {
			t.Errorf("%s's connection = %v", u, c)
		}
	}
	if n := count(e.events(t), "connection.configuration_error"); n != 1 {
		t.Errorf("%d configuration_error events, want 1: %v", n, e.events(t))
	}
	if n := count(e.events(t), "connection.reauthorization_required"); n != 0 {
		t.Errorf("a user was sent back to sign in: %v", e.events(t))
	}

	// The organization fixes its secret: the next call tries again.
	e.must(200, "PATCH", "/v1/installations/"+f.instID+"/settings", e.key, map[string]any{"values": map[string]any{"client_secret": "the-right-secret"}})
	fault.Then(oauthtest.TokenJSON(map[string]any{"access_token": "at-new", "refresh_token": "rt-new", "expires_in": 3600}))
	if r := call("user-1"); r.status != 200 || r.body != "Bearer at-new" {
		t.Fatalf("call after the fix: %d %s", r.status, r.body)
	}
	if got := fault.Requests()[len(fault.Requests())-1].Form.Get("client_secret"); got != "the-right-secret" {
		t.Errorf("the retry sent client_secret %q", got)
	}
	if c := f.connection(t, "user-1"); c["status"] != "connected" || c["last_error"] != "" {
		t.Errorf("user-1 after the fix: %v", c)
	}
	if c := f.connection(t, "user-2"); c["status"] != "connected" {
		t.Errorf("user-2 after the fix: %v", c)
	}
	ev := e.events(t)
	if count(ev, "connection.configuration_recovered") != 1 || count(ev, "connection.recovered") != 1 {
		t.Errorf("events after recovery: %v", ev)
	}
}

// TestNonStandardRefusalEndsTheGrant: Dex answers a spent refresh token
// with 400 invalid_request. A config may say so (grant_gone_errors, or a
// condition on the body); without a rule, three refusals in a row a
// minute apart end the grant. Each time the connection says which rule.
func TestNonStandardRefusalEndsTheGrant(t *testing.T) {
	dex := oauthtest.Response{Status: 400, Body: `{"error":"invalid_request","error_description":"Refresh token is invalid or has already been claimed by another client."}`}
	for _, tt := range []struct {
		name     string
		cfg      map[string]any
		calls    int // refused calls before the grant ends
		wantRule string
	}{
		{"error code", map[string]any{"grant_gone_errors": []string{"invalid_request"}}, 1, "grant_gone_errors"},
		{"body condition", map[string]any{"grant_gone_body_path": "$.error_description", "grant_gone_body_value": "Refresh token is invalid or has already been claimed by another client."}, 1, "grant_gone_body_path"},
		{"three refusals", nil, 3, "repeated_refusals"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			fault := oauthtest.NewFaultProvider(t)
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			t.Cleanup(api.Close)
			cfg := map[string]any{"link_url": fault.URL() + "/authorize", "token_url": fault.URL() + "/token"}
			for k, v := range tt.cfg {
				cfg[k] = v
			}
			f := newFlowApp(t, e, cfg)
			f.addAPI(t, "api", api.URL)
			if status, page := f.connectWith(t, fault, "user-1", oauthtest.TokenJSON(map[string]any{"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 3600})); status != 200 {
				t.Fatalf("connect: %d %s", status, page)
			}
			fault.Then(dex)
			for i := 1; i <= tt.calls; i++ {
				f.expire(t)
				r := e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/api/proxy/x", nil, "")
				if i < tt.calls {
					if r.status != http.StatusBadGateway {
						t.Fatalf("refusal %d: %d %s", i, r.status, r.body)
					}
					// A second call at once is not a second refusal.
					again := e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/api/proxy/x", nil, "")
					if c := f.connection(t, "user-1"); again.status != http.StatusBadGateway || c["refusals"] != float64(i) || c["status"] != "connected" {
						t.Fatalf("after refusal %d: call %d, connection %v", i, again.status, c)
					}
					// A minute passes.
					if err := e.db.Exec("UPDATE connections SET last_refusal_at = ?", time.Now().Add(-2*time.Minute).UTC()).Error; err != nil {
						t.Fatal(err)
					}
					e.sqlChanged()
					continue
				}
				if r.status != http.StatusConflict || r.problemCode(t) != "reauthorization_required" || !strings.Contains(r.body, "authorize_url") {
					t.Fatalf("the refusal that ends the grant: %d %s", r.status, r.body)
				}
			}
			if c := f.connection(t, "user-1"); c["status"] != "reauthorization_required" || c["ended_by"] != tt.wantRule || !strings.Contains(c["last_error"].(string), "invalid_request") {
				t.Errorf("connection = %v", c)
			}
			if v := f.resolve("user-1").Values; v["refresh_token"] != "rt-1" {
				t.Errorf("refresh token %q was not kept", v["refresh_token"])
			}
		})
	}
}

// TestLostRefreshIsReported: a refresh whose answer was never stored (the
// process died after sending it) leaves its intent record; when the
// provider then refuses the old refresh token, the connection says that a
// token was lost, not merely that the user must sign in again.
func TestLostRefreshIsReported(t *testing.T) {
	e := newEnv(t)
	fault := oauthtest.NewFaultProvider(t)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(api.Close)
	f := newFlowApp(t, e, map[string]any{"link_url": fault.URL() + "/authorize", "token_url": fault.URL() + "/token"})
	f.addAPI(t, "api", api.URL)
	if status, page := f.connectWith(t, fault, "user-1", oauthtest.TokenJSON(map[string]any{"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 3600})); status != 200 {
		t.Fatalf("connect: %d %s", status, page)
	}
	// What a crash between the provider's answer and the write leaves.
	crash := time.Now().Add(-time.Hour).UTC()
	if err := e.db.Exec("UPDATE connections SET refresh_started_at = ?", crash).Error; err != nil {
		t.Fatal(err)
	}
	e.sqlChanged()
	f.expire(t)
	fault.Then(oauthtest.Response{Status: 400, Body: `{"error":"invalid_grant"}`})
	if r := e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/api/proxy/x", nil, ""); r.status != http.StatusConflict {
		t.Fatalf("call: %d %s", r.status, r.body)
	}
	c := f.connection(t, "user-1")
	if c["ended_by"] != "lost_refresh" || !strings.Contains(c["last_error"].(string), crash.Format(time.RFC3339)) || !strings.Contains(c["last_error"].(string), "lost") {
		t.Errorf("connection = %v", c)
	}
	if !strings.Contains(e.output(), "LOST TOKEN") {
		t.Error("the lost token was not logged loudly")
	}

	// A normal refresh clears the record: a later invalid_grant is an
	// ordinary one.
	if status, _ := f.connectWith(t, fault, "user-1", oauthtest.TokenJSON(map[string]any{"access_token": "at-2", "refresh_token": "rt-2", "expires_in": 3600})); status != 200 {
		t.Fatal("reconnect failed")
	}
	f.expire(t)
	fault.Then(oauthtest.TokenJSON(map[string]any{"access_token": "at-3", "refresh_token": "rt-3", "expires_in": 3600}))
	if r := e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/api/proxy/x", nil, ""); r.status != 200 {
		t.Fatalf("call: %d %s", r.status, r.body)
	}
	var left int
	if err := e.db.Raw("SELECT count(*) FROM connections WHERE refresh_started_at IS NOT NULL").Scan(&left).Error; err != nil || left != 0 {
		t.Errorf("%d intent records left after a stored refresh (%v)", left, err)
	}
	f.expire(t)
	fault.Then(oauthtest.Response{Status: 400, Body: `{"error":"invalid_grant"}`})
	e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/api/proxy/x", nil, "")
	if c := f.connection(t, "user-1"); c["ended_by"] != "invalid_grant" {
		t.Errorf("an ordinary invalid_grant: %v", c)
	}
}

// newEnvBehindRelay is newEnv whose server reaches PostgreSQL through a
// TCP relay that the test can cut and restore. It skips on SQLite, which
// cannot be cut off from the process.
func newEnvBehindRelay(t *testing.T) (*env, *dbtest.Relay) {
	t.Helper()
	var relay *dbtest.Relay
	e := newEnvOn(t, nil, func(d *dbtest.DB) *gorm.DB {
		if d.URL == "" {
			t.Skip("needs PostgreSQL (set " + dbtest.EnvURL + "): SQLite cannot be cut off from the process")
		}
		relay = dbtest.NewRelay(t, d)
		db, err := database.Open(context.Background(), relay.URL, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { database.Close(db) })
		return db
	})
	return e, relay
}

// TestDatabaseDiesAfterTheProviderAnswered: PostgreSQL goes away between
// a rotating provider's answer to a refresh and the write. The renewed
// tokens are kept in memory and serve the call, are written once the
// database is back, and the next refresh sends the rotated refresh token:
// no reauthorization.
func TestDatabaseDiesAfterTheProviderAnswered(t *testing.T) {
	e, relay := newEnvBehindRelay(t)
	fault := oauthtest.NewFaultProvider(t)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.Header.Get("Authorization"))) }))
	t.Cleanup(api.Close)
	f := newFlowApp(t, e, map[string]any{"link_url": fault.URL() + "/authorize", "token_url": fault.URL() + "/token"})
	f.addAPI(t, "api", api.URL)
	if status, page := f.connectWith(t, fault, "user-1", oauthtest.TokenJSON(map[string]any{"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 3600})); status != 200 {
		t.Fatalf("connect: %d %s", status, page)
	}
	f.expire(t)
	answer := oauthtest.TokenJSON(map[string]any{"access_token": "at-2", "refresh_token": "rt-2", "expires_in": 3600})
	answer.Before = relay.Cut // the database dies while the provider answers
	fault.Then(answer)
	call := func() proxied {
		return e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/api/proxy/x", nil, "")
	}
	if r := call(); r.status != 200 || r.body != "Bearer at-2" {
		t.Fatalf("the call that renewed: %d %s", r.status, r.body)
	}
	// While the database is away, calls answer 503: once the cache bus
	// has lost its LISTEN connection and flushed, they need the database
	// to find the installation. Nothing is marked dead.
	for deadline := time.Now().Add(5 * time.Second); e.buses[0].Listening(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the cache bus still listens with the database away")
		}
	}
	if r := call(); r.status != http.StatusServiceUnavailable {
		t.Errorf("a call while the database is away: %d %s", r.status, r.body)
	}
	relay.Restore(t)

	// The kept tokens reach the database.
	deadline := time.Now().Add(20 * time.Second)
	for f.resolve("user-1").Values["refresh_token"] != "rt-2" {
		if time.Now().After(deadline) {
			t.Fatalf("the renewed tokens were not written after the database came back; stored: %v", f.resolve("user-1").Values)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v := f.resolve("user-1").Values; v["access_token"] != "at-2" {
		t.Errorf("access token %q, want at-2", v["access_token"])
	}
	if r := call(); r.status != 200 || r.body != "Bearer at-2" {
		t.Fatalf("a call after the database is back: %d %s", r.status, r.body)
	}
	// The next refresh sends the rotated refresh token.
	f.expire(t)
	fault.Then(oauthtest.TokenJSON(map[string]any{"access_token": "at-3", "refresh_token": "rt-3", "expires_in": 3600}))
	if r := call(); r.status != 200 || r.body != "Bearer at-3" {
		t.Fatalf("the next refresh: %d %s", r.status, r.body)
	}
	reqs := fault.Requests()
	if got := reqs[len(reqs)-1].Form.Get("refresh_token"); got != "rt-2" {
		t.Errorf("the next refresh sent %q, want rt-2", got)
	}
	c := f.connection(t, "user-1")
	if c["status"] != "connected" || c["ended_by"] != "" {
		t.Errorf("connection = %v", c)
	}
	if n := count(e.events(t), "connection.reauthorization_required"); n != 0 {
		t.Errorf("%d reauthorizations", n)
	}
}

// TestDatabaseDiesDuringTheCodeExchange: PostgreSQL goes away while the
// provider answers a code exchange. The code is spent, so the tokens could
// never be had again: they are kept in memory, written once the database
// is back, and the connection works without the user connecting again.
// The config's step (Instagram's long-lived token), which needs the
// database, runs once they are written.
func TestDatabaseDiesDuringTheCodeExchange(t *testing.T) {
	e, relay := newEnvBehindRelay(t)
	fault := oauthtest.NewFaultProvider(t)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.Header.Get("Authorization"))) }))
	t.Cleanup(api.Close)
	graph := oauthtest.NewFaultProvider(t)
	f := newFlowApp(t, e, map[string]any{"link_url": fault.URL() + "/authorize", "token_url": fault.URL() + "/token",
		"steps": []map[string]any{{"name": "long_lived", "url": graph.URL() + "/access_token?grant_type=ig_exchange_token&access_token=<<access_token>>",
			"access_token_path": "$.access_token", "expires_in_path": "$.expires_in"}}})
	f.addAPI(t, "api", api.URL)
	graph.Then(oauthtest.TokenJSON(map[string]any{"access_token": "at-long-lived-1", "expires_in": 5183944}))
	answer := oauthtest.TokenJSON(map[string]any{"access_token": "at-exchanged-1", "refresh_token": "rt-exchanged-1", "expires_in": 3600})
	answer.Before = relay.Cut // the database dies while the provider answers
	if status, page := f.connectWith(t, fault, "user-1", answer); status != 200 {
		t.Errorf("callback while the database is away: %d %s", status, page)
	}
	if n := len(graph.Requests()); n != 0 {
		t.Errorf("the step ran %d times while the database was away", n)
	}
	relay.Restore(t)
	deadline := time.Now().Add(20 * time.Second)
	for v := f.resolve("user-1").Values; v["refresh_token"] != "rt-exchanged-1" || v["access_token"] != "at-long-lived-1"; v = f.resolve("user-1").Values {
		if time.Now().After(deadline) {
			t.Fatalf("the exchanged tokens, and the step's, were not written after the database came back; stored: access %q, refresh %q", v["access_token"], v["refresh_token"])
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := graph.Requests(); len(got) != 1 || got[0].Query.Get("access_token") != "at-exchanged-1" {
		t.Errorf("the step's requests: %+v; want one, with the exchanged token", got)
	}
	e.sqlChanged()
	if r := e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/api/proxy/x", nil, ""); r.status != 200 || r.body != "Bearer at-long-lived-1" {
		t.Fatalf("a call after the database is back: %d %s", r.status, r.body)
	}
	if c := f.connection(t, "user-1"); c["status"] != "connected" {
		t.Errorf("connection = %v", c)
	}
}

// TestRemoveConnection: removing a connection deletes its state and its
// tokens; calls then ask the user to connect again.
func TestRemoveConnection(t *testing.T) {
	e := newEnv(t)
	fault := oauthtest.NewFaultProvider(t)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(api.Close)
	f := newFlowApp(t, e, map[string]any{"link_url": fault.URL() + "/authorize", "token_url": fault.URL() + "/token"})
	f.addAPI(t, "api", api.URL)
	if status, page := f.connectWith(t, fault, "user-1", oauthtest.TokenJSON(map[string]any{"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 3600})); status != 200 {
		t.Fatalf("connect: %d %s", status, page)
	}
	path := "/v1/installations/" + f.instID + "/connections/" + f.configID
	e.must(422, "DELETE", path, e.key, nil) // no user_id
	e.must(404, "DELETE", path+"?user_id=user-1", e.other, nil)
	e.must(404, "DELETE", path+"?user_id=user-2", e.key, nil)
	e.must(204, "DELETE", path+"?user_id=user-1", e.key, nil)
	if v := f.resolve("user-1").Values; v["access_token"] != "" || v["refresh_token"] != "" {
		t.Errorf("tokens left: %q %q", v["access_token"], v["refresh_token"])
	}
	if n := len(e.must(200, "GET", "/v1/installations/"+f.instID+"/connections", e.key, nil)["connections"].([]any)); n != 0 {
		t.Errorf("%d connections left", n)
	}
	r := e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/api/proxy/x", nil, "")
	if r.status != http.StatusConflict || r.problemCode(t) != "reauthorization_required" {
		t.Errorf("a call after removal: %d %s", r.status, r.body)
	}
	e.must(404, "DELETE", path+"?user_id=user-1", e.key, nil)
}
