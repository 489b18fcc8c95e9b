package settings

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/httpapi"
)

// appFinder finds the caller's apps.
type appFinder interface {
	Find(ctx context.Context, accountID, ref string) (app.App, error)
	List(ctx context.Context, accountID string) ([]app.App, error)
}

var _ appFinder = (*app.Store)(nil)

// Handler serves setting definitions, installations and values.
type Handler struct {
	store *Store
	apps  appFinder
}

// NewHandler returns a Handler.
func NewHandler(store *Store, apps appFinder) *Handler {
	return &Handler{store: store, apps: apps}
}

// Register adds the routes to g, which must be behind app.RequireKey.
func (h *Handler) Register(g *echo.Group) {
	g.GET("/apps/:app/settings", h.listDefinitions)
	g.POST("/apps/:app/settings", h.createDefinition)
	g.GET("/apps/:app/settings/:key", h.getDefinition)
	g.PATCH("/apps/:app/settings/:key", h.updateDefinition)
	g.DELETE("/apps/:app/settings/:key", h.deleteDefinition)
	g.GET("/apps/:app/install-prompt", h.installPrompt)

	g.GET("/installations", h.listInstallations)
	g.POST("/installations", h.install)
	g.GET("/installations/:installation", h.getInstallation)
	g.DELETE("/installations/:installation", h.deleteInstallation)
	g.GET("/installations/:installation/settings", h.getOrganizationValues)
	g.PATCH("/installations/:installation/settings", h.setOrganizationValues)
	g.GET("/installations/:installation/users/:user/settings", h.getUserValues)
	g.PATCH("/installations/:installation/users/:user/settings", h.setUserValues)
}

type definitionRequest struct {
	Key         *string `json:"key"`
	Level       *Level  `json:"level"`
	Label       *string `json:"label"`
	Description *string `json:"description"`
	Secret      *bool   `json:"secret"`
	Required    *bool   `json:"required"`
	Default     *string `json:"default"`
	Pattern     *string `json:"pattern"`
	Position    *int    `json:"position"`
	// Visibility and Type are checked by Definition.Validate.
	Visibility *Visibility `json:"visibility"`
	Type       *Type       `json:"type"`
}

type definitionResponse struct {
	Key         string    `json:"key"`
	Level       Level     `json:"level"`
	Label       string    `json:"label"`
	Description string    `json:"description"`
	Secret      bool      `json:"secret"`
	Required    bool      `json:"required"`
	Default     *string   `json:"default"`
	Pattern     *string   `json:"pattern"`
	Position    int       `json:"position"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`

	Visibility Visibility `json:"visibility"`
	Type       Type       `json:"type"`
	// DefaultSet is true when there is a default, also for a hidden
	// secret setting, whose value is write-only: Default is null then.
	DefaultSet bool `json:"default_set"`
}

func toDefinitionResponse(d Definition) definitionResponse {
	return definitionResponse{
		Key:         d.Key,
		Level:       d.Level,
		Label:       d.Label,
		Description: d.Description,
		Secret:      d.Secret,
		Required:    d.Required,
		Default:     d.DefaultValue,
		Pattern:     d.Pattern,
		Position:    d.Position,
		CreatedAt:   d.CreatedAt,
		UpdatedAt:   d.UpdatedAt,
		Visibility:  d.visibility(),
		Type:        d.typ(),
		DefaultSet:  d.HasDefault(),
	}
}

// findApp returns the caller's app named by the :app parameter.
func (h *Handler) findApp(c echo.Context) (app.App, error) {
	ref, err := httpapi.Param(c, "app")
	if err != nil {
		return app.App{}, err
	}
	return h.apps.Find(c.Request().Context(), app.AccountID(c), ref)
}

func (h *Handler) listDefinitions(c echo.Context) error {
	a, err := h.findApp(c)
	if err != nil {
		return err
	}
	defs, err := h.store.Definitions(c.Request().Context(), a.ID, "")
	if err != nil {
		return err
	}
	out := make([]definitionResponse, len(defs))
	for i, d := range defs {
		out[i] = toDefinitionResponse(d)
	}
	return c.JSON(http.StatusOK, map[string]any{"settings": out})
}

func (h *Handler) createDefinition(c echo.Context) error {
	a, err := h.findApp(c)
	if err != nil {
		return err
	}
	var req definitionRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	d := Definition{AppID: a.ID, Level: Organization, DefaultValue: req.Default, Pattern: req.Pattern}
	set(&d.Key, req.Key)
	set(&d.Level, req.Level)
	set(&d.Label, req.Label)
	set(&d.Description, req.Description)
	set(&d.Secret, req.Secret)
	set(&d.Required, req.Required)
	set(&d.Position, req.Position)
	set(&d.Visibility, req.Visibility)
	set(&d.Type, req.Type)
	if err := h.store.CreateDefinition(c.Request().Context(), &d); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toDefinitionResponse(d))
}

