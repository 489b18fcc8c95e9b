package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/internal/dbtest"
	"github.com/latchkey/latchkey/internal/secret"
)

// TestShutdownClosesDatabaseLast: when the server stops, the background
// jobs finish their last round, which may still use the database, before
// the database is closed.
func TestShutdownClosesDatabaseLast(t *testing.T) {
	db := dbtest.Open(t).Reopen(t) // a pool of its own, for runServer to close
	cipher, err := secret.New(testKeys)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	handler, jobs := newServer(config.Config{PublicURL: "http://localhost"}, db, cipher, log)
	lastRound := make(chan error, 1)
	jobs.jobs = append(jobs.jobs, func(ctx context.Context) {
		<-ctx.Done()
		// A round that ends well after the HTTP server, which has no
		// request in flight, has stopped.
		time.Sleep(200 * time.Millisecond)
		lastRound <- db.WithContext(context.Background()).Exec("SELECT 1").Error
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runServer(ctx, &http.Server{Handler: handler}, ln, jobs, db, 5*time.Second, log) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-lastRound:
		if err != nil {
			t.Errorf("a job's last round failed: %v", err)
		}
	default:
		t.Error("runServer returned before a job did")
	}
	if err := db.Exec("SELECT 1").Error; err == nil {
		t.Error("runServer left the database open")
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), "database is closed") {
		t.Errorf("logs:\n%s", logs.String())
	}
}

// TestStoppedDeliveryIsNoFailure: a dispatcher stopped while a receiver
// has the request neither logs an error nor counts an attempt against the
// receiver; the delivery stays claimed until its claim expires.
func TestStoppedDeliveryIsNoFailure(t *testing.T) {
	e := newEnv(t)
	got := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // so that the server notices the client leave
		close(got)
		<-r.Context().Done()
	}))
	t.Cleanup(hook.Close)
	a := e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": "Acme", "slug": "acme"})
	h := e.must(201, "POST", "/v1/apps/acme/webhooks", e.key, map[string]any{"url": hook.URL})
	if err := app.NewWebhooks(e.db.DB, e.cipher).Enqueue(e.db.DB, a["id"].(string), "connection.created", map[string]string{}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := e.jobs.dispatcher.DeliverDue(ctx); done <- err }()
	<-got
	cancel()
	<-done
	if out := e.output(); strings.Contains(out, "webhook delivery") {
		t.Errorf("the stop was logged as a failure:\n%s", out)
	}
	ds, err := app.NewWebhooks(e.db.DB, e.cipher).Deliveries(context.Background(), h["id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Attempts != 0 || ds[0].LockedUntil == nil || ds[0].DeliveredAt != nil {
		t.Errorf("deliveries = %+v, want one still claimed with no attempt counted", ds)
	}
}
