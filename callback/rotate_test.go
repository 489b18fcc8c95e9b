package callback

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/dbtest"
	"github.com/latchkey/latchkey/internal/rotation"
	"github.com/latchkey/latchkey/internal/secret"
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

// TestRotateVerifiers re-seals the PKCE verifiers of pending states with
// the new key; states without PKCE keep their empty verifier.
func TestRotateVerifiers(t *testing.T) {
	db := dbtest.Open(t)
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	s := &Store{db: db.DB, now: func() time.Time { return now }}
	ctx := context.Background()
	db.Exec("INSERT INTO accounts (id, name, created_at) VALUES ('a', 'a', ?)", now)
	db.Exec("INSERT INTO apps (id, account_id, name, slug, created_at, updated_at) VALUES ('app', 'a', 'x', 'x', ?, ?)", now, now)
	db.Exec("INSERT INTO installations (id, app_id, organization_id, created_at, updated_at) VALUES ('i', 'app', 'o', ?, ?)", now, now)
	db.Exec("INSERT INTO oauth_configs (id, app_id, name, grant_type, created_at, updated_at) VALUES ('c', 'app', 'c', 'authorization_code', ?, ?)", now, now)
	old := cipherOf(t, "k1")
	states := map[string]string{"s1": "verifier-1", "s2": "verifier-2", "s3": "verifier-3", "plain": ""}
	for state, verifier := range states {
		st := &State{InstallationID: "i", ConfigID: "c", UserID: "u", BrowserHash: secret.Hash("b")}
		if verifier != "" {
			var err error
			if st.CodeVerifier, err = old.Seal(verifier, verifierAAD(secret.Hash(state))); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CreateState(ctx, st, state); err != nil {
			t.Fatal(err)
		}
	}

	r := &rotation.Rotator{DB: db.DB, Cipher: cipherOf(t, "k2", "k1"), BatchSize: 2}
	rep, err := r.Run(ctx, SealedColumns()...)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rep.Columns[0], (rotation.Result{Column: "oauth_states.code_verifier", Found: 3, Counts: rotation.Counts{Rotated: 3}, Done: true}); got != want {
		t.Fatalf("result = %+v, want %+v", got, want)
	}

	onlyNew := cipherOf(t, "k2")
	for state, verifier := range states {
		st, err := s.ConsumeState(ctx, state, "b")
		if err != nil {
			t.Fatal(err)
		}
		if verifier == "" {
			if st.CodeVerifier != "" {
				t.Errorf("state without PKCE now has verifier %q", st.CodeVerifier)
			}
			continue
		}
		if got, err := onlyNew.Open(st.CodeVerifier, verifierAAD(st.StateHash)); err != nil || got != verifier {
			t.Errorf("state %s: verifier with k2 alone = %q, %v; want %q", state, got, err, verifier)
		}
		// Bound to its state: it does not open for another one.
		if _, err := onlyNew.Open(st.CodeVerifier, verifierAAD(secret.Hash("s1"+state))); !errors.Is(err, secret.ErrOpen) {
			t.Errorf("state %s: verifier opened for another state", state)
		}
	}
}
