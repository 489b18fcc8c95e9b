package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/dbtest"
)

// TestRollingRotation replaces the encryption key of two servers on one
// database the way README's "Rotating the encryption key" says, restarting
// them one after the other at each step, under a steady load of writes and
// reads of secret settings spread over both: no call may fail. Each call
// that reads decrypts a value the other server may just have written, so
// at every moment each server must open what the other seals.
//
// On SQLite the two servers share one file, which is acceptable here since
// they are in one process; on PostgreSQL they share one schema.
func TestRollingRotation(t *testing.T) {
	e, f := newFleet(t)
	k1, k2 := keyOf("k1", 1), keyOf("k2", 2)
	a := f.start(t, "A", keyEnv(e, "", k1))
	b := f.start(t, "B", keyEnv(e, "", k1))
	l := startLoad(t, e, f)

	for _, step := range []struct {
		name   string
		getenv func(string) string
	}{
		{"1: k2 known to every server, k1 still seals", keyEnv(e, "", k1, k2)},
		{"2: k2 seals", keyEnv(e, "k2", k1, k2)},
	} {
		for _, m := range []*member{a, b} {
			// Between the restarts, one server runs the new environment
			// and the other the old: the state a rolling restart passes.
			f.restart(t, m, step.getenv)
			l.waitCalls(t, step.name+", after "+m.name+" restarted", 30)
		}
	}

	// 3: re-encrypt while both serve.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"reencrypt", "-batch-size", "2"}, keyEnv(e, "k2", k1, k2), &out, &out); err != nil {
		t.Fatalf("reencrypt: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), `0 remaining not sealed with "k2"`) {
		t.Errorf("reencrypt did not leave every value sealed with k2:\n%s", out.String())
	}
	l.waitCalls(t, "3: re-encrypted", 30)

	// 4: k1 goes. The servers start only if no stored value needs it.
	for _, m := range []*member{a, b} {
		f.restart(t, m, keyEnv(e, "", k2))
		l.waitCalls(t, "4: k1 removed, after "+m.name+" restarted", 30)
	}
	l.stop()

	t.Logf("%d calls, %d of them during the rotation", l.calls.Load(), l.calls.Load()-l.before)
	if fails := l.failed(); len(fails) > 0 {
		t.Errorf("%d calls failed during the rotation; the first:\n%s", len(fails), strings.Join(fails[:min(len(fails), 10)], "\n"))
	}
	var sealed []string
	e.db.Raw("SELECT value FROM organization_values WHERE encrypted = ? UNION ALL SELECT value FROM user_values WHERE encrypted = ?", true, true).Scan(&sealed)
	if len(sealed) < 1+loadWorkers {
		t.Fatalf("%d sealed values stored, want at least %d", len(sealed), 1+loadWorkers)
	}
	for _, v := range sealed {
		if !strings.HasPrefix(v, "v1:k2:") {
			t.Errorf("a value is sealed as %.6q after the rotation, want v1:k2:", v)
		}
	}
}

// TestRotationNewKeyFirstFails is the control of TestRollingRotation: the
// order README used to give (the new key first on a server while another
// does not have it yet) fails calls under the same load, so that load
// would have caught it.
func TestRotationNewKeyFirstFails(t *testing.T) {
	e, f := newFleet(t)
	k1, k2 := keyOf("k1", 1), keyOf("k2", 2)
	f.start(t, "A", keyEnv(e, "", k1))
	f.start(t, "B", keyEnv(e, "", k2, k1))
	l := startLoad(t, e, f)
	l.waitCalls(t, "A on k1, B on k2,k1", 40)
	l.stop()
	fails := l.failed()
	if len(fails) == 0 || !strings.Contains(strings.Join(fails, "\n"), "cannot be decrypted") {
		t.Fatalf("%d calls failed (%v), want some, because A cannot decrypt what B seals with k2", len(fails), fails)
	}
}

// fleet is the servers that calls are spread over, round robin: a server
// joins when it is ready and leaves before it stops, as behind a
// Kubernetes Service with a readiness probe.
type fleet struct {
	client *http.Client // for calls through the fleet

	mu   sync.Mutex
	live []*member
	next int
}

// member is one server of a fleet, restarted in place.
type member struct {
	name     string
	s        *served
	inflight sync.WaitGroup // its calls in flight, counted while it is live
}

// newFleet returns an env on a fresh database, without a server of its
// own (the fleet's are started with run), and an empty fleet.
func newFleet(t *testing.T) (*env, *fleet) {
	t.Helper()
	return &env{t: t, db: dbtest.Open(t)}, &fleet{client: &http.Client{Timeout: 10 * time.Second}}
}

// start starts a server named name and adds it to the fleet.
func (f *fleet) start(t *testing.T, name string, getenv func(string) string) *member {
	t.Helper()
	m := &member{name: name}
	f.join(t, m, getenv)
	return m
}

func (f *fleet) join(t *testing.T, m *member, getenv func(string) string) {
	t.Helper()
	m.s = mustServe(t, getenv)
	if got := m.s.readyz(t); got != http.StatusOK {
		t.Fatalf("server %s: /readyz = %d after start, want 200", m.name, got)
	}
	f.mu.Lock()
	f.live = append(f.live, m)
	f.mu.Unlock()
}

