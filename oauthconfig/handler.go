package oauthconfig

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/template"
	"github.com/latchkey/latchkey/settings"
)

// appFinder finds the caller's apps.
type appFinder interface {
	Find(ctx context.Context, accountID, ref string) (app.App, error)
}

// settingsReader reads what templates need.
type settingsReader interface {
	Definitions(ctx context.Context, appID string, level settings.Level) ([]settings.Definition, error)
	Installation(ctx context.Context, id string) (settings.Installation, error)
	Resolve(ctx context.Context, inst settings.Installation, userID string) (settings.Resolved, error)
}

var (
	_ appFinder      = (*app.Store)(nil)
	_ settingsReader = (*settings.Store)(nil)
)

// Handler serves OAuth configs, their request logs, explanations and
// connection states.
type Handler struct {
	store       *Store
	apps        appFinder
	settings    settingsReader
	log         *RequestLog
	connections *Connections
	redirectURI string
}

// NewHandler returns a Handler; redirectURI is Latchkey's callback URL,
// which developers register at their providers.
func NewHandler(store *Store, apps appFinder, s settingsReader, log *RequestLog, conns *Connections, redirectURI string) *Handler {
	return &Handler{store: store, apps: apps, settings: s, log: log, connections: conns, redirectURI: redirectURI}
}

// Register adds the routes to g, which must be behind app.RequireKey.
func (h *Handler) Register(g *echo.Group) {
	g.GET("/apps/:app/oauth-configs", h.list)
	g.POST("/apps/:app/oauth-configs", h.create)
	g.GET("/apps/:app/oauth-configs/:config", h.get)
	g.PATCH("/apps/:app/oauth-configs/:config", h.update)
	g.DELETE("/apps/:app/oauth-configs/:config", h.delete)
	g.GET("/apps/:app/oauth-configs/:config/requests", h.configRequests)
	g.POST("/apps/:app/oauth-configs/:config/explain", h.explain)
	g.POST("/apps/:app/oauth-configs/:config/test-extraction", h.testExtraction)
	g.GET("/installations/:installation/oauth-requests", h.installationRequests)
	g.GET("/installations/:installation/connections", h.listConnections)
	g.DELETE("/installations/:installation/connections/:config", h.removeConnection)
}

// configRequest is the body of create and update; in an update, absent
// fields keep their value and empty strings get the default again.
type configRequest struct {
	Name                *string            `json:"name"`
	Description         *string            `json:"description"`
	RedirectURI         *string            `json:"redirect_uri"`
	GrantType           *GrantType         `json:"grant_type"`
	LinkURL             *string            `json:"link_url"`
	TokenURL            *string            `json:"token_url"`
	RefreshURL          *string            `json:"refresh_url"`
	TokenBody           *string            `json:"token_body"`
	RefreshBody         *string            `json:"refresh_body"`
	BodyFormat          *BodyFormat        `json:"body_format"`
	Headers             *map[string]string `json:"headers"`
	ClientAuth          *ClientAuth        `json:"client_auth"`
	AuthCodePath        *string            `json:"auth_code_path"`
	AccessTokenPath     *string            `json:"access_token_path"`
	RefreshTokenPath    *string            `json:"refresh_token_path"`
	ExpiresInPath       *string            `json:"expires_in_path"`
	Mappings            *[]Mapping         `json:"mappings"`
	AccessTokenSetting  *string            `json:"access_token_setting"`
	RefreshTokenSetting *string            `json:"refresh_token_setting"`
	Scopes              *[]string          `json:"scopes"`
	ScopeSeparator      *string            `json:"scope_separator"`
	PKCE                *string            `json:"pkce"`
	LogoURL             *string            `json:"logo_url"`
	LogRequests         *bool              `json:"log_requests"`
	RefreshMargin       *int               `json:"refresh_margin_seconds"`
	DefaultExpiresIn    *int               `json:"default_expires_in"`
	ExpiredStatuses     *[]int             `json:"expired_statuses"`
	ExpiredBodyPath     *string            `json:"expired_body_path"`
	ExpiredBodyValue    *string            `json:"expired_body_value"`
	GrantGoneErrors     *[]string          `json:"grant_gone_errors"`
	GrantGoneBodyPath   *string            `json:"grant_gone_body_path"`
	GrantGoneBodyValue  *string            `json:"grant_gone_body_value"`
	KeepAlive           *int               `json:"keepalive_seconds"`
	IdentityURL         *string            `json:"identity_url"`
	IdentityMethod      *string            `json:"identity_method"`
	IdentityHeaders     *map[string]string `json:"identity_headers"`
	IdentityMappings    *[]Mapping         `json:"identity_mappings"`
}

