// Package console serves the developer console: server-rendered pages under
// /console/ where an app developer configures apps, settings, OAuth configs
// and APIs, installs and connects, tries calls and reads the request log,
// in a browser instead of with curl.
//
// The console is another face of the REST API, not a second set of rules:
// every page reads and writes through the same stores and functions as the
// API's handlers, with the same validation, and sees exactly what the
// signed-in API key's account sees (another account's ids are not found).
// Its pages use internal/webpage's layout, stylesheet and strict CSP, run
// no script, and work with the keyboard alone.
package console

import (
	"errors"
	"html/template"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/callback"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/internal/webpage"
	"github.com/latchkey/latchkey/oauthconfig"
	"github.com/latchkey/latchkey/oauthconfig/call"
	"github.com/latchkey/latchkey/oauthconfig/connection"
	"github.com/latchkey/latchkey/oauthconfig/token"
	"github.com/latchkey/latchkey/settings"
)

// Path is where the console lives.
const Path = "/console"

const (
	cookieName   = "latchkey_console"        // the session id
	signInCookie = "latchkey_console_signin" // the sign-in form's nonce
	csrfField    = "_csrf"
	pageSize     = 50
)

// Deps are what the console works with: the stores and services the REST
// API's handlers use. The console uses most of each store's methods, so it
// takes them as they are rather than through interfaces that would restate
// them.
type Deps struct {
	Sessions    *Sessions
	Apps        *app.Store
	Settings    *settings.Store
	Configs     *oauthconfig.Store
	RequestLog  *token.RequestLog
	Connections *connection.Connections
	Webhooks    *app.Webhooks
	Caller      *call.Caller
	Links       *callback.Handler
	PublicURL   string // Latchkey's base URL, as browsers reach it
	Log         *slog.Logger
}

// Handler serves the console.
type Handler struct {
	Deps
	secure bool // cookies only over HTTPS
}

// New returns a Handler.
func New(d Deps) *Handler {
	d.PublicURL = strings.TrimRight(d.PublicURL, "/")
	return &Handler{Deps: d, secure: strings.HasPrefix(d.PublicURL, "https://")}
}

// Register adds the console's routes to e.
func (h *Handler) Register(e *echo.Echo) {
	e.GET(Path, h.home)
	e.GET(Path+"/", h.home)
	pub := e.Group(Path, h.pages)
	pub.GET("/sign-in", h.signInForm)
	pub.POST("/sign-in", h.signIn)
	g := e.Group(Path, h.pages, h.signedIn)
	g.POST("/sign-out", h.signOut)
	g.GET("/find", h.find)
	g.GET("/apps", h.listApps)
	g.GET("/apps/new", h.newApp)
	g.POST("/apps", h.createApp)
	g.GET("/apps/:app", h.showApp)
	g.POST("/apps/:app", h.updateApp)
	g.GET("/apps/:app/settings", h.listSettings)
	g.POST("/apps/:app/settings", h.createSetting)
	g.GET("/apps/:app/settings/:key", h.showSetting)
	g.POST("/apps/:app/settings/:key", h.updateSetting)
	g.POST("/apps/:app/settings/:key/delete", h.deleteSetting)
	g.GET("/apps/:app/configs", h.listConfigs)
	g.GET("/apps/:app/configs/new", h.newConfig)
	g.POST("/apps/:app/configs", h.createConfig)
	g.GET("/apps/:app/configs/:config", h.showConfig)
	g.POST("/apps/:app/configs/:config", h.updateConfig)
	g.POST("/apps/:app/configs/:config/logging", h.setLogging)
	g.GET("/apps/:app/configs/:config/check", h.checkPage)
	g.POST("/apps/:app/configs/:config/explain", h.explain)
	g.POST("/apps/:app/configs/:config/test-extraction", h.testExtraction)
	g.POST("/apps/:app/configs/:config/token", h.fetchToken)
	g.GET("/apps/:app/apis", h.listAPIs)
	g.POST("/apps/:app/apis", h.createAPI)
	g.GET("/apps/:app/apis/:api", h.showAPI)
	g.POST("/apps/:app/apis/:api", h.updateAPI)
	g.POST("/apps/:app/apis/:api/try", h.tryAPI)
	g.GET("/apps/:app/installations", h.listInstallations)
	g.POST("/apps/:app/installations", h.install)
	g.GET("/installations/:installation", h.showInstallation)
	g.POST("/installations/:installation/links", h.makeLink)
	g.POST("/installations/:installation/check", h.checkConnection)
	g.POST("/installations/:installation/remove", h.removeConnection)
	g.GET("/apps/:app/logs", h.requestLog)
	g.GET("/apps/:app/deliveries", h.deliveries)
}

func (h *Handler) home(c echo.Context) error {
	webpage.NoStore(c.Response().Header())
	return c.Redirect(http.StatusSeeOther, Path+"/apps")
}

// pages turns the errors of the console's handlers into pages rather than
// the API's problem documents.
func (h *Handler) pages(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := next(c); err != nil {
			return h.problem(c, err)
		}
		return nil
	}
}

