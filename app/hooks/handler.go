package hooks

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/settings"
)

// Small interfaces over what the handler reads, declared where they are used.
type (
	appFinder interface {
		Find(ctx context.Context, accountID, ref string) (app.App, error)
	}
	settingReader interface {
		Definitions(ctx context.Context, appID string, level settings.Level) ([]settings.Definition, error)
		Definition(ctx context.Context, appID, key string) (settings.Definition, error)
		FixedValue(ctx context.Context, appID, key string) (string, bool, error)
		OrganizationValue(ctx context.Context, inst settings.Installation, key string) (string, bool, error)
		InstallationsByValue(ctx context.Context, appID, key, value string, limit int) ([]settings.Installation, error)
		UsersByValue(ctx context.Context, installationID, key, value string, limit int) ([]string, error)
		Resolve(ctx context.Context, inst settings.Installation, userID string) (settings.Resolved, error)
	}
)

var (
	_ appFinder     = (*app.Store)(nil)
	_ settingReader = (*settings.Store)(nil)
	_ eventQueue    = (*app.Webhooks)(nil)
)

// Handler serves /v1/apps/{app}/webhook-sources and the public /hooks/{id}.
type Handler struct {
	store     *Store
	apps      appFinder
	settings  settingReader
	publicURL string
	log       *slog.Logger
	limit     *Limiter
	now       func() time.Time
	// Observe, if set, counts each request to /hooks/{id} by outcome
	// (accepted, duplicate, handshake, unverified, unroutable,
	// rate_limited, ...).
	Observe func(outcome string)
}

// Deps are what a Handler works with.
type Deps struct {
	Store     *Store
	Apps      appFinder
	Settings  settingReader
	PublicURL string // Latchkey's base URL, as providers reach it
	Log       *slog.Logger
	Limiter   *Limiter // each source's rate limit; nil: none
}

// NewHandler returns a Handler.
func NewHandler(d Deps) *Handler {
	return &Handler{store: d.Store, apps: d.Apps, settings: d.Settings,
		publicURL: strings.TrimRight(d.PublicURL, "/"), log: d.Log, limit: d.Limiter,
		now: func() time.Time { return time.Now().UTC() }}
}

// Register adds the REST routes to v1, which must be behind RequireKey,
// and the public endpoint to e.
func (h *Handler) Register(v1 *echo.Group, e *echo.Echo) {
	v1.GET("/apps/:app/webhook-sources", h.list)
	v1.POST("/apps/:app/webhook-sources", h.create)
	v1.GET("/apps/:app/webhook-sources/:source", h.get)
	v1.PATCH("/apps/:app/webhook-sources/:source", h.update)
	v1.DELETE("/apps/:app/webhook-sources/:source", h.delete)
	e.POST(Path+":source", h.receive)
}

// The wire forms of a source's parts. They name settings and headers only,
// so the same types serve requests and responses without any secret.
type (
	locatorJSON struct {
		Path   string `json:"path"`
		Header string `json:"header"`
	}
	routeJSON struct {
		Path    string `json:"path"`
		Header  string `json:"header"`
		Setting string `json:"setting"`
	}
	routingJSON struct {
		Organization routeJSON  `json:"organization"`
		User         *routeJSON `json:"user"`
	}
	verificationJSON struct {
		Method           string `json:"method"`
		SecretSetting    string `json:"secret_setting"`
		SignatureHeader  string `json:"signature_header"`
		SignaturePrefix  string `json:"signature_prefix"`
		SignatureFormat  string `json:"signature_format"`
		Encoding         string `json:"encoding"`
		BaseString       string `json:"base_string"`
		TimestampHeader  string `json:"timestamp_header"`
		ToleranceSeconds int    `json:"tolerance_seconds"`
		TokenHeader      string `json:"token_header"`
		TokenPath        string `json:"token_path"`
	}
)

// sourceRequest is the body of create and update; in an update, absent
// fields stay and present objects replace the old ones whole.
type sourceRequest struct {
	Name         *string           `json:"name"`
	Verification *verificationJSON `json:"verification"`
	Handshake    *string           `json:"handshake"`
	Routing      *routingJSON      `json:"routing"`
	EventType    *locatorJSON      `json:"event_type"`
	EventID      *locatorJSON      `json:"event_id"`
}

type sourceResponse struct {
	ID           string           `json:"id"`
	AppID        string           `json:"app_id"`
	Name         string           `json:"name"`
	URL          string           `json:"url"` // where the provider sends events
	Verification verificationJSON `json:"verification"`
	Handshake    string           `json:"handshake"`
	Routing      routingJSON      `json:"routing"`
	EventType    locatorJSON      `json:"event_type"`
	EventID      locatorJSON      `json:"event_id"`
	CreatedAt    time.Time        `json:"created_at"`
	UpdatedAt    time.Time        `json:"updated_at"`
}