func (h *Handler) getDefinition(c echo.Context) error {
	a, err := h.findApp(c)
	if err != nil {
		return err
	}
	d, err := h.store.Definition(c.Request().Context(), a.ID, c.Param("key"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toDefinitionResponse(d))
}

func (h *Handler) updateDefinition(c echo.Context) error {
	a, err := h.findApp(c)
	if err != nil {
		return err
	}
	var req definitionRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	var fs errs.Fields
	if req.Key != nil {
		fs.Add("key", "cannot be changed; create a new setting and delete this one")
	}
	if req.Level != nil {
		fs.Add("level", "cannot be changed; create a new setting and delete this one")
	}
	if err := fs.Err(); err != nil {
		return err
	}
	deleteValues, err := deleteValuesParam(c)
	if err != nil {
		return err
	}
	d, err := h.store.UpdateDefinition(c.Request().Context(), a.ID, c.Param("key"), DefinitionUpdate{
		Label:        req.Label,
		Description:  req.Description,
		Secret:       req.Secret,
		Required:     req.Required,
		Default:      req.Default,
		Pattern:      req.Pattern,
		Position:     req.Position,
		Visibility:   req.Visibility,
		Type:         req.Type,
		DeleteValues: deleteValues,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toDefinitionResponse(d))
}

func (h *Handler) deleteDefinition(c echo.Context) error {
	a, err := h.findApp(c)
	if err != nil {
		return err
	}
	deleteValues, err := deleteValuesParam(c)
	if err != nil {
		return err
	}
	if err := h.store.DeleteDefinition(c.Request().Context(), a.ID, c.Param("key"), deleteValues); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type promptField struct {
	Key         string  `json:"key"`
	Label       string  `json:"label"`
	Description string  `json:"description"`
	Required    bool    `json:"required"`
	Secret      bool    `json:"secret"`
	Default     *string `json:"default"`
	Pattern     *string `json:"pattern"`
	ReadOnly    bool    `json:"read_only"`
	Type        Type    `json:"type"`
}

func (h *Handler) installPrompt(c echo.Context) error {
	a, err := h.findApp(c)
	if err != nil {
		return err
	}
	defs, err := h.store.Definitions(c.Request().Context(), a.ID, Organization)
	if err != nil {
		return err
	}
	fields := make([]promptField, 0, len(defs))
	for _, d := range defs {
		if !d.Prompted() {
			continue // hidden: never shown; managed: only Latchkey writes it
		}
		fields = append(fields, promptField{
			Key:         d.Key,
			Label:       d.Label,
			Description: d.Description,
			Required:    d.Required,
			Secret:      d.Secret,
			Default:     d.DefaultValue,
			Pattern:     d.Pattern,
			ReadOnly:    d.visibility() == ReadOnly,
			Type:        d.typ(),
		})
	}
	return c.JSON(http.StatusOK, map[string]any{
		"app":    map[string]string{"id": a.ID, "name": a.Name, "slug": a.Slug, "logo_url": a.LogoURL},
		"fields": fields,
	})
}

type installRequest struct {
	AppID          string            `json:"app_id"`
	OrganizationID string            `json:"organization_id"`
	Values         map[string]string `json:"values"`
}

type installationResponse struct {
	ID             string          `json:"id"`
	AppID          string          `json:"app_id"`
	OrganizationID string          `json:"organization_id"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
	Settings       []valueResponse `json:"settings,omitempty"`
}

// valueResponse shows one value. Value is omitted for secret settings:
// they are write-only, and Set says whether one is stored.
type valueResponse struct {
	Key    string  `json:"key"`
	Label  string  `json:"label"`
	Secret bool    `json:"secret"`
	Set    bool    `json:"set"`
	Source string  `json:"source"`
	Value  *string `json:"value,omitempty"`
	// ReadOnly marks a read_only setting: Value is the developer's
	// default, which cannot be changed. Hidden settings are not listed.
	ReadOnly bool `json:"read_only"`
	// Managed marks a setting only Latchkey writes: Value is omitted,
	// as for secrets, and Set says whether one is stored.
	Managed bool `json:"managed"`
}

func toValueResponses(vs []Value) []valueResponse {
	out := make([]valueResponse, len(vs))
	for i, v := range vs {
		r := valueResponse{Key: v.Definition.Key, Label: v.Definition.Label, Secret: v.Definition.Secret, Set: v.Set, Source: "none",
			ReadOnly: v.Definition.visibility() == ReadOnly, Managed: v.Definition.Managed()}
		switch {
		case v.Set:
			r.Source = "stored"
		case v.FromDefault:
			r.Source = "default"
		}
		if !v.Definition.Secret && !v.Definition.Managed() && (v.Set || v.FromDefault) {
			val := v.Value
			r.Value = &val
		}
		out[i] = r
	}
	return out
}

func toInstallationResponse(inst Installation, vs []Value) installationResponse {
	return installationResponse{
		ID:             inst.ID,
		AppID:          inst.AppID,
		OrganizationID: inst.OrganizationID,
		CreatedAt:      inst.CreatedAt,
		UpdatedAt:      inst.UpdatedAt,
		Settings:       toValueResponses(vs),
	}
}

func (h *Handler) install(c echo.Context) error {
	var req installRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	if req.AppID == "" {
		return errs.Fields{{Field: "app_id", Message: "is required"}}.Err()
	}
	ctx := c.Request().Context()
	a, err := h.apps.Find(ctx, app.AccountID(c), req.AppID)
	if err != nil {
		return err
	}
	inst, err := h.store.Install(ctx, a.ID, req.OrganizationID, req.Values)
	if err != nil {
		return err
	}
	vs, err := h.store.OrganizationValues(ctx, inst)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toInstallationResponse(inst, vs))
}

func (h *Handler) listInstallations(c echo.Context) error {
	ctx := c.Request().Context()
	var appIDs []string
	if ref := c.QueryParam("app_id"); ref != "" {
		a, err := h.apps.Find(ctx, app.AccountID(c), ref)
		if err != nil {
			return err
		}
		appIDs = []string{a.ID}
	} else {
		apps, err := h.apps.List(ctx, app.AccountID(c))
		if err != nil {
			return err
		}
		for _, a := range apps {
			appIDs = append(appIDs, a.ID)
		}
	}
	insts, err := h.store.Installations(ctx, InstallationFilter{AppIDs: appIDs, OrganizationID: c.QueryParam("organization_id")})
	if err != nil {
		return err
	}
	out := make([]installationResponse, len(insts))
	for i, inst := range insts {
		out[i] = toInstallationResponse(inst, nil)
	}
	return c.JSON(http.StatusOK, map[string]any{"installations": out})
}

// findInstallation returns the installation named by the :installation
// parameter if it belongs to one of the caller's apps; another account's
// installation is not found, exactly like a missing one.
func (h *Handler) findInstallation(c echo.Context) (Installation, error) {
	id, err := httpapi.Param(c, "installation")
	if err != nil {
		return Installation{}, err
	}
	ctx := c.Request().Context()
	inst, err := h.store.Installation(ctx, id)
	if err != nil {
		return Installation{}, err
	}
	if _, err := h.apps.Find(ctx, app.AccountID(c), inst.AppID); err != nil {
		if errs.Is(err, errs.NotFound) {
			return Installation{}, errs.NotFoundf("installation %q not found", id)
		}
		return Installation{}, err
	}
	return inst, nil
}

func (h *Handler) getInstallation(c echo.Context) error {
	inst, err := h.findInstallation(c)
	if err != nil {
		return err
	}
	vs, err := h.store.OrganizationValues(c.Request().Context(), inst)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toInstallationResponse(inst, vs))
}

func (h *Handler) deleteInstallation(c echo.Context) error {
	inst, err := h.findInstallation(c)
	if err != nil {
		return err
	}
	if err := h.store.DeleteInstallation(c.Request().Context(), inst.ID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type valuesRequest struct {
	Values map[string]*string `json:"values"`
}

func (h *Handler) getOrganizationValues(c echo.Context) error {
	inst, err := h.findInstallation(c)
	if err != nil {
		return err
	}
	vs, err := h.store.OrganizationValues(c.Request().Context(), inst)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"settings": toValueResponses(vs)})
}

func (h *Handler) setOrganizationValues(c echo.Context) error {
	inst, err := h.findInstallation(c)
	if err != nil {
		return err
	}
	var req valuesRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := h.store.SetOrganizationValues(ctx, inst, req.Values); err != nil {
		return err
	}
	return h.getOrganizationValues(c)
}

func (h *Handler) getUserValues(c echo.Context) error {
	inst, err := h.findInstallation(c)
	if err != nil {
		return err
	}
	userID, err := httpapi.Param(c, "user")
	if err != nil {
		return err
	}
	vs, err := h.store.UserValues(c.Request().Context(), inst, userID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"user_id": userID, "settings": toValueResponses(vs)})
}

func (h *Handler) setUserValues(c echo.Context) error {
	inst, err := h.findInstallation(c)
	if err != nil {
		return err
	}
	userID, err := httpapi.Param(c, "user")
	if err != nil {
		return err
	}
	var req valuesRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	if err := h.store.SetUserValues(c.Request().Context(), inst, userID, req.Values); err != nil {
		return err
	}
	return h.getUserValues(c)
}
