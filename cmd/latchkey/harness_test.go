package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/cache"
	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/internal/dbtest"
	"github.com/latchkey/latchkey/internal/openapitest"
	"github.com/latchkey/latchkey/internal/secret"
)

// testKeys is the encryption key ring of test servers.
var testKeys = []secret.Key{{ID: "test", Secret: bytes.Repeat([]byte{7}, secret.KeySize)}}

// env is a whole Latchkey server on a fresh database, reached over real HTTP.
// Every response it sees is checked against openapi.yaml and kept, with the
// server's logs, so tests can search all output for secrets.
type env struct {
	t      testing.TB
	db     *dbtest.DB
	cipher *secret.Cipher
	echo   *echo.Echo
	jobs   *background // not started: tests run the jobs they need
	cfg    config.Config
	url    string
	key    string // account "acme"
	other  string // account "globex": must never see acme's things

	buses []*cache.Bus // of e's server and its replicas

	mu     sync.Mutex
	logs   bytes.Buffer
	bodies bytes.Buffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with a chance to change the server's configuration.
func newEnvWith(t testing.TB, configure func(*config.Config)) *env {
	t.Helper()
	return newEnvOn(t, configure, nil)
}

// newEnvOn is newEnvWith with the server on the pool that serve returns
// for the test database (nil: the test's own pool), e.g. one through a
// relay the test can cut.
func newEnvOn(t testing.TB, configure func(*config.Config), serve func(*dbtest.DB) *gorm.DB) *env {
	t.Helper()
	e := &env{t: t, db: dbtest.Open(t)}
	serverDB := e.db.DB
	if serve != nil {
		serverDB = serve(e.db)
	}
	var err error
	if e.cipher, err = secret.New(testKeys); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(lockedWriter{&e.mu, &e.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewUnstartedServer(nil)
	e.url = "http://" + srv.Listener.Addr().String()
	cfg := config.Config{
		PublicURL: e.url,
		// Test providers run on loopback, which the SSRF guard refuses
		// unless it is allow-listed, as it is here.
		OutboundAllow:   []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		OutboundTimeout: 5 * time.Second,
		OutboundIdle:    64, CacheEntries: 10000, CacheTTL: 5 * time.Minute,
		RenewalShare: 0.5, // the default
	}
	if configure != nil {
		configure(&cfg)
	}
	e.cfg = cfg
	e.echo, e.jobs = newServer(cfg, serverDB, e.cipher, log)
	e.jobs.listen(t)
	e.buses = append(e.buses, e.jobs.bus)
	srv.Config.Handler = e.echo
	srv.Start()
	t.Cleanup(srv.Close)
	e.key = e.newKey("acme")
	e.other = e.newKey("globex")
	return e
}

// listen starts the cache bus of a test server (its other jobs are left
// to the tests), and waits until it listens: on PostgreSQL nothing is
// cached before.
func (b *background) listen(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.bus.Run(ctx, b.dsn); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for !b.bus.Listening() {
		if time.Now().After(deadline) {
			t.Fatal("the cache bus does not listen")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// leases is how many renewal leases are held.
func (e *env) leases() int64 {
	var n int64
	if err := e.db.Raw("SELECT count(*) FROM refresh_leases").Scan(&n).Error; err != nil {
		e.t.Fatal(err)
	}
	return n
}

// sqlChanged is for tests that change rows with SQL, behind the stores'
// backs: every server of e forgets what it cached, and on PostgreSQL so do
// servers in other processes, as an operator's NOTIFY would tell them.
func (e *env) sqlChanged() {
	for _, b := range e.buses {
		b.Flush()
	}
	if e.db.URL != "" {
		channel, err := cache.ChannelOf(e.db.DB)
		if err != nil {
			e.t.Fatal(err)
		}
		if err := e.db.Exec("SELECT pg_notify(?, ?)", channel, cache.FlushAll+" ").Error; err != nil {
			e.t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // for other processes to hear it
	}
}

func (e *env) newKey(account string) string {
	e.t.Helper()
	apps := app.NewStore(e.db.DB)
	acct, err := apps.EnsureAccount(context.Background(), account)
	if err != nil {
		e.t.Fatal(err)
	}
	key, _, err := apps.CreateKey(context.Background(), acct.ID, "test")
	if err != nil {
		e.t.Fatal(err)
	}
	return key
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// response is what a call returned.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

// call sends a request with key as the API key ("" for none). body is
// marshalled as JSON unless it is a string, which is sent as is.
func (e *env) call(method, path, key string, body any) response {
	e.t.Helper()
	req := e.request(method, path, key, body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.bodies.Write(raw)
	e.bodies.WriteByte('\n')
	e.mu.Unlock()
	checkSpec(e.t, req, resp, raw)
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

// request makes the request that call sends.
func (e *env) request(method, path, key string, body any) *http.Request {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return req
}

// specAccepts reports whether openapi.yaml accepts the request that call
// would send, without sending it.
func (e *env) specAccepts(method, path, key string, body any) bool {
	e.t.Helper()
	req := e.request(method, path, key, body)
	return loadSpec(e.t).CheckRequest(req, requestBody(e.t, req)) == nil
}

// must calls and fails the test unless the status is want; it returns the
// decoded JSON object (nil for an empty body).
func (e *env) must(want int, method, path, key string, body any) map[string]any {
	e.t.Helper()
	r := e.call(method, path, key, body)
	if r.status != want {
		e.t.Fatalf("%s %s: status %d, want %d\n%s", method, path, r.status, want, r.body)
	}
	if len(r.body) == 0 {
		return nil
	}
	return r.json(e.t)
}

// output is every response body and log line the server has produced.
func (e *env) output() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.bodies.String() + e.logs.String()
}

var spec struct {
	once sync.Once
	s    *openapitest.Spec
	err  error
}

// loadSpec returns openapi.yaml, loaded once: a test fails if it is not a
// sound OpenAPI document (see openapitest.Parse).
func loadSpec(t testing.TB) *openapitest.Spec {
	t.Helper()
	spec.once.Do(func() { spec.s, spec.err = openapitest.Load("../../openapi.yaml") })
	if spec.err != nil {
		t.Fatal(spec.err)
	}
	return spec.s
}

// checkSpec fails the test when an exchange does not match openapi.yaml.
// Every response must match. Whether the request must match depends on the
// server's answer, which says whether it took the request in:
//
//   - 400, 413 and 422 are the server refusing the request's input. Tests
//     send malformed requests on purpose to see these answers, so the spec
//     need not refuse the same requests; but a 422 that names fields with
//     a constraint a schema can say (see schemaFieldError) for a request
//     the spec accepts means the spec is looser than the server.
//   - 401 and 403 are about credentials (the API key, the install form's
//     CSRF token), which tests leave out or forge on purpose.
//   - Any other answer (2xx, 3xx, 404 for a missing thing, 409, 5xx...)
//     comes after the server read the request and found its input fine,
//     so the spec must accept it: a spec stricter than the server would
//     refuse requests that work.
func checkSpec(t testing.TB, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	err := loadSpec(t).CheckResponse(req, resp, body)
	if unknownRoute(resp.StatusCode, err) {
		return // a route the server does not have is, rightly, not in the spec
	}
	if err != nil {
		t.Errorf("response %d does not match openapi.yaml: %v\n%s", resp.StatusCode, err, body)
	}
	checkRequest(t, req, resp.StatusCode, body)
}

// checkRequest checks req against openapi.yaml as checkSpec says; status and
// body are the server's answer.
func checkRequest(t testing.TB, req *http.Request, status int, body []byte) {
	t.Helper()
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnauthorized, http.StatusForbidden:
		return
	}
	err := loadSpec(t).CheckRequest(req, requestBody(t, req))
	if status != http.StatusUnprocessableEntity {
		if err != nil {
			t.Errorf("openapi.yaml refuses a request that the server answered %d: %v", status, err)
		}
		return
	}
	if err != nil {
		return // both refuse it
	}
	var p struct {
		Errors []struct{ Field, Message string }
	}
	json.Unmarshal(body, &p)
	for _, fe := range p.Errors {
		if schemaFieldError(fe.Message) {
			t.Errorf("%s %s: openapi.yaml accepts a request that the server refuses (422) for %s: %s", req.Method, req.URL.Path, fe.Field, fe.Message)
		}
	}
}

// requestBody returns the body of req, which the client may have sent (and
// closed) already.
func requestBody(t testing.TB, req *http.Request) []byte {
	t.Helper()
	if req.GetBody == nil {
		return nil
	}
	rc, err := req.GetBody()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// schemaFieldError reports whether a server's field error is one that a
// JSON schema can express: an unknown field or a wrong JSON type (from
// httpapi.Bind), or a length, count or range bound. The other field errors
// (templates that do not parse, unknown settings, URLs that are not
// absolute...) depend on more than the request, or are beyond a schema.
func schemaFieldError(msg string) bool {
	return msg == "unknown field" || schemaMessage.MatchString(msg)
}

var schemaMessage = regexp.MustCompile(`^must be (a string|a number|a boolean|an array|an object), not |at most \d+|\d+ to \d+|\d+-\d+ `)

// unknownRoute reports whether the server's 404 or 405 is for a route that
// is not in openapi.yaml either.
func unknownRoute(status int, err error) bool {
	return (status == http.StatusNotFound || status == http.StatusMethodNotAllowed) && errors.Is(err, openapitest.ErrUnknownRoute)
}

// configT is the server configuration newEnvWith lets a test change.
type configT = config.Config
