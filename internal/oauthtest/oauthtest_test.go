package oauthtest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

const (
	redirectURL = "http://127.0.0.1/callback"
	state       = "state-0123456789"
)

// newFlowServer starts a Server with a client_secret_basic client "web" and
// a client_secret_post client "poster", and returns it with x/oauth2
// configs for both.
func newFlowServer(t *testing.T, opts Options) (*Server, *oauth2.Config, *oauth2.Config) {
	t.Helper()
	s := NewServer(t, opts,
		Client{ID: "web", Secret: "web-secret", RedirectURIs: []string{redirectURL}},
		Client{ID: "poster", Secret: "poster-secret", RedirectURIs: []string{redirectURL}, AuthMethod: AuthPost},
	)
	cfg := func(id, secret string, style oauth2.AuthStyle) *oauth2.Config {
		return &oauth2.Config{
			ClientID:     id,
			ClientSecret: secret,
			Endpoint:     oauth2.Endpoint{AuthURL: s.AuthorizeURL(), TokenURL: s.TokenURL(), AuthStyle: style},
			RedirectURL:  redirectURL,
			Scopes:       []string{"read", "offline"},
		}
	}
	return s, cfg("web", "web-secret", oauth2.AuthStyleInHeader), cfg("poster", "poster-secret", oauth2.AuthStyleInParams)
}

// authorize runs the authorization request with PKCE S256 through Consent
// and returns the code from the redirect.
func authorize(t *testing.T, s *Server, cfg *oauth2.Config, verifier string) string {
	t.Helper()
	loc, err := s.Consent(cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), true)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := loc.Scheme+"://"+loc.Host+loc.Path, redirectURL; got != want {
		t.Fatalf("redirect to %s, want %s", got, want)
	}
	q := loc.Query()
	if got := q.Get("state"); got != state {
		t.Errorf("state = %q, want %q", got, state)
	}
	if q.Get("code") == "" {
		t.Fatalf("no code in redirect %s", loc)
	}
	return q.Get("code")
}

// errorCode returns the RFC 6749 §5.2 error code of a token request error.
func errorCode(t *testing.T, err error) string {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is not a *oauth2.RetrieveError", err, err)
	}
	return re.ErrorCode
}

// me calls the protected resource with token and returns the status and
// the decoded body.
func me(t *testing.T, s *Server, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.MeURL(), nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: decoding body: %v", MePath, err)
	}
	return resp.StatusCode, body
}

func TestAuthorizationCodeWithPKCE(t *testing.T) {
	s, web, _ := newFlowServer(t, Options{})
	verifier := oauth2.GenerateVerifier()
	code := authorize(t, s, web, verifier)

	tok, err := web.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("token = %+v, want access and refresh tokens", tok)
	}
	if got, want := tok.Extra("scope"), "read offline"; got != want {
		t.Errorf("scope = %v, want %q", got, want)
	}
	if d := time.Until(tok.Expiry); d < 59*time.Minute || d > time.Hour {
		t.Errorf("token expires in %v, want about 1h", d)
	}

	reqs := s.TokenRequests()
	if len(reqs) != 1 {
		t.Fatalf("got %d token requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.GrantType != "authorization_code" || !r.BasicAuth || r.Status != http.StatusOK {
		t.Errorf("token request = %s basic=%v status=%d, want authorization_code basic=true status=200", r.GrantType, r.BasicAuth, r.Status)
	}
	if got := r.Form.Get("code_verifier"); got != verifier {
		t.Errorf("recorded code_verifier = %q, want %q", got, verifier)
	}

	status, body := me(t, s, tok.AccessToken)
	if status != http.StatusOK {
		t.Fatalf("GET %s = %d %v, want 200", MePath, status, body)
	}
	if body["id"] != "alice" || body["email"] != "alice@example.com" || body["client_id"] != "web" {
		t.Errorf("GET %s = %v, want alice for client web", MePath, body)
	}
	if got, want := body["token_scopes"], []any{"read", "offline"}; !equalJSON(got, want) {
		t.Errorf("token_scopes = %v, want %v", got, want)
	}

	// A code is good once (RFC 6749 §4.1.2).
	if _, err := web.Exchange(t.Context(), code, oauth2.VerifierOption(verifier)); err == nil {
		t.Error("second exchange of the same code succeeded")
	} else if got := errorCode(t, err); got != "invalid_grant" {
		t.Errorf("second exchange: error = %q, want invalid_grant", got)
	}
}

