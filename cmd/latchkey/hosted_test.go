package main

import (
	"crypto/sha256"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/oauthtest"
)

// hostedApp is an app with organization settings of every kind the install
// page shows, and an authorization-code config against a real provider. It
// is not installed: the install page does that.
type hostedApp struct {
	e        *env
	p        *oauthtest.Server
	configID string
}

func newHostedApp(t *testing.T, e *env, logoURL string) *hostedApp {
	t.Helper()
	p := newProvider(t, e, oauthtest.AuthBasic)
	e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": "Acme CRM", "slug": "acme", "logo_url": logoURL})
	for _, d := range []map[string]any{
		{"key": "client_id", "label": "Client ID", "required": true, "description": "From your Acme developer console."},
		{"key": "client_secret", "label": "Client secret", "secret": true, "required": true},
		{"key": "subdomain", "label": "Your Acme subdomain", "pattern": "[a-z0-9-]+", "default": "www"},
		{"key": "access_token", "level": "user", "secret": true},
		{"key": "refresh_token", "level": "user", "secret": true},
	} {
		e.must(201, "POST", "/v1/apps/acme/settings", e.key, d)
	}
	cfg := providerConfig(p, "basic")
	cfg["name"] = "acme"
	cfg["access_token_setting"] = "access_token"
	cfg["refresh_token_setting"] = "refresh_token"
	cfg["log_requests"] = true
	c := e.must(201, "POST", "/v1/apps/acme/oauth-configs", e.key, cfg)
	return &hostedApp{e: e, p: p, configID: c["id"].(string)}
}

// installLink asks for an install link, as the platform would.
func (a *hostedApp) installLink(org, user string) string {
	a.e.t.Helper()
	body := map[string]any{"organization_id": org}
	if user != "" {
		body["user_id"] = user
	}
	return a.e.must(201, "POST", "/v1/apps/acme/install-links", a.e.key, body)["url"].(string)
}

// connectLink asks for a connect link for user.
func (a *hostedApp) connectLink(instID, user string) string {
	a.e.t.Helper()
	return a.e.must(201, "POST", "/v1/installations/"+instID+"/connect-links", a.e.key,
		map[string]any{"config_id": a.configID, "user_id": user})["url"].(string)
}

// page is a browser without script for the hosted pages: it keeps cookies,
// does not follow redirects, checks every answer against openapi.yaml and
// keeps the bodies with the env's output, for the secret searches.
type page struct {
	e *env
	c *http.Client
}

func newPage(e *env) *page {
	jar, _ := cookiejar.New(nil)
	return &page{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (p *page) do(req *http.Request) response {
	p.e.t.Helper()
	resp, err := p.c.Do(req)
	if err != nil {
		p.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		p.e.t.Fatal(err)
	}
	p.e.mu.Lock()
	p.e.bodies.Write(body)
	p.e.bodies.WriteByte('\n')
	p.e.mu.Unlock()
	checkSpec(p.e.t, req, resp, body)
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

func (p *page) get(u string) response {
	p.e.t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		p.e.t.Fatal(err)
	}
	return p.do(req)
}

func (p *page) post(u string, form url.Values) response {
	p.e.t.Helper()
	req, err := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	if err != nil {
		p.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return p.do(req)
}

// unescaped is a page's text with HTML's character references resolved,
// so tests can look for what a person reads ("[a-z0-9-]+", not "&#43;").
func unescaped(r response) string { return html.UnescapeString(string(r.body)) }

var csrfInput = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// csrf returns the form token of an install form page.
func csrf(t *testing.T, r response) string {
	t.Helper()
	m := csrfInput.FindSubmatch(r.body)
	if m == nil {
		t.Fatalf("no _csrf field on the page:\n%s", r.body)
	}
	return string(m[1])
}

var styleBlock = regexp.MustCompile(`(?s)<style>(.*?)</style>`)

// checkPageHeaders checks the headers every hosted page carries, and that
// the CSP's style hash is the hash of the page's stylesheet.
func checkPageHeaders(t *testing.T, r response, imgOrigin string, form bool) {
	t.Helper()
	h := r.header
	if h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers: Cache-Control %q, Referrer-Policy %q, X-Content-Type-Options %q",
			h.Get("Cache-Control"), h.Get("Referrer-Policy"), h.Get("X-Content-Type-Options"))
	}
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "script-src", "*", "https:;", "http:;"} {
		if strings.Contains(csp, bad) {
			t.Errorf("CSP %q has %q", csp, bad)
		}
	}
	if wantForm := "form-action 'self'"; form != strings.Contains(csp, wantForm) {
		t.Errorf("CSP %q: form-action, want 'self' = %v", csp, form)
	}
	if imgOrigin != "" && !strings.Contains(csp, "img-src "+imgOrigin+";") {
		t.Errorf("CSP %q does not allow exactly the logo's origin %s", csp, imgOrigin)
	}
	m := styleBlock.FindSubmatch(r.body)
	if m == nil {
		t.Fatalf("no <style> on the page")
	}
	sum := sha256.Sum256(m[1])
	if hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, "style-src "+hash) {
		t.Errorf("CSP %q does not allow the page's stylesheet by its hash %s", csp, hash)
	}
	if strings.Contains(string(r.body), "<script") || strings.Contains(string(r.body), " style=") {
		t.Errorf("the page has a script or a style attribute")
	}
}