// session is the signed-in browser a request comes from.
type session struct {
	Session
	id string // the cookie's value
}

const sessionKey = "console_session"

func sessionOf(c echo.Context) session {
	s, _ := c.Get(sessionKey).(session)
	return s
}

// accountID is the account whose things a request may see.
func accountID(c echo.Context) string { return sessionOf(c).AccountID }

// signedIn admits requests of a live session; others go to the sign-in
// page. A POST must carry the session's form token.
func (h *Handler) signedIn(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ck, err := c.Cookie(cookieName)
		if err != nil || ck.Value == "" {
			return h.toSignIn(c)
		}
		sess, err := h.Sessions.Find(c.Request().Context(), ck.Value)
		if errs.Is(err, errs.Unauthorized) {
			h.clearCookie(c, cookieName, Path)
			return h.toSignIn(c)
		}
		if err != nil {
			return err
		}
		c.Set(sessionKey, session{Session: sess, id: ck.Value})
		if c.Request().Method == http.MethodPost {
			form, err := readForm(c)
			if err != nil {
				return err
			}
			if !checkFormToken(ck.Value, "form", form.Get(csrfField)) {
				return errs.New(errs.Forbidden, "this form could not be checked: it was not sent from a page of this session; reload the page and try again")
			}
		}
		return next(c)
	}
}

func (h *Handler) toSignIn(c echo.Context) error {
	webpage.NoStore(c.Response().Header())
	return c.Redirect(http.StatusSeeOther, Path+"/sign-in")
}

func (h *Handler) clearCookie(c echo.Context, name, path string) {
	http.SetCookie(c.Response(), &http.Cookie{Name: name, Value: "", Path: path, MaxAge: -1,
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteStrictMode})
}

const formKey = "console_form"

// readForm reads a urlencoded form of at most httpapi.MaxBodyBytes (the
// API's limit too), once per request.
func readForm(c echo.Context) (url.Values, error) {
	if f, ok := c.Get(formKey).(url.Values); ok {
		return f, nil
	}
	r := c.Request()
	if mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType)); mt != echo.MIMEApplicationForm {
		return nil, errs.New(errs.BadRequest, "the form must be sent as application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(c.Response(), r.Body, httpapi.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		return nil, errs.New(errs.BadRequest, "the form cannot be read")
	}
	c.Set(formKey, r.PostForm)
	return r.PostForm, nil
}

// view is the data of every console page: what the layout's navigation
// needs, and the page's own data in D.
type view struct {
	CSRF    string   // the session's form token; "" before sign-in
	Key     string   // the signed-in key's prefix
	App     *app.App // the app the page is about, for its sections
	Section string   // which section the page is in, for aria-current
	Notice  string   // what the last action did
	D       any
}

// render writes a console page with status (0 is 200).
func (h *Handler) render(c echo.Context, t *template.Template, status int, title string, v view) error {
	if s := sessionOf(c); s.id != "" {
		v.CSRF, v.Key = formToken(s.id, "form"), s.KeyPrefix
	}
	if v.Notice == "" {
		v.Notice = notices[c.QueryParam("done")]
	}
	return webpage.Render(c, t, webpage.Page{
		Status:  status,
		Title:   title + " · Latchkey console",
		Heading: "Latchkey developer console",
		Form:    true,
		Wide:    true,
		Body:    v,
	})
}

// notices are what a redirect after a change says (?done=...).
var notices = map[string]string{
	"created":   "Created.",
	"saved":     "Saved.",
	"deleted":   "Deleted.",
	"installed": "Installed.",
}

// redirect answers a change with a redirect to the page that shows it
// (POST, then GET: a reload does not send the form again).
func redirect(c echo.Context, path, done string) error {
	if done != "" {
		path += "?done=" + done
	}
	webpage.NoStore(c.Response().Header())
	return c.Redirect(http.StatusSeeOther, path)
}

var problemTemplate = parse("console-problem", `
<h1>{{.D.Title}}</h1>
<p>{{.D.Message}}</p>
<p class="ref">Reference: <code>{{.D.Reference}}</code></p>
<p><a href="/console/apps">Back to your apps</a></p>
`)

// problem shows why a page cannot be shown, with the error's status. An
// unexpected failure is logged and shown as a generic message.
func (h *Handler) problem(c echo.Context, err error) error {
	var (
		e  *errs.Error
		he *echo.HTTPError // Echo's own: no such route, wrong method
	)
	title, msg, status := "Something went wrong", "Something went wrong on our side. Try again in a moment.", http.StatusInternalServerError
	switch {
	case errors.As(err, &e) && e.Code != errs.Internal && e.Code != errs.Unavailable:
		status, msg = httpapi.Status(e.Code), sentence(e.Message)
		switch e.Code {
		case errs.NotFound:
			title = "Not found"
		case errs.Forbidden:
			title = "Not allowed"
		default:
			title = "This cannot be done"
		}
	case errors.As(err, &he) && he.Code == http.StatusNotFound:
		status, title, msg = he.Code, "Not found", "There is no such page."
	case errors.As(err, &he) && he.Code < 500:
		status, title, msg = he.Code, "This cannot be done", http.StatusText(he.Code)+"."
	default:
		h.Log.Error("console page failed", "request_id", httpapi.RequestID(c), "route", c.Path(), "error", err.Error())
	}
	return h.render(c, problemTemplate, status, title, view{D: map[string]string{
		"Title": title, "Message": msg, "Reference": httpapi.RequestID(c),
	}})
}