func (r *configRequest) apply(c *Config) {
	set(&c.Name, r.Name)
	set(&c.Description, r.Description)
	set(&c.RedirectURI, r.RedirectURI)
	set(&c.GrantType, r.GrantType)
	set(&c.LinkURL, r.LinkURL)
	set(&c.TokenURL, r.TokenURL)
	set(&c.RefreshURL, r.RefreshURL)
	set(&c.TokenBody, r.TokenBody)
	set(&c.RefreshBody, r.RefreshBody)
	set(&c.BodyFormat, r.BodyFormat)
	set(&c.Headers, r.Headers)
	set(&c.ClientAuth, r.ClientAuth)
	set(&c.AuthCodePath, r.AuthCodePath)
	set(&c.AccessTokenPath, r.AccessTokenPath)
	set(&c.RefreshTokenPath, r.RefreshTokenPath)
	set(&c.ExpiresInPath, r.ExpiresInPath)
	set(&c.Mappings, r.Mappings)
	set(&c.AccessTokenSetting, r.AccessTokenSetting)
	set(&c.RefreshTokenSetting, r.RefreshTokenSetting)
	set(&c.Scopes, r.Scopes)
	set(&c.ScopeSeparator, r.ScopeSeparator)
	set(&c.PKCE, r.PKCE)
	set(&c.LogoURL, r.LogoURL)
	set(&c.LogRequests, r.LogRequests)
	set(&c.RefreshMargin, r.RefreshMargin)
	set(&c.DefaultExpiresIn, r.DefaultExpiresIn)
	set(&c.ExpiredStatuses, r.ExpiredStatuses)
	set(&c.ExpiredBodyPath, r.ExpiredBodyPath)
	set(&c.ExpiredBodyValue, r.ExpiredBodyValue)
	set(&c.GrantGoneErrors, r.GrantGoneErrors)
	set(&c.GrantGoneBodyPath, r.GrantGoneBodyPath)
	set(&c.GrantGoneBodyValue, r.GrantGoneBodyValue)
	set(&c.KeepAlive, r.KeepAlive)
	set(&c.IdentityURL, r.IdentityURL)
	set(&c.IdentityMethod, r.IdentityMethod)
	set(&c.IdentityHeaders, r.IdentityHeaders)
	set(&c.IdentityMappings, r.IdentityMappings)
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

type configResponse struct {
	ID                  string            `json:"id"`
	AppID               string            `json:"app_id"`
	Name                string            `json:"name"`
	Description         string            `json:"description"`
	GrantType           GrantType         `json:"grant_type"`
	LinkURL             string            `json:"link_url"`
	TokenURL            string            `json:"token_url"`
	RefreshURL          string            `json:"refresh_url"`
	TokenBody           string            `json:"token_body"`
	RefreshBody         string            `json:"refresh_body"`
	BodyFormat          BodyFormat        `json:"body_format"`
	Headers             map[string]string `json:"headers"`
	ClientAuth          ClientAuth        `json:"client_auth"`
	AuthCodePath        string            `json:"auth_code_path"`
	AccessTokenPath     string            `json:"access_token_path"`
	RefreshTokenPath    string            `json:"refresh_token_path"`
	ExpiresInPath       string            `json:"expires_in_path"`
	Mappings            []Mapping         `json:"mappings"`
	AccessTokenSetting  string            `json:"access_token_setting"`
	RefreshTokenSetting string            `json:"refresh_token_setting"`
	Scopes              []string          `json:"scopes"`
	ScopeSeparator      string            `json:"scope_separator"`
	PKCE                string            `json:"pkce"`
	LogoURL             string            `json:"logo_url"`
	LogRequests         bool              `json:"log_requests"`
	TokenLevel          settings.Level    `json:"token_level"`
	RefreshMargin       int               `json:"refresh_margin_seconds"`
	DefaultExpiresIn    int               `json:"default_expires_in"`
	ExpiredStatuses     []int             `json:"expired_statuses"`
	ExpiredBodyPath     string            `json:"expired_body_path"`
	ExpiredBodyValue    string            `json:"expired_body_value"`
	GrantGoneErrors     []string          `json:"grant_gone_errors"`
	GrantGoneBodyPath   string            `json:"grant_gone_body_path"`
	GrantGoneBodyValue  string            `json:"grant_gone_body_value"`
	KeepAlive           int               `json:"keepalive_seconds"`
	IdentityURL         string            `json:"identity_url"`
	IdentityMethod      string            `json:"identity_method"`
	IdentityHeaders     map[string]string `json:"identity_headers"`
	IdentityMappings    []Mapping         `json:"identity_mappings"`
	RedirectURI         string            `json:"redirect_uri"`
	CallbackURL         string            `json:"callback_url"`
	CreatedAt           time.Time         `json:"created_at"`
	UpdatedAt           time.Time         `json:"updated_at"`
}

func (h *Handler) toResponse(c Config) configResponse {
	out := configResponse{
		ID: c.ID, AppID: c.AppID, Name: c.Name, GrantType: c.GrantType,
		LinkURL: c.LinkURL, TokenURL: c.TokenURL, RefreshURL: c.RefreshURL,
		TokenBody: c.Body(false), RefreshBody: c.Body(true), BodyFormat: c.BodyFormat,
		Headers: c.Headers, ClientAuth: c.ClientAuth,
		AuthCodePath: c.AuthCodePath, AccessTokenPath: c.AccessTokenPath,
		RefreshTokenPath: c.RefreshTokenPath, ExpiresInPath: c.ExpiresInPath,
		Mappings: c.Mappings, AccessTokenSetting: c.AccessTokenSetting,
		RefreshTokenSetting: c.RefreshTokenSetting, Scopes: c.Scopes,
		ScopeSeparator: c.ScopeSeparator, PKCE: c.PKCE, LogoURL: c.LogoURL,
		LogRequests: c.LogRequests, TokenLevel: c.TokenLevel,
		RefreshMargin: c.RefreshMargin, DefaultExpiresIn: c.DefaultExpiresIn,
		ExpiredStatuses: c.ExpiredStatuses, ExpiredBodyPath: c.ExpiredBodyPath,
		ExpiredBodyValue: c.ExpiredBodyValue, KeepAlive: c.KeepAlive,
		GrantGoneErrors: c.GrantGoneErrors, GrantGoneBodyPath: c.GrantGoneBodyPath, GrantGoneBodyValue: c.GrantGoneBodyValue,
		IdentityURL: c.IdentityURL, IdentityMethod: c.IdentityMethod,
		IdentityHeaders: c.IdentityHeaders, IdentityMappings: c.IdentityMappings, RedirectURI: h.redirectURI, CallbackURL: h.redirectURI,
		Description: c.Description,
		CreatedAt:   c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
	if c.RedirectURI != "" {
		out.RedirectURI = c.RedirectURI // what to register at the provider
	}
	return out
}

func (h *Handler) findApp(c echo.Context) (app.App, error) {
	ref, err := httpapi.Param(c, "app")
	if err != nil {
		return app.App{}, err
	}
	return h.apps.Find(c.Request().Context(), app.AccountID(c), ref)
}

func (h *Handler) findConfig(c echo.Context) (app.App, Config, error) {
	a, err := h.findApp(c)
	if err != nil {
		return app.App{}, Config{}, err
	}
	id, err := httpapi.Param(c, "config")
	if err != nil {
		return app.App{}, Config{}, err
	}
	cfg, err := h.store.Find(c.Request().Context(), a.ID, id)
	return a, cfg, err
}

func (h *Handler) list(c echo.Context) error {
	a, err := h.findApp(c)
	if err != nil {
		return err
	}
	cfgs, err := h.store.List(c.Request().Context(), a.ID)
	if err != nil {
		return err
	}
	out := make([]configResponse, len(cfgs))
	for i, cfg := range cfgs {
		out[i] = h.toResponse(cfg)
	}
	return c.JSON(http.StatusOK, map[string]any{"oauth_configs": out})
}

func (h *Handler) create(c echo.Context) error {
	a, err := h.findApp(c)
	if err != nil {
		return err
	}
	var req configRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	defs, err := h.settings.Definitions(ctx, a.ID, "")
	if err != nil {
		return err
	}
	cfg := Config{AppID: a.ID}
	req.apply(&cfg)
	if err := h.store.Create(ctx, &cfg, defs); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, h.toResponse(cfg))
}

func (h *Handler) get(c echo.Context) error {
	_, cfg, err := h.findConfig(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h.toResponse(cfg))
}

func (h *Handler) update(c echo.Context) error {
	a, cfg, err := h.findConfig(c)
	if err != nil {
		return err
	}
	var req configRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	defs, err := h.settings.Definitions(ctx, a.ID, "")
	if err != nil {
		return err
	}
	req.apply(&cfg)
	if err := h.store.Update(ctx, &cfg, defs); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h.toResponse(cfg))
}

