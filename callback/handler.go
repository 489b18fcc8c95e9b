package callback

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/internal/webpage"
	"github.com/latchkey/latchkey/oauthconfig"
	"github.com/latchkey/latchkey/oauthconfig/connection"
	"github.com/latchkey/latchkey/oauthconfig/token"
	"github.com/latchkey/latchkey/settings"
)

// CallbackPath is Latchkey's redirect URI path, registered at providers.
const CallbackPath = "/oauth/callback"

const browserCookie = "latchkey_flow"

// Small interfaces over the stores this package reads, declared here where
// they are used.
type (
	appFinder interface {
		Find(ctx context.Context, accountID, ref string) (app.App, error)
		FindByID(ctx context.Context, id string) (app.App, error)
	}
	installations interface {
		Installation(ctx context.Context, id string) (settings.Installation, error)
		Resolve(ctx context.Context, inst settings.Installation, userID string) (settings.Resolved, error)
		Check(ctx context.Context, appID, key, value string) error
	}
	configFinder interface {
		Find(ctx context.Context, appID, id string) (oauthconfig.Config, error)
		FindByID(ctx context.Context, id string) (oauthconfig.Config, error)
	}
	tokenExchanger interface {
		Exchange(ctx context.Context, cfg *oauthconfig.Config, vars token.Vars, meta token.LogMeta) (token.Token, error)
	}
	tokenSaver interface {
		Save(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config, tok token.Token) error
	}
)

var (
	_ appFinder      = (*app.Store)(nil)
	_ installations  = (*settings.Store)(nil)
	_ configFinder   = (*oauthconfig.Store)(nil)
	_ tokenExchanger = (*token.Client)(nil)
	_ tokenSaver     = (*connection.Connections)(nil)
)

// Handler serves authorize links and the callback.
type Handler struct {
	store     *Store
	apps      appFinder
	installs  installations
	configs   configFinder
	tokens    tokenExchanger
	saver     tokenSaver
	cipher    *secret.Cipher
	publicURL string // Latchkey's own base URL, without a trailing slash
	log       *slog.Logger
}

// Deps are what a Handler works with.
type Deps struct {
	Store         *Store
	Apps          appFinder
	Installations installations
	Configs       configFinder
	Tokens        tokenExchanger
	Saver         tokenSaver
	Cipher        *secret.Cipher
	PublicURL     string
	Log           *slog.Logger
}

// NewHandler returns a Handler.
func NewHandler(d Deps) *Handler {
	return &Handler{store: d.Store, apps: d.Apps, installs: d.Installations, configs: d.Configs,
		tokens: d.Tokens, saver: d.Saver, cipher: d.Cipher, publicURL: strings.TrimRight(d.PublicURL, "/"), log: d.Log}
}

// RedirectURI is the callback URL providers redirect to.
func (h *Handler) RedirectURI() string { return h.publicURL + CallbackPath }

// Register adds the API route to api (behind app.RequireKey) and the end
// user's routes to public.
func (h *Handler) Register(api *echo.Group, public *echo.Echo) {
	api.POST("/installations/:installation/authorize-links", func(c echo.Context) error { return h.createLink(c, AuthorizePath) })
	api.POST("/installations/:installation/connect-links", func(c echo.Context) error { return h.createLink(c, ConnectPath) })
	public.GET(AuthorizePath+":link", h.authorize)
	public.GET(ConnectPath+":link", h.connect)
	public.GET(CallbackPath, h.callback)
}

// AuthorizeURL makes a fresh authorize link for an installation, config and
// user, for errors that ask an end user to connect (again). It implements
// connection.Linker.
func (h *Handler) AuthorizeURL(ctx context.Context, installationID, configID, userID string) (string, error) {
	l := Link{InstallationID: installationID, ConfigID: configID, UserID: userID}
	token, err := h.store.CreateLink(ctx, &l)
	if err != nil {
		return "", err
	}
	return h.publicURL + AuthorizePath + token, nil
}

