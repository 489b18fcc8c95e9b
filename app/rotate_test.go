package app

import (
	"bytes"
	"context"
	"errors"
	"testing"

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

// TestRotateWebhookSecrets re-seals webhook signing secrets with the new key.
func TestRotateWebhookSecrets(t *testing.T) {
	ctx := context.Background()
	db := dbtest.Open(t)
	apps := NewStore(db.DB)
	acct, err := apps.EnsureAccount(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	a := &App{AccountID: acct.ID, Name: "Acme", Slug: "acme"}
	if err := apps.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	hooks := NewWebhooks(db.DB, cipherOf(t, "k1"))
	plain := map[string]string{}
	for range 3 {
		h := &Webhook{AppID: a.ID, URL: "https://platform.example/hook"}
		p, err := hooks.Create(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		plain[h.ID] = p
	}
	r := &rotation.Rotator{DB: db.DB, Cipher: cipherOf(t, "k2", "k1"), BatchSize: 2}
	rep, err := r.Run(ctx, SealedColumns()...)
	if err != nil || rep.Total().Rotated != 3 || rep.Remaining() != 0 {
		t.Fatalf("Run = %+v, %v; want 3 rotated, 0 remaining", rep, err)
	}
	var stored []Webhook
	db.Find(&stored)
	onlyNew := cipherOf(t, "k2")
	for _, h := range stored {
		if got, err := onlyNew.Open(h.Secret, sealAAD(h.ID)); err != nil || got != plain[h.ID] {
			t.Errorf("webhook %s: secret with k2 alone: %v, equal %v", h.ID, err, got == plain[h.ID])
		}
		if _, err := onlyNew.Open(h.Secret, sealAAD(h.ID+"x")); !errors.Is(err, secret.ErrOpen) {
			t.Errorf("webhook %s: secret opened for another webhook", h.ID)
		}
	}
	if len(stored) != 3 {
		t.Fatalf("%d webhooks, want 3", len(stored))
	}
}
