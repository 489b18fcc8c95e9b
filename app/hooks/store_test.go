package hooks

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/dbtest"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/settings"
)

type fixture struct {
	db       *dbtest.DB
	app      app.App
	settings *settings.Store
	webhooks *app.Webhooks
	store    *Store
	defs     []settings.Definition
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{db: dbtest.Open(t)}
	cipher, err := secret.New([]secret.Key{{ID: "k", Secret: bytes.Repeat([]byte{3}, secret.KeySize)}})
	if err != nil {
		t.Fatal(err)
	}
	apps := app.NewStore(f.db.DB)
	acct, err := apps.EnsureAccount(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	f.app = app.App{AccountID: acct.ID, Name: "Acme", Slug: "acme"}
	if err := apps.Create(ctx, &f.app); err != nil {
		t.Fatal(err)
	}
	f.settings = settings.NewStore(f.db.DB, cipher)
	signing := "slack-signing-secret"
	for _, d := range []settings.Definition{
		{Key: "signing_secret", Level: settings.Organization, Secret: true, Visibility: settings.Hidden, DefaultValue: &signing},
		{Key: "org_secret", Level: settings.Organization, Secret: true},
		{Key: "team_id", Level: settings.Organization},
		{Key: "api_version", Level: settings.Organization, Visibility: settings.ReadOnly, DefaultValue: &signing},
		{Key: "slack_user", Level: settings.User},
		{Key: "access_token", Level: settings.User, Secret: true},
	} {
		d.AppID, d.Label = f.app.ID, d.Key
		if err := f.settings.CreateDefinition(ctx, &d); err != nil {
			t.Fatal(err)
		}
	}
	if f.defs, err = f.settings.Definitions(ctx, f.app.ID, ""); err != nil {
		t.Fatal(err)
	}
	f.webhooks = app.NewWebhooks(f.db.DB, cipher)
	f.store = NewStore(f.db.DB, f.webhooks)
	return f
}

func slackSource(appID string) Source {
	return Source{AppID: appID, Name: "slack", Verification: slackVerification, Handshake: Slack,
		Routing: Routing{
			Organization: Route{Locator: Locator{Path: "$.team_id"}, Setting: "team_id"},
			User:         &Route{Locator: Locator{Path: "$.event.user"}, Setting: "slack_user"},
		},
		EventType: Locator{Path: "$.event.type"}, EventID: Locator{Path: "$.event_id"}}
}

func TestValidate(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		change func(*Source)
		fields []string
	}{
		{"ok", func(*Source) {}, nil},
		{"organization secret", func(s *Source) { s.Verification.SecretSetting = "org_secret" }, nil},
		{"no name", func(s *Source) { s.Name = " " }, []string{"name"}},
		{"unknown secret setting", func(s *Source) { s.Verification.SecretSetting = "nope" }, []string{"verification.secret_setting"}},
		{"secret setting not secret", func(s *Source) { s.Verification.SecretSetting = "team_id" }, []string{"verification.secret_setting"}},
		{"secret setting of users", func(s *Source) { s.Verification.SecretSetting = "access_token" }, []string{"verification.secret_setting"}},
		{"unknown method", func(s *Source) { s.Verification.Method = "md5" }, []string{"verification.method"}},
		{"base string without the body", func(s *Source) { s.Verification.BaseString = "v0:<<timestamp>>" }, []string{"verification.base_string"}},
		{"base string with another variable", func(s *Source) { s.Verification.BaseString = "<<body>><<team_id>>" }, []string{"verification.base_string"}},
		{"timestamp without its header", func(s *Source) { s.Verification.TimestampHeader = "" }, []string{"verification.base_string"}},
		{"no signature header", func(s *Source) { s.Verification.SignatureHeader = "" }, []string{"verification.signature_header"}},
		{"bad encoding", func(s *Source) { s.Verification.Encoding = "base32" }, []string{"verification.encoding"}},
		{"tolerance", func(s *Source) { s.Verification.ToleranceSeconds = 86401 }, []string{"verification.tolerance_seconds"}},
		{"token without where", func(s *Source) { s.Verification = Verification{Method: Token, SecretSetting: "signing_secret"} },
			[]string{"verification.token_header"}},
		{"token with a signature header", func(s *Source) {
			s.Verification = Verification{Method: Token, SecretSetting: "signing_secret", TokenPath: "$.token", SignatureHeader: "X"}
		}, []string{"verification.signature_header"}},
		{"bad handshake", func(s *Source) { s.Handshake = "teams" }, []string{"handshake"}},
		{"routing nowhere", func(s *Source) { s.Routing.Organization.Path = "" }, []string{"routing.organization"}},
		{"routing path and header", func(s *Source) { s.Routing.Organization.Header = "X-Team" }, []string{"routing.organization"}},
		{"routing bad path", func(s *Source) { s.Routing.Organization.Path = "team_id" }, []string{"routing.organization.path"}},
		{"routing by a secret", func(s *Source) { s.Routing.Organization.Setting = "org_secret" }, []string{"routing.organization.setting"}},
		{"routing by a fixed value", func(s *Source) { s.Routing.Organization.Setting = "api_version" }, []string{"routing.organization.setting"}},
		{"routing by a user setting", func(s *Source) { s.Routing.Organization.Setting = "slack_user" }, []string{"routing.organization.setting"}},
		{"user routing by an organization setting", func(s *Source) { s.Routing.User.Setting = "team_id" }, []string{"routing.user.setting"}},
		{"user routing by a secret", func(s *Source) { s.Routing.User.Setting = "access_token" }, []string{"routing.user.setting"}},
		{"bad event id header", func(s *Source) { s.EventID = Locator{Header: "X Bad"} }, []string{"event_id.header"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := slackSource(f.app.ID)
			tt.change(&s)
			s.applyDefaults()
			err := s.Validate(f.defs)
			var got []string
			var e *errs.Error
			if err != nil && errs.CodeOf(err) == errs.Invalid {
				e = err.(*errs.Error)
				for _, fe := range e.Fields {
					got = append(got, fe.Field)
				}
			} else if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if strings.Join(got, ",") != strings.Join(tt.fields, ",") {
				t.Errorf("fields = %v, want %v (%v)", got, tt.fields, err)
			}
		})
	}
}