func (h *Handler) delete(c echo.Context) error {
	a, cfg, err := h.findConfig(c)
	if err != nil {
		return err
	}
	if err := h.store.Delete(c.Request().Context(), a.ID, cfg.ID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type entryResponse struct {
	ID              string            `json:"id"`
	ConfigID        string            `json:"config_id"`
	InstallationID  string            `json:"installation_id"`
	UserID          string            `json:"user_id"`
	Kind            string            `json:"kind"`
	Method          string            `json:"method"`
	URL             string            `json:"url"`
	RequestHeaders  map[string]string `json:"request_headers"`
	RequestBody     string            `json:"request_body"`
	Status          int               `json:"status"`
	ResponseHeaders map[string]string `json:"response_headers"`
	ResponseBody    string            `json:"response_body"`
	Error           string            `json:"error"`
	DurationMS      int64             `json:"duration_ms"`
	CreatedAt       time.Time         `json:"created_at"`
}

func toEntryResponses(es []Entry) []entryResponse {
	out := make([]entryResponse, len(es))
	for i, e := range es {
		out[i] = entryResponse{
			ID: e.ID, ConfigID: e.ConfigID, InstallationID: e.InstallationID, UserID: e.UserID,
			Kind: e.Kind, Method: e.Method, URL: e.URL,
			RequestHeaders: e.RequestHeader, RequestBody: e.RequestBody,
			Status: e.Status, ResponseHeaders: e.ResponseHeader, ResponseBody: e.ResponseBody,
			Error: e.Error, DurationMS: e.DurationMS, CreatedAt: e.CreatedAt,
		}
	}
	return out
}

func (h *Handler) configRequests(c echo.Context) error {
	_, cfg, err := h.findConfig(c)
	if err != nil {
		return err
	}
	es, err := h.log.List(c.Request().Context(), LogFilter{ConfigID: cfg.ID, ID: c.QueryParam("id")})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"requests": toEntryResponses(es)})
}

