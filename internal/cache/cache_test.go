package cache_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/cache"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/dbtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// listening starts b's listener and waits until it listens.
func listening(t *testing.T, b *cache.Bus, d *dbtest.DB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx, database.PostgresDSN(d.DB)); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(5 * time.Second); !b.Listening(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("not listening")
		}
	}
}

func TestLoadAndInvalidate(t *testing.T) {
	d := dbtest.Open(t)
	b := cache.NewBus(d.DB, cache.Options{Entries: 10, TTL: time.Minute}, quiet)
	c := cache.New[string](b, "thing")
	listening(t, b, d)
	loads := 0
	load := func(v string) func() (string, error) {
		return func() (string, error) { loads++; return v, nil }
	}
	if v, _ := c.Load("k", load("one")); v != "one" {
		t.Fatalf("first load = %q", v)
	}
	if v, _ := c.Load("k", load("two")); v != "one" || loads != 1 {
		t.Fatalf("second load = %q after %d loads; want the kept value", v, loads)
	}
	if err := b.Changed(d.DB, "thing", "k"); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Load("k", load("three")); v != "three" {
		t.Fatalf("after Changed: %q", v)
	}
	// Errors are not kept.
	if _, err := c.Load("e", func() (string, error) { return "", errors.New("no") }); err == nil {
		t.Fatal("error lost")
	}
	if v, _ := c.Load("e", load("fine")); v != "fine" {
		t.Fatalf("after an error: %q", v)
	}
	// A change during a load keeps that load's value out.
	c.Load("r", func() (string, error) {
		b.Changed(d.DB, "thing", "other")
		return "stale", nil
	})
	if v, _ := c.Load("r", load("fresh")); v != "fresh" {
		t.Fatalf("a value loaded during a change was kept: %q", v)
	}
}

// TestMarkKeep: values read by a query of their own are kept like loaded
// ones, unless the cache changed after the mark.
func TestMarkKeep(t *testing.T) {
	d := dbtest.Open(t)
	b := cache.NewBus(d.DB, cache.Options{Entries: 10, TTL: time.Minute}, quiet)
	c := cache.New[string](b, "thing")
	listening(t, b, d)
	if _, ok := c.Get("k"); ok {
		t.Fatal("an empty cache has k")
	}
	m := c.Mark()
	m.Keep("k", "read")
	if v, ok := c.Get("k"); !ok || v != "read" {
		t.Fatalf("Get after Keep = %q, %v", v, ok)
	}
	m = c.Mark()
	if err := b.Changed(d.DB, "thing", "other"); err != nil {
		t.Fatal(err)
	}
	m.Keep("j", "stale")
	if v, ok := c.Get("j"); ok {
		t.Fatalf("a value read across a change was kept: %q", v)
	}
	var off *cache.Cache[string] // caching off
	off.Mark().Keep("k", "v")
	if _, ok := off.Get("k"); ok {
		t.Fatal("a nil cache has k")
	}
}

// TestReplicasHearChanges: on PostgreSQL a change committed through one
// replica's bus reaches another's cache, and a rolled back one does not.
func TestReplicasHearChanges(t *testing.T) {
	d := dbtest.Open(t)
	if d.URL == "" {
		t.Skip("replicas share PostgreSQL: set " + dbtest.EnvURL)
	}
	other := d.Reopen(t)
	a := cache.NewBus(d.DB, cache.Options{Entries: 10, TTL: time.Minute}, quiet)
	b := cache.NewBus(other, cache.Options{Entries: 10, TTL: time.Minute}, quiet)
	cb := cache.New[string](b, "thing")
	listening(t, a, d)
	listening(t, b, d)
	cb.Load("k"+cache.Sep+"u", func() (string, error) { return "old", nil })

	tx := d.DB.Begin()
	if err := a.Changed(tx, "thing", "k"+cache.Sep+"u"); err != nil {
		t.Fatal(err)
	}
	tx.Rollback()
	time.Sleep(100 * time.Millisecond)
	if v, _ := cb.Load("k"+cache.Sep+"u", func() (string, error) { return "new", nil }); v != "old" {
		t.Fatalf("a rolled back change reached the other replica: %q", v)
	}

	tx = d.DB.Begin()
	if err := a.Changed(tx, "thing", "k"+cache.Sep+"u"); err != nil {
		t.Fatal(err)
	}
	tx.Commit()
	deadline := time.Now().Add(time.Second)
	for {
		v, _ := cb.Load("k"+cache.Sep+"u", func() (string, error) { return "new", nil })
		if v == "new" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the other replica did not hear the change within a second")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Several changes in one statement reach it too.
	other2 := cache.New[string](b, "other")
	other2.Load("j", func() (string, error) { return "old", nil })
	tx = d.DB.Begin()
	if err := a.ChangedAll(tx, cache.Change{Topic: "thing", Key: "k" + cache.Sep + "u"}, cache.Change{Topic: "other", Key: "j"}); err != nil {
		t.Fatal(err)
	}
	tx.Commit()
	for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
		v1, _ := cb.Load("k"+cache.Sep+"u", func() (string, error) { return "newer", nil })
		v2, _ := other2.Load("j", func() (string, error) { return "new", nil })
		if v1 == "newer" && v2 == "new" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the other replica heard %q, %q within a second", v1, v2)
		}
	}
}
