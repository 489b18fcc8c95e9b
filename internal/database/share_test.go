package database_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/dbtest"
	"github.com/latchkey/latchkey/internal/errs"
)

// TestShare: reads under a Share use at most 2 connections at once, work
// without one or taken out of it is not held back, and a wait ends with
// its context.
func TestShare(t *testing.T) {
	d := dbtest.Open(t)
	s := database.NewShare(d.DB)
	if d.URL == "" {
		if s != nil {
			t.Fatal("SQLite's one connection is shared")
		}
		return
	}
	ctx := s.With(context.Background())
	var in, most atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			release, err := database.Take(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			n := in.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(time.Millisecond)
			in.Add(-1)
			release()
		})
	}
	wg.Wait()
	if got := most.Load(); got != 2 {
		t.Errorf("%d reads at once, want 2", got)
	}

	// Hold every place: work without the share, or taken out of it, goes on.
	var releases []func()
	for range 2 {
		r, err := database.Take(ctx)
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, r)
	}
	for _, c := range []context.Context{context.Background(), database.Unshared(ctx)} {
		r, err := database.Take(c)
		if err != nil {
			t.Fatal(err)
		}
		r()
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := database.Take(short); !errs.Is(err, errs.Unavailable) {
		t.Errorf("a wait past its context: %v, want Unavailable", err)
	}
	for _, r := range releases {
		r()
	}
}