// TestAcceptDrops checks that an event id is taken in once within the
// window, even by concurrent deliveries, and again after it.
func TestAcceptDrops(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if _, err := f.webhooks.Create(ctx, &app.Webhook{AppID: f.app.ID, URL: "https://platform.example/hooks"}); err != nil {
		t.Fatal(err)
	}
	s := slackSource(f.app.ID)
	if err := f.store.Create(ctx, &s, f.defs); err != nil {
		t.Fatal(err)
	}
	if len(s.ID) != 43 {
		t.Errorf("source id %q: want 256 random bits in base64url", s.ID)
	}
	now := time.Now().UTC()
	f.store.now = func() time.Time { return now }
	deliveries := func() int64 {
		var n int64
		f.db.Model(&app.Delivery{}).Where("event = ?", Event).Count(&n)
		return n
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	taken := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dup, err := f.store.Accept(ctx, s, EventData{EventID: "Ev1", Body: "{}"})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if !dup {
				taken++
			}
		}()
	}
	wg.Wait()
	if taken != 1 || deliveries() != 1 {
		t.Fatalf("8 concurrent deliveries of one event: %d taken, %d queued; want 1, 1", taken, deliveries())
	}
	if dup, err := f.store.Accept(ctx, s, EventData{EventID: "Ev2"}); dup || err != nil {
		t.Fatalf("another event: dup=%v err=%v", dup, err)
	}
	if dup, err := f.store.Accept(ctx, s, EventData{}); dup || err != nil {
		t.Fatalf("an event without an id: dup=%v err=%v", dup, err)
	}
	long := strings.Repeat("x", 5000)
	for i, want := range []bool{false, true} {
		if dup, err := f.store.Accept(ctx, s, EventData{EventID: long}); dup != want || err != nil {
			t.Fatalf("a long id, %d: dup=%v err=%v", i, dup, err)
		}
	}

	// Past the window, before a sweep: taken again. After a sweep: gone.
	now = now.Add(DedupeWindow + time.Second)
	if dup, err := f.store.Accept(ctx, s, EventData{EventID: "Ev1"}); dup || err != nil {
		t.Fatalf("after the window: dup=%v err=%v", dup, err)
	}
	if err := f.store.DeleteSeenBefore(ctx, now.Add(-DedupeWindow)); err != nil {
		t.Fatal(err)
	}
	var left []string
	f.db.Model(&seen{}).Order("event_id").Pluck("event_id", &left)
	if strings.Join(left, ",") != "Ev1" {
		t.Errorf("after the sweep, seen = %v, want [Ev1]", left)
	}
	if n := deliveries(); n != 5 {
		t.Errorf("%d deliveries queued, want 5", n)
	}
}
