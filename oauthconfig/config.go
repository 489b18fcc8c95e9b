// Package oauthconfig holds OAuth configs (how to talk to one provider's
// authorization server): the model, its validation and defaults, the store
// and the REST handler for creating and editing configs. What is done with
// a config lives in the sub-packages below it: token (requests to the
// provider's token endpoint), connection (the tokens each user keeps and
// their renewal) and call (calls to an app's API with those tokens).
package oauthconfig

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/jpath"
	"github.com/latchkey/latchkey/internal/template"
	"github.com/latchkey/latchkey/settings"
)

// GrantType is the OAuth 2.0 grant a config uses (RFC 6749 §4).
type GrantType string

// Grant types. AuthorizationCode needs an end user at the provider; the
// others get tokens without one: ClientCredentials (§4.4) and Password
// (§4.3) from settings, RefreshToken from a refresh token a developer or
// user stored in a setting (a long-lived token from the provider's console).
const (
	AuthorizationCode GrantType = "authorization_code"
	ClientCredentials GrantType = "client_credentials"
	Password          GrantType = "password"
	RefreshToken      GrantType = "refresh_token"
	// JWTBearer exchanges a signed assertion for a token (RFC 7523 §2.1:
	// Google service accounts, Salesforce and DocuSign JWT flows).
	JWTBearer GrantType = "jwt_bearer"
)

// BodyFormat is how token request bodies are encoded.
type BodyFormat string

const (
	Form BodyFormat = "form" // application/x-www-form-urlencoded, as RFC 6749 §4.1.3 says
	JSON BodyFormat = "json" // what some providers want instead
)

// ClientAuth is where client credentials go (RFC 6749 §2.3.1).
type ClientAuth string

const (
	AuthBody  ClientAuth = "body"  // client_id and client_secret in the body template
	AuthBasic ClientAuth = "basic" // HTTP Basic from the client_id and client_secret settings
	// AuthPrivateKeyJWT and AuthClientSecretJWT send a signed assertion
	// (RFC 7523 §2.2): with the private key in assertion_key_setting, or
	// HS256 with client_secret.
	AuthPrivateKeyJWT   ClientAuth = "private_key_jwt"
	AuthClientSecretJWT ClientAuth = "client_secret_jwt"
	// AuthTLS and AuthSelfSignedTLS authenticate the client by its
	// certificate alone, in the TLS handshake (RFC 8705 §2.1 with a CA's
	// certificate, §2.2 with a self-signed one): the body names the
	// client_id and carries no secret. For Latchkey the two differ only
	// in name; the provider checks the certificate its own way.
	AuthTLS           ClientAuth = "tls_client_auth"
	AuthSelfSignedTLS ClientAuth = "self_signed_tls_client_auth"
)

// TLSAuth reports whether the client authenticates by its certificate
// alone (RFC 8705 §2).
func (a ClientAuth) TLSAuth() bool { return a == AuthTLS || a == AuthSelfSignedTLS }

// FlowVars are the variables a flow supplies besides the app's settings:
// those no setting may be named (settings.FlowKeys) and refresh_token,
// which a refresh sets to the value of the refresh token setting.
var FlowVars = append(slices.Clone(settings.FlowKeys), "refresh_token")

// Mapping stores the value at a JSONPath of the token response in a
// user setting, e.g. $.authed_user.id -> slack_user_id.
//
// A token mapping missing from a refresh answer keeps the stored value
// (providers send some values only with the first tokens); Required says
// the code exchange's answer must have it. Either way the tokens are
// stored: a missing or unfit value is reported on the connection, never a
// reason to drop tokens the provider has issued. Identity mappings are
// always required: the identity answer is a check.
type Mapping struct {
	Path     string `json:"path"`
	Setting  string `json:"setting"`
	Required bool   `json:"required,omitempty"`
}

// CallbackMapping stores a query parameter of the provider's redirect to
// the callback in a setting of the installation (organization-level) or of
// the user.
type CallbackMapping struct {
	Param   string `json:"param"`
	Setting string `json:"setting"`
}

