// Package call calls an app's APIs with a connection's tokens: the proxy,
// the rendered headers, and the routes that get a token now, exchange a
// pasted code or check a connection.
package call

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/jpath"
	"github.com/latchkey/latchkey/internal/outbound"
	"github.com/latchkey/latchkey/internal/template"
	"github.com/latchkey/latchkey/oauthconfig"
	"github.com/latchkey/latchkey/oauthconfig/connection"
	"github.com/latchkey/latchkey/oauthconfig/token"
	"github.com/latchkey/latchkey/settings"
)

// MaxProxyBody is the largest request body a proxied call may carry. The
// body is kept in memory so that a call refused for an expired token can
// be sent again after the renewal.
const MaxProxyBody = 10 << 20

// maxExpiredBody is how much of a response is read to look for the
// config's "token expired" condition in its body.
const maxExpiredBody = 1 << 20

// apiFinder finds APIs and apps, and gives the call path's own read
// (see lookup) their caches.
type apiFinder interface {
	Find(ctx context.Context, accountID, ref string) (app.App, error)
	FindAPI(ctx context.Context, appID, ref string) (app.API, error)
	CachedApp(accountID, ref string) (app.App, bool)
	CachedAPI(appID, ref string) (app.API, bool)
	Mark() app.Marked
}

var _ apiFinder = (*app.Store)(nil)

// Caller calls an app's APIs with credentials: the proxy, the rendered
// headers for platforms that call themselves, and fetching a token now.
type Caller struct {
	db *gorm.DB // for lookup's read on a cache miss
	// share bounds the connections that calls' reads on a cache miss
	// use at once, so that however many calls miss together (after a
	// restart, in a renewal storm) other requests find free ones.
	share     *database.Share
	apps      apiFinder
	settings  *settings.Store
	configs   *oauthconfig.Store
	refresher *connection.Refresher
	connector *connection.Connector
	http      *outbound.Client
}

// NewCaller returns a Caller that sends through c, an outbound client that
// does not follow redirects: credentials must never reach another host.
// It reads db itself on a cache miss (see lookup).
func NewCaller(db *gorm.DB, apps apiFinder, s *settings.Store, configs *oauthconfig.Store, r *connection.Refresher, cn *connection.Connector, c *outbound.Client) *Caller {
	return &Caller{db: db, share: database.NewShare(db), apps: apps, settings: s, configs: configs, refresher: r, connector: cn, http: c}
}

// Register adds the routes to g, which must be behind app.RequireKey.
func (h *Caller) Register(g *echo.Group) {
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}
	g.Match(methods, "/installations/:installation/users/:user/apis/:api/proxy/*", h.proxy)
	g.Match(methods, "/installations/:installation/apis/:api/proxy/*", h.proxy)
	g.GET("/installations/:installation/users/:user/apis/:api/headers", h.headers)
	g.GET("/installations/:installation/apis/:api/headers", h.headers)
	g.POST("/installations/:installation/oauth-configs/:config/token", h.fetchToken)
	g.POST("/installations/:installation/oauth-configs/:config/code", h.exchangeCode)
	g.POST("/installations/:installation/oauth-configs/:config/check", h.checkConnection)
}

// call is one API call being prepared: what it needs, resolved.
type call struct {
	inst   settings.Installation
	api    app.API
	cfg    *oauthconfig.Config // nil for an API without an OAuth config
	userID string
	values settings.Resolved
}

// target finds the installation, API and config of a request to the proxy
// or the headers route (see lookup). Its errors come in the order of the
// request's parts: the installation's path parameter, the installation,
// the API's path parameter.
func (h *Caller) target(ctx context.Context, c echo.Context) (target, error) {
	id, err := httpapi.Param(c, "installation")
	if err != nil {
		return target{}, err
	}
	ref, err := httpapi.Param(c, "api")
	if err != nil {
		if _, _, ierr := oauthconfig.CallersInstallation(c, h.settings, h.apps, id); ierr != nil {
			return target{}, ierr
		}
		return target{}, err
	}
	return h.lookup(ctx, app.AccountID(c), id, ref, c.Param("user"))
}

