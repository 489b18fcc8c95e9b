package database_test

import (
	"context"
	"strings"
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