func TestInstallPage(t *testing.T) {
	e := newEnv(t)
	a := newHostedApp(t, e, "https://cdn.acme.example/logo.png")
	// Settings fixed by the developer: a read_only one is shown with its
	// value, a hidden one not at all.
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "region", "label": "Region", "visibility": "read_only", "default": "eu-west"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "signing_key", "label": "Signing key", "secret": true, "visibility": "hidden", "default": "hidden-canary-77"})
	link := a.installLink("org-42", "user-7")
	if !strings.HasPrefix(link, e.url+"/install/") {
		t.Fatalf("install link %q", link)
	}

	b := newPage(e)
	r := b.get(link)
	if r.status != 200 {
		t.Fatalf("GET install link: %d\n%s", r.status, r.body)
	}
	checkPageHeaders(t, r, "https://cdn.acme.example", true)
	ck := r.header.Get("Set-Cookie")
	if !strings.Contains(ck, "latchkey_install=") || !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Strict") ||
		!strings.Contains(ck, "Path="+mustURL(t, link).Path) {
		t.Errorf("form cookie: %s", ck)
	}
	doc := unescaped(r)
	for _, want := range []string{
		`<label for="f-client_id">Client ID <span class="req">(required)</span></label>`,
		`id="f-client_secret" name="client_secret" type="password"`,
		`placeholder="www"`, `must match the pattern <code>[a-z0-9-]+</code>`, `From your Acme developer console.`,
		`<img src="https://cdn.acme.example/logo.png"`, `org-42`,
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("form lacks %s", want)
		}
	}
	if strings.Contains(doc, "access_token") {
		t.Error("the form shows a user-level setting")
	}
	if !strings.Contains(doc, `<span class="label">Region</span>`) || !strings.Contains(doc, `<p class="fixed">eu-west</p>`) || strings.Contains(doc, `name="region"`) {
		t.Error("the read_only setting is not shown as fixed")
	}
	if strings.Contains(doc, "signing_key") || strings.Contains(doc, "Signing key") || strings.Contains(doc, "hidden-canary-77") {
		t.Error("the form shows the hidden setting")
	}
	token := csrf(t, r)
	good := url.Values{"_csrf": {token}, "client_id": {testClientID}, "client_secret": {testClientSecret}, "subdomain": {"acme"}}

	// CSRF: a post without the cookie (another browser, or a cross-site
	// form, which the browser sends without a SameSite=Strict cookie), a
	// forged or missing field, or the field of another link: all refused,
	// and nothing is installed.
	if r := newPage(e).post(link, good); r.status != 403 || !strings.Contains(string(r.body), "could not be checked") {
		t.Errorf("post without the cookie: %d\n%s", r.status, r.body)
	}
	forged := url.Values{"_csrf": {"forged"}, "client_id": {"x"}, "client_secret": {"y"}}
	if r := b.post(link, forged); r.status != 403 {
		t.Errorf("forged _csrf: %d", r.status)
	}
	forged.Del("_csrf")
	if r := b.post(link, forged); r.status != 403 {
		t.Errorf("no _csrf: %d", r.status)
	}
	other := a.installLink("org-43", "")
	if r := b.post(other, good); r.status != 403 {
		t.Errorf("another link's _csrf: %d", r.status)
	}

	// Validation: the same code, and the same words, as the API.
	bad := url.Values{"_csrf": {token}, "client_id": {""}, "client_secret": {"secret-canary-5b1c"}, "subdomain": {"Not Valid!"}}
	r = b.post(link, bad)
	if r.status != 422 {
		t.Fatalf("bad values: %d\n%s", r.status, r.body)
	}
	doc = unescaped(r)
	api := e.must(422, "POST", "/v1/installations", e.key, map[string]any{"app_id": "acme", "organization_id": "org-api",
		"values": map[string]string{"client_id": "", "client_secret": "x", "subdomain": "Not Valid!"}})
	for _, fe := range api["errors"].([]any) {
		msg := fe.(map[string]any)["message"].(string)
		if !strings.Contains(doc, msg) {
			t.Errorf("the page lacks the API's message %q", msg)
		}
	}
	for _, want := range []string{
		`<p class="error" id="f-client_id-error">Client ID is required.</p>`,
		`<p class="error" id="f-subdomain-error">Your Acme subdomain does not match the pattern [a-z0-9-]+.</p>`,
		`aria-invalid="true" aria-describedby="f-subdomain-hint f-subdomain-error"`,
		`<a href="#f-subdomain">`, `value="Not Valid!"`,
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("error page lacks %s\n%s", want, doc)
		}
	}
	if strings.Contains(doc, "secret-canary-5b1c") {
		t.Error("the page fills a secret back in")
	}
	e.must(200, "GET", "/v1/installations?organization_id=org-42", e.key, nil)
	if n := len(e.must(200, "GET", "/v1/installations?organization_id=org-42", e.key, nil)["installations"].([]any)); n != 0 {
		t.Fatalf("a failed submission installed: %d installations", n)
	}

	// Fixed, it installs, and shows the installation and the next step.
	r = b.post(link, good)
	if r.status != 200 {
		t.Fatalf("good values: %d\n%s", r.status, r.body)
	}
	checkPageHeaders(t, r, "https://cdn.acme.example", false)
	doc = unescaped(r)
	insts := e.must(200, "GET", "/v1/installations?organization_id=org-42", e.key, nil)["installations"].([]any)
	if len(insts) != 1 {
		t.Fatalf("installations: %v", insts)
	}
	instID := insts[0].(map[string]any)["id"].(string)
	for _, want := range []string{"Acme CRM is installed", instID, "Saved (encrypted, not shown)", "Connect your account", `href="` + e.url + `/connect/`} {
		if !strings.Contains(doc, want) {
			t.Errorf("success page lacks %q\n%s", want, doc)
		}
	}
	vals := e.must(200, "GET", "/v1/installations/"+instID+"/settings", e.key, nil)["settings"].([]any)
	if v := vals[2].(map[string]any); v["key"] != "subdomain" || v["value"] != "acme" {
		t.Errorf("stored subdomain: %v", v)
	}

	// Single use: the link is spent.
	if r := b.post(link, good); r.status != 410 || !strings.Contains(string(r.body), "already used") {
		t.Errorf("second submission: %d\n%s", r.status, r.body)
	}
	if r := b.get(link); r.status != 410 {
		t.Errorf("opening a used link: %d", r.status)
	}
	if strings.Contains(e.output(), testClientSecret) {
		t.Error("the client secret appears in a response or log")
	}
}