// prepare finds the installation, API and config of a request and returns
// them with settings whose token is fresh.
func (h *Caller) prepare(c echo.Context) (*call, error) {
	ctx := h.share.With(c.Request().Context())
	t, err := h.target(ctx, c)
	if err != nil {
		return nil, err
	}
	return h.prepared(ctx, t, c.Param("user"))
}

// prepareCall finds API ref of app a (the installation's) and its config,
// and returns them with settings whose token is fresh.
func (h *Caller) prepareCall(ctx context.Context, inst settings.Installation, a app.App, ref, userID string) (*call, error) {
	t := target{inst: inst, app: a}
	var err error
	if t.api, err = h.apps.FindAPI(ctx, a.ID, ref); err != nil {
		return nil, err
	}
	if t.api.ConfigID != nil {
		cfg, err := h.configs.FindByID(ctx, *t.api.ConfigID)
		if err != nil {
			t.cfgErr = err
		}
		t.cfg = &cfg
	}
	return h.prepared(ctx, t, userID)
}

// rendered is an API's templates filled in for one call.
type rendered struct {
	base   *url.URL
	header http.Header
	query  url.Values
}

func render(api *app.API, values map[string]string) (rendered, error) {
	fill := func(field, src string, ctx template.Context) (string, error) {
		return token.RenderField("API field "+field, "API field "+field, src, ctx, token.Vars{Values: values}, false)
	}
	var r rendered
	base, err := fill("base_url", api.BaseURL, template.URL)
	if err != nil {
		return rendered{}, err
	}
	if r.base, err = url.Parse(base); err != nil || r.base.Host == "" || r.base.RawQuery != "" {
		return rendered{}, errs.New(errs.Invalid, "API %q: base_url does not render to a URL without a query", api.Name)
	}
	r.header = http.Header{}
	for name, src := range api.Headers {
		v, err := fill("headers."+name, src, template.Header)
		if errors.Is(err, template.ErrOmitted) {
			continue // an optional header without its value
		}
		if err != nil {
			return rendered{}, err
		}
		r.header.Set(name, v)
	}
	r.query = url.Values{}
	for name, src := range api.Query {
		v, err := fill("query."+name, src, template.Query)
		if errors.Is(err, template.ErrOmitted) {
			continue
		}
		if err != nil {
			return rendered{}, err
		}
		// The template is query-escaped for a raw query; the value is
		// kept decoded here and encoded once when the URL is built.
		if v, err = url.QueryUnescape(v); err != nil {
			return rendered{}, errs.New(errs.Invalid, "API field query.%s does not render to a query value", name)
		}
		r.query.Set(name, v)
	}
	return r, nil
}

// target joins the caller's path and query to the API's base URL. The path
// may not leave the base: no empty, "." or ".." segments, no backslashes,
// no encoded slashes, backslashes or dots, no control characters; the
// result must have the base's scheme, host and path prefix.
func (r rendered) target(rawPath, rawQuery string) (*url.URL, error) {
	bad := func(why string) error {
		return errs.New(errs.Invalid, "the call's path %s", why)
	}
	if rawPath != "" {
		for _, seg := range strings.Split(rawPath, "/") {
			lower := strings.ToLower(seg)
			switch {
			case seg == "":
				return nil, bad("has an empty segment (\"//\")")
			case seg == "." || seg == ".." || strings.Contains(lower, "%2e"):
				return nil, bad("has a dot segment")
			case strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.Contains(seg, "\\"):
				return nil, bad("has an encoded slash or a backslash")
			case strings.ContainsFunc(seg, func(r rune) bool { return r < 0x20 || r == 0x7f }):
				return nil, bad("has a control character")
			}
		}
	}
	base := strings.TrimRight(r.base.EscapedPath(), "/")
	joined := base
	if rawPath != "" {
		joined += "/" + rawPath
	}
	u, err := url.Parse(r.base.Scheme + "://" + r.base.Host + joined)
	if err != nil {
		return nil, bad("is not a valid URL path")
	}
	if u.Scheme != r.base.Scheme || u.Host != r.base.Host || !strings.HasPrefix(u.EscapedPath(), base) || u.User != nil {
		return nil, bad("leaves the API's base URL")
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, errs.New(errs.Invalid, "the call's query string is malformed")
	}
	for name, v := range r.query {
		q[name] = v // the API's parameters win: a caller cannot replace a credential
	}
	u.RawQuery = q.Encode()
	return u, nil
}

