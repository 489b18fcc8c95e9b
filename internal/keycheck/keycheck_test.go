package keycheck

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/dbtest"
	"github.com/latchkey/latchkey/internal/rotation"
	"github.com/latchkey/latchkey/internal/secret"
)

// Runs on SQLite, and on PostgreSQL with LATCHKEY_TEST_DATABASE_URL.

func ring(t *testing.T, keys ...secret.Key) *secret.Cipher {
	t.Helper()
	c, err := secret.New(keys)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func key(id string, b byte) secret.Key {
	return secret.Key{ID: id, Secret: bytes.Repeat([]byte{b}, secret.KeySize)}
}

func wrongKey(t *testing.T, err error) string {
	t.Helper()
	var w *WrongKeyError
	if !errors.As(err, &w) {
		t.Fatalf("err = %v, want a *WrongKeyError", err)
	}
	return w.KeyID
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	db := dbtest.Open(t)
	k1, k2 := key("k1", 1), key("k2", 2)

	if unchecked, err := VerifyStored(ctx, db.DB, ring(t, k1)); err != nil || len(unchecked) != 1 || unchecked[0] != "k1" {
		t.Fatalf("VerifyStored on an empty table = %v, %v; want k1 unchecked", unchecked, err)
	}
	// First start with k1 stores its check value; the next starts verify it.
	for range 2 {
		if err := Verify(ctx, db.DB, ring(t, k1), nil); err != nil {
			t.Fatal(err)
		}
	}
	var n int64
	db.Raw("SELECT COUNT(*) FROM key_checks").Scan(&n)
	if n != 1 {
		t.Fatalf("%d check values stored, want 1", n)
	}
	// Adding k2, in any order and whichever seals, stores k2's.
	if err := Verify(ctx, db.DB, ring(t, k2, k1), nil); err != nil {
		t.Fatal(err)
	}
	if unchecked, err := VerifyStored(ctx, db.DB, ring(t, k1, k2)); err != nil || len(unchecked) != 0 {
		t.Fatalf("VerifyStored = %v, %v", unchecked, err)
	}

	// The right id with other bytes is refused, by name, whatever its place.
	for _, tt := range []struct {
		c    *secret.Cipher
		want string
	}{
		{ring(t, key("k1", 9)), "k1"},
		{ring(t, k2, key("k1", 9)), "k1"},
		{ring(t, key("k2", 9), k1), "k2"},
	} {
		err := Verify(ctx, db.DB, tt.c, nil)
		if got := wrongKey(t, err); got != tt.want {
			t.Errorf("ring %v: refused key %s, want %s", tt.c.KeyIDs(), got, tt.want)
		}
		want := "key " + tt.want + " does not open the check value stored for " + tt.want + ": wrong key bytes?"
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %q, want it to say %q", err, want)
		}
		if _, err := VerifyStored(ctx, db.DB, tt.c); wrongKey(t, err) != tt.want {
			t.Errorf("VerifyStored: %v", err)
		}
	}

	// A check value moved to another id does not vouch for that id.
	if err := db.Exec("UPDATE key_checks SET sealed = (SELECT sealed FROM key_checks WHERE key_id = 'k1') WHERE key_id = 'k2'").Error; err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyStored(ctx, db.DB, ring(t, k1, k2)); wrongKey(t, err) != "k2" {
		t.Errorf("a copied check value: %v", err)
	}
}

func mustSeal(t *testing.T, c *secret.Cipher) string {
	t.Helper()
	s, err := c.Seal("v", "x")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestVerifyRace starts many servers at once with a new key k2, half of
// them with other bytes for it, each with its own connection pool: one
// value is stored, every server with those bytes starts, and every other
// is refused.
func TestVerifyRace(t *testing.T) {
	ctx := context.Background()
	db := dbtest.Open(t)
	const servers = 8
	errs := make([]error, servers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range servers {
		pool := db.Reopen(t)
		c := ring(t, key("k1", 1), key("k2", byte(2+i%2)))
		wg.Go(func() {
			<-start
			errs[i] = Verify(ctx, pool, c, time.Now)
		})
	}
	close(start)
	wg.Wait()
	var ok, refused [2]int
	for i, err := range errs {
		switch {
		case err == nil:
			ok[i%2]++
		case wrongKey(t, err) == "k2":
			refused[i%2]++
		}
	}
	// One set of bytes won; all its servers started, all others were refused.
	if !(ok == [2]int{servers / 2, 0} && refused == [2]int{0, servers / 2}) && !(ok == [2]int{0, servers / 2} && refused == [2]int{servers / 2, 0}) {
		t.Fatalf("started %v, refused %v (by bytes 2 and 3): want all of one kind started, all of the other refused; errors %v", ok, refused, errs)
	}
}

// TestCheckStray: values sealed with a key the ring lacks are found, with
// the id named, after the check values are verified.
func TestCheckStray(t *testing.T) {
	ctx := context.Background()
	db := dbtest.Open(t)
	if err := db.Exec("CREATE TABLE things (id text PRIMARY KEY, value text NOT NULL)").Error; err != nil {
		t.Fatal(err)
	}
	col := rotation.Column{Table: "things", Keys: []string{"id"}, Value: "value", AAD: func(k []string) string { return k[0] }}
	k0, k1 := key("k0", 5), key("k1", 1)
	for id, c := range map[string]*secret.Cipher{"a": ring(t, k1), "b": ring(t, k0)} {
		if err := db.Exec("INSERT INTO things VALUES (?, ?)", id, mustSeal(t, c)).Error; err != nil {
			t.Fatal(err)
		}
	}
	if err := Check(ctx, db.DB, ring(t, k1, k0), nil, col); err != nil {
		t.Fatalf("both keys configured: %v", err)
	}
	err := Check(ctx, db.DB, ring(t, k1), nil, col)
	var stray *StrayKeyError
	if !errors.As(err, &stray) || len(stray.Strays) != 1 || stray.Strays[0].KeyID != "k0" {
		t.Fatalf("k0 left out: err = %v, want a StrayKeyError naming k0", err)
	}
	if !strings.Contains(err.Error(), `key k0 (in things.value, e.g. id="b")`) {
		t.Errorf("err = %q, want it to name k0 and where", err)
	}
	// A wrong key is reported first: it is the likelier mistake.
	if err := Check(ctx, db.DB, ring(t, key("k1", 7)), nil, col); wrongKey(t, err) != "k1" {
		t.Errorf("wrong k1: %v", err)
	}
}
