// Package token sends token requests to providers: it renders a config's
// templates into a request (BuildRequest, BuildLink, FlowValues), sends it,
// reads the answer (Extract, RetrieveError) and runs identity requests;
// it keeps the OAuth request log and removes a request's secrets from what
// comes back.
package token

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/jpath"
	"github.com/latchkey/latchkey/internal/outbound"
	"github.com/latchkey/latchkey/internal/template"
	"github.com/latchkey/latchkey/oauthconfig"
)

// Token is what a token response gave, extracted with the config's paths.
type Token struct {
	AccessToken  string
	RefreshToken string            // "" when the response had none: keep the old one
	ExpiresIn    int64             // seconds; 0 when the response did not say
	Extra        map[string]string // user setting -> value, from the config's mappings

	// Callback holds values of the provider's redirect (setting -> value,
	// from the config's callback_mappings), stored with the tokens at
	// their settings' own levels.
	Callback map[string]string

	// Problems are what the answer lacked or got wrong besides the access
	// token (a required mapping, a malformed expires_in), safe to show.
	// They are reported on the connection; the tokens are stored anyway.
	Problems []string
}

// Vars are the values a template may use: the installation's settings,
// the user's settings and the flow's own variables.
type Vars struct {
	Values map[string]string
	Secret map[string]bool // which names hold secrets, for masking and redaction
}

func (v Vars) IsSecret(name string) bool {
	switch name {
	case "auth_code", "code_verifier", "refresh_token", "assertion", "client_assertion":
		return true
	}
	return v.Secret[name]
}

// Request is a rendered token request.
type Request struct {
	Method string
	URL    string
	Header http.Header
	Body   string

	signed string // the assertion signed for this request, for the redactor
}

// RetrieveError is a token request that failed at the provider, after it
// was sent: an HTTP error status, an RFC 6749 §5.2 error body, or a response
// that cannot be read. Callers find it with errors.As in the chain of the
// errs.Error the token client returns.
type RetrieveError struct {
	Status           int
	ErrorCode        string // RFC 6749 §5.2 "error", e.g. invalid_grant
	ErrorDescription string
	RetryAfter       time.Duration // from a 429's or 503's Retry-After
	Transient        bool          // worth retrying later: timeout, 5xx, 429

	body any // the refusal's body, decoded, for a config's grant_gone_body_path
}

// ShownInMessage tells errs.Error that its message already says what the
// RetrieveError holds (errs.Shown), so logs do not repeat it.
func (e *RetrieveError) ShownInMessage() {}

// Body is the refusal's body, decoded (JSON or form), for a config's
// grant_gone_body_path; nil when the answer had none that could be read.
func (e *RetrieveError) Body() any { return e.body }

func (e *RetrieveError) Error() string {
	if e.ErrorCode != "" {
		return fmt.Sprintf("oauth2: %d %s %s", e.Status, e.ErrorCode, e.ErrorDescription)
	}
	return fmt.Sprintf("oauth2: status %d", e.Status)
}

// Client renders, sends and reads token requests.
type Client struct {
	http *outbound.Client
	log  *RequestLog // nil: nothing is logged
	now  func() time.Time

	// Observe, if set, is told of each token request's outcome: "ok" or
	// the errs code of its failure (never the provider's own error text,
	// which a hostile provider could vary without end). For metrics.
	Observe func(configID, kind, outcome string)
}

// NewClient returns a client that sends through c and records
// requests of configs that ask for it in log (which may be nil).
func NewClient(c *outbound.Client, log *RequestLog) *Client {
	return &Client{http: c, log: log, now: time.Now}
}

// Exchange trades an authorization code (in vars as auth_code) for tokens
// (RFC 6749 §4.1.3). Errors are *errs.Error: Invalid when the request cannot
// be rendered (a setting without a value), Timeout when the provider does
// not answer, Upstream for anything the provider answered that is not a
// token, with a *RetrieveError inside.
func (tc *Client) Exchange(ctx context.Context, cfg *oauthconfig.Config, vars Vars, meta LogMeta) (Token, error) {
	meta.Kind = "exchange"
	return tc.send(ctx, cfg, vars, false, meta)
}