func TestPKCEVerifierMismatch(t *testing.T) {
	tests := []struct {
		name     string
		verifier string
	}{
		{"wrong", oauth2.GenerateVerifier()},
		{"missing", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, web, _ := newFlowServer(t, Options{})
			code := authorize(t, s, web, oauth2.GenerateVerifier())
			var opts []oauth2.AuthCodeOption
			if tt.verifier != "" {
				opts = append(opts, oauth2.VerifierOption(tt.verifier))
			}
			_, err := web.Exchange(t.Context(), code, opts...)
			if err == nil {
				t.Fatal("exchange succeeded")
			}
			if got := errorCode(t, err); got != "invalid_grant" {
				t.Errorf("error = %q, want invalid_grant", got)
			}
		})
	}
}

func TestTokenEndpointAuthMethod(t *testing.T) {
	tests := []struct {
		client    string
		style     oauth2.AuthStyle
		basic     bool
		wantError string
	}{
		{"web", oauth2.AuthStyleInHeader, true, ""},
		{"web", oauth2.AuthStyleInParams, false, "invalid_client"},
		{"poster", oauth2.AuthStyleInParams, false, ""},
		{"poster", oauth2.AuthStyleInHeader, true, "invalid_client"},
	}
	s, _, _ := newFlowServer(t, Options{})
	for i, tt := range tests {
		cfg := clientcredentials.Config{
			ClientID:     tt.client,
			ClientSecret: tt.client + "-secret",
			TokenURL:     s.TokenURL(),
			AuthStyle:    tt.style,
			Scopes:       []string{"read"},
		}
		_, err := cfg.Token(t.Context())
		switch {
		case tt.wantError == "" && err != nil:
			t.Errorf("%s with basic=%v: %v", tt.client, tt.basic, err)
		case tt.wantError != "" && err == nil:
			t.Errorf("%s with basic=%v: succeeded, want %s", tt.client, tt.basic, tt.wantError)
		case tt.wantError != "":
			if got := errorCode(t, err); got != tt.wantError {
				t.Errorf("%s with basic=%v: error = %q, want %q", tt.client, tt.basic, got, tt.wantError)
			}
		}
		if got := s.TokenRequests()[i].BasicAuth; got != tt.basic {
			t.Errorf("%s: recorded BasicAuth = %v, want %v", tt.client, got, tt.basic)
		}
	}
}

func TestAuthorizationCodeWithPostAuth(t *testing.T) {
	s, _, poster := newFlowServer(t, Options{})
	verifier := oauth2.GenerateVerifier()
	code := authorize(t, s, poster, verifier)
	if _, err := poster.Exchange(t.Context(), code, oauth2.VerifierOption(verifier)); err != nil {
		t.Fatal(err)
	}
	r := s.TokenRequests()[0]
	if r.BasicAuth || r.Form.Get("client_secret") != "poster-secret" {
		t.Errorf("token request basic=%v client_secret=%q, want the secret in the form", r.BasicAuth, r.Form.Get("client_secret"))
	}
}