func TestInstallLinkChecks(t *testing.T) {
	e := newEnv(t)
	a := newHostedApp(t, e, "")
	e.must(422, "POST", "/v1/apps/acme/install-links", e.key, map[string]any{})
	e.must(422, "POST", "/v1/apps/acme/install-links", e.key, map[string]any{"organization_id": "o", "user_id": "bad\x01id"})
	e.must(404, "POST", "/v1/apps/acme/install-links", e.other, map[string]any{"organization_id": "o"})

	// Expired: refused, to open and to submit.
	link := a.installLink("org-1", "")
	b := newPage(e)
	token := csrf(t, b.get(link))
	if err := e.db.Exec("UPDATE install_links SET expires_at = ?", time.Now().Add(-time.Minute).UTC()).Error; err != nil {
		t.Fatal(err)
	}
	if r := b.get(link); r.status != 410 || !strings.Contains(string(r.body), "expired") {
		t.Errorf("expired link: %d\n%s", r.status, r.body)
	}
	if r := b.post(link, url.Values{"_csrf": {token}, "client_id": {"a"}, "client_secret": {"b"}}); r.status != 410 {
		t.Errorf("submitting an expired link: %d", r.status)
	}
	if r := b.get(e.url + "/install/not-a-token"); r.status != 410 || !strings.Contains(string(r.body), "not valid") {
		t.Errorf("unknown link: %d", r.status)
	}

	// An organization that installed meanwhile (through the API): the
	// form says so, and making another link is a 409.
	link = a.installLink("org-2", "")
	token = csrf(t, b.get(link))
	e.must(201, "POST", "/v1/installations", e.key, map[string]any{"app_id": "acme", "organization_id": "org-2",
		"values": map[string]string{"client_id": "a", "client_secret": "b"}})
	if r := b.post(link, url.Values{"_csrf": {token}, "client_id": {"a"}, "client_secret": {"b"}}); r.status != 409 || !strings.Contains(string(r.body), "already installed") {
		t.Errorf("installed meanwhile: %d\n%s", r.status, r.body)
	}
	e.must(409, "POST", "/v1/apps/acme/install-links", e.key, map[string]any{"organization_id": "org-2"})

	// An app without organization settings installs with one button.
	e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": "Bare", "slug": "bare"})
	bare := e.must(201, "POST", "/v1/apps/bare/install-links", e.key, map[string]any{"organization_id": "org-1"})["url"].(string)
	r := b.get(bare)
	if !strings.Contains(unescaped(r), "needs no settings") {
		t.Errorf("app without settings:\n%s", r.body)
	}
	if r := b.post(bare, url.Values{"_csrf": {csrf(t, r)}}); r.status != 200 || !strings.Contains(unescaped(r), "Nothing else to do") {
		t.Errorf("installing an app without settings: %d\n%s", r.status, r.body)
	}

	// Not a form: a page, not a problem document.
	req, _ := http.NewRequest("POST", a.installLink("org-3", ""), strings.NewReader(`{"client_id": "a"}`))
	req.Header.Set("Content-Type", "application/json")
	if r := b.do(req); r.status != 400 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Errorf("JSON post: %d %s", r.status, r.header.Get("Content-Type"))
	}
}

