package app

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/httpapi"
)

// Handler serves /v1/apps.
type Handler struct {
	store *Store
}

// NewHandler returns a Handler over store.
func NewHandler(store *Store) *Handler { return &Handler{store: store} }

// Register adds the app routes to g, which must be behind RequireKey.
func (h *Handler) Register(g *echo.Group) {
	g.GET("/apps", h.list)
	g.POST("/apps", h.create)
	g.GET("/apps/:app", h.get)
	g.PATCH("/apps/:app", h.update)
	g.DELETE("/apps/:app", h.delete)
	g.GET("/keys", h.listKeys)
	g.DELETE("/keys/:key", h.revokeKey)
}

type keyResponse struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// listKeys lists the caller's account's API keys: never the keys
// themselves, which are not stored.
func (h *Handler) listKeys(c echo.Context) error {
	ks, err := h.store.Keys(c.Request().Context(), AccountID(c))
	if err != nil {
		return err
	}
	out := make([]keyResponse, len(ks))
	for i, k := range ks {
		out[i] = keyResponse{ID: k.ID, Name: k.Name, Prefix: k.Prefix, CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt}
	}
	return c.JSON(http.StatusOK, map[string]any{"keys": out})
}

// revokeKey revokes one of the account's API keys, the one in use too.
func (h *Handler) revokeKey(c echo.Context) error {
	id, err := httpapi.Param(c, "key")
	if err != nil {
		return err
	}
	if err := h.store.RevokeKey(c.Request().Context(), AccountID(c), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

const accountKey = "account_id"

// RequireKey is middleware that admits requests carrying a valid API key as
// "Authorization: Bearer <key>" and records the key's account.
func RequireKey(s *Store) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			scheme, key, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="latchkey"`)
				return errs.New(errs.Unauthorized, "an API key is required: Authorization: Bearer <key>")
			}
			k, err := s.Authenticate(c.Request().Context(), strings.TrimSpace(key))
			if err != nil {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="latchkey", error="invalid_token"`)
				return err
			}
			c.Set(accountKey, k.AccountID)
			return next(c)
		}
	}
}

// AccountID returns the account of the request's API key; it is "" outside
// RequireKey.
func AccountID(c echo.Context) string {
	id, _ := c.Get(accountKey).(string)
	return id
}

type appRequest struct {
	Name        *string   `json:"name"`
	Slug        *string   `json:"slug"`
	Description *string   `json:"description"`
	LogoURL     *string   `json:"logo_url"`
	ReturnURLs  *[]string `json:"return_urls"`
}

type appResponse struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Slug        string    `json:"slug"`
	Description string    `json:"description"`
	LogoURL     string    `json:"logo_url"`
	ReturnURLs  []string  `json:"return_urls"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func toResponse(a App) appResponse {
	return appResponse{
		ID:          a.ID,
		Name:        a.Name,
		Slug:        a.Slug,
		Description: a.Description,
		LogoURL:     a.LogoURL,
		ReturnURLs:  a.ReturnURLs,
		CreatedAt:   a.CreatedAt,
		UpdatedAt:   a.UpdatedAt,
	}
}

func (h *Handler) list(c echo.Context) error {
	apps, err := h.store.List(c.Request().Context(), AccountID(c))
	if err != nil {
		return err
	}
	out := make([]appResponse, len(apps))
	for i, a := range apps {
		out[i] = toResponse(a)
	}
	return c.JSON(http.StatusOK, map[string]any{"apps": out})
}

func (h *Handler) create(c echo.Context) error {
	var req appRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	a := App{AccountID: AccountID(c)}
	set(&a.Name, req.Name)
	set(&a.Slug, req.Slug)
	set(&a.Description, req.Description)
	set(&a.LogoURL, req.LogoURL)
	set(&a.ReturnURLs, req.ReturnURLs)
	if req.Slug == nil {
		a.Slug = SlugFrom(a.Name)
	}
	if err := h.store.Create(c.Request().Context(), &a); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toResponse(a))
}

func (h *Handler) get(c echo.Context) error {
	ref, err := httpapi.Param(c, "app")
	if err != nil {
		return err
	}
	a, err := h.store.Find(c.Request().Context(), AccountID(c), ref)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toResponse(a))
}

func (h *Handler) update(c echo.Context) error {
	ref, err := httpapi.Param(c, "app")
	if err != nil {
		return err
	}
	var req appRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	a, err := h.store.Update(c.Request().Context(), AccountID(c), ref, Update{
		Name:        req.Name,
		Slug:        req.Slug,
		Description: req.Description,
		LogoURL:     req.LogoURL,
		ReturnURLs:  req.ReturnURLs,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toResponse(a))
}

func (h *Handler) delete(c echo.Context) error {
	ref, err := httpapi.Param(c, "app")
	if err != nil {
		return err
	}
	if err := h.store.Delete(c.Request().Context(), AccountID(c), ref); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
