package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/secret"
)

// served is a whole server started with run, as `latchkey serve` is.
type served struct {
	url    string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error

	mu   sync.Mutex
	logs bytes.Buffer // stderr
}

// serveWith runs `latchkey serve` with getenv, on a port of its own, until
// stop or the end of the test. It returns run's error if the server stops
// before it listens, as when it refuses its keys.
func serveWith(t *testing.T, getenv func(string) string) (*served, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{cancel: cancel, done: make(chan error, 1)}
	pr, pw := io.Pipe()
	go func() {
		err := run(ctx, []string{"serve"}, getenv, pw, lockedWriter{&s.mu, &s.logs})
		pw.Close()
		s.done <- err
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		return nil, <-s.done
	}
	go io.Copy(io.Discard, pr)
	s.url = strings.TrimSpace(strings.TrimPrefix(line, "latchkey listening on "))
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("server %s: %v after shutdown", s.url, err)
		}
		if t.Failed() {
			t.Logf("server %s logs:\n%s", s.url, s.output())
		}
	})
	return s, nil
}

// mustServe is serveWith for a server that must start.
func mustServe(t *testing.T, getenv func(string) string) *served {
	t.Helper()
	s, err := serveWith(t, getenv)
	if err != nil {
		t.Fatalf("serve: %v", err)
	}
	return s
}

// stop shuts the server down gracefully, as SIGTERM does, and returns what
// run returned.
func (s *served) stop() error {
	s.once.Do(func() {
		s.cancel()
		select {
		case s.err = <-s.done:
		case <-time.After(20 * time.Second):
			s.err = errors.New("did not stop within 20s")
		}
	})
	return s.err
}

func (s *served) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// readyz returns the status of the server's readiness probe.
func (s *served) readyz(t *testing.T) int {
	t.Helper()
	resp, err := http.Get(s.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// keyEnv returns a getenv for a server on e's database with the key ring
// keys, sealing with the key sealing ("" for the default, the first).
func keyEnv(e *env, sealing string, keys ...secret.Key) func(string) string {
	vars := map[string]string{
		"DATABASE_URL":              e.db.URL,
		"LATCHKEY_SQLITE_PATH":      e.db.SQLitePath,
		"LATCHKEY_ADDR":             "127.0.0.1:0",
		"LATCHKEY_ENCRYPTION_KEYS":  keyRing(keys),
		"LATCHKEY_SEALING_KEY":      sealing,
		"LATCHKEY_SHUTDOWN_TIMEOUT": "30s", // two servers share one SQLite file: a write may wait its busy timeout (5s)
		"LATCHKEY_OUTBOUND_ALLOW":   "127.0.0.0/8",
	}
	if e.db.URL == "" {
		// Several servers on one SQLite file stand in for replicas here;
		// Latchkey runs one replica on SQLite, and its caches, which
		// only PostgreSQL invalidates across processes, assume so.
		vars["LATCHKEY_CACHE_ENTRIES"] = "0"
	}
	return func(k string) string { return vars[k] }
}

func keyOf(id string, b byte) secret.Key {
	return secret.Key{ID: id, Secret: bytes.Repeat([]byte{b}, secret.KeySize)}
}

// TestKeysCheckedAtStart: a server refuses to start with a key whose bytes
// are not those the database knows by its id, or without a key that seals
// stored values, naming the key; it starts with the right keys; its
// readiness probe fails when the keys stop opening their check values;
// and reencrypt refuses a wrong key too.
func TestKeysCheckedAtStart(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t) // stores values sealed with the key "test"
	setupApp(e)
	e.must(201, "POST", "/v1/installations", e.key, map[string]any{
		"app_id": "acme", "organization_id": "org-1", "values": map[string]string{"client_id": "c", "client_secret": canary(t)}})
	test, k2 := testKeys[0], keyOf("k2", 2)

	// "test" seals a stored value, and this ring lacks it.
	_, err := serveWith(t, keyEnv(e, "", k2))
	if err == nil || !strings.Contains(err.Error(), "stored secrets are sealed with key test (in organization_values.value") {
		t.Fatalf("serve without the key of stored values: err = %v, want a refusal naming key test", err)
	}
	// With it, it starts, whichever seals.
	s := mustServe(t, keyEnv(e, "k2", test, k2))
	if got := s.readyz(t); got != 200 {
		t.Fatalf("/readyz = %d, want 200", got)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	// The right ids with other bytes: refused, by id, before listening.
	for _, tt := range []struct {
		keys []secret.Key
		want string
	}{
		{[]secret.Key{keyOf("test", 9)}, "test"},
		{[]secret.Key{test, keyOf("k2", 9)}, "k2"},
	} {
		_, err := serveWith(t, keyEnv(e, "", tt.keys...))
		want := "key " + tt.want + " does not open the check value stored for " + tt.want + ": wrong key bytes?"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("serve with a wrong %s: err = %v, want %q", tt.want, err, want)
		}
		var out bytes.Buffer
		if err := run(ctx, []string{"reencrypt"}, keyEnv(e, "", tt.keys...), &out, &out); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("reencrypt with a wrong %s: err = %v, want %q\n%s", tt.want, err, want, out.String())
		}
		out.Reset()
		if err := run(ctx, []string{"reencrypt", "-dry-run"}, keyEnv(e, "", tt.keys...), &out, &out); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("reencrypt -dry-run with a wrong %s: err = %v, want %q\n%s", tt.want, err, want, out.String())
		}
	}

	// A running server whose keys stop opening their check values (the
	// database was swapped, the table rewritten) is not ready.
	s = mustServe(t, keyEnv(e, "", test))
	var saved string
	e.db.Raw("SELECT sealed FROM key_checks WHERE key_id = 'test'").Scan(&saved)
	other, _ := secret.New([]secret.Key{keyOf("test", 9)})
	forged, _ := other.SealWith("test", "latchkey key check", "key-check:test")
	e.db.Exec("UPDATE key_checks SET sealed = ? WHERE key_id = 'test'", forged)
	if got := s.readyz(t); got != 503 {
		t.Errorf("/readyz with a forged check value = %d, want 503", got)
	}
	// e's own server has the same key; its answer is checked against the spec.
	if r := e.call("GET", "/readyz", "", nil); r.status != 503 || r.json(t)["code"] != "unavailable" {
		t.Errorf("/readyz with a forged check value: %d %s", r.status, r.body)
	}
	e.db.Exec("UPDATE key_checks SET sealed = ? WHERE key_id = 'test'", saved)
	if got := s.readyz(t); got != 200 {
		t.Errorf("/readyz with the check value restored = %d, want 200", got)
	}
}
