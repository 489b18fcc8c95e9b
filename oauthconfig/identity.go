package oauthconfig

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/outbound"
	"github.com/latchkey/latchkey/internal/redact"
	"github.com/latchkey/latchkey/internal/template"
	"github.com/latchkey/latchkey/settings"
)

// Identify sends the config's identity request with values (the settings
// and the fresh tokens) and returns the mapped values of its answer,
// setting -> value. Errors are *errs.Error: Invalid when the request cannot
// be rendered, Timeout, or Upstream naming what the answer lacked.
func (tc *TokenClient) Identify(ctx context.Context, cfg *Config, vars Vars, meta LogMeta) (map[string]string, error) {
	meta.Kind = "identity"
	render := func(field, src string, ctx template.Context) (string, error) {
		return renderField("config field "+field, field, src, ctx, vars, false)
	}
	u, err := render("identity_url", cfg.IdentityURL, template.URL)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, cfg.IdentityMethod, u, nil)
	if err != nil {
		return nil, errs.New(errs.Invalid, "identity_url is not a valid URL")
	}
	req.Header.Set("Accept", "application/json")
	for name, src := range cfg.IdentityHeaders {
		v, err := render("identity_headers."+name, src, template.Header)
		if err != nil {
			return nil, err
		}
		req.Header.Set(name, v)
	}
	start := tc.now()
	r := newRedactor(vars, Token{}, req.Header)
	status, header, body, out, err := tc.identify(cfg, req, r)
	tc.observe(cfg, meta.Kind, err)
	for setting, v := range out {
		if vars.secret(setting) {
			r.Add(v) // mapped into a secret setting: not for the log
		}
	}
	err = redactError(err, r)
	if tc.log != nil && cfg.LogRequests {
		e := &Entry{ConfigID: cfg.ID, InstallationID: meta.InstallationID, UserID: meta.UserID, Kind: meta.Kind,
			Method: req.Method, URL: r.String(u), RequestHeader: r.Header(req.Header), Status: status,
			ResponseHeader: r.Header(header), ResponseBody: r.Body(body), Duration: tc.now().Sub(start)}
		if err != nil {
			e.Error = err.Error()
		}
		tc.log.Record(context.WithoutCancel(ctx), e)
	}
	return out, err
}

