// Package oauthtest gives tests two OAuth 2.0 providers to talk to over real
// HTTP: Server, a real authorization server built on ory/fosite that runs the
// authorization-code (with PKCE), refresh-token, client-credentials and
// password grants as the RFCs say, and FaultProvider, a scriptable token
// endpoint that misbehaves on cue (slow, HTML, redirects, huge bodies).
//
// It is imported only by _test.go files.
package oauthtest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/storage"
)

// Paths of the Server's endpoints, relative to Server.URL.
const (
	AuthorizePath = "/oauth2/auth"
	TokenPath     = "/oauth2/token"
	MePath        = "/api/me"
)

// Token endpoint authentication methods (RFC 7591 §2, token_endpoint_auth_method).
const (
	AuthBasic = "client_secret_basic"
	AuthPost  = "client_secret_post"
	AuthNone  = "none"
)

// Client is an OAuth client registered with a Server.
type Client struct {
	ID     string
	Secret string // empty only for a public client (AuthMethod "none")

	// RedirectURIs are compared with redirect_uri by simple string
	// comparison (RFC 6749 §3.1.2.3), except that for http://127.0.0.1 and
	// http://[::1] the port is ignored (RFC 8252 §7.3). Plain http is
	// accepted only for localhost and loopback hosts.
	RedirectURIs []string

	// AuthMethod is how the client authenticates at the token endpoint:
	// AuthBasic (the default), AuthPost or AuthNone for a public client.
	// fosite rejects the other method with invalid_client.
	AuthMethod string

	// Scopes the client may ask for, matched exactly. Default {"read",
	// "write", "offline"}; a grant that includes "offline" or
	// "offline_access" comes with a refresh token.
	Scopes []string

	// Grants the client may use. Default authorization_code,
	// refresh_token, client_credentials and password.
	Grants []string
}

// Options configure a Server. Zero values take the defaults.
type Options struct {
	// AccessTokenLifespan defaults to 1h. A negative lifespan issues
	// access tokens that have already expired, so a test can exercise
	// expiry without sleeping; make it a minute or more, since fosite
	// rounds expiry to the second and truncates expires_in, so -1s can be
	// answered as expires_in 0, which clients read as "no expiry".
	AccessTokenLifespan time.Duration

	// RefreshTokenLifespan defaults to 24h. A negative lifespan issues
	// refresh tokens that never expire (fosite's convention).
	RefreshTokenLifespan time.Duration

	// Users are the resource owners for the password grant, username to
	// password. Default {"alice": "alice-password"}.
	Users map[string]string

	// Subject is the resource owner who consents at the authorize
	// endpoint. Default "alice".
	Subject string

	// TokenDelay makes the token endpoint wait this long before it
	// answers, so that clients racing for one refresh overlap.
	TokenDelay time.Duration
}

// TokenRequest records one request to the token endpoint, as received:
// Form holds every value raw, secrets, passwords and verifiers included.
type TokenRequest struct {
	GrantType string
	BasicAuth bool // the request carried an Authorization: Basic header
	Form      url.Values
	Status    int // the status the server answered
	Time      time.Time
}

// Server is a real OAuth 2.0 authorization server on ory/fosite, serving
// over HTTP in the test process until the test ends.
type Server struct {
	tb       testing.TB
	srv      *httptest.Server
	host     string
	subject  string
	provider fosite.OAuth2Provider
	hasher   fosite.Hasher

	// fositeMu serializes every request that reaches fosite: its
	// MemoryStore writes RefreshTokens under the wrong lock when it revokes
	// a token, and its Config fills some defaults lazily, so concurrent
	// refreshes would otherwise be a data race in fosite, not in the code
	// under test.
	fositeMu sync.Mutex
	store    *memoryStore

	tokenDelay time.Duration

	mu       sync.Mutex
	requests []TokenRequest
	apiCalls int
}