var signInTemplate = parse("console-sign-in", `
<h1>Sign in</h1>
<p>Paste an API key of your developer account (make one with <code>latchkey keys create -account NAME</code>). It is checked once and not kept: this browser gets a session that ends after {{.D.MaxAge}}, or {{.D.Idle}} without use, or when you sign out.</p>
{{template "summary" .D.Form}}
<form method="post" action="/console/sign-in" novalidate>
<input type="hidden" name="_csrf" value="{{.D.Token}}">
{{range .D.Form.Inputs}}{{template "input" .}}{{end}}
<div class="actions"><button type="submit" id="sign-in">Sign in</button></div>
</form>
`)

// signInForm shows the sign-in form, with a fresh nonce cookie for its
// token unless the browser has one.
func (h *Handler) signInForm(c echo.Context) error {
	return h.showSignIn(c, http.StatusOK, nil)
}

func (h *Handler) showSignIn(c echo.Context, status int, problem error) error {
	nonce := ""
	if ck, err := c.Cookie(signInCookie); err == nil && len(ck.Value) == 43 {
		nonce = ck.Value
	} else {
		nonce = secret.NewToken()
		http.SetCookie(c.Response(), &http.Cookie{Name: signInCookie, Value: nonce, Path: Path + "/sign-in",
			MaxAge: 3600, HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteStrictMode})
	}
	f := newForm(problem, nil)
	f.ID = "signin"
	f.add(input{Name: "key", Label: "API key", Type: "password", Required: true,
		Hint: "It starts with lk_."})
	return h.render(c, signInTemplate, status, f.title("Sign in"), view{D: map[string]any{
		"Token": formToken(nonce, "sign-in"), "Form": f,
		"MaxAge": "12 hours", "Idle": "2 hours",
	}})
}

// signIn checks the key with the API's own check and starts a session.
func (h *Handler) signIn(c echo.Context) error {
	form, err := readForm(c)
	if err != nil {
		return err
	}
	nonce := ""
	if ck, err := c.Cookie(signInCookie); err == nil {
		nonce = ck.Value
	}
	if !checkFormToken(nonce, "sign-in", form.Get(csrfField)) {
		return errs.New(errs.Forbidden, "this form could not be checked: it was opened in another browser or window, or cookies are off; open the sign-in page again")
	}
	ctx := c.Request().Context()
	key, err := h.Apps.Authenticate(ctx, strings.TrimSpace(form.Get("key")))
	if errs.Is(err, errs.Unauthorized) {
		return h.showSignIn(c, http.StatusUnauthorized, errs.Fields{{Field: "key", Message: "is not a key Latchkey knows"}}.Err())
	}
	if err != nil {
		return err
	}
	id, _, err := h.Sessions.Create(ctx, key)
	if err != nil {
		return err
	}
	h.clearCookie(c, signInCookie, Path+"/sign-in")
	// Max-Age, not Expires: the browser's clock need not agree with ours.
	http.SetCookie(c.Response(), &http.Cookie{Name: cookieName, Value: id, Path: Path, MaxAge: int(MaxAge.Seconds()),
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteStrictMode})
	h.Log.Info("console sign-in", "account_id", key.AccountID, "key", key.Prefix)
	return redirect(c, Path+"/apps", "")
}

// signOut ends the session: the row goes, and the cookie with it.
func (h *Handler) signOut(c echo.Context) error {
	if err := h.Sessions.Delete(c.Request().Context(), sessionOf(c).id); err != nil {
		return err
	}
	h.clearCookie(c, cookieName, Path)
	return redirect(c, Path+"/sign-in", "")
}

// pager is a "next page" link: the current page's query with the cursor
// of its last row.
type pager struct {
	Next  string // "" on the last page
	First string // "" on the first page
}

// newPager returns the pager of a page that showed n of the limit+1 rows
// it asked for; q is the page's query, and cursor the query parameters
// that continue after its last row.
func newPager(path string, q url.Values, cursor map[string]string, n, limit int) pager {
	var p pager
	first := cloneValues(q)
	for k := range cursor {
		if q.Get(k) != "" {
			p.First = "x"
		}
		first.Del(k)
	}
	if p.First != "" {
		p.First = withQuery(path, first)
	}
	if n > limit {
		next := cloneValues(q)
		for k, v := range cursor {
			next.Set(k, v)
		}
		p.Next = withQuery(path, next)
	}
	return p
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, vs := range q {
		if k != "done" {
			out[k] = append([]string(nil), vs...)
		}
	}
	return out
}

func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// when shows a time for a table: UTC, to the second.
func when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}