func (tc *TokenClient) identify(cfg *Config, req *http.Request, r *redact.Redactor) (int, http.Header, []byte, map[string]string, error) {
	resp, err := tc.http.Do(req)
	if err != nil {
		var blocked *outbound.BlockedError
		switch {
		case errors.As(err, &blocked):
			return 0, nil, nil, nil, errs.New(errs.Upstream, "the identity URL is refused: %s", blocked.Error())
		case outbound.IsTimeout(err):
			return 0, nil, nil, nil, errs.New(errs.Timeout, "the identity request did not answer in time")
		}
		// The URL is left out: it may carry a value from a setting.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, nil, nil, errs.New(errs.Upstream, "the identity request failed: %v", err)
	}
	body, err := tc.http.ReadAll(resp)
	if err != nil {
		return resp.StatusCode, resp.Header, nil, nil, errs.Wrap(errs.Upstream, err, "the identity response cannot be read")
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, resp.Header, body, nil, errs.New(errs.Upstream, "the identity request was answered %d%s", resp.StatusCode, excerpt(r, body))
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	doc, err := decodeBody(mt, body)
	if err != nil {
		return resp.StatusCode, resp.Header, body, nil, errs.New(errs.Upstream, "the identity response is not JSON: %v", err)
	}
	out := make(map[string]string, len(cfg.IdentityMappings))
	for i, m := range cfg.IdentityMappings {
		v, ok, err := lookupString(m.Path, doc)
		if err != nil || !ok {
			return resp.StatusCode, resp.Header, body, nil, errs.New(errs.Upstream, "identity_mappings[%d]: the identity response has no value at %s", i, m.Path)
		}
		out[m.Setting] = v
	}
	return resp.StatusCode, resp.Header, body, out, nil
}

// excerpt is the start of a provider's answer for an error message, with
// secrets removed: enough to tell "token revoked" from "wrong URL".
func excerpt(r *redact.Redactor, body []byte) string {
	s := strings.Join(strings.Fields(r.Body(body)), " ")
	if s == "" {
		return ""
	}
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return ": " + s
}

// Connector completes a connection after a code exchange: it stores the
// tokens first (a token the provider issued is never dropped), then runs
// the config's identity request, if any, and stores what it maps. If the
// identity request fails, the connection records why and the caller gets
// the error; the tokens stay stored.
type Connector struct {
	tokens      *TokenClient
	conns       *Connections
	settings    *settings.Store
	redirectURI string
}

// NewConnector returns a Connector.
func NewConnector(tokens *TokenClient, conns *Connections, s *settings.Store, redirectURI string) *Connector {
	return &Connector{tokens: tokens, conns: conns, settings: s, redirectURI: redirectURI}
}

// Save stores a connection's tokens and identifies it; errors as
// Connections.Save and Identify.
func (cn *Connector) Save(ctx context.Context, inst settings.Installation, userID string, cfg *Config, tok Token) error {
	saveErr := cn.conns.Save(ctx, inst, userID, cfg, tok)
	if saveErr != nil && !errs.Is(saveErr, errs.Upstream) {
		return saveErr // not stored
	}
	if cfg.IdentityURL == "" {
		return saveErr
	}
	extra, err := cn.identify(ctx, inst, userID, cfg, tok)
	if err == nil {
		err = cn.conns.SaveValues(ctx, inst, userID, cfg, extra)
	}
	if err != nil {
		reason := "the tokens are stored, but the identity request failed: " + errs.MessageOf(err)
		if ferr := cn.conns.Fail(ctx, inst, userID, cfg, reason, "", false); ferr != nil {
			return ferr
		}
		return err
	}
	return saveErr
}

// identify runs the identity request with the installation's settings and
// tok in place of the stored tokens.
func (cn *Connector) identify(ctx context.Context, inst settings.Installation, userID string, cfg *Config, tok Token) (map[string]string, error) {
	r, err := cn.settings.Resolve(ctx, inst, userID)
	if err != nil {
		return nil, err
	}
	values := make(map[string]string, len(r.Values)+len(tok.Extra)+2)
	for k, v := range r.Values {
		values[k] = v
	}
	for k, v := range tok.Extra {
		values[k] = v
	}
	values[cfg.AccessTokenSetting] = tok.AccessToken
	if cfg.RefreshTokenSetting != "" && tok.RefreshToken != "" {
		values[cfg.RefreshTokenSetting] = tok.RefreshToken
	}
	vars := FlowValues(cfg, values, r.Secret, cn.redirectURI, nil)
	return cn.tokens.Identify(ctx, cfg, vars, LogMeta{InstallationID: inst.ID, UserID: cfg.Owner(userID)})
}

// installationConfig finds the :installation and :config of a request, both
// of the caller's account.
func (h *Caller) installationConfig(c echo.Context) (settings.Installation, Config, error) {
	id, err := httpapi.Param(c, "installation")
	if err != nil {
		return settings.Installation{}, Config{}, err
	}
	inst, a, err := callersInstallation(c, h.settings, h.apps, id)
	if err != nil {
		return settings.Installation{}, Config{}, err
	}
	cid, err := httpapi.Param(c, "config")
	if err != nil {
		return settings.Installation{}, Config{}, err
	}
	cfg, err := h.configs.Find(c.Request().Context(), a.ID, cid)
	return inst, cfg, err
}

// checkOwner checks a request's user_id against the config's token level.
func checkOwner(cfg *Config, userID string) error {
	if cfg.TokenLevel == settings.User {
		if fe := settings.CheckID("user_id", userID); fe != nil {
			return errs.Fields{{Field: "user_id", Message: "is required: this config keeps a token per end user"}}.Err()
		}
	} else if userID != "" {
		return errs.Fields{{Field: "user_id", Message: "must be empty: this config keeps one token for the installation"}}.Err()
	}
	return nil
}

type codeRequest struct {
	Code   string `json:"code"`
	UserID string `json:"user_id"`
}

// exchangeCode trades an authorization code that someone pasted (from a
// provider's console, a "self client") exactly as the callback would: the
// same token request, extraction, identity request and storage.
func (h *Caller) exchangeCode(c echo.Context) error {
	ctx := c.Request().Context()
	var req codeRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	inst, cfg, err := h.installationConfig(c)
	if err != nil {
		return err
	}
	if cfg.GrantType != AuthorizationCode {
		return errs.New(errs.Invalid, "OAuth config %q uses the %s grant, which has no authorization code; fetch a token instead", cfg.Name, cfg.GrantType)
	}
	if err := checkOwner(&cfg, req.UserID); err != nil {
		return err
	}
	req.Code = strings.TrimSpace(req.Code)
	if req.Code == "" || len(req.Code) > 4096 {
		return errs.Fields{{Field: "code", Message: "must be 1 to 4096 characters"}}.Err()
	}
	r, err := h.settings.Resolve(ctx, inst, req.UserID)
	if err != nil {
		return err
	}
	// No PKCE verifier: a pasted code was not asked for with a challenge.
	vars := FlowValues(&cfg, r.Values, r.Secret, h.connector.redirectURI, map[string]string{"auth_code": req.Code})
	tok, err := h.connector.tokens.Exchange(ctx, &cfg, vars, LogMeta{InstallationID: inst.ID, UserID: cfg.Owner(req.UserID)})
	if err != nil {
		if errs.Is(err, errs.Invalid) && strings.Contains(err.Error(), "<<code_verifier>>") {
			return errs.New(errs.Invalid, "the token body of OAuth config %q uses <<code_verifier>>, and a pasted code has none: set pkce to \"off\" or use a token_body without it", cfg.Name)
		}
		return err
	}
	if err := h.connector.Save(ctx, inst, req.UserID, &cfg, tok); err != nil {
		return err
	}
	conn, extracted, err := h.report(ctx, inst, req.UserID, &cfg)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, fetchResponse{Connection: toConnectionResponse(conn), Extracted: extracted})
}