// NewServer starts a Server with clients registered, and closes it when the
// test ends. It fails the test if a client is invalid (see AddClient).
func NewServer(tb testing.TB, opts Options, clients ...Client) *Server {
	tb.Helper()
	if opts.AccessTokenLifespan == 0 {
		opts.AccessTokenLifespan = time.Hour
	}
	if opts.RefreshTokenLifespan == 0 {
		opts.RefreshTokenLifespan = 24 * time.Hour
	}
	if opts.Users == nil {
		opts.Users = map[string]string{"alice": "alice-password"}
	}
	if opts.Subject == "" {
		opts.Subject = "alice"
	}

	secret := make([]byte, 32)
	rand.Read(secret)
	cfg := &fosite.Config{
		AccessTokenLifespan:            opts.AccessTokenLifespan,
		RefreshTokenLifespan:           opts.RefreshTokenLifespan,
		GlobalSecret:                   secret,
		EnforcePKCE:                    false,
		EnforcePKCEForPublicClients:    true,
		EnablePKCEPlainChallengeMethod: false,
		ScopeStrategy:                  fosite.ExactScopeStrategy,
		SendDebugMessagesToClients:     true,
		// The cheapest bcrypt cost: secrets are hashed as fosite expects,
		// but each token request does not spend a quarter second on it.
		HashCost: 4,
	}
	cfg.ClientSecretsHasher = &fosite.BCrypt{Config: cfg}

	st := &memoryStore{MemoryStore: storage.NewMemoryStore()}
	for name, password := range opts.Users {
		st.Users[name] = storage.MemoryUserRelation{Username: name, Password: password}
	}

	s := &Server{
		tb:         tb,
		subject:    opts.Subject,
		tokenDelay: opts.TokenDelay,
		hasher:     cfg.ClientSecretsHasher,
		store:      st,
		provider: compose.Compose(cfg, st, compose.NewOAuth2HMACStrategy(cfg),
			compose.OAuth2AuthorizeExplicitFactory,
			compose.OAuth2RefreshTokenGrantFactory,
			compose.OAuth2ClientCredentialsGrantFactory,
			compose.OAuth2ResourceOwnerPasswordCredentialsFactory,
			compose.OAuth2PKCEFactory,
			compose.OAuth2TokenIntrospectionFactory,
		),
	}
	for _, c := range clients {
		s.AddClient(c)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET "+AuthorizePath, s.consentPage)
	mux.HandleFunc("POST "+AuthorizePath, s.authorize)
	mux.HandleFunc(TokenPath, s.token)
	mux.HandleFunc(MePath, s.me)
	s.srv = httptest.NewServer(mux)
	tb.Cleanup(s.srv.Close)
	u, _ := url.Parse(s.srv.URL)
	s.host = u.Host
	return s
}

// URL is the server's base URL, http://127.0.0.1:port.
func (s *Server) URL() string { return s.srv.URL }

// AuthorizeURL is the authorization endpoint (RFC 6749 §3.1).
func (s *Server) AuthorizeURL() string { return s.srv.URL + AuthorizePath }

// TokenURL is the token endpoint (RFC 6749 §3.2).
func (s *Server) TokenURL() string { return s.srv.URL + TokenPath }

// MeURL is the protected resource that answers who a bearer token is for.
func (s *Server) MeURL() string { return s.srv.URL + MePath }

// AddClient registers c, replacing any client with the same ID. It fails
// the test if c has no ID, an unknown AuthMethod, a secret for a public
// client or none for a confidential one.
func (s *Server) AddClient(c Client) {
	s.tb.Helper()
	if c.AuthMethod == "" {
		c.AuthMethod = AuthBasic
	}
	if c.Scopes == nil {
		c.Scopes = []string{"read", "write", "offline"}
	}
	if c.Grants == nil {
		c.Grants = []string{"authorization_code", "refresh_token", "client_credentials", "password"}
	}
	switch {
	case c.ID == "":
		s.tb.Fatal("oauthtest: client has no ID")
	case c.AuthMethod != AuthBasic && c.AuthMethod != AuthPost && c.AuthMethod != AuthNone:
		s.tb.Fatalf("oauthtest: client %q: unknown auth method %q", c.ID, c.AuthMethod)
	case c.AuthMethod == AuthNone && c.Secret != "":
		s.tb.Fatalf("oauthtest: client %q: a public client has no secret", c.ID)
	case c.AuthMethod != AuthNone && c.Secret == "":
		s.tb.Fatalf("oauthtest: client %q: %s needs a secret", c.ID, c.AuthMethod)
	}

	dc := &fosite.DefaultClient{
		ID:            c.ID,
		RedirectURIs:  c.RedirectURIs,
		GrantTypes:    c.Grants,
		ResponseTypes: []string{"code"},
		Scopes:        c.Scopes,
		Public:        c.AuthMethod == AuthNone,
	}
	if c.Secret != "" {
		h, err := s.hasher.Hash(context.Background(), []byte(c.Secret))
		if err != nil {
			s.tb.Fatalf("oauthtest: client %q: hashing secret: %v", c.ID, err)
		}
		dc.Secret = h
	}
	// An OpenID Connect client, because only for those does fosite honour
	// token_endpoint_auth_method.
	oc := &fosite.DefaultOpenIDConnectClient{DefaultClient: dc, TokenEndpointAuthMethod: c.AuthMethod}

	s.fositeMu.Lock()
	s.store.Clients[c.ID] = oc
	s.fositeMu.Unlock()
}

// TokenRequests returns every token request received so far, oldest first.
func (s *Server) TokenRequests() []TokenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TokenRequest, len(s.requests))
	copy(out, s.requests)
	return out
}

