package oauthconfig

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/settings"
)

// AppFinder finds the caller's apps; app.Store is one.
type AppFinder interface {
	Find(ctx context.Context, accountID, ref string) (app.App, error)
}

// settingsReader reads what templates need.
type settingsReader interface {
	Definitions(ctx context.Context, appID string, level settings.Level) ([]settings.Definition, error)
	Installation(ctx context.Context, id string) (settings.Installation, error)
	Resolve(ctx context.Context, inst settings.Installation, userID string) (settings.Resolved, error)
}

var (
	_ AppFinder      = (*app.Store)(nil)
	_ settingsReader = (*settings.Store)(nil)
)

// Handler serves OAuth configs: create, read, update, delete. The routes
// that send requests or read connections (explain, test-extraction, the
// request logs, connections) are connection.Handler's.
type Handler struct {
	store       *Store
	apps        AppFinder
	settings    settingsReader
	redirectURI string
}

// NewHandler returns a Handler; redirectURI is Latchkey's callback URL,
// which developers register at their providers.
func NewHandler(store *Store, apps AppFinder, s settingsReader, redirectURI string) *Handler {
	return &Handler{store: store, apps: apps, settings: s, redirectURI: redirectURI}
}

// Register adds the routes to g, which must be behind app.RequireKey.
func (h *Handler) Register(g *echo.Group) {
	g.GET("/apps/:app/oauth-configs", h.list)
	g.POST("/apps/:app/oauth-configs", h.create)
	g.GET("/apps/:app/oauth-configs/:config", h.get)
	g.PATCH("/apps/:app/oauth-configs/:config", h.update)
	g.DELETE("/apps/:app/oauth-configs/:config", h.delete)
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
	TokenMethod         *string            `json:"token_method"`
	RefreshMethod       *string            `json:"refresh_method"`
	TokenParams         *string            `json:"token_params"`
	ContentType         *string            `json:"content_type"`
	AssertionKeySetting *string            `json:"assertion_key_setting"`
	AssertionAlg        *string            `json:"assertion_alg"`
	AssertionClaims     *map[string]string `json:"assertion_claims"`
	ClientCertSetting   *string            `json:"client_cert_setting"`
	ClientKeySetting    *string            `json:"client_key_setting"`
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
	CallbackMappings    *[]CallbackMapping `json:"callback_mappings"`
	Steps               *[]Step            `json:"steps"`
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
	set(&c.TokenMethod, r.TokenMethod)
	set(&c.RefreshMethod, r.RefreshMethod)
	set(&c.TokenParams, r.TokenParams)
	set(&c.ContentType, r.ContentType)
	set(&c.AssertionKeySetting, r.AssertionKeySetting)
	set(&c.AssertionAlg, r.AssertionAlg)
	set(&c.AssertionClaims, r.AssertionClaims)
	set(&c.ClientCertSetting, r.ClientCertSetting)
	set(&c.ClientKeySetting, r.ClientKeySetting)
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
	set(&c.CallbackMappings, r.CallbackMappings)
	set(&c.Steps, r.Steps)
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
	TokenMethod         string            `json:"token_method"`
	RefreshMethod       string            `json:"refresh_method"`
	TokenParams         string            `json:"token_params"`
	ContentType         string            `json:"content_type"`
	AssertionKeySetting string            `json:"assertion_key_setting"`
	AssertionAlg        string            `json:"assertion_alg"`
	AssertionClaims     map[string]string `json:"assertion_claims"`
	ClientCertSetting   string            `json:"client_cert_setting"`
	ClientKeySetting    string            `json:"client_key_setting"`
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
	CallbackMappings    []CallbackMapping `json:"callback_mappings"`
	Steps               []Step            `json:"steps"`
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
		TokenMethod: c.TokenMethod, RefreshMethod: c.RefreshMethod, TokenParams: c.TokenParams, ContentType: c.ContentType,
		AssertionKeySetting: c.AssertionKeySetting, AssertionAlg: c.AssertionAlg, AssertionClaims: c.AssertionClaims,
		ClientCertSetting: c.ClientCertSetting, ClientKeySetting: c.ClientKeySetting,
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
		IdentityHeaders: c.IdentityHeaders, IdentityMappings: c.IdentityMappings, CallbackMappings: c.CallbackMappings, Steps: c.Steps, RedirectURI: h.redirectURI, CallbackURL: h.redirectURI,
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

// CallersInstallation returns installation id and its app, if the app is
// the caller's; another account's installation is errs.NotFound, as is a
// missing one.
func CallersInstallation(c echo.Context, s interface {
	Installation(ctx context.Context, id string) (settings.Installation, error)
}, apps AppFinder, id string) (settings.Installation, app.App, error) {
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