// Config is one OAuth config of an app.
type Config struct {
	ID          string
	AppID       string
	Name        string
	Description string
	GrantType   GrantType
	// RedirectURI, when set, is sent as <<redirect_uri>> instead of
	// Latchkey's callback URL, for providers that accept only a URI on the
	// platform's own domain; that URI must forward to Latchkey's callback
	// with the query intact, where the state is checked as ever.
	RedirectURI string
	LinkURL     string
	TokenURL    string
	RefreshURL  string // empty: TokenURL
	TokenBody   string
	RefreshBody string
	BodyFormat  BodyFormat
	// TokenMethod is how token and refresh requests are sent: POST (the
	// default, RFC 6749 §3.2) or GET; TokenParams where their parameters
	// go: "body", or "query" (the rendered form body in the URL's query,
	// no body: Instagram's long-lived tokens, Kno Commerce). GET implies
	// query. ContentType replaces the body's default media type.
	TokenMethod string
	TokenParams string
	ContentType string
	// RefreshMethod, when set, is how refresh requests are sent instead
	// of TokenMethod: Instagram exchanges the code with a POST and
	// refreshes long-lived tokens with a GET (whose parameters go in the
	// URL's query).
	RefreshMethod string
	// AssertionKeySetting names the secret setting with the PEM private
	// key that signs assertions; AssertionAlg is RS256, PS256 or ES256
	// ("" by the key); AssertionClaims are claims over the defaults, as
	// templates (see token.assertion).
	AssertionKeySetting string
	AssertionAlg        string
	AssertionClaims     map[string]string `gorm:"serializer:json"`
	// ClientCertSetting and ClientKeySetting name organization-level
	// settings of types certificate and private_key: a client certificate
	// chain and its key, presented for mutual TLS (RFC 8705 §2) by the
	// token, refresh and identity requests and by calls to the APIs that
	// use this config (a certificate-bound token, §3, is refused without
	// it). They go with any client_auth (ADP: a secret and a certificate);
	// with tls_client_auth the certificate is the only credential.
	ClientCertSetting   string
	ClientKeySetting    string
	Headers             map[string]string `gorm:"serializer:json"`
	ClientAuth          ClientAuth
	AuthCodePath        string
	AccessTokenPath     string
	RefreshTokenPath    string
	ExpiresInPath       string
	Mappings            []Mapping `gorm:"serializer:json"`
	AccessTokenSetting  string
	RefreshTokenSetting string
	Scopes              []string `gorm:"serializer:json"`
	ScopeSeparator      string
	PKCE                string // "S256" or "off"
	LogoURL             string
	LogRequests         bool

	// TokenLevel is the level of the settings that receive tokens:
	// settings.User (one token per end user) or settings.Organization
	// (one per installation, as client credentials are). Validate sets it.
	TokenLevel settings.Level
	// RefreshMargin is how many seconds before expiry a token is renewed;
	// 0 means the smaller of 5 minutes and 10% of the token's lifetime.
	RefreshMargin int `gorm:"column:refresh_margin_seconds"`
	// DefaultExpiresIn is the lifetime, in seconds, assumed for a token
	// whose response has no expires_in, so that it is renewed rather than
	// trusted forever.
	DefaultExpiresIn int
	// ExpiredStatuses are the API answers that mean "token expired": the
	// token is renewed and the call retried once.
	ExpiredStatuses []int `gorm:"serializer:json"`
	// ExpiredBodyPath and ExpiredBodyValue say the same for providers that
	// answer an expired token with an error in the body (often with 200):
	// a JSON body with a value at the path (equal to ExpiredBodyValue,
	// when that is set) means the token expired.
	ExpiredBodyPath  string
	ExpiredBodyValue string
	// GrantGoneErrors are error codes of a refused refresh that mean the
	// user's grant is gone, besides RFC 6749's invalid_grant (Dex answers
	// a spent refresh token with invalid_request). GrantGoneBodyPath and
	// GrantGoneBodyValue say the same by a JSONPath on the refusal's body.
	GrantGoneErrors    []string `gorm:"serializer:json"`
	GrantGoneBodyPath  string
	GrantGoneBodyValue string
	// KeepAlive, in seconds, refreshes a connection left idle that long,
	// for providers that revoke unused refresh tokens; 0 is off.
	KeepAlive int `gorm:"column:keepalive_seconds"`

	// IdentityURL, when set, is requested after each code exchange with
	// the new token (e.g. GET https://api.example/me with IdentityHeaders
	// "Authorization: Bearer <<access_token>>"); IdentityMappings store
	// values of its JSON answer in settings. If it fails, the connection
	// is not made. It also serves as "check this connection now".
	IdentityURL      string
	IdentityMethod   string
	IdentityHeaders  map[string]string `gorm:"serializer:json"`
	IdentityMappings []Mapping         `gorm:"serializer:json"`

	// CallbackMappings store values of the provider's redirect back (next
	// to the code: QuickBooks' realmId, Zoho's accounts-server and
	// location) in settings, with the tokens. They are checked against
	// their settings' definitions first, and the code exchange can use
	// them (Zoho's token URL depends on the accounts server).
	CallbackMappings []CallbackMapping `gorm:"serializer:json"`

	// Steps are requests run after the token request (see Step).
	Steps []Step `gorm:"serializer:json"`

	CreatedAt time.Time
	UpdatedAt time.Time
}

// TableName tells GORM where configs live.
func (Config) TableName() string { return "oauth_configs" }

