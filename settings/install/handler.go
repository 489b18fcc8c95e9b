package install

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/oauthconfig"
	"github.com/latchkey/latchkey/settings"
)

// Path is where install links point; the link's token follows.
const Path = "/install/"

// Small interfaces over what the handler reads, declared where they are used.
type (
	appFinder interface {
		Find(ctx context.Context, accountID, ref string) (app.App, error)
		FindByID(ctx context.Context, id string) (app.App, error)
	}
	settingReader interface {
		Definitions(ctx context.Context, appID string, level settings.Level) ([]settings.Definition, error)
		Installations(ctx context.Context, f settings.InstallationFilter) ([]settings.Installation, error)
		OrganizationValues(ctx context.Context, inst settings.Installation) ([]settings.Value, error)
	}
	configLister interface {
		List(ctx context.Context, appID string) ([]oauthconfig.Config, error)
	}
	// connectLinker makes the connect link the success page offers.
	connectLinker interface {
		ConnectLink(ctx context.Context, installationID, configID, userID string) (string, time.Time, error)
	}
)

var (
	_ appFinder     = (*app.Store)(nil)
	_ settingReader = (*settings.Store)(nil)
	_ configLister  = (*oauthconfig.Store)(nil)
)

// Handler serves install links and the install page.
type Handler struct {
	store     *Store
	apps      appFinder
	settings  settingReader
	configs   configLister
	connect   connectLinker
	publicURL string
	log       *slog.Logger
}

// Deps are what a Handler works with.
type Deps struct {
	Store     *Store
	Apps      appFinder
	Settings  settingReader
	Configs   configLister
	Connect   connectLinker
	PublicURL string // Latchkey's base URL, as browsers reach it
	Log       *slog.Logger
}

// NewHandler returns a Handler.
func NewHandler(d Deps) *Handler {
	return &Handler{store: d.Store, apps: d.Apps, settings: d.Settings, configs: d.Configs,
		connect: d.Connect, publicURL: strings.TrimRight(d.PublicURL, "/"), log: d.Log}
}

// Register adds the API route to api (behind app.RequireKey) and the
// page's routes to public.
func (h *Handler) Register(api *echo.Group, public *echo.Echo) {
	api.POST("/apps/:app/install-links", h.createLink)
	public.GET(Path+":link", h.show)
	public.POST(Path+":link", h.submit)
}

type linkRequest struct {
	OrganizationID string `json:"organization_id"`
	UserID         string `json:"user_id"`
}

type linkResponse struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (h *Handler) createLink(c echo.Context) error {
	ref, err := httpapi.Param(c, "app")
	if err != nil {
		return err
	}
	var req linkRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	a, err := h.apps.Find(ctx, app.AccountID(c), ref)
	if err != nil {
		return err
	}
	var fs errs.Fields
	if fe := settings.CheckID("organization_id", req.OrganizationID); fe != nil {
		fs = append(fs, *fe)
	}
	if req.UserID != "" {
		if fe := settings.CheckID("user_id", req.UserID); fe != nil {
			fs = append(fs, *fe)
		}
	}
	if err := fs.Err(); err != nil {
		return err
	}
	if installed, err := h.installed(ctx, a.ID, req.OrganizationID); err != nil {
		return err
	} else if installed {
		return errs.New(errs.Conflict, "organization %q has already installed this app; change its settings with PATCH /v1/installations/{installation}/settings", req.OrganizationID)
	}
	l := Link{AppID: a.ID, OrganizationID: req.OrganizationID, UserID: req.UserID}
	token, err := h.store.CreateLink(ctx, &l)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, linkResponse{URL: h.publicURL + Path + token, ExpiresAt: l.ExpiresAt})
}

func (h *Handler) installed(ctx context.Context, appID, organizationID string) (bool, error) {
	insts, err := h.settings.Installations(ctx, settings.InstallationFilter{AppIDs: []string{appID}, OrganizationID: organizationID})
	return len(insts) > 0, err
}

// show renders the form. Opening it changes nothing but the form cookie.
func (h *Handler) show(c echo.Context) error {
	ctx := c.Request().Context()
	token := c.Param("link")
	l, err := h.store.Link(ctx, token)
	if err != nil {
		return h.problem(c, app.App{}, err)
	}
	a, err := h.apps.FindByID(ctx, l.AppID)
	if err != nil {
		return h.problem(c, app.App{}, err)
	}
	if installed, err := h.installed(ctx, a.ID, l.OrganizationID); err != nil {
		return h.problem(c, a, err)
	} else if installed {
		return h.problem(c, a, errs.New(errs.Conflict, "%s is already installed for this organization", a.Name))
	}
	defs, err := h.settings.Definitions(ctx, a.ID, settings.Organization)
	if err != nil {
		return h.problem(c, a, err)
	}
	return h.form(c, http.StatusOK, token, a, l, defs, nil, nil)
}