// findInstallation returns the installation id if its app is the caller's.
func (h *Handler) findInstallation(c echo.Context, id string) (settings.Installation, error) {
	inst, _, err := callersInstallation(c, h.settings, h.apps, id)
	return inst, err
}

// callersInstallation returns installation id and its app, if the app is
// the caller's; another account's installation is not found.
func callersInstallation(c echo.Context, s interface {
	Installation(ctx context.Context, id string) (settings.Installation, error)
}, apps appFinder, id string) (settings.Installation, app.App, error) {
	ctx := c.Request().Context()
	inst, err := s.Installation(ctx, id)
	if err != nil {
		return settings.Installation{}, app.App{}, err
	}
	a, err := apps.Find(ctx, app.AccountID(c), inst.AppID)
	if errs.Is(err, errs.NotFound) {
		return settings.Installation{}, app.App{}, errs.NotFoundf("installation %q not found", id)
	}
	return inst, a, err
}

func (h *Handler) installationRequests(c echo.Context) error {
	id, err := httpapi.Param(c, "installation")
	if err != nil {
		return err
	}
	inst, err := h.findInstallation(c, id)
	if err != nil {
		return err
	}
	// ?id= finds one entry: the reference a connect result page shows.
	es, err := h.log.List(c.Request().Context(), LogFilter{InstallationID: inst.ID, ID: c.QueryParam("id")})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"requests": toEntryResponses(es)})
}