// ApplyDefaults fills what a developer may leave out. The token and refresh
// bodies are not filled: an empty one means the default, which Body
// computes from the config as it is when the body is sent.
func (c *Config) ApplyDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def((*string)(&c.GrantType), string(AuthorizationCode))
	def((*string)(&c.BodyFormat), string(Form))
	def(&c.TokenMethod, http.MethodPost)
	def(&c.TokenParams, "body")
	if c.TokenMethod == http.MethodGet {
		c.TokenParams = "query"
	}
	def((*string)(&c.ClientAuth), string(AuthBody))
	def(&c.AuthCodePath, "$.code")
	def(&c.AccessTokenPath, "$.access_token")
	def(&c.RefreshTokenPath, "$.refresh_token")
	def(&c.ExpiresInPath, "$.expires_in")
	def(&c.PKCE, "S256")
	def(&c.ScopeSeparator, " ")
	def(&c.IdentityMethod, http.MethodGet)
	if c.IdentityHeaders == nil {
		c.IdentityHeaders = map[string]string{}
	}
	if c.IdentityMappings == nil {
		c.IdentityMappings = []Mapping{}
	}
	if c.DefaultExpiresIn == 0 {
		c.DefaultExpiresIn = 3600
	}
	if len(c.ExpiredStatuses) == 0 {
		c.ExpiredStatuses = []int{http.StatusUnauthorized}
	}
	if c.Headers == nil {
		c.Headers = map[string]string{}
	}
	if c.Mappings == nil {
		c.Mappings = []Mapping{}
	}
	if c.AssertionClaims == nil {
		c.AssertionClaims = map[string]string{}
	}
	if c.CallbackMappings == nil {
		c.CallbackMappings = []CallbackMapping{}
	}
	if c.Steps == nil {
		c.Steps = []Step{}
	}
	stepDefaults(c.Steps)
	if c.GrantGoneErrors == nil {
		c.GrantGoneErrors = []string{}
	}
	if c.Scopes == nil {
		c.Scopes = []string{}
	}
}

// Body returns the body template of the token request, or of the refresh
// request with refresh set: the one the developer wrote or, when none is
// stored, the default for the config as it is now. Defaults are computed
// here rather than stored at creation so that changing pkce, client_auth,
// body_format, scopes or grant_type changes them too.
func (c *Config) Body(refresh bool) string {
	if refresh {
		if c.RefreshBody != "" {
			return c.RefreshBody
		}
		return c.defaultBody("refresh_token", "refresh_token", "<<refresh_token>>")
	}
	if c.TokenBody != "" {
		return c.TokenBody
	}
	var pairs []string
	switch c.GrantType {
	case AuthorizationCode:
		pairs = []string{"code", "<<auth_code>>", "redirect_uri", "<<redirect_uri>>"}
		if c.PKCE == "S256" {
			pairs = append(pairs, "code_verifier", "<<code_verifier>>")
		}
	case Password:
		pairs = []string{"username", "<<username>>", "password", "<<password>>"}
	case RefreshToken:
		return c.defaultBody("refresh_token", "refresh_token", "<<refresh_token>>")
	case JWTBearer:
		pairs = []string{"assertion", "<<assertion>>"}
	}
	if c.GrantType != AuthorizationCode && len(c.Scopes) > 0 {
		pairs = append(pairs, "scope", "<<scope>>") // RFC 6749 §4.3.2, §4.4.2
	}
	grant := string(c.GrantType)
	if c.GrantType == JWTBearer {
		grant = "urn:ietf:params:oauth:grant-type:jwt-bearer" // RFC 7523 §2.1
	}
	return c.defaultBody(grant, pairs...)
}

// UsesRefresh reports whether the config ever sends a refresh request: a
// client_credentials token is renewed by asking again (RFC 6749 §4.4.3 says
// no refresh token should be issued), and other grants need a setting that
// holds the refresh token.
func (c *Config) UsesRefresh() bool {
	return c.GrantType != ClientCredentials && c.RefreshTokenSetting != ""
}

// defaultBody writes the RFC 6749 body for a grant in the config's format,
// with the client credentials when they go in the body (§2.3.1).
func (c *Config) defaultBody(grant string, pairs ...string) string {
	pairs = append([]string{"grant_type", grant}, pairs...)
	switch c.ClientAuth {
	case AuthBody:
		if c.GrantType != JWTBearer { // the assertion authenticates
			pairs = append(pairs, "client_id", "<<client_id>>", "client_secret", "<<client_secret>>")
		}
	case AuthPrivateKeyJWT, AuthClientSecretJWT:
		// RFC 7523 §2.2; the assertion is signed for each request.
		pairs = append(pairs, "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
			"client_assertion", "<<client_assertion>>")
	case AuthTLS, AuthSelfSignedTLS:
		// RFC 8705 §2: the client_id says whose certificate to expect.
		pairs = append(pairs, "client_id", "<<client_id>>")
	}
	var b strings.Builder
	if c.BodyFormat == JSON {
		b.WriteByte('{')
		for i := 0; i < len(pairs); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%q:%q", pairs[i], pairs[i+1])
		}
		b.WriteByte('}')
		return b.String()
	}
	for i := 0; i < len(pairs); i += 2 {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(pairs[i] + "=" + pairs[i+1])
	}
	return b.String()
}

// BodyContext is the template context of request bodies.
func (c *Config) BodyContext() template.Context {
	if c.BodyFormat == JSON {
		return template.JSON
	}
	return template.Form
}

// RefreshEndpoint is where refresh requests go.
func (c *Config) RefreshEndpoint() string {
	if c.RefreshURL != "" {
		return c.RefreshURL
	}
	return c.TokenURL
}