// submit checks the form token, then installs with exactly what
// settings.Store.Install accepts from the API: its errors are shown next
// to the fields they name.
func (h *Handler) submit(c echo.Context) error {
	ctx := c.Request().Context()
	token := c.Param("link")
	l, err := h.store.Link(ctx, token)
	if err != nil {
		return h.problem(c, app.App{}, err)
	}
	a, err := h.apps.FindByID(ctx, l.AppID)
	if err != nil {
		return h.problem(c, app.App{}, err)
	}
	form, err := readForm(c)
	if err != nil {
		return h.problem(c, a, err)
	}
	if !h.checkFormToken(c, token, form.Get(csrfField)) {
		return h.problem(c, a, errs.New(errs.Forbidden,
			"this form could not be checked: it was opened in another browser or window, or cookies are off; open the link again and submit it from there"))
	}
	defs, err := h.settings.Definitions(ctx, a.ID, settings.Organization)
	if err != nil {
		return h.problem(c, a, err)
	}
	values := map[string]string{}
	for _, d := range defs {
		if d.Fixed() || d.Managed() {
			continue // not on the form, and the API refuses them too
		}
		values[d.Key] = form.Get(d.Key)
	}
	inst, used, err := h.store.Install(ctx, token, values)
	var e *errs.Error
	switch {
	case errors.As(err, &e) && (e.Code == errs.Invalid || e.Code == errs.Conflict):
		return h.form(c, httpapi.Status(e.Code), token, a, l, defs, values, e)
	case err != nil:
		return h.problem(c, a, err)
	}
	h.log.Info("installed through an install link", "installation_id", inst.ID, "app_id", a.ID)
	return h.done(c, a, used, inst)
}

// readForm reads a urlencoded form of at most httpapi.MaxBodyBytes, the
// API's limit too.
func readForm(c echo.Context) (interface{ Get(string) string }, error) {
	r := c.Request()
	if mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType)); mt != echo.MIMEApplicationForm {
		return nil, errs.New(errs.BadRequest, "the form must be sent as application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(c.Response(), r.Body, httpapi.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		return nil, errs.New(errs.BadRequest, "the form cannot be read")
	}
	return r.PostForm, nil
}

// CSRF protection (a double-submit cookie, signed): the form page sets a
// random nonce in a cookie that is HttpOnly, SameSite=Strict and scoped to
// this link's path, and puts HMAC-SHA256(link token, nonce) in a hidden
// field. A submission must bring both, and they must agree. Another site
// cannot read the cookie, and the browser does not send it on a
// cross-site POST; a value for the field cannot be made without the link's
// token, which only the URL holds. No server-side state and no extra key:
// each link is its own key.
const (
	csrfCookie = "latchkey_install"
	csrfField  = "_csrf" // setting keys start with a letter: no clash
)

func formToken(linkToken, nonce string) string {
	mac := hmac.New(sha256.New, []byte(linkToken))
	mac.Write([]byte("install-form:" + nonce))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// formNonce returns the browser's nonce for this link, setting a new one
// when it has none (so two tabs of one link share it).
func (h *Handler) formNonce(c echo.Context, linkToken string, expires time.Time) string {
	if ck, err := c.Cookie(csrfCookie); err == nil && len(ck.Value) == 43 {
		return ck.Value
	}
	nonce := secret.NewToken()
	http.SetCookie(c.Response(), &http.Cookie{
		Name:     csrfCookie,
		Value:    nonce,
		Path:     Path + linkToken,
		Expires:  expires,
		HttpOnly: true,
		Secure:   strings.HasPrefix(h.publicURL, "https://"),
		SameSite: http.SameSiteStrictMode,
	})
	return nonce
}

func (h *Handler) checkFormToken(c echo.Context, linkToken, got string) bool {
	ck, err := c.Cookie(csrfCookie)
	if err != nil || ck.Value == "" || got == "" {
		return false
	}
	return hmac.Equal([]byte(got), []byte(formToken(linkToken, ck.Value)))
}
