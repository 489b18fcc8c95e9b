package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

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
