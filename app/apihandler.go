package app

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/httpapi"
)

// References answers what an API refers to outside this package: the
// settings its templates may use and the OAuth configs it may name.
// Packages above app implement it, so that app imports none of them.
type References interface {
	// Variables returns the names the app's API templates may use.
	Variables(ctx context.Context, appID string) (map[string]bool, error)
	// HasConfig reports whether the app has the OAuth config id.
	HasConfig(ctx context.Context, appID, configID string) (bool, error)
}

// APIHandler serves /v1/apps/{app}/apis.
type APIHandler struct {
	store *Store
	refs  References
}

// NewAPIHandler returns an APIHandler.
func NewAPIHandler(store *Store, refs References) *APIHandler {
	return &APIHandler{store: store, refs: refs}
}

// Register adds the routes to g, which must be behind RequireKey.
func (h *APIHandler) Register(g *echo.Group) {
	g.GET("/apps/:app/apis", h.list)
	g.POST("/apps/:app/apis", h.create)
	g.GET("/apps/:app/apis/:api", h.get)
	g.PATCH("/apps/:app/apis/:api", h.update)
	g.DELETE("/apps/:app/apis/:api", h.delete)
}

// apiRequest is the body of create and update. config_id may be null to
// take an API off its OAuth config.
type apiRequest struct {
	Name        *string            `json:"name"`
	Description *string            `json:"description"`
	Methods     *[]string          `json:"methods"`
	BaseURL     *string            `json:"base_url"`
	ConfigID    json.RawMessage    `json:"config_id"`
	Headers     *map[string]string `json:"headers"`
	Query       *map[string]string `json:"query"`
}

// configID reads config_id: absent (nil), null (a nil *string) or a string.
func (r *apiRequest) configID() (**string, error) {
	if r.ConfigID == nil {
		return nil, nil
	}
	var id *string
	if err := json.Unmarshal(r.ConfigID, &id); err != nil {
		return nil, &errs.Error{Code: errs.Invalid, Message: "the request has invalid fields",
			Fields: []errs.FieldError{{Field: "config_id", Message: "must be a string or null"}}}
	}
	if id != nil && *id == "" {
		id = nil
	}
	return &id, nil
}

type apiResponse struct {
	ID          string            `json:"id"`
	AppID       string            `json:"app_id"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Methods     []string          `json:"methods"`
	BaseURL     string            `json:"base_url"`
	ConfigID    *string           `json:"config_id"`
	Headers     map[string]string `json:"headers"`
	Query       map[string]string `json:"query"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
}

func toAPIResponse(a API) apiResponse {
	return apiResponse{ID: a.ID, AppID: a.AppID, Name: a.Name, Description: a.Description, Methods: a.Methods,
		BaseURL: a.BaseURL, ConfigID: a.ConfigID, Headers: a.Headers, Query: a.Query,
		CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
}

func (h *APIHandler) findApp(c echo.Context) (App, error) {
	ref, err := httpapi.Param(c, "app")
	if err != nil {
		return App{}, err
	}
	return h.store.Find(c.Request().Context(), AccountID(c), ref)
}

// checks returns the variable check for the app's templates and verifies
// the config the API names (see APIChecks).
func (h *APIHandler) checks(ctx context.Context, appID string, configID *string) (func(string) bool, error) {
	return APIChecks(ctx, h.refs, appID, configID)
}

// APIChecks returns what CreateAPI and UpdateAPI need to validate an API of
// app appID: the variables its templates may use, after checking that
// configID, if set, is one of the app's OAuth configs (an errs.Invalid
// naming config_id if not). Other errors are refs'.
func APIChecks(ctx context.Context, refs References, appID string, configID *string) (func(string) bool, error) {
	if configID != nil {
		ok, err := refs.HasConfig(ctx, appID, *configID)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, &errs.Error{Code: errs.Invalid, Message: "the request has invalid fields",
				Fields: []errs.FieldError{{Field: "config_id", Message: "the app has no OAuth config " + *configID}}}
		}
	}
	vars, err := refs.Variables(ctx, appID)
	if err != nil {
		return nil, err
	}
	return func(name string) bool { return vars[name] }, nil
}

func (h *APIHandler) list(c echo.Context) error {
	a, err := h.findApp(c)
	if err != nil {
		return err
	}
	apis, err := h.store.ListAPIs(c.Request().Context(), a.ID)
	if err != nil {
		return err
	}
	out := make([]apiResponse, len(apis))
	for i, x := range apis {
		out[i] = toAPIResponse(x)
	}
	return c.JSON(http.StatusOK, map[string]any{"apis": out})
}

func (h *APIHandler) create(c echo.Context) error {
	a, err := h.findApp(c)
	if err != nil {
		return err
	}
	var req apiRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	cid, err := req.configID()
	if err != nil {
		return err
	}
	x := API{AppID: a.ID}
	set(&x.Name, req.Name)
	set(&x.Description, req.Description)
	set(&x.Methods, req.Methods)
	set(&x.BaseURL, req.BaseURL)
	set(&x.ConfigID, cid)
	set(&x.Headers, req.Headers)
	set(&x.Query, req.Query)
	known, err := h.checks(c.Request().Context(), a.ID, x.ConfigID)
	if err != nil {
		return err
	}
	if err := h.store.CreateAPI(c.Request().Context(), &x, known); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toAPIResponse(x))
}

func (h *APIHandler) get(c echo.Context) error {
	a, err := h.findApp(c)
	if err != nil {
		return err
	}
	ref, err := httpapi.Param(c, "api")
	if err != nil {
		return err
	}
	x, err := h.store.FindAPI(c.Request().Context(), a.ID, ref)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toAPIResponse(x))
}

func (h *APIHandler) update(c echo.Context) error {
	ctx := c.Request().Context()
	a, err := h.findApp(c)
	if err != nil {
		return err
	}
	ref, err := httpapi.Param(c, "api")
	if err != nil {
		return err
	}
	var req apiRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	cid, err := req.configID()
	if err != nil {
		return err
	}
	current, err := h.store.FindAPI(ctx, a.ID, ref)
	if err != nil {
		return err
	}
	configID := current.ConfigID
	if cid != nil {
		configID = *cid
	}
	known, err := h.checks(ctx, a.ID, configID)
	if err != nil {
		return err
	}
	x, err := h.store.UpdateAPI(ctx, a.ID, ref, APIUpdate{
		Name: req.Name, Description: req.Description, Methods: req.Methods, BaseURL: req.BaseURL,
		ConfigID: cid, Headers: req.Headers, Query: req.Query,
	}, known)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toAPIResponse(x))
}

func (h *APIHandler) delete(c echo.Context) error {
	a, err := h.findApp(c)
	if err != nil {
		return err
	}
	ref, err := httpapi.Param(c, "api")
	if err != nil {
		return err
	}
	if err := h.store.DeleteAPI(c.Request().Context(), a.ID, ref); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
