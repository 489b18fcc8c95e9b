package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/latchkey/latchkey/internal/oauthtest"
)

// TestBrowserConsole goes through the developer console in headless
// Chromium as a developer would, from the keyboard where it matters: sign
// in, create an app with settings and an authorization-code config
// against a real authorization server, see a validation error under its
// field, install, explain, connect a user through the hosted connect
// page, see the connection and its request log, call an API with "try
// it", and sign out. Every page is checked for accessibility and saved as
// a screenshot (console-*.png).
func TestBrowserConsole(t *testing.T) {
	c := newChromeFor(t, 10*time.Minute)
	e := newEnv(t)
	p := newProvider(t, e, oauthtest.AuthBasic)
	logo := logoServer(t)
	n := 0
	page := func(name string) int {
		t.Helper()
		n++
		focused := c.a11y("console " + name)
		c.shoot(strings.Join([]string{"console", twoDigits(n), name}, "-"), false)
		return focused
	}

	// Signing in: the console sends a browser without a session there.
	c.do("opening the console", chromedp.Navigate(e.url+"/console/"), chromedp.WaitVisible(chromedp.CSS("#sign-in")))
	if n := page("sign-in"); n != 2 {
		t.Errorf("%d elements of the sign-in page took the focus, want 2 (the key, the button)", n)
	}
	c.do("signing in with a wrong key",
		chromedp.SendKeys(chromedp.CSS("#signin-key"), "lk_wrong"+kb.Enter), chromedp.WaitVisible(chromedp.CSS("#signin-key-error")))
	page("sign-in-error")
	c.do("signing in", chromedp.SendKeys(chromedp.CSS("#signin-key"), e.key+kb.Enter), chromedp.WaitVisible(chromedp.CSS("#new-app")))
	page("apps-empty")

	// An app.
	c.do("opening the new app form", chromedp.Click(chromedp.CSS("#new-app")), chromedp.WaitVisible(chromedp.CSS("#save-app")))
	page("app-new")
	c.do("creating the app",
		chromedp.SendKeys(chromedp.CSS("#app-name"), "Acme CRM"),
		chromedp.SendKeys(chromedp.CSS("#app-slug"), "acme"),
		chromedp.SendKeys(chromedp.CSS("#app-logo-url"), logo),
		chromedp.SetValue(chromedp.CSS("#app-description"), "Contacts and deals from Acme."),
		chromedp.SetValue(chromedp.CSS("#app-return-urls"), "https://platform.example/done"),
		chromedp.Click(chromedp.CSS("#save-app")),
		chromedp.WaitVisible(chromedp.CSS("#app-id")),
	)
	page("app")

	// Its settings, at both levels.
	c.do("opening the settings", chromedp.Click(chromedp.CSS(`nav a[href$="/settings"]`)), chromedp.WaitVisible(chromedp.CSS("#add-setting")))
	for _, s := range []struct {
		key, level, label       string
		secret, required        bool
		pattern, def, visiblity string
	}{
		{key: "client_id", level: "organization", label: "Client ID", required: true},
		{key: "client_secret", level: "organization", label: "Client secret", secret: true, required: true},
		{key: "region", level: "organization", label: "Region", def: "eu", visiblity: "read_only"},
		{key: "access_token", level: "user", secret: true},
		{key: "refresh_token", level: "user", secret: true},
		{key: "account_email", level: "user", label: "Account email", pattern: ".+@.+"},
	} {
		actions := []chromedp.Action[chromedp.Void]{
			chromedp.SendKeys(chromedp.CSS("#setting-key"), s.key),
			chromedp.SetValue(chromedp.CSS("#setting-level"), s.level),
			chromedp.SendKeys(chromedp.CSS("#setting-label"), s.label),
		}
		if s.visiblity != "" {
			actions = append(actions, chromedp.SetValue(chromedp.CSS("#setting-visibility"), s.visiblity))
		}
		if s.secret {
			actions = append(actions, chromedp.Click(chromedp.CSS("#setting-secret")))
		}
		if s.required {
			actions = append(actions, chromedp.Click(chromedp.CSS("#setting-required")))
		}
		if s.def != "" {
			actions = append(actions, chromedp.SendKeys(chromedp.CSS("#setting-default"), s.def))
		}
		if s.pattern != "" {
			actions = append(actions, chromedp.SendKeys(chromedp.CSS("#setting-pattern"), s.pattern))
		}
		actions = append(actions, chromedp.Click(chromedp.CSS("#add-setting")), chromedp.WaitVisible(chromedp.CSS(`a[href$="/settings/`+s.key+`"]`)))
		c.do("adding setting "+s.key, actions...)
	}
	if got := c.text("#prompt-title + p + fieldset"); !strings.Contains(got, "Client secret") || strings.Contains(got, "access_token") {
		t.Errorf("the install prompt shows:\n%s", got)
	}
	page("settings")
	c.do("opening a setting", chromedp.Click(chromedp.CSS(`a[href$="/settings/client_id"]`)), chromedp.WaitVisible(chromedp.CSS("#save-setting")))
	page("setting")

	// An authorization-code config, first with a template that uses a
	// setting the app does not have: the error is under the field, with
	// where in the template it is.
	c.do("opening the new config form", chromedp.Click(chromedp.CSS(`nav a[href$="/configs"]`)), chromedp.Click(chromedp.CSS("#new-config")), chromedp.WaitVisible(chromedp.CSS("#save-config")))
	page("config-new")
	badLink := p.AuthorizeURL() + "?client_id=<<client_id>>&redirect_uri=<<redirect_uri>>&response_type=code&scope=<<scope>>&tenant=<<tenant>>"
	c.do("creating a config with a mistake",
		chromedp.SendKeys(chromedp.CSS("#config-name"), "acme"),
		chromedp.SendKeys(chromedp.CSS("#config-scopes"), "read offline"),
		chromedp.SetValue(chromedp.CSS("#config-link-url"), badLink),
		chromedp.SendKeys(chromedp.CSS("#config-token-url"), p.TokenURL()),
		chromedp.SetValue(chromedp.CSS("#config-client-auth"), "basic"),
		chromedp.SendKeys(chromedp.CSS("#config-access-token-setting"), "access_token"),
		chromedp.SendKeys(chromedp.CSS("#config-refresh-token-setting"), "refresh_token"),
		chromedp.Click(chromedp.CSS("#config-log-requests")),
		chromedp.Click(chromedp.CSS("#save-config")),
		chromedp.WaitVisible(chromedp.CSS("#config-link-url-error")),
	)
	if got := c.text("#config-link-url-error"); !strings.Contains(got, "tenant") || !strings.Contains(got, "At position") {
		t.Errorf("the link URL's error: %q", got)
	}
	if got := c.text("#config-link-url-error mark"); got != "<" && got != "t" {
		t.Errorf("the error marks %q, not the unknown variable", got)
	}
	if got := eval[string](c, `document.querySelector('#config-link-url').getAttribute('aria-describedby')`); !strings.Contains(got, "config-link-url-error") {
		t.Errorf("the link URL field is not described by its error: %q", got)
	}
	if got := c.text(".summary a"); !strings.Contains(got, "tenant") {
		t.Errorf("the error summary: %q", got)
	}
	page("config-error")
	c.do("fixing the config",
		chromedp.SetValue(chromedp.CSS("#config-link-url"), strings.TrimSuffix(badLink, "&tenant=<<tenant>>")),
		chromedp.Click(chromedp.CSS("#save-config")),
		chromedp.WaitVisible(chromedp.CSS("#config-id")),
	)
	configID := c.text("#config-id")
	page("config")

	// Installed for an organization, from the console.
	c.do("opening the installations", chromedp.Click(chromedp.CSS(`nav a[href$="/installations"]`)), chromedp.WaitVisible(chromedp.CSS("#install")))
	c.do("installing",
		chromedp.SendKeys(chromedp.CSS("#install-organization-id"), "org-42"),
		chromedp.SendKeys(chromedp.CSS("#install-client-id"), testClientID),
		chromedp.SendKeys(chromedp.CSS("#install-client-secret"), testClientSecret),
		chromedp.Click(chromedp.CSS("#install")),
		chromedp.WaitVisible(chromedp.CSS("#installation-id")),
	)
	instID := c.text("#installation-id")
	installationURL := e.url + "/console/installations/" + instID

	// Explained: what would be sent, secrets masked.
	c.do("opening the explain page", chromedp.Navigate(e.url+"/console/apps/acme/configs/"+configID+"/check"), chromedp.WaitVisible(chromedp.CSS("#explain")))
	page("config-check")
	c.do("explaining", chromedp.SendKeys(chromedp.CSS("#explain-user-id"), "user-7"), chromedp.Click(chromedp.CSS("#explain")), chromedp.WaitVisible(chromedp.CSS("#explanation")))
	if got := c.text("#explained-link"); !strings.Contains(got, "client_id="+testClientID) || !strings.Contains(got, "state=STATE") {
		t.Errorf("explained link: %q", got)
	}
	if got := c.text("#explained-token"); !strings.Contains(got, "Authorization: Basic ****") || strings.Contains(got, testClientSecret) {
		t.Errorf("explained token request: %q", got)
	}
	page("config-explained")
	c.do("testing the extraction",
		chromedp.SetValue(chromedp.CSS("#extract-response"), `{"access_token": "at-1234567890", "refresh_token": "rt-1234567890", "expires_in": 3600}`),
		chromedp.Click(chromedp.CSS("#test-extraction")),
		chromedp.WaitVisible(chromedp.CSS("#extraction")),
	)
	if got := c.text("#extraction"); !strings.Contains(got, "at-1****") || strings.Contains(got, "at-1234567890") || !strings.Contains(got, "3600 seconds") {
		t.Errorf("extraction: %q", got)
	}
	page("config-extraction")

	// A user connects through the hosted connect page.
	c.do("opening the installation", chromedp.Navigate(installationURL), chromedp.WaitVisible(chromedp.CSS("#make-link")))
	page("installation")
	c.do("making a connect link", chromedp.SendKeys(chromedp.CSS("#link-user-id"), "user-7"), chromedp.Click(chromedp.CSS("#make-link")), chromedp.WaitVisible(chromedp.CSS("#new-link")))
	page("installation-link")
	c.do("following it", chromedp.Click(chromedp.CSS("#new-link")), chromedp.WaitVisible(chromedp.CSS("#connect")))
	c.a11y("hosted connect page")
	c.do("continuing to the provider", chromedp.Click(chromedp.CSS("#connect")), chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)))
	c.do("allowing", chromedp.Click(chromedp.CSS(`button[value=allow]`)), chromedp.WaitVisible(chromedp.CSS(".status.ok")))
	c.a11y("hosted result page")

	// The connection, and its request log.
	c.do("back to the installation", chromedp.Navigate(installationURL), chromedp.WaitVisible(chromedp.CSS(".conn-status")))
	if got := c.text(".conn-status"); got != "connected" {
		t.Errorf("connection status %q", got)
	}
	page("connections")
	c.do("opening its request log", chromedp.Click(chromedp.CSS(`td a[href*="/logs?"]`)), chromedp.WaitVisible(chromedp.CSS("#entries")))
	if got := c.text(".entry-kind"); got != "exchange" {
		t.Errorf("request log entry kind %q", got)
	}
	c.do("opening an entry", chromedp.Click(chromedp.CSS("#entries summary")))
	if got := c.text("#entries details"); strings.Contains(got, testClientSecret) || !strings.Contains(got, "[REDACTED]") {
		t.Errorf("the log entry is not redacted:\n%s", got)
	}
	page("request-log")

	// An API, called with "try it".
	c.do("opening the APIs", chromedp.Click(chromedp.CSS(`nav a[href$="/apis"]`)), chromedp.WaitVisible(chromedp.CSS("#add-api")))
	page("apis")
	c.do("adding an API",
		chromedp.SendKeys(chromedp.CSS("#api-name"), "provider"),
		chromedp.SendKeys(chromedp.CSS("#api-base-url"), p.URL()+"/api"),
		chromedp.SetValue(chromedp.CSS("#api-config-id"), configID),
		chromedp.SetValue(chromedp.CSS("#api-headers"), "Authorization: Bearer <<access_token>>"),
		chromedp.Click(chromedp.CSS("#api-method-GET")),
		chromedp.Click(chromedp.CSS("#add-api")),
		chromedp.WaitVisible(chromedp.CSS("#try")),
	)
	page("api")
	c.do("trying it",
		chromedp.SendKeys(chromedp.CSS("#try-user-id"), "user-7"),
		chromedp.SendKeys(chromedp.CSS("#try-path"), "me"),
		chromedp.Click(chromedp.CSS("#try")),
		chromedp.WaitVisible(chromedp.CSS("#answer")),
	)
	if got := c.text("#answer-status"); got != "200 OK" {
		t.Errorf("try it: status %q", got)
	}
	if got := c.text("#answer-body"); !strings.Contains(got, `"id":"alice"`) {
		t.Errorf("try it: body %q", got)
	}
	page("api-tried")

	// The other pages, for the checks and the screenshots.
	for _, v := range []struct{ name, path, sel string }{
		{"apps", "/console/apps", "#new-app"},
		{"configs", "/console/apps/acme/configs", "#new-config"},
		{"installations", "/console/apps/acme/installations", "#install"},
		{"deliveries", "/console/apps/acme/deliveries", "#filter"},
		{"find-missing", "/console/find?reference=no-such-entry", "h1"},
		{"not-found", "/console/apps/no-such-app", "h1"},
	} {
		c.do("opening "+v.path, chromedp.Navigate(e.url+v.path), chromedp.WaitVisible(chromedp.CSS(v.sel)))
		page(v.name)
	}

	// Signing out: the console is closed again.
	c.do("signing out", chromedp.Click(chromedp.CSS("#sign-out")), chromedp.WaitVisible(chromedp.CSS("#sign-in")))
	c.do("opening the console again", chromedp.Navigate(e.url+"/console/apps"), chromedp.WaitVisible(chromedp.CSS("#sign-in")))
	page("signed-out")

	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.log {
		if strings.Contains(l, "Content Security Policy") || strings.Contains(l, "Content-Security-Policy") {
			t.Errorf("the browser reports a CSP violation: %s", l)
		}
	}
}

func twoDigits(n int) string {
	return string([]byte{byte('0' + n/10), byte('0' + n%10)})
}
