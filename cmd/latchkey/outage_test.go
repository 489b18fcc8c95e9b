package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/dbtest"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/secret"
)

// TestDatabaseOutage runs the server on PostgreSQL through a relay that the
// test can cut. A read whose connection dies mid-query is tried again on a
// live connection; a write is not, and answers 503. While the database is
// gone every call answers 503 with Retry-After, never 500; once it is back,
// calls succeed again.
func TestDatabaseOutage(t *testing.T) {
	d := dbtest.Open(t)
	if d.URL == "" {
		t.Skip("needs PostgreSQL (set " + dbtest.EnvURL + "): the test breaks the TCP connections " +
			"between the server and its database, which an embedded SQLite file does not have")
	}
	relay := dbtest.NewRelay(t, d)
	ctx := context.Background()
	db, err := database.Open(ctx, relay.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { database.Close(db) })
	cipher, err := secret.New(testKeys)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logs bytes.Buffer
	handler, _ := newServer(config.Config{PublicURL: "http://localhost"}, db, cipher, slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, nil)))
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	apps := app.NewStore(db)
	acct, err := apps.EnsureAccount(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := apps.CreateKey(ctx, acct.ID, "test")
	if err != nil {
		t.Fatal(err)
	}

	call := func(want int, method, path, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, raw)
		}
		if got := resp.Header.Get("Retry-After"); want == http.StatusServiceUnavailable && got != httpapi.RetryAfter {
			t.Errorf("%s %s: Retry-After %q, want %q", method, path, got, httpapi.RetryAfter)
		}
	}

	call(201, "POST", "/v1/apps", `{"name": "Alpha", "slug": "alpha"}`)
	call(200, "GET", "/v1/apps", "")

	// The connection breaks as the app is read by slug (the first time this
	// query runs, so its text goes over the wire): read again, elsewhere.
	relay.DropOn(`slug = `)
	call(200, "GET", "/v1/apps/alpha", "")
	// An insert is not sent again: it may have been applied.
	relay.DropOn(`INSERT INTO "apps"`)
	call(503, "POST", "/v1/apps", `{"name": "Beta", "slug": "beta"}`)
	if n := relay.Dropped(); n != 2 {
		t.Fatalf("the relay broke %d connections, want 2", n)
	}

	relay.Cut()
	for range 3 {
		call(503, "GET", "/v1/apps", "")
		call(503, "GET", "/v1/apps/alpha", "")
		call(503, "POST", "/v1/apps", `{"name": "Beta", "slug": "beta"}`)
		call(503, "PATCH", "/v1/apps/alpha", `{"name": "Alpha 2"}`)
		call(503, "GET", "/readyz", "")
	}

	relay.Restore(t)
	call(200, "GET", "/readyz", "")
	call(200, "GET", "/v1/apps/alpha", "")
	call(201, "POST", "/v1/apps", `{"name": "Beta", "slug": "beta"}`)
	call(200, "PATCH", "/v1/apps/alpha", `{"name": "Alpha 2"}`)

	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), `"status":500`) {
		t.Errorf("a call answered 500:\n%s", logs.String())
	}
}
