// Package dbtest gives tests a fresh, migrated database: a temporary SQLite
// file by default, or a new schema in the PostgreSQL named by
// LATCHKEY_TEST_DATABASE_URL, so the same tests run against both.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/database"
)

// EnvURL names the variable that selects PostgreSQL for tests.
const EnvURL = "LATCHKEY_TEST_DATABASE_URL"

// DB is a test database: Open it again with URL and SQLitePath to reach the
// same data from another connection pool, as a second replica would.
type DB struct {
	*gorm.DB
	URL        string
	SQLitePath string
}

// Open returns a fresh migrated database, removed when the test ends.
func Open(tb testing.TB) *DB {
	tb.Helper()
	d := OpenEmpty(tb)
	if _, err := database.Migrate(context.Background(), d.DB); err != nil {
		tb.Fatal(err)
	}
	return d
}

// OpenEmpty returns a fresh database without the schema, removed when the
// test ends.
func OpenEmpty(tb testing.TB) *DB {
	tb.Helper()
	ctx := context.Background()
	base := os.Getenv(EnvURL)
	var d DB
	if base == "" {
		d.SQLitePath = filepath.Join(tb.TempDir(), "latchkey.db")
	} else {
		d.URL = newSchema(tb, base)
	}
	db, err := database.Open(ctx, d.URL, d.SQLitePath)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { database.Close(db) })
	d.DB = db
	return &d
}

// Reopen returns a second connection pool on the same database.
func (d *DB) Reopen(tb testing.TB) *gorm.DB {
	tb.Helper()
	db, err := database.Open(context.Background(), d.URL, d.SQLitePath)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { database.Close(db) })
	return db
}

// newSchema creates a schema named for this test and returns base with its
// search_path set to it; the schema is dropped when the test ends.
func newSchema(tb testing.TB, base string) string {
	tb.Helper()
	admin, err := database.Open(context.Background(), base, "")
	if err != nil {
		tb.Fatalf("dbtest: %s: %v", EnvURL, err)
	}
	tb.Cleanup(func() { database.Close(admin) })
	b := make([]byte, 8)
	rand.Read(b)
	schema := "test_" + hex.EncodeToString(b)
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { admin.Exec("DROP SCHEMA " + schema + " CASCADE") })
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