// TestConnectPage runs the connect page and each outcome of the flow
// without a browser: connected, access denied, and a provider failure
// whose reference finds the request log entry.
func TestConnectPage(t *testing.T) {
	e := newEnv(t)
	a := newHostedApp(t, e, "http://127.0.0.1:9/logo.png")
	inst := e.must(201, "POST", "/v1/installations", e.key, map[string]any{"app_id": "acme", "organization_id": "org-1",
		"values": map[string]string{"client_id": testClientID, "client_secret": testClientSecret}})
	instID := inst["id"].(string)

	b := newPage(e)
	link := a.connectLink(instID, "user-1")
	r := b.get(link)
	if r.status != 200 {
		t.Fatalf("connect page: %d\n%s", r.status, r.body)
	}
	checkPageHeaders(t, r, "http://127.0.0.1:9", false)
	token := strings.TrimPrefix(link, e.url+"/connect/")
	for _, want := range []string{"Acme CRM", "<code>read</code>", "<code>offline</code>", `href="/oauth/authorize/` + token + `"`, `<img src="http://127.0.0.1:9/logo.png"`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("connect page lacks %s\n%s", want, r.body)
		}
	}

	// run opens a connect link's button, consents (or not) at the provider
	// and returns the result page.
	run := func(link string, allow bool) response {
		t.Helper()
		token := strings.TrimPrefix(link, e.url+"/connect/")
		r := b.get(e.url + "/oauth/authorize/" + token)
		if r.status != 302 {
			t.Fatalf("authorize: %d\n%s", r.status, r.body)
		}
		back, err := a.p.Consent(r.header.Get("Location"), allow)
		if err != nil {
			t.Fatal(err)
		}
		return b.get(back.String())
	}

	r = run(link, true)
	if r.status != 200 || !strings.Contains(string(r.body), "Connected") {
		t.Fatalf("connected: %d\n%s", r.status, r.body)
	}
	checkPageHeaders(t, r, "http://127.0.0.1:9", false)

	r = run(a.connectLink(instID, "user-2"), false)
	if r.status != 403 || !strings.Contains(string(r.body), "Access denied") || !strings.Contains(string(r.body), `id="retry" href="`+e.url+`/connect/`) {
		t.Fatalf("denied: %d\n%s", r.status, r.body)
	}
	// Try again opens a working connect page.
	retry := regexp.MustCompile(`id="retry" href="([^"]+)"`).FindSubmatch(r.body)
	if r := b.get(string(retry[1])); r.status != 200 || !strings.Contains(string(r.body), "Continue to sign in") {
		t.Errorf("try again: %d", r.status)
	}

	// The provider refuses the client: the page says the provider failed,
	// and its reference finds the logged token request.
	e.must(200, "PATCH", "/v1/installations/"+instID+"/settings", e.key, map[string]any{"values": map[string]string{"client_secret": "wrong-secret"}})
	r = run(a.connectLink(instID, "user-3"), true)
	body := string(r.body)
	if r.status != 502 || !strings.Contains(body, "The provider failed") || !strings.Contains(body, "invalid_client") {
		t.Fatalf("provider failure: %d\n%s", r.status, body)
	}
	ref := regexp.MustCompile(`<code id="reference">([^<]+)</code>`).FindStringSubmatch(body)
	if ref == nil {
		t.Fatalf("no reference on the page:\n%s", body)
	}
	entries := e.must(200, "GET", "/v1/installations/"+instID+"/oauth-requests?id="+url.QueryEscape(ref[1]), e.key, nil)["requests"].([]any)
	if len(entries) != 1 {
		t.Fatalf("reference %s finds %d entries", ref[1], len(entries))
	}
	if got := entries[0].(map[string]any); got["id"] != ref[1] || got["user_id"] != "user-3" || got["status"] != float64(401) {
		t.Errorf("entry = %v", got)
	}
	if n := len(e.must(200, "GET", "/v1/apps/acme/oauth-configs/"+a.configID+"/requests?id="+url.QueryEscape(ref[1]), e.key, nil)["requests"].([]any)); n != 1 {
		t.Errorf("the config's log finds %d entries for the reference", n)
	}
	if !strings.Contains(body, `id="retry"`) {
		t.Error("no Try again after a provider failure")
	}

	// Without request logging, the reference is the request id, which the
	// server's log line for the failure carries.
	e.must(200, "PATCH", "/v1/apps/acme/oauth-configs/"+a.configID, e.key, map[string]any{"log_requests": false})
	r = run(a.connectLink(instID, "user-4"), true)
	ref = regexp.MustCompile(`<code id="reference">([^<]+)</code>`).FindStringSubmatch(string(r.body))
	if r.status != 502 || ref == nil || ref[1] != r.header.Get("X-Request-Id") {
		t.Fatalf("provider failure without logging: %d, reference %v, request id %s", r.status, ref, r.header.Get("X-Request-Id"))
	}
	if !strings.Contains(e.output(), `"reference":""`) || !strings.Contains(e.output(), `"request_id":"`+ref[1]+`"`) {
		t.Error("the failure's log line does not carry the request id")
	}

	// Expired and unknown connect links.
	if r := b.get(e.url + "/connect/unknown"); r.status != 410 {
		t.Errorf("unknown connect link: %d", r.status)
	}
	e.must(422, "POST", "/v1/installations/"+instID+"/connect-links", e.key, map[string]any{"user_id": "u"})
	e.must(404, "POST", "/v1/installations/"+instID+"/connect-links", e.other, map[string]any{"config_id": a.configID, "user_id": "u"})
}
