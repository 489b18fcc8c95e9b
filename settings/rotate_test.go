package settings_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/dbtest"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/rotation"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/settings"
)

func cipherOf(t *testing.T, ids ...string) *secret.Cipher {
	t.Helper()
	var keys []secret.Key
	for _, id := range ids {
		keys = append(keys, secret.Key{ID: id, Secret: bytes.Repeat([]byte(id[len(id)-1:]), secret.KeySize)})
	}
	c, err := secret.New(keys)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRotateSealedValues stores organization and user values with key k1,
// rotates to k2 with the ring k2,k1, and reads them back with k2 alone.
func TestRotateSealedValues(t *testing.T) {
	ctx := context.Background()
	db := dbtest.Open(t)
	apps := app.NewStore(db.DB)
	acct, err := apps.EnsureAccount(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	a := &app.App{AccountID: acct.ID, Name: "Acme", Slug: "acme"}
	if err := apps.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	old := settings.NewStore(db.DB, cipherOf(t, "k1"))
	fixed := "developer-signing-key"
	for _, d := range []settings.Definition{
		{Key: "client_id", Level: settings.Organization},
		{Key: "client_secret", Level: settings.Organization, Secret: true},
		{Key: "access_token", Level: settings.User, Secret: true},
		{Key: "signing_key", Level: settings.Organization, Secret: true, Visibility: settings.Hidden, DefaultValue: &fixed},
	} {
		d.AppID, d.Label = a.ID, d.Key
		if err := old.CreateDefinition(ctx, &d); err != nil {
			t.Fatal(err)
		}
	}
	users := []string{"u0", "u1"}
	var insts []settings.Installation
	for i := range 3 {
		inst, err := old.Install(ctx, a.ID, fmt.Sprintf("org-%d", i), map[string]string{
			"client_id": fmt.Sprintf("cid-%d", i), "client_secret": fmt.Sprintf("cs-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			tok := fmt.Sprintf("at-%d-%s", i, u)
			if err := old.SetUserValues(ctx, inst, u, map[string]*string{"access_token": &tok}); err != nil {
				t.Fatal(err)
			}
		}
		insts = append(insts, inst)
	}

	r := &rotation.Rotator{DB: db.DB, Cipher: cipherOf(t, "k2", "k1"), BatchSize: 2}
	rep, err := r.Run(ctx, settings.SealedColumns()...)
	if err != nil {
		t.Fatal(err)
	}
	want := []rotation.Result{
		{Column: "setting_definitions.fixed_secret", Found: 1, Counts: rotation.Counts{Rotated: 1}, Done: true},
		{Column: "organization_values.value", Found: 3, Counts: rotation.Counts{Rotated: 3}, Done: true},
		{Column: "user_values.value", Found: 6, Counts: rotation.Counts{Rotated: 6}, Done: true},
	}
	if !slices.Equal(rep.Columns, want) {
		t.Fatalf("report = %+v, want %+v", rep.Columns, want)
	}

	var rows []struct {
		Value     string
		Encrypted bool
	}
	db.Raw("SELECT value, encrypted FROM organization_values UNION ALL SELECT value, encrypted FROM user_values UNION ALL SELECT fixed_secret, ? FROM setting_definitions WHERE fixed_secret IS NOT NULL", true).Scan(&rows)
	if len(rows) != 13 {
		t.Fatalf("%d rows, want 13", len(rows))
	}
	for _, row := range rows {
		if row.Encrypted != strings.HasPrefix(row.Value, "v1:k2:") {
			t.Errorf("row encrypted=%v holds a value with prefix %.6q", row.Encrypted, row.Value)
		}
	}

	// The values read back with the new key alone, unchanged.
	fresh := settings.NewStore(db.DB, cipherOf(t, "k2"))
	for i, inst := range insts {
		for _, u := range users {
			got, err := fresh.Resolve(ctx, inst, u)
			if err != nil {
				t.Fatal(err)
			}
			if got.Values["client_id"] != fmt.Sprintf("cid-%d", i) || got.Values["client_secret"] != fmt.Sprintf("cs-%d", i) ||
				got.Values["access_token"] != fmt.Sprintf("at-%d-%s", i, u) || got.Values["signing_key"] != fixed {
				t.Errorf("installation %d, user %s: values changed by rotation", i, u)
			}
		}
	}

	// Still bound to their rows: a rotated value copied into another
	// user's row, or another installation's, does not open.
	moves := []struct {
		q        string
		from, to string
	}{
		{"UPDATE user_values SET value = (SELECT value FROM user_values WHERE installation_id = ? AND user_id = 'u0') WHERE installation_id = ? AND user_id = 'u1'",
			insts[1].ID, insts[1].ID},
		{"UPDATE organization_values SET value = (SELECT value FROM organization_values WHERE installation_id = ? AND key = 'client_secret') WHERE installation_id = ? AND key = 'client_secret'",
			insts[0].ID, insts[2].ID},
	}
	for i, m := range moves {
		if err := db.Exec(m.q, m.from, m.to).Error; err != nil {
			t.Fatal(err)
		}
		inst := insts[i+1]
		if _, err := fresh.Resolve(ctx, inst, "u1"); errs.CodeOf(err) != errs.Internal || !errors.Is(err, secret.ErrOpen) {
			t.Errorf("move %d: Resolve err = %v, want an undecryptable value", i, err)
		}
	}
}
