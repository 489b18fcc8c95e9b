package callback

import (
	"context"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/dbtest"
	"github.com/latchkey/latchkey/internal/secret"
)

func TestDeleteExpired(t *testing.T) {
	db := dbtest.Open(t)
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	s := &Store{db: db.DB, now: func() time.Time { return now }}
	ctx := context.Background()
	// Rows need an installation and a config to point at.
	db.Exec("INSERT INTO accounts (id, name, created_at) VALUES ('a', 'a', ?)", now)
	db.Exec("INSERT INTO apps (id, account_id, name, slug, created_at, updated_at) VALUES ('app', 'a', 'x', 'x', ?, ?)", now, now)
	db.Exec("INSERT INTO installations (id, app_id, organization_id, created_at, updated_at) VALUES ('i', 'app', 'o', ?, ?)", now, now)
	db.Exec("INSERT INTO oauth_configs (id, app_id, name, grant_type, created_at, updated_at) VALUES ('c', 'app', 'c', 'authorization_code', ?, ?)", now, now)
	if err := s.CreateState(ctx, &State{InstallationID: "i", ConfigID: "c", UserID: "u", BrowserHash: secret.Hash("b")}, "old"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateLink(ctx, &Link{InstallationID: "i", ConfigID: "c", UserID: "u"}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(3 * time.Hour)
	if err := s.CreateState(ctx, &State{InstallationID: "i", ConfigID: "c", UserID: "u", BrowserHash: secret.Hash("b")}, "fresh"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteExpired(ctx); err != nil {
		t.Fatal(err)
	}
	var states, links int64
	db.Model(&State{}).Count(&states)
	db.Model(&Link{}).Count(&links)
	if states != 1 || links != 0 {
		t.Fatalf("after sweep: %d states, %d links; want 1, 0", states, links)
	}
	if _, err := s.ConsumeState(ctx, "fresh", "b"); err != nil {
		t.Fatalf("fresh state: %v", err)
	}
}
