package database_test

import (
	"context"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/dbtest"
	"github.com/latchkey/latchkey/migrations"
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
// once: the migration lock makes them take turns, so every migration is
// applied exactly once, none fails, and the schema is whole.
func TestConcurrentMigrate(t *testing.T) {
	d := dbtest.OpenEmpty(t)
	if d.URL == "" {
		t.Skip("replicas share PostgreSQL; an embedded SQLite database serves one process")
	}
	versions, tables := shipped(t, "postgres")
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
	got := slices.Sorted(maps.Keys(applied))
	if !slices.Equal(got, versions) {
		t.Errorf("applied %v, want every migration: %v", got, versions)
	}
	for _, table := range tables {
		if !d.Migrator().HasTable(table) {
			t.Errorf("table %s is missing", table)
		}
	}
}

var createTable = regexp.MustCompile(`(?i)CREATE TABLE (\w+)`)

// shipped returns the versions of the migrations of a dialect, in order,
// and the tables they create, read from the files themselves.
func shipped(t *testing.T, dialect string) (versions []int64, tables []string) {
	t.Helper()
	files, err := fs.Glob(migrations.FS, dialect+"/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s migrations: %v", dialect, err)
	}
	for _, f := range files {
		n, _, _ := strings.Cut(path.Base(f), "_")
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			t.Fatalf("%s: no version number", f)
		}
		versions = append(versions, v)
		sql, err := fs.ReadFile(migrations.FS, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range createTable.FindAllStringSubmatch(string(sql), -1) {
			tables = append(tables, m[1])
		}
	}
	return versions, tables
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
