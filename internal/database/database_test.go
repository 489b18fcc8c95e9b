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
	"time"

	"github.com/pressly/goose/v3"

	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/dbtest"
	"github.com/latchkey/latchkey/internal/errs"
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

// TestSlugMigrationKeepsData runs migration 9, which makes slugs unique per
// account (on SQLite by rebuilding the apps table), over stored data: every
// row that references an app survives, and foreign keys hold afterwards.
func TestSlugMigrationKeepsData(t *testing.T) {
	d := dbtest.OpenEmpty(t)
	ctx := context.Background()
	dialect, dir := goose.DialectSQLite3, "sqlite"
	if database.Dialect(d.DB) == database.Postgres {
		dialect, dir = goose.DialectPostgres, "postgres"
	}
	fsys, err := fs.Sub(migrations.FS, dir)
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := d.DB.DB()
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(dialect, sqlDB, fsys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 7); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"INSERT INTO accounts (id, name, created_at) VALUES ('acc1', 'acme', ?), ('acc2', 'globex', ?)", []any{now, now}},
		{"INSERT INTO apps (id, account_id, name, slug, created_at, updated_at, return_urls) VALUES ('app1', 'acc1', 'Alpha', 'alpha', ?, ?, '[\"https://acme.example/back\"]')", []any{now, now}},
		{"INSERT INTO setting_definitions (id, app_id, key, level, position, created_at, updated_at) VALUES ('def1', 'app1', 'client_id', 'organization', 0, ?, ?)", []any{now, now}},
		{"INSERT INTO installations (id, app_id, organization_id, created_at, updated_at) VALUES ('inst1', 'app1', 'org1', ?, ?)", []any{now, now}},
		{"INSERT INTO organization_values (installation_id, key, value, encrypted, updated_at) VALUES ('inst1', 'client_id', 'abc', false, ?)", []any{now}},
		{"INSERT INTO webhooks (id, app_id, url, secret, created_at) VALUES ('hook1', 'app1', 'https://acme.example/hook', 'sealed', ?)", []any{now}},
	} {
		if err := d.Exec(q.sql, q.args...).Error; err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	applied, err := database.Migrate(ctx, d.DB)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(applied, 9) {
		t.Fatalf("applied %v, want migration 9", applied)
	}

	for table, want := range map[string]int64{"apps": 1, "setting_definitions": 1, "installations": 1, "organization_values": 1, "webhooks": 1} {
		var n int64
		if err := d.Table(table).Count(&n).Error; err != nil || n != want {
			t.Errorf("%s: %d rows (%v), want %d", table, n, err, want)
		}
	}
	var urls string
	if err := d.Raw("SELECT return_urls FROM apps WHERE id = 'app1'").Scan(&urls).Error; err != nil || urls != `["https://acme.example/back"]` {
		t.Errorf("return_urls = %q (%v)", urls, err)
	}
	if d.Migrator().HasTable("apps_new") {
		t.Error("apps_new is left behind")
	}
	// Slugs are unique per account, not across accounts.
	if err := d.Exec("INSERT INTO apps (id, account_id, name, slug, created_at, updated_at) VALUES ('app2', 'acc2', 'Alpha', 'alpha', ?, ?)", now, now).Error; err != nil {
		t.Errorf("another account cannot use slug alpha: %v", err)
	}
	if err := d.Exec("INSERT INTO apps (id, account_id, name, slug, created_at, updated_at) VALUES ('app3', 'acc1', 'Alpha', 'alpha', ?, ?)", now, now).Error; err == nil {
		t.Error("one account has slug alpha twice")
	}
	// Foreign keys still hold, to and from the new apps table.
	if err := d.Exec("INSERT INTO webhooks (id, app_id, url, secret, created_at) VALUES ('hook2', 'nope', 'https://x.example', 's', ?)", now).Error; err == nil {
		t.Error("a webhook of no app was stored")
	}
	if err := d.Exec("DELETE FROM apps WHERE id = 'app1'").Error; err == nil {
		t.Error("an app with an installation was deleted")
	}
	if err := d.Exec("DELETE FROM accounts WHERE id = 'acc2'").Error; err != nil {
		t.Fatal(err)
	}
	var n int64
	if d.Table("apps").Where("id = 'app2'").Count(&n); n != 0 {
		t.Error("deleting an account left its app")
	}
}

// TestReadsSurviveALostConnection: on PostgreSQL, a read whose connection
// breaks mid-query is run again on another connection, through both of
// GORM's query paths; a write is not, and its error is errs.Unavailable.
func TestReadsSurviveALostConnection(t *testing.T) {
	d := dbtest.Open(t)
	if d.URL == "" {
		t.Skip("needs PostgreSQL (set " + dbtest.EnvURL + "): the test breaks TCP connections to the database")
	}
	relay := dbtest.NewRelay(t, d)
	db, err := database.Open(context.Background(), relay.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { database.Close(db) })
	if err := db.Exec("INSERT INTO accounts (id, name, created_at) VALUES ('a1', 'acme', now())").Error; err != nil {
		t.Fatal(err)
	}

	relay.DropOn("FROM \"accounts\"") // Take: the query callback
	var name string
	if err := db.Table("accounts").Where("id = ?", "a1").Select("name").Take(&name).Error; err != nil || name != "acme" {
		t.Errorf("Take = %q, %v; want acme", name, err)
	}
	relay.DropOn("count_me") // Raw().Scan: the row callback
	var n int64
	if err := db.Raw("SELECT count(*) AS count_me FROM accounts").Scan(&n).Error; err != nil || n != 1 {
		t.Errorf("Scan = %d, %v; want 1", n, err)
	}
	relay.DropOn("INSERT INTO accounts")
	err = db.Exec("INSERT INTO accounts (id, name, created_at) VALUES (?, 'globex', now())", "a2").Error
	if !errs.Is(err, errs.Unavailable) {
		t.Errorf("a write on a lost connection: err = %v, want errs.Unavailable", err)
	}
	if got := relay.Dropped(); got != 3 {
		t.Errorf("the relay broke %d connections, want 3", got)
	}
}