// proxyPath is what follows ".../proxy/" in the request, still escaped.
func proxyPath(c echo.Context) string {
	p := c.Request().URL.EscapedPath()
	// The route's fixed part has 6 segments, 8 with /users/{user}.
	n := 7
	if c.Param("user") != "" {
		n = 9
	}
	parts := strings.SplitN(p, "/", n+1)
	if len(parts) <= n {
		return ""
	}
	return parts[n]
}

// proxy calls the API: the caller's method, path, query, headers and body,
// with the API's rendered headers and query added, and streams the
// response back (see Call).
func (h *Caller) proxy(c echo.Context) error {
	req := c.Request()
	ctx := h.share.With(req.Context())
	t, err := h.target(ctx, c)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, MaxProxyBody+1))
	if err != nil {
		return errs.Wrap(errs.BadRequest, err, "the request body cannot be read")
	}
	if len(body) > MaxProxyBody {
		return errs.New(errs.TooLarge, "request body is larger than %d bytes", MaxProxyBody)
	}
	cl, err := h.prepared(ctx, t, c.Param("user"))
	if err != nil {
		return err
	}
	resp, err := h.do(ctx, cl, Request{
		Method: req.Method, Path: proxyPath(c), RawQuery: req.URL.RawQuery, Header: req.Header, Body: body,
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return stream(c, resp)
}

// Request is what a caller sends to an API through Latchkey.
type Request struct {
	Method   string
	Path     string // escaped, under the API's base URL, without a leading slash
	RawQuery string
	Header   http.Header // the caller's; Authorization and reserved headers are not sent on
	Body     []byte      // at most MaxProxyBody
}

// Call calls API ref of app a (the installation's app, which the caller
// owns) for the installation and userID ("" for an API whose tokens are
// the installation's): the API's rendered headers and query are added to
// r, and an answer that says the token expired makes one renewal and one
// retry. The caller closes the response's body. Errors are *errs.Error:
// NotFound for an unknown API, NotAllowed for a method the API does not
// allow, Invalid for a path that leaves the base URL, and those of
// Refresher.Fresh and of sending (Upstream, Timeout).
func (h *Caller) Call(ctx context.Context, inst settings.Installation, a app.App, ref, userID string, r Request) (*http.Response, error) {
	cl, err := h.prepareCall(ctx, inst, a, ref, userID)
	if err != nil {
		return nil, err
	}
	return h.do(ctx, cl, r)
}

// do is Call once the call is prepared.
func (h *Caller) do(ctx context.Context, cl *call, r Request) (*http.Response, error) {
	if !cl.api.AllowsMethod(r.Method) {
		return nil, errs.New(errs.NotAllowed, "API %q does not allow %s; it allows %s", cl.api.Name, r.Method, strings.Join(cl.api.Methods, ", "))
	}
	resp, err := h.send(ctx, cl, r)
	if err != nil {
		return nil, err
	}
	if cl.cfg != nil {
		var expired bool
		if resp, expired, err = tokenExpired(cl.cfg, resp); err != nil {
			return nil, err
		}
		if expired {
			resp.Body.Close()
			stale := cl.values.Values[cl.cfg.AccessTokenSetting]
			if cl.values, err = h.refresher.Renew(ctx, cl.inst, cl.userID, cl.cfg, stale, true); err != nil {
				return nil, err
			}
			if resp, err = h.send(ctx, cl, r); err != nil {
				return nil, err
			}
		}
	}
	return resp, nil
}

// send renders the API for the call's values and sends the request.
func (h *Caller) send(ctx context.Context, cl *call, r Request) (*http.Response, error) {
	rd, err := render(&cl.api, cl.values.Values)
	if err != nil {
		return nil, err
	}
	u, err := rd.target(r.Path, r.RawQuery)
	if err != nil {
		return nil, err
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, u.String(), bytes.NewReader(r.Body))
	if err != nil {
		return nil, errs.New(errs.Invalid, "the call cannot be built")
	}
	for name, vs := range r.Header {
		if passHeader(name) && rd.header.Get(name) == "" {
			out.Header[name] = vs
		}
	}
	for name, vs := range rd.header {
		out.Header[name] = vs
	}
	hc := h.http
	if cl.cfg != nil {
		// The config's client certificate, if it names one: a token
		// bound to it (RFC 8705 §3) is refused without it, and APIs such
		// as ADP's ask for it on every call. A server that does not ask
		// for a certificate is sent none.
		if hc, err = token.WithCertificate(h.http, cl.cfg, cl.values.Values); err != nil {
			return nil, err
		}
	}
	resp, err := hc.Do(out)
	if err != nil {
		if cl.cfg != nil && cl.cfg.ClientCertSetting != "" && outbound.CertificateRefused(err) {
			return nil, errs.Wrap(errs.ConfigurationError, err, "API %q refused the client certificate in settings %q and %q: %v",
				cl.api.Name, cl.cfg.ClientCertSetting, cl.cfg.ClientKeySetting, errors.Unwrap(err))
		}
		return nil, callError(cl.api.Name, err)
	}
	return resp, nil
}

// passHeader reports whether a caller's header goes on to the API. The
// caller's Authorization is its Latchkey API key, which stays here.
func passHeader(name string) bool {
	switch strings.ToLower(name) {
	case "authorization":
		return false
	}
	return !app.ReservedHeader(name)
}

func callError(api string, err error) error {
	var blocked *outbound.BlockedError
	switch {
	case errors.As(err, &blocked):
		return errs.Wrap(errs.Upstream, err, "API %q is refused: %s", api, blocked.Error())
	case outbound.IsTimeout(err):
		return errs.Wrap(errs.Timeout, err, "API %q did not answer in time", api)
	case errors.Is(err, outbound.ErrBadScheme), errors.Is(err, outbound.ErrUserinfo):
		return errs.Wrap(errs.Invalid, err, "API %q: the URL is refused: %v", api, errors.Unwrap(err))
	}
	// The URL is left out: its query may carry a credential.
	var ue *url.Error
	if errors.As(err, &ue) {
		return errs.Wrap(errs.Upstream, err, "calling API %q failed: %v", api, ue.Err)
	}
	return errs.Wrap(errs.Upstream, err, "calling API %q failed", api)
}

// tokenExpired reports whether resp says the token expired: one of the
// config's statuses, or its body condition. A body read for the check is
// put back, so the response can still be streamed.
func tokenExpired(cfg *oauthconfig.Config, resp *http.Response) (*http.Response, bool, error) {
	for _, s := range cfg.ExpiredStatuses {
		if resp.StatusCode == s {
			return resp, true, nil
		}
	}
	if cfg.ExpiredBodyPath == "" {
		return resp, false, nil
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return resp, false, nil
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, maxExpiredBody+1))
	if err != nil {
		resp.Body.Close()
		return nil, false, errs.Wrap(errs.Upstream, err, "reading the API's response failed")
	}
	resp.Body = readCloser{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	if len(head) > maxExpiredBody {
		return resp, false, nil // too long to be an error document
	}
	var doc any
	if json.Unmarshal(head, &doc) != nil {
		return resp, false, nil
	}
	eval, err := jpath.Compile(cfg.ExpiredBodyPath)
	if err != nil {
		return resp, false, nil
	}
	v, err := eval(context.Background(), doc)
	if err != nil || v == nil {
		return resp, false, nil
	}
	if cfg.ExpiredBodyValue == "" {
		return resp, true, nil
	}
	s, ok := v.(string)
	if !ok {
		b, _ := json.Marshal(v)
		s = string(b)
	}
	return resp, s == cfg.ExpiredBodyValue, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// hopHeaders are not passed back from the API (RFC 9110 §7.6.1).
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// stream copies the API's response to the caller as it arrives, flushing
// each read so that event streams and long downloads flow.
func stream(c echo.Context, resp *http.Response) error {
	w := c.Response()
	for name, vs := range resp.Header {
		w.Header()[name] = vs
	}
	for _, name := range hopHeaders {
		w.Header().Del(name)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(resp.StatusCode)
	// A body of unknown length, or an event stream, is passed on as it
	// comes; one of known length is left to the server's buffering, which
	// sends it in as few writes as it can.
	flush := resp.ContentLength < 0 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil // the caller went away
			}
			if flush {
				w.Flush()
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			// The status is sent; abort the connection so the caller sees
			// a broken response, not a short one that looks whole.
			panic(http.ErrAbortHandler)
		}
	}
}

// copyBuffers are the 32 KiB buffers responses are streamed through,
// shared so that a call does not allocate one.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

type headersResponse struct {
	URL       string              `json:"url"`
	Headers   map[string]string   `json:"headers"`
	Query     map[string][]string `json:"query"`
	ExpiresAt *time.Time          `json:"expires_at"`
}

// headers answers the rendered headers and query of an API, with a fresh
// token, for platforms that make the call themselves. This answer carries
// credentials by design; it is never cached.
func (h *Caller) headers(c echo.Context) error {
	cl, err := h.prepare(c)
	if err != nil {
		return err
	}
	r, err := render(&cl.api, cl.values.Values)
	if err != nil {
		return err
	}
	out := headersResponse{URL: r.base.String(), Headers: map[string]string{}, Query: r.query}
	for name := range r.header {
		out.Headers[name] = r.header.Get(name)
	}
	if cl.cfg != nil {
		if conn, err := h.refresher.Connections().Get(c.Request().Context(), cl.inst.ID, cl.cfg.Owner(cl.userID), cl.cfg.ID); err == nil {
			out.ExpiresAt = conn.ExpiresAt
		}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}

type fetchRequest struct {
	UserID string `json:"user_id"`
}

type fetchResponse struct {
	Connection connection.Response `json:"connection"`
	Extracted  map[string]string   `json:"extracted"` // setting -> masked value
}

// fetchToken gets a new token now (see FetchToken).
func (h *Caller) fetchToken(c echo.Context) error {
	var req fetchRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	inst, cfg, err := h.installationConfig(c)
	if err != nil {
		return err
	}
	conn, extracted, err := h.FetchToken(c.Request().Context(), inst, &cfg, req.UserID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, fetchResponse{Connection: connection.NewResponse(conn), Extracted: extracted})
}

// FetchToken gets a new token now for a config whose grant needs no end
// user at the provider, stores it, and returns the connection and what
// was extracted (setting -> masked value): how a developer checks a config
// before publishing the app. Errors are *errs.Error: Invalid for an
// authorization_code config or a user id that does not fit the config's
// token level, and those of Refresher.Renew.
func (h *Caller) FetchToken(ctx context.Context, inst settings.Installation, cfg *oauthconfig.Config, userID string) (connection.Connection, map[string]string, error) {
	if cfg.GrantType == oauthconfig.AuthorizationCode {
		return connection.Connection{}, nil, errs.New(errs.Invalid, "OAuth config %q uses the authorization_code grant, which needs the end user: create an authorize link, or submit a pasted code", cfg.Name)
	}
	if err := oauthconfig.CheckOwner(cfg, userID); err != nil {
		return connection.Connection{}, nil, err
	}
	current, err := h.settings.Resolve(ctx, inst, userID)
	if err != nil {
		return connection.Connection{}, nil, err
	}
	if _, err := h.refresher.Renew(ctx, inst, userID, cfg, current.Values[cfg.AccessTokenSetting], true); err != nil {
		return connection.Connection{}, nil, err
	}
	return h.report(ctx, inst, userID, cfg)
}