type checkRequest struct {
	UserID string `json:"user_id"`
}

type checkResponse struct {
	Connection connectionResponse `json:"connection"`
	Identity   map[string]string  `json:"identity"` // setting -> value, secret ones masked
}

// checkConnection checks a connection now (see Check).
func (h *Caller) checkConnection(c echo.Context) error {
	var req checkRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	inst, cfg, err := h.installationConfig(c)
	if err != nil {
		return err
	}
	conn, identity, err := h.Check(c.Request().Context(), inst, &cfg, req.UserID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, checkResponse{Connection: toConnectionResponse(conn), Identity: identity})
}

// Check runs the config's identity request now with the stored (fresh)
// token and stores what it maps: "is this connection still good?". It
// returns the connection and the mapped values (setting -> value, secret
// ones masked). A failed check is recorded on the connection. Errors are
// *errs.Error: Invalid for a config without an identity request or a user
// id that does not fit the config's token level, and those of
// Refresher.Fresh and TokenClient.Identify.
func (h *Caller) Check(ctx context.Context, inst settings.Installation, cfg *Config, userID string) (Connection, map[string]string, error) {
	if cfg.IdentityURL == "" {
		return Connection{}, nil, errs.New(errs.Invalid, "OAuth config %q has no identity request (identity_url) to check with", cfg.Name)
	}
	if err := checkOwner(cfg, userID); err != nil {
		return Connection{}, nil, err
	}
	r, err := h.refresher.Fresh(ctx, inst, userID, cfg)
	if err != nil {
		return Connection{}, nil, err
	}
	vars := FlowValues(cfg, r.Values, r.Secret, h.connector.redirectURI, nil)
	got, err := h.connector.tokens.Identify(ctx, cfg, vars, LogMeta{InstallationID: inst.ID, UserID: cfg.Owner(userID)})
	if err != nil {
		if ferr := h.connector.conns.Fail(ctx, inst, userID, cfg, "the identity request failed: "+errs.MessageOf(err), "", false); ferr != nil {
			return Connection{}, nil, ferr
		}
		return Connection{}, nil, err
	}
	if err := h.connector.conns.SaveValues(ctx, inst, userID, cfg, got); err != nil {
		return Connection{}, nil, err
	}
	conn, err := h.connector.conns.Get(ctx, inst.ID, cfg.Owner(userID), cfg.ID)
	if err != nil {
		return Connection{}, nil, err
	}
	identity := map[string]string{}
	for k, v := range got {
		if r.Secret[k] {
			v = Mask(v)
		}
		identity[k] = v
	}
	return conn, identity, nil
}

// report returns a connection's state and the values stored for it,
// masked (setting -> value).
func (h *Caller) report(ctx context.Context, inst settings.Installation, userID string, cfg *Config) (Connection, map[string]string, error) {
	conn, err := h.connector.conns.Get(ctx, inst.ID, cfg.Owner(userID), cfg.ID)
	if err != nil {
		return Connection{}, nil, err
	}
	r, err := h.settings.Resolve(ctx, inst, userID)
	if err != nil {
		return Connection{}, nil, err
	}
	extracted := map[string]string{}
	keys := []string{cfg.AccessTokenSetting, cfg.RefreshTokenSetting}
	for _, m := range append(append([]Mapping{}, cfg.Mappings...), cfg.IdentityMappings...) {
		keys = append(keys, m.Setting)
	}
	for _, k := range keys {
		if k != "" {
			extracted[k] = Mask(r.Values[k])
		}
	}
	return conn, extracted, nil
}