// Validate checks every field against the app's setting definitions and
// returns one errs.Invalid error naming each bad field, with the byte
// position inside a template where it is known.
func (c *Config) Validate(defs []settings.Definition) error {
	levels := make(map[string]settings.Level, len(defs))
	urlTyped := make(map[string]bool)
	valueTyped := make(map[string]bool) // number and boolean settings
	fixed := make(map[string]bool)
	byKey := make(map[string]settings.Definition, len(defs))
	for _, d := range defs {
		byKey[d.Key] = d
		levels[d.Key] = d.Level
		if d.Type == settings.URL {
			urlTyped[d.Key] = true
		}
		if d.Type == settings.Number || d.Type == settings.Boolean {
			valueTyped[d.Key] = true
		}
		fixed[d.Key] = d.Fixed()
	}
	known := func(name string) bool {
		if _, ok := levels[name]; ok {
			return true
		}
		for _, v := range FlowVars {
			if v == name {
				return true
			}
		}
		return false
	}
	var fs errs.Fields
	if l := len(strings.TrimSpace(c.Name)); l == 0 || len(c.Name) > 200 {
		fs.Add("name", "must be 1 to 200 characters")
	}
	switch c.GrantType {
	case AuthorizationCode, ClientCredentials, Password, RefreshToken, JWTBearer:
	default:
		fs.Add("grant_type", "must be authorization_code, client_credentials, password, refresh_token or jwt_bearer")
	}
	bodyOK := true
	if c.BodyFormat != Form && c.BodyFormat != JSON {
		fs.Add("body_format", `must be "form" or "json"`)
		bodyOK = false
	}
	switch {
	case c.TokenMethod != http.MethodPost && c.TokenMethod != http.MethodGet:
		fs.Add("token_method", `must be "POST" or "GET"`)
	case c.TokenParams != "body" && c.TokenParams != "query":
		fs.Add("token_params", `must be "body" or "query"`)
	case c.TokenParams == "query" && c.BodyFormat == JSON:
		fs.Add("token_params", `"query" needs body_format "form": the parameters are form-encoded into the URL's query`)
	}
	switch c.RefreshMethod {
	case "", http.MethodPost:
	case http.MethodGet:
		if c.BodyFormat == JSON {
			fs.Add("refresh_method", `"GET" needs body_format "form": the refresh parameters are form-encoded into the URL's query`)
		}
	default:
		fs.Add("refresh_method", `must be "POST", "GET" or empty (as token_method)`)
	}
	if c.ContentType != "" {
		if len(c.ContentType) > 200 {
			fs.Add("content_type", "must be at most 200 characters")
		} else if mt, _, err := mime.ParseMediaType(c.ContentType); err != nil || !strings.Contains(mt, "/") || strings.ContainsAny(c.ContentType, "\r\n") {
			fs.Add("content_type", "must be a media type such as application/vnd.api+json")
		} else if c.TokenParams == "query" {
			fs.Add("content_type", "is for a body; with token_params \"query\" requests have none")
		}
	}
	switch c.ClientAuth {
	case AuthBody, AuthBasic, AuthPrivateKeyJWT, AuthClientSecretJWT, AuthTLS, AuthSelfSignedTLS:
	default:
		fs.Add("client_auth", `must be "body", "basic", "private_key_jwt", "client_secret_jwt", "tls_client_auth" or "self_signed_tls_client_auth"`)
	}
	c.checkClientCertificate(&fs, byKey)
	// A signed assertion (RFC 7523) needs its key: a secret setting with a
	// PEM private key, except client_secret_jwt, which signs with
	// client_secret.
	signs := c.ClientAuth == AuthPrivateKeyJWT || c.GrantType == JWTBearer
	if signs {
		d, ok := byKey[c.AssertionKeySetting]
		switch {
		case c.AssertionKeySetting == "":
			fs.Add("assertion_key_setting", "is required to sign an assertion: the secret setting that holds the PEM private key")
		case !ok:
			fs.Add("assertion_key_setting", "the app has no setting %q", c.AssertionKeySetting)
		case !d.Secret:
			fs.Add("assertion_key_setting", "setting %q must be secret: it holds a private key", c.AssertionKeySetting)
		}
	}
	switch c.AssertionAlg {
	case "", "RS256", "PS256", "ES256":
	default:
		fs.Add("assertion_alg", `must be "RS256", "PS256" or "ES256" (empty: by the key)`)
	}
	if len(c.AssertionClaims) > 20 {
		fs.Add("assertion_claims", "at most 20 claims")
	}
	for name, src := range c.AssertionClaims {
		if name == "" || len(name) > 100 {
			fs.Add("assertion_claims", "claim names must be 1 to 100 characters")
			continue
		}
		checkTemplate(&fs, "assertion_claims."+name, src, template.Text, known)
	}
	if c.ClientAuth == AuthClientSecretJWT {
		if l, ok := levels["client_secret"]; !ok || l != settings.Organization {
			fs.Add("client_auth", "client_secret_jwt needs an organization-level setting client_secret to sign with")
		}
	}
	if c.ClientAuth == AuthBasic {
		for _, k := range []string{"client_id", "client_secret"} {
			if l, ok := levels[k]; !ok || l != settings.Organization {
				fs.Add("client_auth", "basic authentication needs organization-level settings client_id and client_secret")
				break
			}
		}
	}
	if c.PKCE != "S256" && c.PKCE != "off" {
		fs.Add("pkce", `must be "S256" or "off"`)
	}
	checkText(&fs, "description", c.Description, 1000)
	if c.RedirectURI != "" {
		if msg := checkRedirectURI(c.RedirectURI); msg != "" {
			fs.Add("redirect_uri", "%s", msg)
		}
	}
	if c.GrantType == AuthorizationCode && c.LinkURL == "" {
		fs.Add("link_url", "is required for the authorization_code grant")
	}
	if (c.GrantType == ClientCredentials || c.GrantType == Password || c.GrantType == RefreshToken) && c.LinkURL != "" {
		fs.Add("link_url", "is only used by the authorization_code grant; leave it empty")
	}
	if c.GrantType == RefreshToken && c.RefreshTokenSetting == "" {
		fs.Add("refresh_token_setting", "is required for the refresh_token grant: the setting that holds the refresh token")
	}
	if c.TokenURL == "" {
		fs.Add("token_url", "is required")
	}
	checkTemplate(&fs, "link_url", c.LinkURL, template.URL, known)
	checkBase(&fs, "link_url", c.LinkURL, urlTyped)
	if rt, ok := literalResponseType(c.LinkURL); ok && rt != "code" {
		fs.Add("link_url", "response_type=%s is not supported: Latchkey runs the authorization code flow (response_type=code, RFC 6749 §4.1) only; the implicit and hybrid flows hand tokens to the browser, which Latchkey never does, by design", rt)
	}
	checkTemplate(&fs, "token_url", c.TokenURL, template.URL, known)
	checkTemplate(&fs, "refresh_url", c.RefreshURL, template.URL, known)
	checkBase(&fs, "token_url", c.TokenURL, urlTyped)
	checkBase(&fs, "refresh_url", c.RefreshURL, urlTyped)
	if bodyOK {
		// A default body is checked only where the grant sends it: a
		// client_credentials config with its own token body needs no
		// client_id setting for a refresh body it never sends. A body the
		// developer wrote is always checked.
		checkTemplate(&fs, "token_body", c.Body(false), c.BodyContext(), known)
		if c.BodyFormat == JSON {
			checkValues(&fs, "token_body", c.Body(false), valueTyped)
			checkValues(&fs, "refresh_body", c.RefreshBody, valueTyped)
		}
		if c.RefreshBody != "" || c.UsesRefresh() {
			checkTemplate(&fs, "refresh_body", c.Body(true), c.BodyContext(), known)
		}
	}
	checkHeaders(&fs, "headers.", c.Headers, known)
	checkPath(&fs, "auth_code_path", c.AuthCodePath)
	checkPath(&fs, "access_token_path", c.AccessTokenPath)
	checkPath(&fs, "refresh_token_path", c.RefreshTokenPath)
	checkPath(&fs, "expires_in_path", c.ExpiresInPath)
	c.TokenLevel = c.tokenLevel(levels)
	checkTokenSetting(&fs, "access_token_setting", c.AccessTokenSetting, levels, fixed, c.TokenLevel, true)
	checkTokenSetting(&fs, "refresh_token_setting", c.RefreshTokenSetting, levels, fixed, c.TokenLevel, false)
	if len(c.Mappings) > 50 {
		fs.Add("mappings", "at most 50 mappings")
	}
	for i, m := range c.Mappings {
		checkPath(&fs, fmt.Sprintf("mappings[%d].path", i), m.Path)
		checkTokenSetting(&fs, fmt.Sprintf("mappings[%d].setting", i), m.Setting, levels, fixed, c.TokenLevel, true)
	}
	if c.RefreshMargin < 0 || c.RefreshMargin > 86400 {
		fs.Add("refresh_margin_seconds", "must be 0 (automatic) to 86400")
	}
	if c.DefaultExpiresIn < 60 || c.DefaultExpiresIn > 366*86400 {
		fs.Add("default_expires_in", "must be 60 to 31622400 seconds")
	}
	if len(c.ExpiredStatuses) > 10 {
		fs.Add("expired_statuses", "at most 10 statuses")
	}
	for i, st := range c.ExpiredStatuses {
		if st < 400 || st > 599 {
			fs.Add(fmt.Sprintf("expired_statuses[%d]", i), "must be an HTTP error status, 400 to 599")
		}
	}
	if c.ExpiredBodyPath != "" {
		checkPath(&fs, "expired_body_path", c.ExpiredBodyPath)
	} else if c.ExpiredBodyValue != "" {
		fs.Add("expired_body_value", "needs expired_body_path")
	}
	checkTemplate(&fs, "identity_url", c.IdentityURL, template.URL, known)
	checkBase(&fs, "identity_url", c.IdentityURL, urlTyped)
	if c.IdentityMethod != http.MethodGet && c.IdentityMethod != http.MethodPost {
		fs.Add("identity_method", `must be "GET" or "POST"`)
	}
	if c.IdentityURL == "" && (len(c.IdentityHeaders) > 0 || len(c.IdentityMappings) > 0) {
		fs.Add("identity_url", "is required when identity_headers or identity_mappings are set")
	}
	checkHeaders(&fs, "identity_headers.", c.IdentityHeaders, known)
	if len(c.IdentityMappings) > 50 {
		fs.Add("identity_mappings", "at most 50 mappings")
	}
	for i, m := range c.IdentityMappings {
		if m.Required {
			fs.Add(fmt.Sprintf("identity_mappings[%d].required", i), "identity mappings are always required; leave it out")
		}
		checkIdentityPath(&fs, fmt.Sprintf("identity_mappings[%d].path", i), m.Path, known)
		checkTokenSetting(&fs, fmt.Sprintf("identity_mappings[%d].setting", i), m.Setting, levels, fixed, c.TokenLevel, true)
	}
	c.checkSteps(&fs, known, levels, fixed, urlTyped, valueTyped)
	if len(c.CallbackMappings) > 0 && c.GrantType != AuthorizationCode {
		fs.Add("callback_mappings", "only the authorization_code grant has a redirect back to take values from")
	}
	if len(c.CallbackMappings) > 20 {
		fs.Add("callback_mappings", "at most 20 mappings")
	}
	for i, m := range c.CallbackMappings {
		field := fmt.Sprintf("callback_mappings[%d]", i)
		switch {
		case m.Param == "" || len(m.Param) > 100 || strings.ContainsFunc(m.Param, func(r rune) bool { return r < 0x21 || r == 0x7f }):
			fs.Add(field+".param", "must be a query parameter name of 1 to 100 printable characters")
		case m.Param == "state" || m.Param == "error":
			fs.Add(field+".param", "%q is the flow's own parameter", m.Param)
		}
		l, ok := levels[m.Setting]
		switch {
		case !ok:
			fs.Add(field+".setting", "the app has no setting %q", m.Setting)
		case fixed[m.Setting]:
			fs.Add(field+".setting", "setting %q is fixed by the app developer (read_only or hidden) and cannot receive values", m.Setting)
		case l == settings.User && c.TokenLevel == settings.Organization:
			fs.Add(field+".setting", "setting %q is user-level, and this config's tokens belong to the installation", m.Setting)
		}
	}
	if len(c.GrantGoneErrors) > 10 {
		fs.Add("grant_gone_errors", "at most 10 error codes")
	}
	for i, code := range c.GrantGoneErrors {
		switch {
		case !errorCode.MatchString(code):
			fs.Add(fmt.Sprintf("grant_gone_errors[%d]", i), "must be an OAuth error code: 1-100 printable ASCII characters without spaces, quotes or backslashes")
		case code == "invalid_client" || code == "unauthorized_client":
			fs.Add(fmt.Sprintf("grant_gone_errors[%d]", i), "%s says the installation's client credentials are wrong, not that the user's grant is gone; it is a configuration error", code)
		}
	}
	if c.GrantGoneBodyPath != "" {
		checkPath(&fs, "grant_gone_body_path", c.GrantGoneBodyPath)
	} else if c.GrantGoneBodyValue != "" {
		fs.Add("grant_gone_body_value", "needs grant_gone_body_path")
	}
	if len(c.GrantGoneBodyValue) > 200 {
		fs.Add("grant_gone_body_value", "must be at most 200 characters")
	}
	if c.KeepAlive != 0 && (c.KeepAlive < 300 || c.KeepAlive > 366*86400) {
		fs.Add("keepalive_seconds", "must be 0 (off) or 300 to 31622400 seconds")
	}
	if len(c.ExpiredBodyValue) > 200 {
		fs.Add("expired_body_value", "must be at most 200 characters")
	}
	for i, s := range c.Scopes {
		if s == "" || len(s) > 200 || strings.ContainsAny(s, " \t\r\n\"\\") {
			fs.Add(fmt.Sprintf("scopes[%d]", i), "must be 1-200 characters without spaces, quotes or backslashes")
		}
	}
	if len(c.ScopeSeparator) > 5 {
		fs.Add("scope_separator", "must be at most 5 characters")
	}
	if c.LogoURL != "" {
		if msg := app.CheckWebURL(c.LogoURL); msg != "" {
			fs.Add("logo_url", "%s", msg)
		}
	}
	return fs.Err()
}