type connectionResponse struct {
	UserID      string     `json:"user_id"`
	ConfigID    string     `json:"config_id"`
	Status      string     `json:"status"`
	ExpiresAt   *time.Time `json:"expires_at"`
	IssuedAt    *time.Time `json:"issued_at"`
	ConnectedAt time.Time  `json:"connected_at"`
	RefreshedAt *time.Time `json:"refreshed_at"`
	LastError   string     `json:"last_error"`
	LastErrorAt *time.Time `json:"last_error_at"`
	EndedBy     string     `json:"ended_by"`
	Refusals    int        `json:"refusals"`
}

func toConnectionResponse(cn Connection) connectionResponse {
	return connectionResponse{UserID: cn.UserID, ConfigID: cn.ConfigID, Status: cn.Status,
		ExpiresAt: cn.ExpiresAt, IssuedAt: cn.IssuedAt, ConnectedAt: cn.ConnectedAt, RefreshedAt: cn.RefreshedAt,
		LastError: cn.LastError, LastErrorAt: cn.LastErrorAt, EndedBy: cn.EndedBy, Refusals: cn.Refusals}
}

// removeConnection disconnects a user (user_id in the query; none for a
// config with organization-level tokens) from a config.
func (h *Handler) removeConnection(c echo.Context) error {
	id, err := httpapi.Param(c, "installation")
	if err != nil {
		return err
	}
	inst, err := h.findInstallation(c, id)
	if err != nil {
		return err
	}
	ref, err := httpapi.Param(c, "config")
	if err != nil {
		return err
	}
	cfg, err := h.store.Find(c.Request().Context(), inst.AppID, ref)
	if err != nil {
		return err
	}
	user := c.QueryParam("user_id")
	if err := checkOwner(&cfg, user); err != nil {
		return err
	}
	if err := h.connections.Remove(c.Request().Context(), inst, cfg.Owner(user), &cfg); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (h *Handler) listConnections(c echo.Context) error {
	id, err := httpapi.Param(c, "installation")
	if err != nil {
		return err
	}
	inst, err := h.findInstallation(c, id)
	if err != nil {
		return err
	}
	conns, err := h.connections.List(c.Request().Context(), inst.ID, c.QueryParam("user_id"))
	if err != nil {
		return err
	}
	out := make([]connectionResponse, len(conns))
	for i, cn := range conns {
		out[i] = toConnectionResponse(cn)
	}
	return c.JSON(http.StatusOK, map[string]any{"connections": out})
}

type explainRequest struct {
	InstallationID string `json:"installation_id"`
	UserID         string `json:"user_id"`
}

// ExplainedVariable is one variable of an explanation: where its value
// comes from (organization, user, default, flow or missing) and, unless
// it is secret, the value.
type ExplainedVariable struct {
	Name   string `json:"name"`
	Source string `json:"source"` // organization, user, default, flow or missing
	Secret bool   `json:"secret"`
	Value  string `json:"value,omitempty"`
}

type requestResponse struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// Explanation is what a config's link and token requests would be for one
// installation and user, secrets masked.
type Explanation struct {
	Variables      []ExplainedVariable
	LinkURL        string   // "" when it cannot be rendered (see Problems)
	TokenRequest   *Request // nil when it cannot be rendered
	RefreshRequest *Request // nil when it cannot be rendered
	Problems       []string // why a part cannot be rendered, safe to show
}

// Explain renders cfg's link and token and refresh requests with an
// installation's and user's settings (resolved) as a developer checks
// them: secrets masked, each variable with its source. Flow values that
// exist only during a real flow (the state, the code) show as
// placeholders. What cannot be rendered is a problem, not an error.
func Explain(cfg *Config, defs []settings.Definition, resolved settings.Resolved, redirectURI string) Explanation {
	flow := map[string]string{
		"state": "STATE", "code_challenge": "CODE_CHALLENGE", "auth_code": "AUTH_CODE",
		"code_verifier": "CODE_VERIFIER", "refresh_token": "REFRESH_TOKEN",
	}
	vars := FlowValues(cfg, resolved.Values, resolved.Secret, redirectURI, flow)
	out := Explanation{Variables: explainVariables(cfg, defs, resolved, vars), Problems: []string{}}
	if link, err := BuildLink(cfg, vars, true); err != nil {
		out.Problems = append(out.Problems, err.Error())
	} else {
		out.LinkURL = link
	}
	for _, refresh := range []bool{false, true} {
		if refresh && !cfg.usesRefresh() {
			continue // a refresh request that is never sent has nothing to explain
		}
		r, err := BuildRequest(cfg, vars, refresh, true)
		switch {
		case err != nil:
			out.Problems = append(out.Problems, err.Error())
		case refresh:
			out.RefreshRequest = &r
		default:
			out.TokenRequest = &r
		}
	}
	return out
}

// explain shows a developer what the link and the token request would be
// for an installation and user (see Explain).
func (h *Handler) explain(c echo.Context) error {
	a, cfg, err := h.findConfig(c)
	if err != nil {
		return err
	}
	var req explainRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	inst, err := h.findInstallation(c, req.InstallationID)
	if err != nil {
		return err
	}
	if inst.AppID != a.ID {
		return errs.Fields{{Field: "installation_id", Message: "is an installation of another app"}}.Err()
	}
	resolved, err := h.settings.Resolve(ctx, inst, req.UserID)
	if err != nil {
		return err
	}
	defs, err := h.settings.Definitions(ctx, a.ID, "")
	if err != nil {
		return err
	}
	ex := Explain(&cfg, defs, resolved, h.redirectURI)
	out := map[string]any{"variables": ex.Variables, "problems": ex.Problems}
	if ex.LinkURL != "" {
		out["link_url"] = ex.LinkURL
	}
	for key, r := range map[string]*Request{"token_request": ex.TokenRequest, "refresh_request": ex.RefreshRequest} {
		if r == nil {
			continue
		}
		hdr := map[string]string{}
		for k := range r.Header {
			hdr[k] = r.Header.Get(k)
		}
		out[key] = requestResponse{Method: r.Method, URL: r.URL, Headers: hdr, Body: r.Body}
	}
	return c.JSON(http.StatusOK, out)
}

func explainVariables(cfg *Config, defs []settings.Definition, resolved settings.Resolved, vars Vars) []ExplainedVariable {
	used := map[string]bool{}
	srcs := []string{cfg.LinkURL, cfg.TokenURL, cfg.Body(false)}
	if cfg.usesRefresh() {
		srcs = append(srcs, cfg.refreshURL(), cfg.Body(true))
	}
	for _, v := range cfg.Headers {
		srcs = append(srcs, v)
	}
	for _, src := range srcs {
		if t, err := template.Parse(src, template.Text); err == nil {
			for _, n := range t.Vars() {
				used[n] = true
			}
		}
	}
	if cfg.ClientAuth == AuthBasic {
		used["client_id"], used["client_secret"] = true, true
	}
	byKey := map[string]settings.Definition{}
	for _, d := range defs {
		byKey[d.Key] = d
	}
	var out []ExplainedVariable
	for name := range used {
		v := ExplainedVariable{Name: name, Source: "missing", Secret: vars.secret(name)}
		if d, ok := byKey[name]; ok {
			if _, has := resolved.Values[name]; has {
				v.Source = string(d.Level)
				if d.DefaultValue != nil && resolved.Values[name] == *d.DefaultValue {
					v.Source = "default"
				}
			}
		} else if _, has := vars.Values[name]; has {
			v.Source = "flow"
		}
		if !v.Secret && v.Source != "missing" {
			v.Value = vars.Values[name]
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

type extractionRequest struct {
	Response      json.RawMessage   `json:"response"`
	CallbackQuery map[string]string `json:"callback_query"`
}

// testExtraction applies the config's paths to a sample token response
// (and a sample callback query) so a developer can check them before any
// user connects. Extracted tokens are masked.
func (h *Handler) testExtraction(c echo.Context) error {
	_, cfg, err := h.findConfig(c)
	if err != nil {
		return err
	}
	var req extractionRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	out := map[string]any{}
	if req.CallbackQuery != nil {
		q := url.Values{}
		for k, v := range req.CallbackQuery {
			q.Set(k, v)
		}
		code, err := ExtractCode(&cfg, q)
		if err != nil {
			return err
		}
		out["auth_code"] = Mask(code)
	}
	if len(req.Response) > 0 {
		body := []byte(req.Response)
		var s string
		if json.Unmarshal(req.Response, &s) == nil {
			body = []byte(s) // a response given as a string: JSON or form text
		}
		x, err := TryExtraction(&cfg, body)
		if err != nil {
			return err
		}
		out["problems"] = x.Problems
		out["access_token"] = x.AccessToken
		out["refresh_token"] = x.RefreshToken
		out["expires_in"] = x.ExpiresIn
		out["extra"] = x.Extra
	}
	if len(out) == 0 {
		return errs.Fields{{Field: "response", Message: "give a sample response, a callback_query, or both"}}.Err()
	}
	return c.JSON(http.StatusOK, out)
}

// Extraction is what a config's paths find in a sample token response:
// the tokens masked, the lifetime, the mapped values, and the problems a
// real answer like it would be reported with.
type Extraction struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    int64
	Extra        map[string]string // setting -> value
	Problems     []string
}

// TryExtraction applies cfg's paths to body, a sample token response as
// JSON or form text, as a real answer would be read. It returns an
// errs.Invalid naming the field "response" when body cannot be read or
// has no access token.
func TryExtraction(cfg *Config, body []byte) (Extraction, error) {
	doc, err := decodeBody("application/json", body)
	if err != nil {
		if formDoc, ferr := decodeBody("application/x-www-form-urlencoded", body); ferr == nil {
			doc, err = formDoc, nil
		}
	}
	if err != nil {
		return Extraction{}, errs.Fields{{Field: "response", Message: err.Error()}}.Err()
	}
	tok, err := Extract(cfg, doc, false)
	if err != nil {
		return Extraction{}, errs.Fields{{Field: "response", Message: err.Error()}}.Err()
	}
	problems := append([]string{}, tok.Problems...)
	for i, m := range cfg.Mappings {
		if _, ok := tok.Extra[m.Setting]; !ok && !m.Required {
			problems = append(problems, fmt.Sprintf("mappings[%d]: the response has no value at %s; the stored value would be kept", i, m.Path))
		}
	}
	return Extraction{AccessToken: Mask(tok.AccessToken), RefreshToken: Mask(tok.RefreshToken),
		ExpiresIn: tok.ExpiresIn, Extra: tok.Extra, Problems: problems}, nil
}

// Mask shows enough of a token to recognise it and no more.
func Mask(s string) string {
	switch {
	case s == "":
		return ""
	case len(s) <= 8:
		return "****"
	}
	return s[:4] + "****" + " (" + itoa(len(s)) + " characters)"
}

func itoa(n int) string { return strconv.Itoa(n) }
