package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/oauthtest"
)

// consoleClient is a developer's browser without script on the console:
// it keeps cookies, does not follow redirects, and keeps the pages with
// the env's output for the secret searches. Console pages are not in
// openapi.yaml, so it does not check them against it.
type consoleClient struct {
	e    *env
	c    *http.Client
	last response // the last page, whose form token the next post sends
}

func newConsoleClient(e *env) *consoleClient {
	jar, _ := cookiejar.New(nil)
	return &consoleClient{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *consoleClient) do(req *http.Request) response {
	b.e.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	b.e.mu.Lock()
	b.e.bodies.Write(body)
	b.e.bodies.WriteByte('\n')
	b.e.mu.Unlock()
	r := response{status: resp.StatusCode, header: resp.Header, body: body}
	if resp.StatusCode < 300 || resp.StatusCode >= 400 {
		b.last = r
	}
	return r
}

func (b *consoleClient) get(path string) response {
	b.e.t.Helper()
	req, err := http.NewRequest("GET", b.e.url+path, nil)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return b.do(req)
}

// post sends form, with the form token of the last page unless form has one.
func (b *consoleClient) post(path string, form url.Values) response {
	b.e.t.Helper()
	if _, ok := form["_csrf"]; !ok && b.last.body != nil {
		if m := csrfInput.FindSubmatch(b.last.body); m != nil {
			form.Set("_csrf", string(m[1]))
		}
	}
	req, err := http.NewRequest("POST", b.e.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// must fails the test unless r has status want (and, for a redirect,
// goes to location, when given).
func (b *consoleClient) must(r response, want int, location string) response {
	b.e.t.Helper()
	if r.status != want {
		b.e.t.Fatalf("status %d, want %d\n%s", r.status, want, r.body)
	}
	if location != "" {
		if got := r.header.Get("Location"); !strings.HasPrefix(got, location) {
			b.e.t.Fatalf("redirect to %q, want %q", got, location)
		}
	}
	return r
}

// signIn signs in with key through the sign-in form.
func (b *consoleClient) signIn(key string) {
	b.e.t.Helper()
	b.must(b.get("/console/sign-in"), 200, "")
	b.must(b.post("/console/sign-in", url.Values{"key": {key}}), 303, "/console/apps")
}

// cookie returns the value of the console's session cookie in the jar.
func (b *consoleClient) cookie() string {
	u, _ := url.Parse(b.e.url + "/console/apps")
	for _, ck := range b.c.Jar.Cookies(u) {
		if ck.Name == "latchkey_console" {
			return ck.Value
		}
	}
	return ""
}

// TestConsoleSignInAndOut checks the session: the sign-in form's own CSRF
// check, a refused key, the cookie's attributes, and sign-out ending the
// session on the server, not only in the browser.
func TestConsoleSignInAndOut(t *testing.T) {
	e := newEnv(t)
	b := newConsoleClient(e)
	b.must(b.get("/console/"), 303, "/console/apps")
	b.must(b.get("/console/apps"), 303, "/console/sign-in")

	r := b.must(b.get("/console/sign-in"), 200, "")
	checkPageHeaders(t, r, "", true)
	if !strings.Contains(r.header.Get("Set-Cookie"), "SameSite=Strict") {
		t.Errorf("sign-in form cookie: %s", r.header.Get("Set-Cookie"))
	}
	// A sign-in posted without the form's token (another site's form).
	b.must(b.post("/console/sign-in", url.Values{"key": {e.key}, "_csrf": {"forged"}}), 403, "")
	b.must(b.get("/console/sign-in"), 200, "")
	r = b.must(b.post("/console/sign-in", url.Values{"key": {"lk_not-a-key"}}), 401, "")
	if !strings.Contains(unescaped(r), `id="signin-key-error"`) || !strings.Contains(unescaped(r), "API key is not a key Latchkey knows.") {
		t.Errorf("a wrong key's error is not under the field:\n%s", r.body)
	}

	b.must(b.get("/console/sign-in"), 200, "")
	r = b.must(b.post("/console/sign-in", url.Values{"key": {e.key}}), 303, "/console/apps")
	ck := sessionCookie(r)
	for _, want := range []string{"latchkey_console=", "Path=/console", "HttpOnly", "SameSite=Strict", "Max-Age=43200"} {
		if !strings.Contains(ck, want) {
			t.Errorf("session cookie %q lacks %s", ck, want)
		}
	}
	if strings.Contains(ck, "Secure") {
		t.Errorf("session cookie %q is Secure on a server reached over http", ck)
	}
	id := b.cookie()
	var stored int64
	e.db.Table("console_sessions").Where("id_hash = ?", id).Count(&stored)
	if stored != 0 {
		t.Error("the session id is stored as it is, not hashed")
	}
	r = b.must(b.get("/console/apps"), 200, "")
	checkPageHeaders(t, r, "", true)

	b.must(b.post("/console/sign-out", url.Values{}), 303, "/console/sign-in")
	if b.cookie() != "" {
		t.Error("the session cookie is still in the browser after signing out")
	}
	// The old cookie no longer opens anything: the session is gone.
	u, _ := url.Parse(e.url + "/console/")
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "latchkey_console", Value: id, Path: "/console"}})
	b.must(b.get("/console/apps"), 303, "/console/sign-in")
	var n int64
	e.db.Table("console_sessions").Count(&n)
	if n != 0 {
		t.Errorf("%d session(s) left after signing out", n)
	}

	// Over HTTPS the cookie is Secure.
	secure := newEnvWith(t, func(c *configT) { c.PublicURL = "https://latchkey.example" })
	sb := newConsoleClient(secure)
	sb.must(sb.get("/console/sign-in"), 200, "")
	r = sb.must(sb.post("/console/sign-in", url.Values{"key": {secure.key}}), 303, "/console/apps")
	if ck := sessionCookie(r); !strings.Contains(ck, "Secure") {
		t.Errorf("session cookie over https is not Secure: %s", ck)
	}
}