// checkClientCertificate checks the settings of the client certificate
// (RFC 8705): both or neither, required by tls_client_auth, each an
// organization-level secret setting of its type, whose values are checked
// as PEM when they are stored.
func (c *Config) checkClientCertificate(fs *errs.Fields, byKey map[string]settings.Definition) {
	switch {
	case c.ClientCertSetting == "" && c.ClientKeySetting == "":
		if c.ClientAuth.TLSAuth() {
			fs.Add("client_cert_setting", "is required with client_auth %s: the setting of type certificate that holds the client certificate", c.ClientAuth)
		}
		return
	case c.ClientCertSetting == "":
		fs.Add("client_cert_setting", "is required with client_key_setting: a certificate and its key go together")
	case c.ClientKeySetting == "":
		fs.Add("client_key_setting", "is required with client_cert_setting: a certificate and its key go together")
	case c.ClientCertSetting == c.ClientKeySetting:
		fs.Add("client_key_setting", "must be another setting than client_cert_setting")
		return
	}
	check := func(field, key string, want settings.Type) {
		if key == "" {
			return
		}
		d, ok := byKey[key]
		switch {
		case !ok:
			fs.Add(field, "the app has no setting %q", key)
		case d.Level != settings.Organization:
			fs.Add(field, "setting %q is %s-level; a client certificate belongs to the installation: it must be organization-level", key, d.Level)
		case d.Type != want:
			fs.Add(field, "setting %q must be of type %s, whose values are checked as PEM when they are stored", key, want)
		case !d.Secret:
			fs.Add(field, "setting %q must be secret", key)
		}
	}
	check("client_cert_setting", c.ClientCertSetting, settings.Certificate)
	check("client_key_setting", c.ClientKeySetting, settings.PrivateKey)
}