func TestRefreshTokenRotation(t *testing.T) {
	s, web, _ := newFlowServer(t, Options{})
	first, err := web.PasswordCredentialsToken(t.Context(), "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	if first.RefreshToken == "" {
		t.Fatal("no refresh token for a grant with scope offline")
	}

	second, err := web.TokenSource(t.Context(), &oauth2.Token{RefreshToken: first.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
		t.Fatalf("refresh answered refresh token %q, want a new one", second.RefreshToken)
	}
	if status, body := me(t, s, second.AccessToken); status != http.StatusOK {
		t.Fatalf("refreshed access token: GET %s = %d %v", MePath, status, body)
	}
	if got, want := s.Issued("refresh_token"), 1; got != want {
		t.Errorf("Issued(refresh_token) = %d, want %d", got, want)
	}

	// Reusing the rotated-out token fails, and fosite then revokes the
	// whole family: the newest refresh and access tokens too.
	_, err = web.TokenSource(t.Context(), &oauth2.Token{RefreshToken: first.RefreshToken}).Token()
	if err == nil {
		t.Fatal("reusing the old refresh token succeeded")
	}
	if got := errorCode(t, err); got != "invalid_grant" {
		t.Errorf("reuse: error = %q, want invalid_grant", got)
	}
	if _, err := web.TokenSource(t.Context(), &oauth2.Token{RefreshToken: second.RefreshToken}).Token(); err == nil {
		t.Error("the newest refresh token still works after reuse was detected")
	}
	if status, _ := me(t, s, second.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("newest access token after reuse: GET %s = %d, want 401", MePath, status)
	}
	if got, want := s.Issued("refresh_token"), 1; got != want {
		t.Errorf("Issued(refresh_token) = %d, want %d", got, want)
	}
}

// TestConcurrentRefresh checks that racing refreshes of one token are
// served one at a time: one wins, the others are reuse.
func TestConcurrentRefresh(t *testing.T) {
	s, web, _ := newFlowServer(t, Options{})
	tok, err := web.PasswordCredentialsToken(t.Context(), "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := web.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			errs <- err
		}()
	}
	failed := 0
	for range n {
		if err := <-errs; err != nil {
			if got := errorCode(t, err); got != "invalid_grant" {
				t.Errorf("error = %q, want invalid_grant", got)
			}
			failed++
		}
	}
	if got, want := s.Issued("refresh_token"), 1; got != want || failed != n-1 {
		t.Errorf("%d refreshes issued and %d failed, want %d and %d", got, failed, want, n-1)
	}
}

func TestNoRefreshTokenWithoutOffline(t *testing.T) {
	s, web, _ := newFlowServer(t, Options{})
	web.Scopes = []string{"read"}
	verifier := oauth2.GenerateVerifier()
	tok, err := web.Exchange(t.Context(), authorize(t, s, web, verifier), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "" {
		t.Errorf("refresh token issued without scope offline")
	}
}

func TestClientCredentials(t *testing.T) {
	s, _, _ := newFlowServer(t, Options{})
	cfg := clientcredentials.Config{
		ClientID:     "web",
		ClientSecret: "web-secret",
		TokenURL:     s.TokenURL(),
		AuthStyle:    oauth2.AuthStyleInHeader,
		Scopes:       []string{"read", "write"},
	}
	tok, err := cfg.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "" {
		t.Errorf("client_credentials issued a refresh token")
	}
	status, body := me(t, s, tok.AccessToken)
	if status != http.StatusOK || body["id"] != "web" || !equalJSON(body["token_scopes"], []any{"read", "write"}) {
		t.Errorf("GET %s = %d %v, want 200 for client web with read write", MePath, status, body)
	}

	cfg.Scopes = []string{"admin"}
	if _, err := cfg.Token(t.Context()); err == nil {
		t.Error("a scope the client may not ask for was granted")
	} else if got := errorCode(t, err); got != "invalid_scope" {
		t.Errorf("error = %q, want invalid_scope", got)
	}
}

func TestPasswordGrant(t *testing.T) {
	tests := []struct {
		user, password string
		wantError      string
	}{
		{"alice", "alice-password", ""},
		{"alice", "wrong", "invalid_grant"},
		{"mallory", "alice-password", "invalid_grant"},
	}
	s, web, _ := newFlowServer(t, Options{})
	for _, tt := range tests {
		tok, err := web.PasswordCredentialsToken(t.Context(), tt.user, tt.password)
		if tt.wantError != "" {
			if err == nil {
				t.Errorf("%s/%s: succeeded, want %s", tt.user, tt.password, tt.wantError)
			} else if got := errorCode(t, err); got != tt.wantError {
				t.Errorf("%s/%s: error = %q, want %q", tt.user, tt.password, got, tt.wantError)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.user, err)
		}
		if status, body := me(t, s, tok.AccessToken); status != http.StatusOK || body["id"] != tt.user {
			t.Errorf("GET %s = %d %v, want 200 for %s", MePath, status, body, tt.user)
		}
	}
	if got := s.TokenRequests()[1].Form.Get("password"); got != "wrong" {
		t.Errorf("recorded password = %q, want it raw", got)
	}
}

func TestConsentDenied(t *testing.T) {
	s, web, _ := newFlowServer(t, Options{})
	loc, err := s.Consent(web.AuthCodeURL(state, oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), false)
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	if q.Get("error") != "access_denied" || q.Get("state") != state || q.Has("code") {
		t.Errorf("redirect = %s, want error=access_denied with state and no code", loc)
	}
}

func TestAuthorizeRejects(t *testing.T) {
	s, web, _ := newFlowServer(t, Options{})
	t.Run("redirected", func(t *testing.T) {
		tests := []struct {
			name   string
			edit   func(url.Values)
			wantEr string
		}{
			{"short state", func(q url.Values) { q.Set("state", "1234") }, "invalid_state"},
			{"unknown scope", func(q url.Values) { q.Set("scope", "read admin") }, "invalid_scope"},
			{"plain PKCE", func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request"},
		}
		for _, tt := range tests {
			u, _ := url.Parse(web.AuthCodeURL(state, oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			q := u.Query()
			tt.edit(q)
			u.RawQuery = q.Encode()
			loc, err := s.Consent(u.String(), true)
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
				continue
			}
			if got := loc.Query().Get("error"); got != tt.wantEr {
				t.Errorf("%s: redirect %s, want error=%s", tt.name, loc, tt.wantEr)
			}
		}
	})
	t.Run("not redirected", func(t *testing.T) {
		tests := []struct {
			name string
			edit func(url.Values)
		}{
			{"unknown client", func(q url.Values) { q.Set("client_id", "nobody") }},
			{"unregistered redirect_uri", func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1/elsewhere") }},
		}
		for _, tt := range tests {
			u, _ := url.Parse(web.AuthCodeURL(state))
			q := u.Query()
			tt.edit(q)
			u.RawQuery = q.Encode()
			if loc, err := s.Consent(u.String(), true); err == nil {
				t.Errorf("%s: Consent redirected to %s, want an error", tt.name, loc)
			} else {
				t.Logf("%s: %v", tt.name, err)
			}
		}
	})
}

// TestConsentFollowsApplicationRedirect starts the flow at an application
// link that redirects to the authorization server, as Latchkey's does.
func TestConsentFollowsApplicationRedirect(t *testing.T) {
	s, web, _ := newFlowServer(t, Options{})
	verifier := oauth2.GenerateVerifier()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, web.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), http.StatusFound)
	}))
	defer app.Close()
	loc, err := s.Consent(app.URL+"/connect", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := web.Exchange(t.Context(), loc.Query().Get("code"), oauth2.VerifierOption(verifier)); err != nil {
		t.Fatal(err)
	}
}