var _ connection.Linker = (*Handler)(nil)

type linkRequest struct {
	ConfigID  string `json:"config_id"`
	UserID    string `json:"user_id"`
	ReturnURL string `json:"return_url"`
}

type linkResponse struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// createLink makes a link to path (AuthorizePath or ConnectPath) plus a
// token: both take the same links.
func (h *Handler) createLink(c echo.Context, path string) error {
	id, err := httpapi.Param(c, "installation")
	if err != nil {
		return err
	}
	var req linkRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	inst, err := h.installs.Installation(ctx, id)
	if err != nil {
		return err
	}
	a, err := h.apps.Find(ctx, app.AccountID(c), inst.AppID)
	if errs.Is(err, errs.NotFound) {
		return errs.NotFoundf("installation %q not found", id)
	} else if err != nil {
		return err
	}
	u, expires, err := h.MakeLink(ctx, inst, a, path, req.ConfigID, req.UserID, req.ReturnURL)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, linkResponse{URL: u, ExpiresAt: expires})
}

// MakeLink makes an authorize or connect link (path is AuthorizePath or
// ConnectPath) for installation inst of app a, which the caller owns, as
// the API does: for an authorization_code config of the app, a user id,
// and optionally one of the app's return URLs. It returns the URL and when
// it stops working. A bad argument is an errs.Invalid naming config_id,
// user_id or return_url; other errors are the store's.
func (h *Handler) MakeLink(ctx context.Context, inst settings.Installation, a app.App, path, configID, userID, returnURL string) (string, time.Time, error) {
	var fs errs.Fields
	if fe := settings.CheckID("user_id", userID); fe != nil {
		fs = append(fs, *fe)
	}
	if configID == "" {
		fs.Add("config_id", "is required")
	} else if cfg, err := h.configs.Find(ctx, a.ID, configID); errs.Is(err, errs.NotFound) {
		fs.Add("config_id", "the app has no OAuth config with this id")
	} else if err != nil {
		return "", time.Time{}, err
	} else if cfg.GrantType != oauthconfig.AuthorizationCode {
		fs.Add("config_id", "OAuth config %q uses the %s grant, which has no end-user sign-in; only authorization_code configs have authorize links", cfg.Name, cfg.GrantType)
	}
	if returnURL != "" && !a.HasReturnURL(returnURL) {
		fs.Add("return_url", "is not one of the app's return_urls")
	}
	if err := fs.Err(); err != nil {
		return "", time.Time{}, err
	}
	l := Link{InstallationID: inst.ID, ConfigID: configID, UserID: userID, ReturnURL: returnURL}
	token, err := h.store.CreateLink(ctx, &l)
	if err != nil {
		return "", time.Time{}, err
	}
	return h.publicURL + path + token, l.ExpiresAt, nil
}

// authorize starts a trip to the provider: a fresh state and PKCE verifier,
// a cookie that binds them to this browser, and a redirect to the config's
// rendered link.
func (h *Handler) authorize(c echo.Context) error {
	ctx := c.Request().Context()
	l, err := h.store.Link(ctx, c.Param("link"))
	if err != nil {
		return h.page(c, resultPage{Problem: err})
	}
	inst, cfg, a, err := h.load(ctx, l.InstallationID, l.ConfigID)
	if err != nil {
		return h.page(c, resultPage{Problem: err})
	}
	resolved, err := h.installs.Resolve(ctx, inst, l.UserID)
	if err != nil {
		return h.page(c, resultPage{App: a, Problem: err})
	}
	state, browser := secret.NewToken(), secret.NewToken()
	flow := map[string]string{"state": state}
	st := State{InstallationID: inst.ID, ConfigID: cfg.ID, UserID: l.UserID, ReturnURL: l.ReturnURL, BrowserHash: secret.Hash(browser)}
	if cfg.PKCE == "S256" {
		verifier := token.NewVerifier()
		flow["code_challenge"] = token.Challenge(verifier)
		if st.CodeVerifier, err = h.cipher.Seal(verifier, verifierAAD(secret.Hash(state))); err != nil {
			return h.page(c, resultPage{App: a, Problem: err})
		}
	}
	vars := token.FlowValues(&cfg, resolved.Values, resolved.Secret, h.RedirectURI(), flow)
	link, err := token.BuildLink(&cfg, vars, false)
	if err != nil {
		return h.page(c, resultPage{App: a, Problem: err})
	}
	if err := h.store.CreateState(ctx, &st, state); err != nil {
		return h.page(c, resultPage{App: a, Problem: err})
	}
	http.SetCookie(c.Response(), &http.Cookie{
		Name:     browserCookie,
		Value:    browser,
		Path:     CallbackPath,
		MaxAge:   int(StateTTL.Seconds()),
		HttpOnly: true,
		Secure:   strings.HasPrefix(h.publicURL, "https://"),
		// Lax: the cookie rides the provider's top-level redirect back.
		SameSite: http.SameSiteLaxMode,
	})
	noStore(c)
	return c.Redirect(http.StatusFound, link)
}