// checkRedirectURI returns what is wrong with a config's own redirect URI,
// or "". RFC 6749 §3.1.2 wants it absolute and without a fragment; it
// carries the code, so it must be https, except on the loopback host,
// where a developer runs a platform locally (RFC 8252 §7.3 allows http).
func checkRedirectURI(s string) string {
	if len(s) > 2048 {
		return "must be at most 2048 bytes"
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return "must be an absolute https URL"
	}
	switch {
	case u.User != nil:
		return "must not contain a user name or password"
	case u.Fragment != "" || strings.Contains(s, "#"):
		return "must not contain a fragment (RFC 6749 §3.1.2)"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && loopback(u.Hostname()):
		return ""
	}
	return "must be an https URL (http only for localhost)"
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// literalResponseType returns the response_type the link_url template
// writes literally; ok is false when it writes none or takes it from a
// variable.
func literalResponseType(link string) (rt string, ok bool) {
	t, err := template.Parse(link, template.URL)
	if err != nil {
		return "", false
	}
	const marker = "latchkeyvariable"
	vals := map[string]string{}
	for _, v := range t.Vars() {
		vals[v] = marker
	}
	s, err := t.Render(vals)
	if err != nil {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || !u.Query().Has("response_type") {
		return "", false
	}
	rt = u.Query().Get("response_type")
	return rt, !strings.Contains(rt, marker)
}

func checkText(fs *errs.Fields, field, s string, max int) {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		fs.Add(field, "must be valid UTF-8 of at most %d characters", max)
	}
}

// OrganizationSettingsUsed names the organization-level settings the
// config's token and refresh requests use, sorted: where an installation's
// client credentials live.
func (c *Config) OrganizationSettingsUsed(r settings.Resolved) []string {
	org := make(map[string]bool)
	for _, k := range r.OrganizationKeys() {
		org[k] = true
	}
	used := make(map[string]bool)
	if c.ClientAuth == AuthBasic {
		used["client_id"], used["client_secret"] = true, true
	}
	if c.ClientCertSetting != "" {
		used[c.ClientCertSetting], used[c.ClientKeySetting] = true, true
	}
	srcs := []struct {
		src string
		ctx template.Context
	}{{c.TokenURL, template.URL}, {c.Body(false), c.BodyContext()}}
	if c.UsesRefresh() {
		srcs = append(srcs, struct {
			src string
			ctx template.Context
		}{c.RefreshEndpoint(), template.URL}, struct {
			src string
			ctx template.Context
		}{c.Body(true), c.BodyContext()})
	}
	for _, h := range c.Headers {
		srcs = append(srcs, struct {
			src string
			ctx template.Context
		}{h, template.Header})
	}
	for _, s := range srcs {
		if t, err := template.Parse(s.src, s.ctx); err == nil {
			for _, v := range t.Vars() {
				used[v] = true
			}
		}
	}
	var out []string
	for k := range used {
		if org[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// errorCode is RFC 6749 §5.2's error syntax (NQSCHAR), bounded.
var errorCode = regexp.MustCompile(`^[\x20-\x21\x23-\x5B\x5D-\x7E]{1,100}$`)

// checkHeaders checks header templates, each named prefix + its name.
func checkHeaders(fs *errs.Fields, prefix string, headers map[string]string, known func(string) bool) {
	for name, v := range headers {
		field := prefix + name
		switch {
		case !app.IsHeaderName(name):
			fs.Add(field, "is not a valid header name")
		case forbiddenHeader(name):
			fs.Add(field, "cannot be set by a template: Latchkey sets it")
		default:
			checkTemplate(fs, field, v, template.Header, known)
		}
	}
}

func checkTemplate(fs *errs.Fields, field, src string, ctx template.Context, known func(string) bool) {
	if src == "" {
		return
	}
	if len(src) > 16<<10 {
		fs.Add(field, "must be at most 16384 bytes")
		return
	}
	t, err := template.Parse(src, ctx)
	if err == nil {
		err = t.Check(known)
	}
	if te, ok := err.(*template.Error); ok {
		fs.AddAt(field, te.Pos, "%s", te.Msg)
	} else if err != nil {
		fs.Add(field, "%v", err)
	}
}

// checkValues makes sure that a JSON body's bare values ("amount":
// <<amount>>) come from number or boolean settings, whose values were
// checked when they were stored.
func checkValues(fs *errs.Fields, field, src string, valueTyped map[string]bool) {
	t, err := template.Parse(src, template.JSON)
	if err != nil {
		return
	}
	for _, name := range t.ValueVars() {
		if !valueTyped[name] {
			fs.Add(field, "<<%s>> stands alone as a JSON value, which only a setting of type number or boolean can; put it in quotes for text", name)
			return
		}
	}
}

// checkBase makes sure that a URL template starting with a variable
// (<<base_url>>/oauth/token) starts with a setting of type url, whose
// values were checked as base URLs when they were stored.
func checkBase(fs *errs.Fields, field, src string, urlTyped map[string]bool) {
	t, err := template.Parse(src, template.URL)
	if err != nil {
		return
	}
	for _, name := range t.BaseVars() {
		if !urlTyped[name] {
			fs.AddAt(field, 0, "starts with <<%s>>, which must be a setting of type url to be a URL's base", name)
			return
		}
	}
}

var placeholderTag = regexp.MustCompile(`<<[^>]*>>`)

// checkIdentityPath checks an identity mapping's JSONPath, which may name
// settings inside double-quoted string literals to pick the list entry of
// this installation: $[?(@.url == "<<site_url>>")].id. Each placeholder
// must sit alone in such a literal, where its value (escaped when the path
// is rendered) can only be compared.
func checkIdentityPath(fs *errs.Fields, field, path string, known func(string) bool) {
	if !strings.Contains(path, "<<") {
		checkPath(fs, field, path)
		return
	}
	for _, loc := range placeholderTag.FindAllStringIndex(path, -1) {
		if loc[0] == 0 || path[loc[0]-1] != '"' || loc[1] >= len(path) || path[loc[1]] != '"' {
			fs.AddAt(field, loc[0], "a placeholder in a JSONPath must be the whole of a double-quoted string, as in \"<<site_url>>\"")
			return
		}
	}
	checkTemplate(fs, field, path, template.Text, known)
	checkPath(fs, field, placeholderTag.ReplaceAllString(path, "x"))
}

func checkPath(fs *errs.Fields, field, path string) {
	alts := Alternatives(path)
	if len(alts) > 5 {
		fs.Add(field, "at most 5 alternatives")
		return
	}
	for _, alt := range alts {
		if _, err := jpath.Compile(alt); err != nil {
			fs.Add(field, "%v", err)
			return
		}
	}
}

// Alternatives splits a JSONPath that lists alternatives, "$.a | $.b",
// of which the first with a value wins. Only a " | " outside brackets,
// parentheses and string literals separates them.
func Alternatives(path string) []string {
	var parts []string
	depth, quote, start := 0, byte(0), 0
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '[' || c == '(':
			depth++
		case c == ']' || c == ')':
			depth--
		case depth == 0 && strings.HasPrefix(path[i:], " | $"):
			parts = append(parts, path[start:i])
			start = i + 3
			i += 2
		}
	}
	return append(parts, path[start:])
}

// tokenLevel is where the config's tokens live. The grant decides it,
// except for password and refresh_token configs, whose tokens may be an end
// user's or the whole installation's: there the access token setting does.
func (c *Config) tokenLevel(levels map[string]settings.Level) settings.Level {
	switch c.GrantType {
	case ClientCredentials:
		return settings.Organization
	case Password, RefreshToken, JWTBearer:
		if levels[c.AccessTokenSetting] == settings.Organization {
			return settings.Organization
		}
	}
	return settings.User
}

func checkTokenSetting(fs *errs.Fields, field, key string, levels map[string]settings.Level, fixed map[string]bool, want settings.Level, required bool) {
	if key == "" {
		if required {
			fs.Add(field, "is required: the %s-level setting that receives the value", want)
		}
		return
	}
	switch l, ok := levels[key]; {
	case !ok:
		fs.Add(field, "the app has no setting %q", key)
	case l != want:
		fs.Add(field, "setting %q is %s-level; tokens of this config go in %s-level settings", key, l, want)
	case fixed[key]:
		fs.Add(field, "setting %q is fixed by the app developer (read_only or hidden) and cannot receive values", key)
	}
}

// forbiddenHeader reports headers the token client owns: a template must
// not change framing, the body's type or where the request goes.
func forbiddenHeader(name string) bool {
	switch strings.ToLower(name) {
	case "host", "content-length", "transfer-encoding", "connection", "content-type", "te", "upgrade", "proxy-authorization", "expect", "keep-alive", "trailer":
		// Content-Type has its own field, content_type; Accept may be set.
		return true
	}
	return false
}