// sessionCookie is the Set-Cookie header of r that sets the session cookie.
func sessionCookie(r response) string {
	for _, ck := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(ck, "latchkey_console=") {
			return ck
		}
	}
	return ""
}

// TestConsoleCSRF checks that every change needs the session's form token:
// none, a forged one and another session's are refused, and nothing
// changes.
func TestConsoleCSRF(t *testing.T) {
	e := newEnv(t)
	b := newConsoleClient(e)
	b.signIn(e.key)
	other := newConsoleClient(e)
	other.signIn(e.key)
	other.must(other.get("/console/apps/new"), 200, "")
	othersToken := csrf(t, other.last)

	b.must(b.get("/console/apps/new"), 200, "")
	for name, token := range map[string][]string{"none": nil, "forged": {"forged"}, "empty": {""}, "another session's": {othersToken}} {
		form := url.Values{"name": {"Acme " + name}}
		if token != nil {
			form["_csrf"] = token
		} else {
			form["_csrf"] = []string{}
		}
		req, _ := http.NewRequest("POST", e.url+"/console/apps", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r := b.do(req)
		if r.status != 403 {
			t.Errorf("%s token: status %d, want 403", name, r.status)
		}
	}
	if apps := e.must(200, "GET", "/v1/apps", e.key, nil)["apps"].([]any); len(apps) != 0 {
		t.Errorf("an app was created without a good form token: %v", apps)
	}
	b.must(b.get("/console/apps/new"), 200, "")
	b.must(b.post("/console/apps", url.Values{"name": {"Acme"}}), 303, "/console/apps/")
	// Sign-out is a form too: a cross-site post cannot sign anyone out.
	b.must(b.post("/console/sign-out", url.Values{"_csrf": {"forged"}}), 403, "")
	b.must(b.get("/console/apps"), 200, "")
}

// TestConsoleTenantIsolation checks that the console shows an account
// exactly what its API keys see: another account's apps, configs,
// installations, APIs and log entries answer 404, by id and by slug, to
// pages and to forms.
func TestConsoleTenantIsolation(t *testing.T) {
	e := newEnv(t)
	p := newProvider(t, e, oauthtest.AuthBasic)
	f := newFlowApp(t, e, providerConfig(p, "basic"))
	appID := e.must(200, "GET", "/v1/apps/acme", e.key, nil)["id"].(string)
	api := e.must(201, "POST", "/v1/apps/acme/apis", e.key, map[string]any{"name": "me", "base_url": p.URL() + "/api",
		"config_id": f.configID, "headers": map[string]string{"Authorization": "Bearer <<access_token>>"}})["id"].(string)
	f.connect(t, p, "user-1")
	entries := e.must(200, "GET", "/v1/installations/"+f.instID+"/oauth-requests", e.key, nil)["requests"].([]any)
	if len(entries) == 0 {
		t.Fatal("no request log entry")
	}
	entry := entries[0].(map[string]any)["id"].(string)

	pages := []string{
		"/console/apps/" + appID, "/console/apps/acme", "/console/apps/acme/settings", "/console/apps/acme/settings/client_id",
		"/console/apps/" + appID + "/configs", "/console/apps/" + appID + "/configs/" + f.configID,
		"/console/apps/" + appID + "/configs/" + f.configID + "/check", "/console/apps/" + appID + "/apis",
		"/console/apps/" + appID + "/apis/" + api, "/console/apps/" + appID + "/installations",
		"/console/installations/" + f.instID, "/console/apps/" + appID + "/logs?id=" + entry,
		"/console/apps/" + appID + "/deliveries", "/console/find?reference=" + entry,
	}
	forms := map[string]url.Values{
		"/console/apps/" + appID:                                         {"name": {"Stolen"}, "slug": {"acme"}},
		"/console/apps/" + appID + "/settings":                           {"key": {"stolen"}},
		"/console/apps/acme/settings/client_id":                          {"label": {"Stolen"}},
		"/console/apps/acme/settings/client_id/delete":                   {"delete_values": {"true"}},
		"/console/apps/" + appID + "/configs":                            {"name": {"stolen"}},
		"/console/apps/" + appID + "/configs/" + f.configID:              {"name": {"stolen"}},
		"/console/apps/" + appID + "/configs/" + f.configID + "/logging": {"log_requests": {"false"}},
		"/console/apps/" + appID + "/configs/" + f.configID + "/explain": {"installation_id": {f.instID}, "user_id": {"user-1"}},
		"/console/apps/" + appID + "/apis/" + api + "/try":               {"installation_id": {f.instID}, "user_id": {"user-1"}, "method": {"GET"}, "path": {"me"}},
		"/console/apps/" + appID + "/installations":                      {"organization_id": {"org-9"}},
		"/console/installations/" + f.instID + "/links":                  {"config_id": {f.configID}, "user_id": {"user-2"}},
		"/console/installations/" + f.instID + "/check":                  {"config_id": {f.configID}, "user_id": {"user-1"}},
		"/console/installations/" + f.instID + "/remove":                 {"config_id": {f.configID}, "user_id": {"user-1"}},
	}

	owner := newConsoleClient(e)
	owner.signIn(e.key)
	for _, path := range pages {
		want := 200
		if strings.HasPrefix(path, "/console/find") {
			want = 303 // to the entry in its app's log
		}
		if r := owner.get(path); r.status != want {
			t.Errorf("the owner gets %s: %d, want %d", path, r.status, want)
		}
	}

	thief := newConsoleClient(e)
	thief.signIn(e.other)
	for _, path := range pages {
		r := thief.get(path)
		if r.status != 404 {
			t.Errorf("another account gets %s: %d, want 404", path, r.status)
		}
		if strings.Contains(string(r.body), "org-1") || strings.Contains(string(r.body), "client_id") && !strings.HasSuffix(path, "client_id") {
			t.Errorf("another account's page %s shows the owner's things:\n%s", path, r.body)
		}
	}
	thief.must(thief.get("/console/apps"), 200, "")
	for path, form := range forms {
		if r := thief.post(path, form); r.status != 404 {
			t.Errorf("another account posts to %s: %d, want 404", path, r.status)
		}
	}
	// Nothing changed.
	if got := e.must(200, "GET", "/v1/apps/acme", e.key, nil)["name"]; got != "Acme" {
		t.Errorf("app name %v", got)
	}
	if cfg := e.must(200, "GET", "/v1/apps/acme/oauth-configs/"+f.configID, e.key, nil); cfg["name"] != "provider" || cfg["log_requests"] != true {
		t.Errorf("config changed: %v", cfg)
	}
	if insts := e.must(200, "GET", "/v1/installations", e.other, nil)["installations"].([]any); len(insts) != 0 {
		t.Errorf("another account installed: %v", insts)
	}
	if n := len(e.must(200, "GET", "/v1/installations/"+f.instID+"/connections", e.key, nil)["connections"].([]any)); n != 1 {
		t.Errorf("%d connections after another account's remove, want 1", n)
	}

	// The owner removes the connection.
	if r := owner.post("/console/installations/"+f.instID+"/remove", url.Values{"config_id": {f.configID}, "user_id": {"user-1"}}); r.status != 303 {
		t.Errorf("the owner removes the connection: %d\n%s", r.status, r.body)
	}
	if n := len(e.must(200, "GET", "/v1/installations/"+f.instID+"/connections", e.key, nil)["connections"].([]any)); n != 0 {
		t.Errorf("%d connections after the owner's remove, want 0", n)
	}
}

// TestConsolePages drives the console without a browser through what the
// browser test does not: pages of a long list, editing and deleting a
// setting, a template error inside a header with its position, an
// unreadable number, retrieving a client-credentials token now, turning
// logging off, the request log's filters and references, webhook
// deliveries and their filters, and the install form's errors. No page
// shows a secret.
func TestConsolePages(t *testing.T) {
	e := newEnv(t)
	p := newProvider(t, e, oauthtest.AuthBasic)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(hook.Close)
	f := newFlowApp(t, e, providerConfig(p, "basic"))
	appID := e.must(200, "GET", "/v1/apps/acme", e.key, nil)["id"].(string)
	e.must(201, "POST", "/v1/apps/acme/webhooks", e.key, map[string]any{"url": hook.URL})
	f.connect(t, p, "user-1")
	b := newConsoleClient(e)
	b.signIn(e.key)
	page := func(path string, status int, want ...string) string {
		t.Helper()
		r := b.get(path)
		if r.status != status {
			t.Fatalf("GET %s: %d, want %d\n%s", path, r.status, status, r.body)
		}
		doc := unescaped(r)
		for _, w := range want {
			if !strings.Contains(doc, w) {
				t.Errorf("GET %s lacks %q", path, w)
			}
		}
		return doc
	}
	post := func(path string, form url.Values, status int, want ...string) string {
		t.Helper()
		r := b.post(path, form)
		if r.status != status {
			t.Fatalf("POST %s: %d, want %d\n%s", path, r.status, status, r.body)
		}
		doc := unescaped(r)
		for _, w := range want {
			if !strings.Contains(doc, w) {
				t.Errorf("POST %s lacks %q:\n%s", path, w, doc)
			}
		}
		return doc
	}

	// 51 more apps: two pages.
	for i := range 51 {
		e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": fmt.Sprintf("App %02d", i)})
	}
	doc := page("/console/apps", 200, `rel="next"`)
	if n := strings.Count(doc, `<tr><td><a href="/console/apps/`); n != 50 {
		t.Errorf("the first page lists %d apps, want 50", n)
	}
	next := regexp.MustCompile(`href="(/console/apps\?after=[^"]+)" rel="next"`).FindStringSubmatch(doc)
	if next == nil {
		t.Fatal("no link to the next page")
	}
	doc = page(next[1], 200, "First page")
	if n := strings.Count(doc, `<tr><td><a href="/console/apps/`); n != 2 || strings.Contains(doc, `rel="next"`) {
		t.Errorf("the second page lists %d apps, want the last 2 and no next page", n)
	}

	// A setting edited, then deleted: refused while values are stored.
	e.must(200, "PATCH", "/v1/installations/"+f.instID+"/users/user-1/settings", e.key, map[string]any{"values": map[string]string{"provider_user": "alice"}})
	page("/console/apps/acme/settings/provider_user", 200, "Setting <code>provider_user</code>")
	post("/console/apps/acme/settings/provider_user", url.Values{"label": {"Provider user"}, "visibility": {"editable"}, "pattern": {"[a-z]+"}}, 303)
	if d := e.must(200, "GET", "/v1/apps/acme/settings/provider_user", e.key, nil); d["label"] != "Provider user" || d["pattern"] != "[a-z]+" {
		t.Errorf("setting after the edit: %v", d)
	}
	page("/console/apps/acme/settings/provider_user", 200)
	post("/console/apps/acme/settings/provider_user/delete", url.Values{}, 409, "1 stored value(s)")
	post("/console/apps/acme/settings/provider_user/delete", url.Values{"delete_values": {"true"}}, 303)
	e.must(404, "GET", "/v1/apps/acme/settings/provider_user", e.key, nil)

	// The config form: an unknown variable inside a header, positioned; a
	// number that is not one.
	configPath := "/console/apps/" + appID + "/configs/" + f.configID
	page(configPath, 200, `name="token_url" type="text" value="`+p.TokenURL()+`"`)
	form := url.Values{
		"name": {"provider"}, "grant_type": {"authorization_code"}, "pkce": {"S256"}, "body_format": {"form"}, "client_auth": {"basic"},
		"identity_method": {"GET"}, "link_url": {providerConfig(p, "basic")["link_url"].(string)}, "token_url": {p.TokenURL()},
		"scopes": {"read offline"}, "access_token_setting": {"access_token"}, "refresh_token_setting": {"refresh_token"},
		"log_requests": {"true"}, "headers": {"X-Tenant: t-<<tenant>>"},
	}
	doc = post(configPath, form, 422, `id="config-headers-error"`, "Headers X-Tenant:", "At position 2", "<mark><</mark>")
	if !strings.Contains(doc, `aria-describedby="config-headers-hint config-headers-error"`) {
		t.Error("the headers field is not described by its error")
	}
	form.Set("headers", "")
	form.Set("keepalive_seconds", "soon")
	post(configPath, form, 422, `id="config-keepalive-seconds-error"`, "must be a whole number")
	form.Set("keepalive_seconds", "")
	post(configPath, form, 303)

	// Logging off, from its button.
	page(configPath, 200, "Turn logging off")
	post(configPath+"/logging", url.Values{"log_requests": {"false"}}, 303)
	if cfg := e.must(200, "GET", "/v1/apps/acme/oauth-configs/"+f.configID, e.key, nil); cfg["log_requests"] != false {
		t.Errorf("log_requests = %v after turning it off", cfg["log_requests"])
	}

	// A client-credentials config: its token retrieved now.
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "app_token", "secret": true})
	cc := e.must(201, "POST", "/v1/apps/acme/oauth-configs", e.key, map[string]any{
		"name": "service", "grant_type": "client_credentials", "token_url": p.TokenURL(),
		"client_auth": "basic", "scopes": []string{"read"}, "access_token_setting": "app_token", "log_requests": true,
	})["id"].(string)
	checkPath := "/console/apps/" + appID + "/configs/" + cc + "/check"
	page(checkPath, 200, "Retrieve a token now")
	post("/console/apps/"+appID+"/configs/"+cc+"/token", url.Values{"installation_id": {"no-such-installation"}}, 422, "Installation is not an installation of Acme.")
	page(checkPath, 200)
	post("/console/apps/"+appID+"/configs/"+cc+"/token", url.Values{"installation_id": {f.instID}}, 200, "Token stored", "connected", "****")
	if p.Issued("client_credentials") != 1 {
		t.Errorf("%d client_credentials tokens issued, want 1", p.Issued("client_credentials"))
	}
	page(checkPath, 200)
	post("/console/apps/"+appID+"/configs/"+cc+"/explain", url.Values{"installation_id": {""}}, 422, "Installation is required.")

	// The request log: filters, and the reference of an error page.
	entries := e.must(200, "GET", "/v1/installations/"+f.instID+"/oauth-requests", e.key, nil)["requests"].([]any)
	var exchange string
	for _, en := range entries {
		if m := en.(map[string]any); m["kind"] == "exchange" {
			exchange = m["id"].(string)
		}
	}
	logs := "/console/apps/" + appID + "/logs"
	page(logs+"?user=user-1&outcome=ok", 200, exchange)
	page(logs+"?outcome=failed", 200, "No entries.")
	page(logs+"?user=user-2", 200, "No entries.")
	page(logs+"?config="+cc, 200, "client_credentials")
	r := b.must(b.get("/console/find?reference="+exchange), 303, logs+"?id="+exchange)
	page(r.header.Get("Location"), 200, "Entry <code>"+exchange+"</code>", "exchange")
	page("/console/find?reference=0123456789abcdef01234567", 404, "request_id")
	page(logs+"?id=0123456789abcdef01234567", 200, "request_id")

	// Webhook deliveries, filtered by what the event is about.
	deliveries := "/console/apps/" + appID + "/deliveries"
	page(deliveries, 200, "connection.created", `"user_id":"user-1"`)
	page(deliveries+"?user=user-1&installation="+f.instID+"&config="+f.configID+"&outcome=pending", 200, "connection.created")
	for _, q := range []string{"?user=user-2", "?outcome=delivered", "?installation=" + appID, "?event=connection.reauthorization_required", "?user=user-1%25"} {
		page(deliveries+q, 200, "No deliveries.")
	}

	// The install form: a missing value under its field, then a clash.
	installs := "/console/apps/" + appID + "/installations"
	page(installs, 200)
	post(installs, url.Values{"organization_id": {"org-2"}, "client_secret": {"s3cr3t-org-2"}}, 422, `id="install-client-id-error"`, "Client_id is required.")
	page(installs, 200)
	post(installs, url.Values{"organization_id": {"org-1"}, "client_id": {"x"}, "client_secret": {"y"}}, 409, "already installed")
	page(installs, 200)
	post(installs, url.Values{"organization_id": {"org-2"}, "client_id": {"id-2"}, "client_secret": {"s3cr3t-org-2"}}, 303)

	// An API renamed to a name the app uses: the clash is under the name.
	first := e.must(201, "POST", "/v1/apps/acme/apis", e.key, map[string]any{"name": "first", "base_url": p.URL()})["id"].(string)
	e.must(201, "POST", "/v1/apps/acme/apis", e.key, map[string]any{"name": "second", "base_url": p.URL()})
	apiPath := "/console/apps/" + appID + "/apis/" + first
	page(apiPath, 200)
	post(apiPath, url.Values{"name": {"second"}, "base_url": {p.URL()}, "methods": {"GET"}}, 409, `id="api-name-error"`, "is taken: second")

	page("/console/no-such-page", 404, "There is no such page.")

	for _, s := range []string{testClientSecret, "s3cr3t-org-2", f.resolve("user-1").Values["access_token"]} {
		if strings.Contains(e.output(), s) {
			t.Errorf("a secret appears in a page, response or log line: %.8s…", s)
		}
	}
}
