package main

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// Browser tests drive Debian's Chromium (apt-get install chromium) through
// the DevTools protocol. Without a Chromium they are skipped, loudly: a
// machine without one must not fail CI, and .ci/run installs it.
//
//	LATCHKEY_CHROMIUM     the browser to run (default: chromium, chromium-browser,
//	                      google-chrome, google-chrome-stable or headless-shell on PATH)
//	LATCHKEY_SCREENSHOTS  where to save screenshots (default: .ci/out/screenshots)

// findChromium returns the browser to run, or "".
func findChromium() string {
	if p := os.Getenv("LATCHKEY_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// screenshotDir returns the folder screenshots go to, made if needed.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("LATCHKEY_SCREENSHOTS")
	if dir == "" {
		// The repository's .ci/out/ (gitignored), a stable place to look.
		dir = filepath.Join("..", "..", ".ci", "out", "screenshots")
	}
	abs, err := filepath.Abs(dir)
	if err == nil {
		dir = abs
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		// A read-only checkout: keep them with the test instead.
		dir = t.TempDir()
	}
	return dir
}

// chrome is one headless browser tab for a test.
type chrome struct {
	t   *testing.T
	ctx context.Context
	dir string

	mu  sync.Mutex
	log []string // the browser's log entries (CSP violations land here)
}

func newChrome(t *testing.T) *chrome {
	t.Helper()
	return newChromeFor(t, 2*time.Minute)
}

// newChromeFor is newChrome for a test that may take up to timeout.
func newChromeFor(t *testing.T, timeout time.Duration) *chrome {
	t.Helper()
	path := findChromium()
	if path == "" {
		t.Skip("!!! SKIPPING BROWSER TEST: no Chromium found (set LATCHKEY_CHROMIUM, or `apt-get install -y chromium`; .ci/run installs it). " +
			"The hosted pages were NOT checked in a real browser.")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Only loopback servers are reached; never a proxy from the environment.
		chromedp.Flag("no-proxy-server", true),
		chromedp.WindowSize(1280, 900),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	ctx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	c := &chrome{t: t, dir: screenshotDir(t)}
	ctx, cancelTab := chromedp.NewContext(ctx, chromedp.WithListener(func(ev any) {
		if e, ok := ev.(*cdplog.EventEntryAdded); ok && e.Entry != nil {
			c.mu.Lock()
			c.log = append(c.log, string(e.Entry.Level)+" "+string(e.Entry.Source)+": "+e.Entry.Text)
			c.mu.Unlock()
		}
	}))
	t.Cleanup(cancelTab)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(cancelTimeout)
	c.ctx = ctx
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting %s: %v", path, err)
	}
	t.Logf("browser: %s; screenshots in %s", path, c.dir)
	return c
}

func (c *chrome) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	if err := chromedp.Do(c.ctx, actions...); err != nil {
		loc, _ := chromedp.Run(c.ctx, chromedp.Location())
		c.t.Fatalf("%s: %v (at %s)", what, err, loc)
	}
}

