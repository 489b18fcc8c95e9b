package console

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/dbtest"
	"github.com/latchkey/latchkey/internal/httpapi"
)

// clock is a test's time, moved by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// testConsole is a console over a fresh database, with only what signing
// in and the apps page need, reached over real HTTP.
type testConsole struct {
	t     *testing.T
	url   string
	key   string
	db    *dbtest.DB
	clock *clock
	http  *http.Client
}

func newTestConsole(t *testing.T) *testConsole {
	t.Helper()
	tc := &testConsole{t: t, db: dbtest.Open(t), clock: &clock{t: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}}
	apps := app.NewStore(tc.db.DB)
	acct, err := apps.EnsureAccount(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if tc.key, _, err = apps.CreateKey(context.Background(), acct.ID, "test"); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := httpapi.New(log, nil)
	New(Deps{Sessions: NewSessions(tc.db.DB, tc.clock.now), Apps: apps, Log: log}).Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	tc.url = srv.URL
	jar, _ := cookiejar.New(nil)
	tc.http = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return tc
}

var tokenField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

func (tc *testConsole) get(path string) (int, string, string) {
	tc.t.Helper()
	resp, err := tc.http.Get(tc.url + path)
	if err != nil {
		tc.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(body)
}

func (tc *testConsole) signIn() {
	tc.t.Helper()
	_, _, page := tc.get("/console/sign-in")
	m := tokenField.FindStringSubmatch(page)
	if m == nil {
		tc.t.Fatalf("no form token on the sign-in page:\n%s", page)
	}
	resp, err := tc.http.PostForm(tc.url+"/console/sign-in", url.Values{"_csrf": {m[1]}, "key": {tc.key}})
	if err != nil {
		tc.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/apps" {
		tc.t.Fatalf("sign-in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// signedIn reports whether the apps page opens (else it sends the browser
// to sign in).
func (tc *testConsole) signedIn() bool {
	tc.t.Helper()
	status, location, body := tc.get("/console/apps")
	switch {
	case status == http.StatusOK && strings.Contains(body, "Your apps"):
		return true
	case status == http.StatusSeeOther && location == "/console/sign-in":
		return false
	}
	tc.t.Fatalf("apps page: %d to %q\n%s", status, location, body)
	return false
}

func (tc *testConsole) sessions() int64 {
	var n int64
	tc.db.Model(&Session{}).Count(&n)
	return n
}

// TestSessionExpiry moves the clock: a session ends after IdleTimeout
// without use, and after MaxAge however busy it is; an ended session is
// deleted, and the browser is sent to sign in again.
func TestSessionExpiry(t *testing.T) {
	tc := newTestConsole(t)
	tc.signIn()
	if !tc.signedIn() {
		t.Fatal("not signed in after signing in")
	}

	// Used just before it would idle out, it lives on.
	tc.clock.advance(IdleTimeout - time.Second)
	if !tc.signedIn() {
		t.Fatal("the session ended before it was idle for IdleTimeout")
	}
	tc.clock.advance(IdleTimeout - time.Second)
	if !tc.signedIn() {
		t.Fatal("using the session did not keep it alive")
	}
	tc.clock.advance(IdleTimeout)
	if tc.signedIn() {
		t.Fatal("the session is alive after IdleTimeout without use")
	}
	if n := tc.sessions(); n != 0 {
		t.Errorf("%d idle session(s) left in the database", n)
	}

	// However busy, a session ends at MaxAge.
	tc.signIn()
	for used := time.Duration(0); used+time.Hour < MaxAge; used += time.Hour {
		tc.clock.advance(time.Hour)
		if !tc.signedIn() {
			t.Fatalf("the session ended after %s of use", used+time.Hour)
		}
	}
	tc.clock.advance(time.Hour)
	if tc.signedIn() {
		t.Fatalf("the session is alive after MaxAge (%s)", MaxAge)
	}
}

// TestSignInSweepsEndedSessions checks that a sign-in deletes the sessions
// that ended without their browsers coming back.
func TestSignInSweepsEndedSessions(t *testing.T) {
	tc := newTestConsole(t)
	tc.signIn()
	other := *tc
	jar, _ := cookiejar.New(nil)
	other.http = &http.Client{Jar: jar, CheckRedirect: tc.http.CheckRedirect}
	other.signIn()
	if n := tc.sessions(); n != 2 {
		t.Fatalf("%d sessions, want 2", n)
	}
	tc.clock.advance(IdleTimeout)
	tc.signIn()
	if n := tc.sessions(); n != 1 {
		t.Errorf("%d sessions after a sign-in, want 1: the idle ones stay", n)
	}
}

func TestFormToken(t *testing.T) {
	a, b := formToken("session-a", "form"), formToken("session-b", "form")
	switch {
	case a == b:
		t.Error("two sessions have the same form token")
	case !checkFormToken("session-a", "form", a):
		t.Error("a session's own token is refused")
	case checkFormToken("session-a", "form", b), checkFormToken("session-a", "sign-in", a),
		checkFormToken("", "form", formToken("", "form")), checkFormToken("session-a", "form", ""):
		t.Error("a token of another session, purpose or none is taken")
	}
}