func TestConsentPage(t *testing.T) {
	_, web, _ := newFlowServer(t, Options{})
	resp, err := http.Get(web.AuthCodeURL(state))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	page := string(b)
	for _, want := range []string{
		`<form method="post" action="/oauth2/auth">`,
		`<input type="hidden" name="client_id" value="web">`,
		`<input type="hidden" name="state" value="` + state + `">`,
		`name="consent" value="allow"`,
		`name="consent" value="deny"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %s:\n%s", want, page)
		}
	}
}

func TestMeRejects(t *testing.T) {
	s, web, _ := newFlowServer(t, Options{})
	tok, err := web.PasswordCredentialsToken(t.Context(), "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	for _, token := range []string{"", "garbage", tok.RefreshToken, tok.AccessToken + "x"} {
		status, body := me(t, s, token)
		if status != http.StatusUnauthorized || body["error"] != "invalid_token" {
			t.Errorf("Bearer %q: GET %s = %d %v, want 401 invalid_token", token, MePath, status, body)
		}
	}
	if got, want := s.APICalls(), 4; got != want {
		t.Errorf("APICalls = %d, want %d", got, want)
	}
}

func TestExpiredAccessToken(t *testing.T) {
	s, web, _ := newFlowServer(t, Options{AccessTokenLifespan: -time.Hour})
	tok, err := web.PasswordCredentialsToken(t.Context(), "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	if tok.Valid() {
		t.Errorf("token expiring at %v is valid, want expired", tok.Expiry)
	}
	if status, body := me(t, s, tok.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("expired token: GET %s = %d %v, want 401", MePath, status, body)
	}
	// The refresh token outlives it.
	if _, err := web.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Errorf("refresh: %v", err)
	}
}

func equalJSON(got, want any) bool {
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	return string(a) == string(b)
}

// noFollow is a client that shows redirects instead of following them.
var noFollow = &http.Client{
	Timeout:       5 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func TestFaultProviderScript(t *testing.T) {
	p := NewFaultProvider(t)

	// Nothing scripted yet.
	resp, err := noFollow.Get(p.URL() + "/token")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("unscripted status = %d, want 500", resp.StatusCode)
	}

	p.Then(
		TokenJSON(map[string]any{"access_token": "at", "expires_in": "3600"}),
		HTML(http.StatusBadGateway),
		Redirect(http.StatusFound, "http://127.0.0.1:1/login"),
		Response{BodyBytes: 100<<10 + 7},
		Response{Status: http.StatusBadRequest, Body: `{"error":"invalid_grant"}`, Header: http.Header{"X-Fault": {"yes"}}},
	)
	tests := []struct {
		name        string
		status      int
		contentType string
		body        func(string) bool
		header      [2]string
	}{
		{"token", 200, "application/json", func(b string) bool { return b == `{"access_token":"at","expires_in":"3600"}` }, [2]string{}},
		{"html", 502, "text/html; charset=utf-8", func(b string) bool { return strings.Contains(b, "<h1>502 Bad Gateway</h1>") }, [2]string{}},
		{"redirect", 302, "text/plain; charset=utf-8", func(b string) bool { return b == "" }, [2]string{"Location", "http://127.0.0.1:1/login"}},
		{"huge", 200, "application/json", func(b string) bool { return len(b) == 100<<10+7 && strings.Trim(b, "x") == "" }, [2]string{}},
		{"error", 400, "application/json", func(b string) bool { return b == `{"error":"invalid_grant"}` }, [2]string{"X-Fault", "yes"}},
		{"repeat", 400, "application/json", func(b string) bool { return b == `{"error":"invalid_grant"}` }, [2]string{"X-Fault", "yes"}},
	}
	for _, tt := range tests {
		resp, err := noFollow.PostForm(p.URL()+"/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tt.name}})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: reading body: %v", tt.name, err)
		}
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status = %d, want %d", tt.name, resp.StatusCode, tt.status)
		}
		if got := resp.Header.Get("Content-Type"); got != tt.contentType {
			t.Errorf("%s: Content-Type = %q, want %q", tt.name, got, tt.contentType)
		}
		if !tt.body(string(b)) {
			t.Errorf("%s: unexpected body (%d bytes) %.80q", tt.name, len(b), b)
		}
		if tt.header[0] != "" && resp.Header.Get(tt.header[0]) != tt.header[1] {
			t.Errorf("%s: %s = %q, want %q", tt.name, tt.header[0], resp.Header.Get(tt.header[0]), tt.header[1])
		}
	}

	reqs := p.Requests()
	if got, want := len(reqs), len(tests)+1; got != want {
		t.Fatalf("recorded %d requests, want %d", got, want)
	}
	r := reqs[1]
	if r.Method != http.MethodPost || r.Path != "/oauth/token" || r.Form.Get("refresh_token") != "token" ||
		r.Body != "grant_type=refresh_token&refresh_token=token" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Errorf("recorded %+v", r)
	}
	if reqs[0].Form != nil {
		t.Errorf("GET recorded Form %v, want nil", reqs[0].Form)
	}
}

func TestFaultProviderTimeout(t *testing.T) {
	p := NewFaultProvider(t)
	p.Then(Timeout(time.Minute))
	client := &http.Client{Timeout: 100 * time.Millisecond}
	start := time.Now()
	_, err := client.Get(p.URL() + "/token")
	if err == nil {
		t.Fatal("request succeeded, want a client timeout")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("client gave up after %v, want about 100ms", d)
	}
}

func TestFaultProviderTimeoutServed(t *testing.T) {
	p := NewFaultProvider(t)
	p.Then(Timeout(50 * time.Millisecond))
	resp, err := http.Get(p.URL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("status = %d, want 504", resp.StatusCode)
	}
}

// TestFaultProviderCloseEndsDelay checks that a pending delay does not
// hold up the end of a test.
func TestFaultProviderCloseEndsDelay(t *testing.T) {
	done := make(chan error, 1)
	start := time.Now()
	t.Run("pending", func(t *testing.T) {
		p := NewFaultProvider(t)
		p.Then(Timeout(time.Minute))
		go func() {
			resp, err := http.Get(p.URL())
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
		for len(p.Requests()) == 0 {
			if time.Since(start) > 5*time.Second {
				t.Fatal("request never arrived")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("closing took %v", d)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("request got an answer, want the connection dropped")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request still pending after the provider closed")
	}
}