func (h *Handler) load(ctx context.Context, installationID, configID string) (settings.Installation, oauthconfig.Config, app.App, error) {
	inst, err := h.installs.Installation(ctx, installationID)
	if err != nil {
		return settings.Installation{}, oauthconfig.Config{}, app.App{}, err
	}
	cfg, err := h.configs.FindByID(ctx, configID)
	if err != nil {
		return settings.Installation{}, oauthconfig.Config{}, app.App{}, err
	}
	a, err := h.apps.FindByID(ctx, inst.AppID)
	return inst, cfg, a, err
}

// callback is where the provider sends the user back (RFC 6749 §4.1.2).
// The state is checked and spent before anything else, so no replay,
// expired or foreign state ever reaches the token URL.
func (h *Handler) callback(c echo.Context) error {
	ctx := c.Request().Context()
	q := c.Request().URL.Query()
	state := q.Get("state")
	if state == "" || len(state) > 512 {
		return h.page(c, resultPage{Problem: errs.New(errs.BadRequest, "the provider's redirect has no state; start again from the app")})
	}
	var browser string
	if ck, err := c.Cookie(browserCookie); err == nil {
		browser = ck.Value
	}
	st, err := h.store.ConsumeState(ctx, state, browser)
	if err != nil {
		return h.page(c, resultPage{Problem: err})
	}
	inst, cfg, a, err := h.load(ctx, st.InstallationID, st.ConfigID)
	if err != nil {
		return h.page(c, resultPage{Problem: err})
	}
	result := resultPage{App: a, Config: cfg, ReturnURL: st.ReturnURL, InstallationID: inst.ID, UserID: st.UserID}
	// RFC 6749 §4.1.2.1: the provider reports errors in the redirect.
	if code := q.Get("error"); code != "" {
		result.ProviderError = code
		if code == "access_denied" {
			result.Problem = errs.New(errs.Forbidden, "you did not allow access")
		} else {
			// Untrusted text: it passes the redactor with the
			// installation's secrets before it is shown.
			var r token.Vars
			if resolved, err := h.installs.Resolve(ctx, inst, st.UserID); err == nil {
				r = token.Vars{Values: resolved.Values, Secret: resolved.Secret}
			}
			red := token.Redactor(r)
			result.Problem = errs.New(errs.Upstream, "the provider reported an error: %s%s", red.String(clip(code, 100)), red.String(describe(q.Get("error_description"))))
		}
		return h.page(c, result)
	}
	authCode, err := token.ExtractCode(&cfg, q)
	if err != nil {
		result.Problem = err
		return h.page(c, result)
	}
	resolved, err := h.installs.Resolve(ctx, inst, st.UserID)
	if err != nil {
		result.Problem = err
		return h.page(c, result)
	}
	// Values of the redirect the config keeps (QuickBooks' realmId, Zoho's
	// accounts-server). They come from outside and the exchange may use
	// them (a token URL's base): each must fit its setting first.
	callbackValues := make(map[string]string, len(cfg.CallbackMappings))
	for _, m := range cfg.CallbackMappings {
		v := q.Get(m.Param)
		if v == "" {
			continue
		}
		if err := h.installs.Check(ctx, inst.AppID, m.Setting, v); err != nil {
			result.Problem = errs.New(errs.Upstream, "the provider's redirect has a %s that does not fit the app's settings: %s", clip(m.Param, 100), errs.MessageOf(err))
			return h.page(c, result)
		}
		callbackValues[m.Setting] = v
		resolved.Values[m.Setting] = v
	}
	flow := map[string]string{"state": state, "auth_code": authCode}
	if st.CodeVerifier != "" {
		verifier, err := h.cipher.Open(st.CodeVerifier, verifierAAD(st.StateHash))
		if err != nil {
			result.Problem = errs.Wrap(errs.Internal, err, "the sign-in's PKCE verifier cannot be read")
			return h.page(c, result)
		}
		flow["code_verifier"] = verifier
		flow["code_challenge"] = token.Challenge(verifier)
	}
	vars := token.FlowValues(&cfg, resolved.Values, resolved.Secret, h.RedirectURI(), flow)
	var entryID string
	meta := token.LogMeta{InstallationID: inst.ID, UserID: st.UserID,
		Recorded: func(id string) { entryID = id }}
	tok, err := h.tokens.Exchange(ctx, &cfg, vars, meta)
	if err != nil {
		// The page's reference finds the failed request in the request log
		// (when the config logs requests; else it is the request id).
		result.Problem, result.Reference = err, entryID
		return h.page(c, result)
	}
	tok.Callback = callbackValues
	if err := h.saver.Save(ctx, inst, st.UserID, &cfg, tok); err != nil {
		result.Problem = err
		return h.page(c, result)
	}
	h.log.Info("account connected", "installation_id", inst.ID, "config_id", cfg.ID)
	return h.page(c, result)
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func describe(s string) string {
	if s == "" {
		return ""
	}
	return " (" + clip(s, 300) + ")"
}

func noStore(c echo.Context) { webpage.NoStore(c.Response().Header()) }

// page answers the end user: a redirect to the app's registered return URL
// when the flow named one, otherwise a small HTML page.
func (h *Handler) page(c echo.Context, r resultPage) error {
	noStore(c)
	if r.Problem != nil {
		var e *errs.Error
		if !errors.As(r.Problem, &e) || httpapi.Status(e.Code) >= 500 && e.Code != errs.Upstream && e.Code != errs.Timeout {
			h.log.Error("oauth flow failed", "request_id", httpapi.RequestID(c), "error", r.Problem.Error())
		} else if e.Code == errs.Upstream || e.Code == errs.Timeout {
			// The page shows the log entry's id; this line ties it to the
			// request id for configs that do not log requests.
			h.log.Warn("oauth flow failed at the provider", "request_id", httpapi.RequestID(c),
				"reference", r.Reference, "installation_id", r.InstallationID, "error", e.Message)
		}
		// Another try needs a fresh link: the state is spent, and the
		// link that started the flow may have been an authorize link.
		if r.ReturnURL == "" && r.RetryURL == "" && r.InstallationID != "" && r.Config.ID != "" {
			r.RetryURL = h.retryURL(c.Request().Context(), r.InstallationID, r.Config.ID, r.UserID)
		}
	}
	if r.ReturnURL != "" {
		u, err := url.Parse(r.ReturnURL)
		if err == nil {
			q := u.Query()
			q.Set("installation_id", r.InstallationID)
			q.Set("user_id", r.UserID)
			if r.Problem == nil {
				q.Set("status", "connected")
			} else {
				q.Set("status", "error")
				q.Set("error", string(errs.CodeOf(r.Problem)))
			}
			u.RawQuery = q.Encode()
			return c.Redirect(http.StatusFound, u.String())
		}
	}
	return renderPage(c, r)
}
