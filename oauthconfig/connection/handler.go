package connection

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/oauthconfig"
	"github.com/latchkey/latchkey/oauthconfig/token"
	"github.com/latchkey/latchkey/settings"
)

// settingsReader reads what templates need.
type settingsReader interface {
	Definitions(ctx context.Context, appID string, level settings.Level) ([]settings.Definition, error)
	Installation(ctx context.Context, id string) (settings.Installation, error)
	Resolve(ctx context.Context, inst settings.Installation, userID string) (settings.Resolved, error)
}

var _ settingsReader = (*settings.Store)(nil)

// Handler serves what an OAuth config does rather than what it is: the
// explanation of its requests, a test of its extraction paths, the log of
// its token requests, and the connections of an installation. The
// configs themselves are oauthconfig.Handler's.
type Handler struct {
	store       *oauthconfig.Store
	apps        oauthconfig.AppFinder
	settings    settingsReader
	log         *token.RequestLog
	connections *Connections
	redirectURI string
}

// NewHandler returns a Handler; redirectURI is Latchkey's callback URL,
// which developers register at their providers.
func NewHandler(store *oauthconfig.Store, apps oauthconfig.AppFinder, s settingsReader, log *token.RequestLog, conns *Connections, redirectURI string) *Handler {
	return &Handler{store: store, apps: apps, settings: s, log: log, connections: conns, redirectURI: redirectURI}
}

// Register adds the routes to g, which must be behind app.RequireKey.
func (h *Handler) Register(g *echo.Group) {
	g.GET("/apps/:app/oauth-configs/:config/requests", h.configRequests)
	g.POST("/apps/:app/oauth-configs/:config/explain", h.explain)
	g.POST("/apps/:app/oauth-configs/:config/test-extraction", h.testExtraction)
	g.GET("/installations/:installation/oauth-requests", h.installationRequests)
	g.GET("/installations/:installation/connections", h.listConnections)
	g.DELETE("/installations/:installation/connections/:config", h.removeConnection)
}

func (h *Handler) findApp(c echo.Context) (app.App, error) {
	ref, err := httpapi.Param(c, "app")
	if err != nil {
		return app.App{}, err
	}
	return h.apps.Find(c.Request().Context(), app.AccountID(c), ref)
}

func (h *Handler) findConfig(c echo.Context) (app.App, oauthconfig.Config, error) {
	a, err := h.findApp(c)
	if err != nil {
		return app.App{}, oauthconfig.Config{}, err
	}
	id, err := httpapi.Param(c, "config")
	if err != nil {
		return app.App{}, oauthconfig.Config{}, err
	}
	cfg, err := h.store.Find(c.Request().Context(), a.ID, id)
	return a, cfg, err
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

func toEntryResponses(es []token.Entry) []entryResponse {
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
	es, err := h.log.List(c.Request().Context(), token.LogFilter{ConfigID: cfg.ID, ID: c.QueryParam("id")})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"requests": toEntryResponses(es)})
}

// findInstallation returns the installation id if its app is the caller's.
func (h *Handler) findInstallation(c echo.Context, id string) (settings.Installation, error) {
	inst, _, err := oauthconfig.CallersInstallation(c, h.settings, h.apps, id)
	return inst, err
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
	es, err := h.log.List(c.Request().Context(), token.LogFilter{InstallationID: inst.ID, ID: c.QueryParam("id")})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"requests": toEntryResponses(es)})
}

// Response is a Connection as the API shows it: its state, never its
// tokens.
type Response struct {
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

// NewResponse returns cn as the API shows it.
func NewResponse(cn Connection) Response {
	return Response{UserID: cn.UserID, ConfigID: cn.ConfigID, Status: cn.Status,
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
	if err := oauthconfig.CheckOwner(&cfg, user); err != nil {
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
	out := make([]Response, len(conns))
	for i, cn := range conns {
		out[i] = NewResponse(cn)
	}
	return c.JSON(http.StatusOK, map[string]any{"connections": out})
}

type explainRequest struct {
	InstallationID string `json:"installation_id"`
	UserID         string `json:"user_id"`
}

type requestResponse struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
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
	ex := token.Explain(&cfg, defs, resolved, h.redirectURI)
	out := map[string]any{"variables": ex.Variables, "problems": ex.Problems}
	if ex.LinkURL != "" {
		out["link_url"] = ex.LinkURL
	}
	if len(cfg.CallbackMappings) > 0 {
		out["callback_mappings"] = cfg.CallbackMappings
	}
	if ex.ClientCertificate != nil {
		out["client_certificate"] = ex.ClientCertificate
	}
	for key, r := range map[string]*token.Request{"token_request": ex.TokenRequest, "refresh_request": ex.RefreshRequest} {
		if r != nil {
			out[key] = toRequestResponse(r)
		}
	}
	if len(ex.Steps) > 0 {
		steps := make([]explainedStep, len(ex.Steps))
		for i, st := range ex.Steps {
			steps[i] = explainedStep{Name: st.Name, OnRefresh: st.OnRefresh}
			if st.Request != nil {
				r := toRequestResponse(st.Request)
				steps[i].Request = &r
			}
		}
		out["steps"] = steps
	}
	return c.JSON(http.StatusOK, out)
}

type explainedStep struct {
	Name      string           `json:"name"`
	OnRefresh bool             `json:"on_refresh"`
	Request   *requestResponse `json:"request,omitempty"`
}

func toRequestResponse(r *token.Request) requestResponse {
	hdr := map[string]string{}
	for k := range r.Header {
		hdr[k] = r.Header.Get(k)
	}
	return requestResponse{Method: r.Method, URL: r.URL, Headers: hdr, Body: r.Body}
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
		code, err := token.ExtractCode(&cfg, q)
		if err != nil {
			return err
		}
		out["auth_code"] = token.Mask(code)
	}
	if len(req.Response) > 0 {
		body := []byte(req.Response)
		var s string
		if json.Unmarshal(req.Response, &s) == nil {
			body = []byte(s) // a response given as a string: JSON or form text
		}
		x, err := token.TryExtraction(&cfg, body)
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