// restart takes m out of the fleet, waits for its calls in flight, stops
// it gracefully, and starts it again with getenv.
func (f *fleet) restart(t *testing.T, m *member, getenv func(string) string) {
	t.Helper()
	f.mu.Lock()
	for i, x := range f.live {
		if x == m {
			f.live = append(f.live[:i], f.live[i+1:]...)
		}
	}
	f.mu.Unlock()
	m.inflight.Wait()
	// As a balancer drops its connections to a server that left. A
	// connection the client opened but never used would otherwise hold
	// up the server's graceful shutdown for 5 seconds (net/http treats it
	// as active until then).
	f.client.CloseIdleConnections()
	if err := m.s.stop(); err != nil {
		t.Fatalf("server %s: %v after shutdown", m.name, err)
	}
	f.join(t, m, getenv)
}

// pick returns the next live server's URL and name, and a function to call
// when the call is done.
func (f *fleet) pick() (url, name string, done func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.live[f.next%len(f.live)]
	f.next++
	m.inflight.Add(1)
	return m.s.url, m.name, m.inflight.Done
}

// loadWorkers is how many end users write and read their token at once.
const loadWorkers = 3

// load is a steady stream of calls through a fleet: each worker stores a
// new access token for its user (a secret user setting), then reads it back
// through an API's headers endpoint, which decrypts it; calls alternate
// between the servers.
type load struct {
	e       *env
	f       *fleet
	path    string // the installation's path
	calls   atomic.Int64
	before  int64 // calls made before the test's first step
	done    chan struct{}
	workers sync.WaitGroup

	mu       sync.Mutex
	failures []string
}

// startLoad sets up an app, an installation with a secret organization
// value and an API through the fleet, and starts the workers.
func startLoad(t *testing.T, e *env, f *fleet) *load {
	t.Helper()
	var done func()
	e.url, _, done = f.pick() // set up through one server
	defer done()
	e.key = e.newKey("acme")
	setupApp(e)
	inst := e.must(201, "POST", "/v1/installations", e.key, map[string]any{
		"app_id": "acme", "organization_id": "org-1", "values": map[string]string{"client_id": "c", "client_secret": canary(t)}})
	e.must(201, "POST", "/v1/apps/acme/apis", e.key, map[string]any{
		"name": "plain", "base_url": "https://api.example",
		"headers": map[string]string{"Authorization": "Bearer <<access_token>>", "X-Client": "<<client_secret>>"},
	})
	l := &load{
		e: e, f: f, path: "/v1/installations/" + inst["id"].(string), done: make(chan struct{}),
	}
	for w := range loadWorkers {
		l.workers.Go(func() { l.work(w) })
	}
	t.Cleanup(l.stop)
	l.waitCalls(t, "before the first step", 10)
	l.before = l.calls.Load()
	return l
}

func (l *load) work(w int) {
	user := fmt.Sprintf("user-%d", w)
	for i := 0; ; i++ {
		select {
		case <-l.done:
			return
		default:
		}
		token := fmt.Sprintf("token-%d-%d", w, i)
		l.call("PATCH", l.path+"/users/"+user+"/settings", `{"values":{"access_token":"`+token+`"}}`, "")
		l.call("GET", l.path+"/users/"+user+"/apis/plain/headers", "", "Bearer "+token)
	}
}

// call makes one call on the next server, and records it as failed unless
// it answers 200 (and, if wantAuth is set, renders that Authorization). A
// server may render the previous token for a moment after another server
// stored a new one: its cache learns of the change by a notification,
// which must arrive within a second.
func (l *load) call(method, path, body, wantAuth string) {
	base, name, done := l.f.pick()
	defer done()
	defer l.calls.Add(1)
	fail := func(format string, args ...any) {
		l.mu.Lock()
		l.failures = append(l.failures, fmt.Sprintf("%s %s on %s: ", method, path, name)+fmt.Sprintf(format, args...))
		l.mu.Unlock()
	}
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+l.e.key)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := l.f.client.Do(req)
		if err != nil {
			fail("%v", err)
			return
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			fail("%d %s", resp.StatusCode, raw)
			return
		}
		if wantAuth == "" {
			return
		}
		var h struct{ Headers map[string]string }
		if err := json.Unmarshal(raw, &h); err != nil || h.Headers["X-Client"] == "" {
			fail("rendered %v, want the client secret", h.Headers)
			return
		}
		if h.Headers["Authorization"] == wantAuth {
			return
		}
		if time.Since(start) > time.Second {
			fail("rendered %v for over a second, want Authorization %q", h.Headers, wantAuth)
			return
		}
	}
}

// waitCalls waits until n more calls have been made, and fails the test
// if that takes more than 30 seconds.
func (l *load) waitCalls(t *testing.T, during string, n int64) {
	t.Helper()
	want := l.calls.Load() + n
	deadline := time.Now().Add(30 * time.Second)
	for l.calls.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the load made %d calls in 30s, want %d", during, n-(want-l.calls.Load()), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stop stops the workers and waits for them.
func (l *load) stop() {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	l.workers.Wait()
}

func (l *load) failed() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.failures...)
}
