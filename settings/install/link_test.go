package install

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/dbtest"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/settings"
)

// newStore returns a Store on a fresh database with one app that asks for
// a required client_id, and the app's id.
func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	db := dbtest.Open(t)
	ctx := context.Background()
	cipher, err := secret.New([]secret.Key{{ID: "k", Secret: bytes.Repeat([]byte{1}, secret.KeySize)}})
	if err != nil {
		t.Fatal(err)
	}
	apps := app.NewStore(db.DB)
	acct, err := apps.EnsureAccount(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	a := app.App{AccountID: acct.ID, Name: "Acme", Slug: "acme"}
	if err := apps.Create(ctx, &a); err != nil {
		t.Fatal(err)
	}
	st := settings.NewStore(db.DB, cipher)
	if err := st.CreateDefinition(ctx, &settings.Definition{AppID: a.ID, Key: "client_id", Level: settings.Organization, Required: true}); err != nil {
		t.Fatal(err)
	}
	return NewStore(db.DB, st), a.ID
}

// TestInstallOnce: a failed try leaves the link usable; of several
// submissions at once, exactly one installs and the others find the link
// used.
func TestInstallOnce(t *testing.T) {
	s, appID := newStore(t)
	ctx := context.Background()
	token, err := s.CreateLink(ctx, &Link{AppID: appID, OrganizationID: "org-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Install(ctx, token, map[string]string{"client_id": ""}); !errs.Is(err, errs.Invalid) {
		t.Fatalf("install without client_id: %v", err)
	}
	if _, err := s.Link(ctx, token); err != nil {
		t.Fatalf("a failed try spent the link: %v", err)
	}

	const n = 4
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		installed []string
		gone      int
	)
	for range n {
		wg.Go(func() {
			inst, l, err := s.Install(ctx, token, map[string]string{"client_id": "abc"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				if l.InstallationID == nil || *l.InstallationID != inst.ID || l.UsedAt == nil {
					t.Errorf("link after install: %+v", l)
				}
				installed = append(installed, inst.ID)
			case errs.Is(err, errs.Gone):
				gone++
			default:
				t.Errorf("concurrent install: %v", err)
			}
		})
	}
	wg.Wait()
	if len(installed) != 1 || gone != n-1 {
		t.Fatalf("%d installed, %d found the link used; want 1 and %d", len(installed), gone, n-1)
	}
	if _, err := s.Link(ctx, token); !errs.Is(err, errs.Gone) {
		t.Errorf("used link: %v", err)
	}
}

func TestLinkExpires(t *testing.T) {
	s, appID := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	token, err := s.CreateLink(ctx, &Link{AppID: appID, OrganizationID: "org-1"})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(LinkTTL - time.Second)
	if _, err := s.Link(ctx, token); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	now = now.Add(time.Second)
	if _, err := s.Link(ctx, token); !errs.Is(err, errs.Gone) {
		t.Fatalf("at expiry: %v", err)
	}
	if _, _, err := s.Install(ctx, token, map[string]string{"client_id": "abc"}); !errs.Is(err, errs.Gone) {
		t.Fatalf("installing through an expired link: %v", err)
	}
	// Swept an hour after expiry, not before.
	if err := s.DeleteExpired(ctx); err != nil {
		t.Fatal(err)
	}
	var count int64
	s.db.Model(&Link{}).Count(&count)
	if count != 1 {
		t.Fatalf("%d links after an early sweep, want 1", count)
	}
	now = now.Add(time.Hour + time.Second)
	if err := s.DeleteExpired(ctx); err != nil {
		t.Fatal(err)
	}
	s.db.Model(&Link{}).Count(&count)
	if count != 0 {
		t.Errorf("%d links after the sweep, want 0", count)
	}
}