func (r sourceRequest) update() Update {
	var u Update
	u.Name = r.Name
	if r.Verification != nil {
		v := toVerification(*r.Verification)
		u.Verification = &v
	}
	if r.Handshake != nil {
		hs := Handshake(*r.Handshake)
		u.Handshake = &hs
	}
	if r.Routing != nil {
		rt := Routing{Organization: toRoute(r.Routing.Organization)}
		if r.Routing.User != nil {
			user := toRoute(*r.Routing.User)
			rt.User = &user
		}
		u.Routing = &rt
	}
	if r.EventType != nil {
		l := Locator(*r.EventType)
		u.EventType = &l
	}
	if r.EventID != nil {
		l := Locator(*r.EventID)
		u.EventID = &l
	}
	return u
}

func toVerification(v verificationJSON) Verification {
	return Verification{
		Method: Method(v.Method), SecretSetting: v.SecretSetting,
		SignatureHeader: v.SignatureHeader, SignaturePrefix: v.SignaturePrefix,
		SignatureFormat: Format(v.SignatureFormat), Encoding: v.Encoding, BaseString: v.BaseString,
		TimestampHeader: v.TimestampHeader, ToleranceSeconds: v.ToleranceSeconds,
		TokenHeader: v.TokenHeader, TokenPath: v.TokenPath,
	}
}

func fromVerification(v Verification) verificationJSON {
	return verificationJSON{
		Method: string(v.Method), SecretSetting: v.SecretSetting,
		SignatureHeader: v.SignatureHeader, SignaturePrefix: v.SignaturePrefix,
		SignatureFormat: string(v.SignatureFormat), Encoding: v.Encoding, BaseString: v.BaseString,
		TimestampHeader: v.TimestampHeader, ToleranceSeconds: v.ToleranceSeconds,
		TokenHeader: v.TokenHeader, TokenPath: v.TokenPath,
	}
}

func toRoute(r routeJSON) Route {
	return Route{Locator: Locator{Path: r.Path, Header: r.Header}, Setting: r.Setting}
}

func fromRoute(r Route) routeJSON {
	return routeJSON{Path: r.Path, Header: r.Header, Setting: r.Setting}
}

func (h *Handler) toResponse(s Source) sourceResponse {
	rt := routingJSON{Organization: fromRoute(s.Routing.Organization)}
	if s.Routing.User != nil {
		user := fromRoute(*s.Routing.User)
		rt.User = &user
	}
	return sourceResponse{
		ID: s.ID, AppID: s.AppID, Name: s.Name, URL: h.publicURL + Path + s.ID,
		Verification: fromVerification(s.Verification), Handshake: string(s.Handshake), Routing: rt,
		EventType: locatorJSON(s.EventType), EventID: locatorJSON(s.EventID),
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}

func (h *Handler) findApp(c echo.Context) (app.App, []settings.Definition, error) {
	ref, err := httpapi.Param(c, "app")
	if err != nil {
		return app.App{}, nil, err
	}
	a, err := h.apps.Find(c.Request().Context(), app.AccountID(c), ref)
	if err != nil {
		return app.App{}, nil, err
	}
	defs, err := h.settings.Definitions(c.Request().Context(), a.ID, "")
	return a, defs, err
}

func (h *Handler) list(c echo.Context) error {
	a, _, err := h.findApp(c)
	if err != nil {
		return err
	}
	sources, err := h.store.List(c.Request().Context(), a.ID)
	if err != nil {
		return err
	}
	out := make([]sourceResponse, len(sources))
	for i, s := range sources {
		out[i] = h.toResponse(s)
	}
	return c.JSON(http.StatusOK, map[string]any{"webhook_sources": out})
}

func (h *Handler) create(c echo.Context) error {
	a, defs, err := h.findApp(c)
	if err != nil {
		return err
	}
	var req sourceRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	s := Source{AppID: a.ID}
	u := req.update()
	set(&s.Name, u.Name)
	set(&s.Verification, u.Verification)
	set(&s.Handshake, u.Handshake)
	set(&s.Routing, u.Routing)
	set(&s.EventType, u.EventType)
	set(&s.EventID, u.EventID)
	if err := h.store.Create(c.Request().Context(), &s, defs); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, h.toResponse(s))
}

func (h *Handler) get(c echo.Context) error {
	a, _, err := h.findApp(c)
	if err != nil {
		return err
	}
	id, err := httpapi.Param(c, "source")
	if err != nil {
		return err
	}
	s, err := h.store.Find(c.Request().Context(), a.ID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h.toResponse(s))
}

func (h *Handler) update(c echo.Context) error {
	a, defs, err := h.findApp(c)
	if err != nil {
		return err
	}
	id, err := httpapi.Param(c, "source")
	if err != nil {
		return err
	}
	var req sourceRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	s, err := h.store.Update(c.Request().Context(), a.ID, id, req.update(), defs)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h.toResponse(s))
}

func (h *Handler) delete(c echo.Context) error {
	a, _, err := h.findApp(c)
	if err != nil {
		return err
	}
	id, err := httpapi.Param(c, "source")
	if err != nil {
		return err
	}
	if err := h.store.Delete(c.Request().Context(), a.ID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