// Issued counts the token requests with this grant_type that the server
// answered 200, such as how many refreshes succeeded.
func (s *Server) Issued(grantType string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if r.GrantType == grantType && r.Status == http.StatusOK {
			n++
		}
	}
	return n
}

// APICalls counts requests to MePath, answered or refused.
func (s *Server) APICalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apiCalls
}

// token is the token endpoint (RFC 6749 §3.2). fosite authenticates the
// client, runs the grant and, for a refresh, rotates the refresh token; for
// client_credentials and password the requested scopes are granted as
// asked, since no user is there to consent.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	// Copy the form first: fosite deletes the password from it.
	r.ParseMultipartForm(1 << 20)
	_, _, basic := r.BasicAuth()
	rec := TokenRequest{
		GrantType: r.PostForm.Get("grant_type"),
		BasicAuth: basic,
		Form:      cloneValues(r.PostForm),
		Time:      time.Now(),
	}
	if s.tokenDelay > 0 {
		time.Sleep(s.tokenDelay)
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		rec.Status = sw.status
		s.mu.Lock()
		s.requests = append(s.requests, rec)
		s.mu.Unlock()
	}()

	s.fositeMu.Lock()
	defer s.fositeMu.Unlock()
	ctx := r.Context()
	ar, err := s.provider.NewAccessRequest(ctx, r, &fosite.DefaultSession{})
	if err != nil {
		s.provider.WriteAccessError(ctx, sw, ar, err)
		return
	}
	if ar.GetGrantTypes().ExactOne("client_credentials") || ar.GetGrantTypes().ExactOne("password") {
		for _, scope := range ar.GetRequestedScopes() {
			ar.GrantScope(scope)
		}
		for _, aud := range ar.GetRequestedAudience() {
			ar.GrantAudience(aud)
		}
	}
	resp, err := s.provider.NewAccessResponse(ctx, ar)
	if err != nil {
		s.provider.WriteAccessError(ctx, sw, ar, err)
		return
	}
	s.provider.WriteAccessResponse(ctx, sw, ar, resp)
}

// me is a protected resource (RFC 6750): it answers who the bearer access
// token was issued for, or 401 invalid_token for a missing, unknown,
// expired or revoked token, and for a refresh token.
func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.apiCalls++
	s.mu.Unlock()

	refuse := func() {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
	}
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		refuse()
		return
	}

	s.fositeMu.Lock()
	use, ar, err := s.provider.IntrospectToken(r.Context(), tok, fosite.AccessToken, &fosite.DefaultSession{})
	s.fositeMu.Unlock()
	if err != nil || use != fosite.AccessToken {
		refuse()
		return
	}
	// A client_credentials token has no resource owner; it is the client's.
	id := ar.GetSession().GetSubject()
	if id == "" {
		id = ar.GetClient().GetID()
	}
	scopes := ar.GetGrantedScopes()
	if scopes == nil {
		scopes = fosite.Arguments{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id":           id,
		"email":        id + "@example.com",
		"client_id":    ar.GetClient().GetID(),
		"token_scopes": scopes,
	})
}

// memoryStore is fosite's MemoryStore, except that a password-grant login
// answers the username as the subject: MemoryStore answers a random UUID,
// and then MePath could not say whose token it was.
type memoryStore struct {
	*storage.MemoryStore
}

// Authenticate checks a resource owner's password (RFC 6749 §4.3.2). It
// returns fosite.ErrNotFound for an unknown user or a wrong password.
func (m *memoryStore) Authenticate(ctx context.Context, name, password string) (string, error) {
	if _, err := m.MemoryStore.Authenticate(ctx, name, password); err != nil {
		return "", err
	}
	return name, nil
}

// statusWriter remembers the status written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
