package database_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/dbtest"
)

func TestMigrateIsIdempotent(t *testing.T) {
	db := dbtest.Open(t)
	applied, err := database.Migrate(context.Background(), db.DB)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 0 {
		t.Fatalf("second Migrate applied %v, want nothing", applied)
	}
	var n int64
	if err := db.Table("apps").Count(&n).Error; err != nil {
		t.Fatalf("apps table missing after migrate: %v", err)
	}
}

// TestConcurrentMigrate starts replicas on an empty PostgreSQL schema at
// once: the migration lock makes them take turns, so each migration is
// applied exactly once and none fails.
func TestConcurrentMigrate(t *testing.T) {
	d := dbtest.OpenEmpty(t)
	if d.URL == "" {
		t.Skip("replicas share PostgreSQL; an embedded SQLite database serves one process")
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied := map[int64]int{}
	for range 3 {
		db := d.Reopen(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			versions, err := database.Migrate(context.Background(), db)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			for _, v := range versions {
				applied[v]++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	for v, n := range applied {
		if n != 1 {
			t.Errorf("migration %d applied %d times", v, n)
		}
	}
	if len(applied) < 3 {
		t.Errorf("applied %v, want every migration once", applied)
	}
}

func TestOpenRefusesUnknownScheme(t *testing.T) {
	_, err := database.Open(context.Background(), "mysql://user:hunter2@host/db", "")
	if err == nil {
		t.Fatal("Open accepted a mysql URL")
	}
	if got := err.Error(); strings.Contains(got, "hunter2") {
		t.Fatalf("error leaks the password: %s", got)
	}
}

func TestOpenHidesPassword(t *testing.T) {
	_, err := database.Open(context.Background(), "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=1", "")
	if err == nil {
		t.Fatal("Open succeeded against a closed port")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error leaks the password: %s", err)
	}
}