func (c *chrome) text(sel string) string {
	c.t.Helper()
	s, err := chromedp.Run(c.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		c.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func (c *chrome) value(sel string) string {
	c.t.Helper()
	s, err := chromedp.Run(c.ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		c.t.Fatalf("value of %s: %v", sel, err)
	}
	return s
}

func eval[T any](c *chrome, js string) T {
	c.t.Helper()
	v, err := chromedp.Run(c.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		c.t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// shoot saves a full-page screenshot of the page at a phone's and at a
// desktop's size, as <dir>/<name>-phone.png and -desktop.png, and checks
// what every hosted page must be: styled by its hash-allowed stylesheet,
// with no horizontal scrolling on a phone.
func (c *chrome) shoot(name string, hosted bool) {
	c.t.Helper()
	for _, v := range []struct {
		size          string
		width, height int64
		opts          []chromedp.EmulateViewportOption
	}{
		{"phone", 390, 844, []chromedp.EmulateViewportOption{chromedp.EmulateMobile, chromedp.EmulateTouch}},
		{"desktop", 1280, 900, nil},
	} {
		c.do("resizing to "+v.size, chromedp.EmulateViewport(v.width, v.height, v.opts...))
		if hosted {
			if w := eval[int](c, `document.documentElement.scrollWidth`); w > int(v.width) {
				c.t.Errorf("%s on a %s: %dpx wide, wider than the %dpx screen", name, v.size, w, v.width)
			}
		}
		img, err := chromedp.Run(c.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			c.t.Fatalf("screenshot %s: %v", name, err)
		}
		file := filepath.Join(c.dir, name+"-"+v.size+".png")
		if err := os.WriteFile(file, img, 0o644); err != nil {
			c.t.Fatal(err)
		}
	}
	c.do("resetting the viewport", chromedp.EmulateViewport(1280, 900))
	if hosted {
		// The inline stylesheet applied: the CSP allowed it by its hash.
		if got := eval[string](c, `getComputedStyle(document.querySelector('main')).maxWidth`); got != "544px" {
			c.t.Errorf("%s: main's max-width is %q: the stylesheet did not apply", name, got)
		}
	}
}

// logoServer serves a small PNG logo from loopback, as an app's CDN would.
func logoServer(t *testing.T) string {
	img := image.NewRGBA(image.Rect(0, 0, 96, 96))
	for y := range 96 {
		for x := range 96 {
			c := color.RGBA{0x0b, 0x5c, 0xad, 0xff}
			if dx, dy := x-48, y-48; dx*dx+dy*dy < 26*26 && (dx*dx+dy*dy > 14*14 || dx > 0) {
				c = color.RGBA{0xff, 0xff, 0xff, 0xff}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(buf.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/logo.png"
}

// TestBrowserInstallAndConnect goes through the hosted pages in headless
// Chromium as a person would: a bad value and its error, the fix, the
// installation, connect, consent at a real authorization server, and each
// outcome of the flow. Each page is checked for accessibility (see a11y).
func TestBrowserInstallAndConnect(t *testing.T) {
	c := newChrome(t)
	e := newEnv(t)
	a := newHostedApp(t, e, logoServer(t))
	link := a.installLink("org-42", "user-7")

	// The install form, first with a bad subdomain and no client id.
	c.do("opening the install link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#install")))
	if !eval[bool](c, `[...document.querySelectorAll('input:not([type=hidden])')].every(i => i.labels.length === 1)`) {
		t.Error("an input of the install form has no label")
	}
	if !eval[bool](c, `document.querySelector('header img').naturalWidth > 0`) {
		t.Error("the logo did not load: the CSP's img-src does not allow it")
	}
	c.shoot("01-install-form", true)
	c.a11y("hosted 01-install-form")
	c.do("filling the form with a bad value",
		chromedp.SendKeys(chromedp.CSS("#f-client_secret"), testClientSecret),
		chromedp.SendKeys(chromedp.CSS("#f-subdomain"), "Not Valid!"),
		chromedp.Click(chromedp.CSS("#install")),
		chromedp.WaitVisible(chromedp.CSS("#f-subdomain-error")),
	)
	if got := c.text("#f-subdomain-error"); got != "Your Acme subdomain does not match the pattern [a-z0-9-]+." {
		t.Errorf("subdomain error: %q", got)
	}
	if got := c.text("#f-client_id-error"); got != "Client ID is required." {
		t.Errorf("client id error: %q", got)
	}
	if got := c.value("#f-subdomain"); got != "Not Valid!" {
		t.Errorf("the entered subdomain was not kept: %q", got)
	}
	if got := c.value("#f-client_secret"); got != "" {
		t.Error("the secret was filled back in")
	}
	c.shoot("02-install-errors", true)
	c.a11y("hosted 02-install-errors")

	// Fixed, and submitted from the keyboard (Enter in a field).
	c.do("fixing the form",
		chromedp.Clear(chromedp.CSS("#f-subdomain")),
		chromedp.SendKeys(chromedp.CSS("#f-subdomain"), "acme"),
		chromedp.SendKeys(chromedp.CSS("#f-client_id"), testClientID),
		chromedp.SendKeys(chromedp.CSS("#f-client_secret"), testClientSecret+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("#installation")),
	)
	instID := c.text("#installation")
	if got := c.text("h1"); got != "Acme CRM is installed" {
		t.Errorf("installed page: %q", got)
	}
	c.shoot("03-installed", true)
	c.a11y("hosted 03-installed")

	// Next step: connect, from the keyboard: Tab to the button, Enter.
	c.do("opening the connect page", chromedp.Click(chromedp.CSS(".actions a.button")), chromedp.WaitVisible(chromedp.CSS("#connect")))
	if got := c.text("main"); !strings.Contains(got, "read") || !strings.Contains(got, "offline") {
		t.Errorf("the connect page does not list the scopes:\n%s", got)
	}
	c.shoot("04-connect", true)
	c.a11y("hosted 04-connect")
	c.do("tabbing to the button", chromedp.KeyEvent(kb.Tab))
	if id := eval[string](c, `document.activeElement.id`); id != "connect" {
		t.Errorf("the first Tab focuses %q, not the connect button", id)
	}
	c.do("pressing Enter on it", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)))
	c.shoot("05-consent", false)
	c.do("allowing", chromedp.Click(chromedp.CSS(`button[value=allow]`)), chromedp.WaitVisible(chromedp.CSS(".status.ok")))
	if got := c.text("h1"); got != "Connected" {
		t.Errorf("result page: %q", got)
	}
	c.shoot("06-connected", true)
	c.a11y("hosted 06-connected")
	conns := e.must(200, "GET", "/v1/installations/"+instID+"/connections?user_id=user-7", e.key, nil)["connections"].([]any)
	if len(conns) != 1 || conns[0].(map[string]any)["status"] != "connected" {
		t.Errorf("connections = %v", conns)
	}

	// Access denied, then Try again.
	c.do("denying",
		chromedp.Navigate(a.connectLink(instID, "user-8")),
		chromedp.Click(chromedp.CSS("#connect")),
		chromedp.Click(chromedp.CSS(`button[value=deny]`)),
		chromedp.WaitVisible(chromedp.CSS("#retry")),
	)
	if got := c.text("h1"); got != "Access denied" {
		t.Errorf("denied page: %q", got)
	}
	c.shoot("07-access-denied", true)
	c.a11y("hosted 07-access-denied")
	c.do("trying again", chromedp.Click(chromedp.CSS("#retry")), chromedp.WaitVisible(chromedp.CSS("#connect")))

	// The provider fails (the organization's client secret is wrong): the
	// page says so, with a reference that finds the request log entry.
	e.must(200, "PATCH", "/v1/installations/"+instID+"/settings", e.key, map[string]any{"values": map[string]string{"client_secret": "wrong-secret"}})
	c.do("failing at the provider",
		chromedp.Navigate(a.connectLink(instID, "user-9")),
		chromedp.Click(chromedp.CSS("#connect")),
		chromedp.Click(chromedp.CSS(`button[value=allow]`)),
		chromedp.WaitVisible(chromedp.CSS("#reference")),
	)
	if got := c.text("h1"); got != "The provider failed" {
		t.Errorf("provider failure page: %q", got)
	}
	ref := c.text("#reference")
	entries := e.must(200, "GET", "/v1/installations/"+instID+"/oauth-requests?id="+url.QueryEscape(ref), e.key, nil)["requests"].([]any)
	if len(entries) != 1 || entries[0].(map[string]any)["user_id"] != "user-9" {
		t.Errorf("reference %s finds %v", ref, entries)
	}
	c.shoot("08-provider-failed", true)
	c.a11y("hosted 08-provider-failed")

	// The install link is spent.
	c.do("opening the used install link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("h1")))
	if got := c.text("h1"); got != "This link cannot be used" {
		t.Errorf("used link: %q", got)
	}
	c.shoot("09-install-link-used", true)
	c.a11y("hosted 09-install-link-used")

	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.log {
		if strings.Contains(l, "Content Security Policy") || strings.Contains(l, "Content-Security-Policy") {
			t.Errorf("the browser reports a CSP violation: %s", l)
		}
	}
	t.Logf("screenshots of every page, phone and desktop size: %s", c.dir)
}
