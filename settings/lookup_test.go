package settings_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/dbtest"
	"github.com/latchkey/latchkey/settings"
)

// TestLookupByValue finds installations and users by a setting's value, as
// webhook routing does: exact values only, never sealed ones, only the
// app's own installations, and long values told apart past the indexed
// prefix.
func TestLookupByValue(t *testing.T) {
	ctx := context.Background()
	db := dbtest.Open(t)
	apps := app.NewStore(db.DB)
	acct, err := apps.EnsureAccount(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	s := settings.NewStore(db.DB, cipherOf(t, "k1"))
	var appIDs []string
	for _, slug := range []string{"acme", "other"} {
		a := &app.App{AccountID: acct.ID, Name: slug, Slug: slug}
		if err := apps.Create(ctx, a); err != nil {
			t.Fatal(err)
		}
		appIDs = append(appIDs, a.ID)
		for _, d := range []settings.Definition{
			{Key: "team_id", Level: settings.Organization},
			{Key: "team_secret", Level: settings.Organization, Secret: true},
			{Key: "slack_user", Level: settings.User},
			{Key: "user_secret", Level: settings.User, Secret: true},
		} {
			d.AppID, d.Label = a.ID, d.Key
			if err := s.CreateDefinition(ctx, &d); err != nil {
				t.Fatal(err)
			}
		}
	}
	long := strings.Repeat("é", 300) // 300 characters, 600 bytes
	values := []string{"T1", "T2", long + "a", long + "b"}
	var insts []settings.Installation
	for i, v := range values {
		inst, err := s.Install(ctx, appIDs[0], fmt.Sprintf("org-%d", i), map[string]string{"team_id": v, "team_secret": "S" + v})
		if err != nil {
			t.Fatal(err)
		}
		insts = append(insts, inst)
	}
	if _, err := s.Install(ctx, appIDs[1], "org-x", map[string]string{"team_id": "T1"}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"u1", "u2"} {
		v, sec := "U-"+u, "S-"+u
		if err := s.SetUserValues(ctx, insts[0], u, map[string]*string{"slack_user": &v, "user_secret": &sec}); err != nil {
			t.Fatal(err)
		}
	}

	find := func(key, value string) string {
		t.Helper()
		got, err := s.InstallationsByValue(ctx, appIDs[0], key, value, 5)
		if err != nil {
			t.Fatal(err)
		}
		var orgs []string
		for _, i := range got {
			orgs = append(orgs, i.OrganizationID)
		}
		return strings.Join(orgs, ",")
	}
	for _, tt := range []struct{ key, value, want string }{
		{"team_id", "T1", "org-0"},
		{"team_id", "t1", ""},
		{"team_id", "T", ""},
		{"team_id", long + "a", "org-2"},
		{"team_id", long + "b", "org-3"},
		{"team_id", long, ""},
		{"team_secret", "ST1", ""}, // sealed: never matched
		{"team_id", "", ""},
	} {
		if got := find(tt.key, tt.value); got != tt.want {
			t.Errorf("%s = %.10q...: %q, want %q", tt.key, tt.value, got, tt.want)
		}
	}
	users, err := s.UsersByValue(ctx, insts[0].ID, "slack_user", "U-u2", 5)
	if err != nil || strings.Join(users, ",") != "u2" {
		t.Errorf("UsersByValue = %v, %v; want [u2]", users, err)
	}
	if users, _ := s.UsersByValue(ctx, insts[1].ID, "slack_user", "U-u2", 5); len(users) != 0 {
		t.Errorf("another installation's users: %v", users)
	}
	if users, _ := s.UsersByValue(ctx, insts[0].ID, "user_secret", "S-u2", 5); len(users) != 0 {
		t.Errorf("a sealed user value matched: %v", users)
	}

	// The lookups read the indexes of migration 00012, not every value.
	plans := map[string]string{
		"organization_values_lookup": "SELECT installation_id FROM organization_values WHERE key = 'team_id' AND substr(value, 1, 200) = 'T1' AND value = 'T1' AND NOT encrypted",
		"user_values_lookup":         "SELECT user_id FROM user_values WHERE installation_id = 'i' AND key = 'slack_user' AND substr(value, 1, 200) = 'U' AND value = 'U' AND NOT encrypted",
	}
	for index, q := range plans {
		var plan []string
		if database.Dialect(db.DB) == database.Postgres {
			tx := db.Begin()
			tx.Exec("SET LOCAL enable_seqscan = off")
			tx.Raw("EXPLAIN " + q).Scan(&plan)
			tx.Rollback()
		} else {
			var rows []struct{ Detail string }
			db.Raw("EXPLAIN QUERY PLAN " + q).Scan(&rows)
			for _, r := range rows {
				plan = append(plan, r.Detail)
			}
		}
		if !strings.Contains(strings.Join(plan, "\n"), index) {
			t.Errorf("the plan does not use %s:\n%s", index, strings.Join(plan, "\n"))
		}
	}
}