// Refresh uses a refresh token (in vars as refresh_token) for new tokens
// (RFC 6749 §6), with the config's refresh URL and body. Errors as Exchange.
func (tc *Client) Refresh(ctx context.Context, cfg *oauthconfig.Config, vars Vars, meta LogMeta) (Token, error) {
	meta.Kind = "refresh"
	return tc.send(ctx, cfg, vars, true, meta)
}

// BuildRequest renders the token (or refresh) request for vars. With mask
// set, secret values show as ****, for explaining a request to a developer.
func BuildRequest(cfg *oauthconfig.Config, vars Vars, refresh, mask bool) (Request, error) {
	render := func(field, src string, ctx template.Context) (string, error) {
		return RenderField("config field "+field, field, src, ctx, vars, mask)
	}
	urlField, urlSrc, bodyField, bodySrc := "token_url", cfg.TokenURL, "token_body", cfg.Body(false)
	if refresh {
		urlField, urlSrc, bodyField, bodySrc = "refresh_url", cfg.RefreshEndpoint(), "refresh_body", cfg.Body(true)
	}
	req := Request{Method: cfg.TokenMethod, Header: http.Header{}}
	if refresh && cfg.RefreshMethod != "" {
		req.Method = cfg.RefreshMethod
	}
	if req.Method == "" {
		req.Method = http.MethodPost
	}
	var err error
	if req.URL, err = render(urlField, urlSrc, template.URL); err != nil {
		return Request{}, err
	}
	// A signed assertion (RFC 7523) is made for each request, for the
	// URL it goes to: the grant's own (jwt_bearer) or the client's
	// authentication (private_key_jwt, client_secret_jwt).
	if usesAssertion(bodySrc, cfg.BodyContext()) {
		jwt, err := assertion(cfg, vars, req.URL, time.Now())
		if err != nil {
			return Request{}, err
		}
		values := make(map[string]string, len(vars.Values)+2)
		for k, v := range vars.Values {
			values[k] = v
		}
		values["assertion"], values["client_assertion"] = jwt, jwt
		vars.Values = values
		req.signed = jwt
	}
	if req.Body, err = render(bodyField, bodySrc, cfg.BodyContext()); err != nil {
		return Request{}, err
	}
	if err := renderHeaders(req.Header, cfg.Headers, render); err != nil {
		return Request{}, err
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	switch {
	case cfg.TokenParams == "query" || req.Method == http.MethodGet:
		// The form body, already encoded, becomes the URL's query.
		if req.Body != "" {
			sep := "?"
			if strings.Contains(req.URL, "?") {
				sep = "&"
			}
			req.URL += sep + req.Body
		}
		req.Body = ""
	case cfg.ContentType != "":
		req.Header.Set("Content-Type", cfg.ContentType)
	case cfg.BodyFormat == oauthconfig.JSON:
		req.Header.Set("Content-Type", "application/json")
	default:
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cfg.ClientAuth == oauthconfig.AuthBasic {
		id, secret := vars.Values["client_id"], vars.Values["client_secret"]
		if id == "" || secret == "" {
			return Request{}, errs.New(errs.Invalid, "basic client authentication needs client_id and client_secret, and this installation has no value for one of them")
		}
		// RFC 6749 §2.3.1: both are form-encoded before Basic encoding.
		creds := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
		if mask {
			creds = "****"
		}
		req.Header.Set("Authorization", "Basic "+creds)
	}
	return req, nil
}

// renderHeaders sets the header templates in h, rendered with render (as
// field "headers.<name>"); a header whose optional placeholder has no
// value is left out.
func renderHeaders(h http.Header, templates map[string]string, render func(field, src string, ctx template.Context) (string, error)) error {
	for name, src := range templates {
		v, err := render("headers."+name, src, template.Header)
		if errors.Is(err, template.ErrOmitted) {
			continue
		}
		if err != nil {
			return err
		}
		h.Set(name, v)
	}
	return nil
}

// Annotate adds problems found after a logged request (entryID, from
// LogMeta) to its entry; nothing when the client keeps no log.
func (tc *Client) Annotate(ctx context.Context, entryID string, problems []string) {
	if tc.log != nil {
		tc.log.Annotate(context.WithoutCancel(ctx), entryID, "the tokens are stored, but: "+strings.Join(problems, "; "))
	}
}

// observe tells Observe, if set, how a request of kind ended.
func (tc *Client) observe(cfg *oauthconfig.Config, kind string, err error) {
	if tc.Observe == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = string(errs.CodeOf(err))
	}
	tc.Observe(cfg.ID, kind, outcome)
}

// RenderField renders one template field with vars; with mask set, secret
// values show as ****. Errors are errs.Invalid naming the field as
// parseName (a stored template that no longer parses) or name (a value
// that cannot be rendered), never a value.
func RenderField(parseName, name, src string, ctx template.Context, vars Vars, mask bool) (string, error) {
	t, err := template.Cached(src, ctx)
	if err != nil {
		return "", errs.New(errs.Invalid, "%s does not parse: %v", parseName, err)
	}
	var out string
	if mask {
		out, err = t.RenderMasked(vars.Values, vars.IsSecret)
	} else {
		out, err = t.Render(vars.Values)
	}
	if errors.Is(err, template.ErrOmitted) {
		return "", err // the caller leaves the field out
	}
	if err != nil {
		return "", renderError(name, err)
	}
	return out, nil
}

// renderError explains a render failure without the value that caused it.
func renderError(field string, err error) error {
	var missing *template.MissingError
	if errors.As(err, &missing) {
		return errs.New(errs.Invalid, "%s uses <<%s>>, which has no value for this installation and user", field, missing.Name)
	}
	return errs.New(errs.Invalid, "%s cannot be rendered: %v", field, err)
}

func (tc *Client) send(ctx context.Context, cfg *oauthconfig.Config, vars Vars, refresh bool, meta LogMeta) (Token, error) {
	req, err := BuildRequest(cfg, vars, refresh, false)
	if err != nil {
		return Token{}, err
	}
	hc, err := WithCertificate(tc.http, cfg, vars.Values)
	if err != nil {
		tc.observe(cfg, meta.Kind, err)
		return Token{}, err
	}
	entry := &Entry{ConfigID: cfg.ID, InstallationID: meta.InstallationID, UserID: meta.UserID, Kind: meta.Kind, Method: req.Method}
	start := tc.now()
	tok, status, respHeader, respBody, err := tc.do(ctx, hc, cfg, req, refresh)
	tc.observe(cfg, meta.Kind, err)
	r := newRedactor(vars, tok, req.Header)
	r.Add(req.signed)
	err = redactError(err, r)
	if tc.log != nil && cfg.LogRequests {
		entry.Status = status
		entry.Duration = tc.now().Sub(start)
		if err != nil {
			entry.Error = err.Error()
		} else if len(tok.Problems) > 0 {
			entry.Error = "the tokens are stored, but: " + strings.Join(tok.Problems, "; ")
		}
		entry.URL = r.String(req.URL)
		entry.RequestHeader = r.Header(req.Header)
		entry.RequestBody = r.String(req.Body)
		entry.ResponseHeader = r.Header(respHeader)
		entry.ResponseBody = r.Body(respBody)
		// A failure to log must not fail the flow: the tokens matter more.
		tc.log.Record(context.WithoutCancel(ctx), entry)
		if meta.Recorded != nil && entry.ID != "" {
			meta.Recorded(entry.ID)
		}
	}
	return tok, err
}

// do sends r through hc, the outbound client with cfg's client
// certificate, if any.
func (tc *Client) do(ctx context.Context, hc *outbound.Client, cfg *oauthconfig.Config, r Request, refresh bool) (tok Token, status int, header http.Header, body []byte, err error) {
	hreq, err := http.NewRequestWithContext(ctx, r.Method, r.URL, strings.NewReader(r.Body))
	if err != nil {
		return Token{}, 0, nil, nil, errs.New(errs.Invalid, "token URL is not a valid URL")
	}
	hreq.Header = r.Header
	resp, err := hc.Do(hreq)
	if err != nil {
		if cfg.ClientCertSetting != "" && outbound.CertificateRefused(err) {
			return Token{}, 0, nil, nil, certificateRefused(cfg, "the token endpoint", err)
		}
		return Token{}, 0, nil, nil, sendError(err)
	}
	body, err = hc.ReadAll(resp)
	status, header = resp.StatusCode, resp.Header
	if errors.Is(err, outbound.ErrResponseTooLarge) {
		return Token{}, status, header, nil, upstream(&RetrieveError{Status: status}, "the token response is larger than the limit Latchkey reads")
	}
	if err != nil {
		return Token{}, status, header, body, sendError(err)
	}
	tok, err = parseResponse(cfg, resp, body, refresh)
	return tok, status, header, body, err
}

func upstream(re *RetrieveError, format string, args ...any) error {
	return &errs.Error{Code: errs.Upstream, Message: fmt.Sprintf(format, args...), Err: re}
}

// sendError classifies a failure to get any response. The URL is left out:
// a rendered URL may carry a value from a setting.
func sendError(err error) error {
	var blocked *outbound.BlockedError
	switch {
	case errors.As(err, &blocked):
		return &errs.Error{Code: errs.Upstream, Message: "the token URL is refused: " + blocked.Error(), Err: &RetrieveError{}}
	case outbound.IsTimeout(err):
		return &errs.Error{Code: errs.Timeout, Message: "the token endpoint did not answer in time", Err: &RetrieveError{Transient: true}}
	case errors.Is(err, outbound.ErrBadScheme), errors.Is(err, outbound.ErrUserinfo):
		return errs.New(errs.Invalid, "the token URL is refused: %v", errors.Unwrap(err))
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &errs.Error{Code: errs.Upstream, Message: "the token request failed: " + err.Error(), Err: &RetrieveError{Transient: true}}
}

// parseResponse reads a token response the way real providers send them:
// JSON, or form-encoded (RFC 6749 says JSON; GitHub's old API and others
// send a form), with errors in a 4xx or in a 200 (RFC 6749 §5.2).
func parseResponse(cfg *oauthconfig.Config, resp *http.Response, body []byte, refresh bool) (Token, error) {
	status := resp.StatusCode
	re := &RetrieveError{Status: status}
	if status >= 300 && status < 400 {
		where := "elsewhere"
		if loc, err := resp.Location(); err == nil {
			where = "to " + loc.Host
		}
		return Token{}, upstream(re, "the token endpoint answered %d, redirecting %s; token requests do not follow redirects", status, where)
	}
	if status == http.StatusTooManyRequests || status >= 500 {
		re.Transient = true
		re.RetryAfter = retryAfter(resp.Header.Get("Retry-After"))
	}
	doc, perr := decodeBody(resp.Header.Get("Content-Type"), body)
	re.body = doc
	if obj, ok := doc.(map[string]any); ok {
		if code, ok := obj["error"].(string); ok && code != "" {
			re.ErrorCode = code
			re.ErrorDescription, _ = obj["error_description"].(string)
			if len(re.ErrorDescription) > 300 {
				re.ErrorDescription = re.ErrorDescription[:300]
			}
			return Token{}, upstream(re, "the provider refused the token request: %s%s", code, describe(re.ErrorDescription))
		}
	}
	if status < 200 || status >= 300 {
		if status == http.StatusTooManyRequests {
			return Token{}, upstream(re, "the token endpoint is rate limiting (429)%s", retryText(re.RetryAfter))
		}
		return Token{}, upstream(re, "the token endpoint answered %d", status)
	}
	if perr != nil {
		return Token{}, upstream(re, "%v", perr)
	}
	return Extract(cfg, doc, refresh)
}

func describe(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func retryText(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return fmt.Sprintf("; retry after %s", d)
}

// retryAfter reads a Retry-After header in seconds or as an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// decodeBody returns the body as a JSON-like document: a JSON value, or a
// map for a form-encoded body.
func decodeBody(contentType string, body []byte) (any, error) {
	doc, err := decodeAny(contentType, body)
	if err != nil {
		return nil, err
	}
	if _, ok := doc.(map[string]any); !ok {
		return nil, fmt.Errorf("the token response is JSON but not an object")
	}
	return doc, nil
}

// decodeAny is decodeBody for answers that may be any JSON value, such as
// an identity answer that is a list (Atlassian's accessible-resources).
func decodeAny(contentType string, body []byte) (any, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "application/x-www-form-urlencoded", "text/plain":
		vals, err := url.ParseQuery(string(body))
		if err == nil && len(vals) > 0 && !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
			m := make(map[string]any, len(vals))
			for k := range vals {
				m[k] = vals.Get(k)
			}
			return m, nil
		}
	case "text/html":
		return nil, fmt.Errorf("the token endpoint answered an HTML page (text/html), not JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, fmt.Errorf("the token response is not valid JSON (at byte %d)", syn.Offset)
		}
		return nil, fmt.Errorf("the token response is not valid JSON")
	}
	if dec.More() {
		return nil, fmt.Errorf("the token response is not valid JSON (data after the first value)")
	}
	return doc, nil
}

// Extract applies the config's paths to a decoded token response. Only a
// missing access token is an error (errs.Upstream, naming the path): with
// one, the provider has issued tokens, and they must be stored whatever
// else is wrong. A malformed refresh token or expires_in, and a mapping
// that is missing (from an exchange, when it is required) or not text,
// are Problems of the token; a mapping missing from a refresh (refresh
// set) keeps the stored value.
func Extract(cfg *oauthconfig.Config, doc any, refresh bool) (Token, error) {
	re := &RetrieveError{Status: http.StatusOK}
	access, ok, err := LookupString(cfg.AccessTokenPath, doc)
	if err != nil || !ok || access == "" {
		return Token{}, upstream(re, "the token response has no access token at %s", cfg.AccessTokenPath)
	}
	tok := Token{AccessToken: access, Extra: map[string]string{}}
	problem := func(format string, args ...any) {
		tok.Problems = append(tok.Problems, fmt.Sprintf(format, args...))
	}
	if tok.RefreshToken, _, err = LookupString(cfg.RefreshTokenPath, doc); err != nil {
		problem("refresh token at %s: %v; the stored one is kept", cfg.RefreshTokenPath, err)
	}
	if v, ok, err := lookup(cfg.ExpiresInPath, doc); err != nil {
		problem("expires_in at %s: %v", cfg.ExpiresInPath, err)
	} else if ok && v != nil {
		n, err := strconv.ParseFloat(fmt.Sprint(v), 64)
		if err != nil || n < 0 || n > 1e10 {
			problem("expires_in at %s is not a number of seconds; the default lifetime is assumed", cfg.ExpiresInPath)
		} else {
			tok.ExpiresIn = int64(n)
		}
	}
	for i, m := range cfg.Mappings {
		v, ok, err := LookupString(m.Path, doc)
		switch {
		case err != nil:
			problem("mappings[%d]: %v", i, err)
		case ok:
			tok.Extra[m.Setting] = v
		case m.Required && !refresh:
			problem("mappings[%d]: the token response has no value at %s", i, m.Path)
		}
	}
	return tok, nil
}

// lookup evaluates path on doc; ok is false when nothing is there.
//
// A path may list alternatives, "$.a | $.b": the first that has a value
// wins (Slack's user token at $.authed_user.access_token or, for a bot
// install, $.access_token).
func lookup(path string, doc any) (any, bool, error) {
	for _, alt := range oauthconfig.Alternatives(path) {
		v, ok, err := lookupOne(alt, doc)
		if err != nil || ok {
			return v, ok, err
		}
	}
	return nil, false, nil
}

func lookupOne(path string, doc any) (any, bool, error) {
	eval, err := jpath.Compile(path)
	if err != nil {
		return nil, false, err
	}
	v, err := eval(context.Background(), doc)
	if err != nil {
		// PaesslerAG/jsonpath reports a missing key as an error.
		return nil, false, nil
	}
	if list, isList := v.([]any); isList {
		if len(list) == 0 {
			return nil, false, nil
		}
		v = list[0]
	}
	return v, v != nil, nil
}

// LookupString is lookup for values stored as text: strings, numbers and
// booleans; an object or array is an error.
func LookupString(path string, doc any) (string, bool, error) {
	v, ok, err := lookup(path, doc)
	if err != nil || !ok {
		return "", ok, err
	}
	switch v := v.(type) {
	case string:
		return v, true, nil
	case json.Number, bool, float64:
		return fmt.Sprint(v), true, nil
	}
	return "", false, fmt.Errorf("the value at %s is an object or array, not text", path)
}

// ExtractCode applies the config's auth code path to a callback's query
// parameters, seen as a JSON object of strings (RFC 6749 §4.1.2). A missing
// code is an errs.Upstream error naming the path.
func ExtractCode(cfg *oauthconfig.Config, query url.Values) (string, error) {
	doc := make(map[string]any, len(query))
	for k := range query {
		doc[k] = query.Get(k)
	}
	code, ok, err := LookupString(cfg.AuthCodePath, doc)
	if err != nil || !ok || code == "" {
		return "", errs.New(errs.Upstream, "the provider's redirect has no authorization code at %s", cfg.AuthCodePath)
	}
	return code, nil
}
