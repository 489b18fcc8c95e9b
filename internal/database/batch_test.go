package database

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/errs"
)

// batchRig is a Batch over a table where the items "u-<even>" exist, with
// a Share of one place that the test holds until every caller waits.
type batchRig struct {
	b     *Batch[string]
	share *Share
	reads atomic.Int64
	// onRead, if set, runs first in each read, with its number from 1.
	onRead func(ctx context.Context, n int64) error
}

func newBatchRig() *batchRig {
	r := &batchRig{share: &Share{places: make(chan struct{}, 1)}}
	r.b = NewBatch(func(ctx context.Context, group string, items []string) (map[string]string, error) {
		n := r.reads.Add(1)
		if k := len(items); k&(k-1) != 0 {
			return nil, fmt.Errorf("%d items: not padded to a power of two", k)
		}
		if r.onRead != nil {
			if err := r.onRead(ctx, n); err != nil {
				return nil, err
			}
		}
		rows := map[string]string{}
		for _, it := range items {
			if k, _ := strconv.Atoi(strings.TrimPrefix(it, "u-")); k%2 == 0 {
				rows[it] = group + "/" + it
			}
		}
		return rows, nil
	})
	return r
}

// hold takes the share's place until every one of n callers waits.
func (r *batchRig) hold(t *testing.T, n int) (release func()) {
	t.Helper()
	r.share.places <- struct{}{}
	return func() {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			r.b.mu.Lock()
			waiting := 0
			for _, items := range r.b.pending {
				waiting += len(items)
			}
			r.b.mu.Unlock()
			if waiting == n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d items wait, want %d", waiting, n)
			}
		}
		<-r.share.places
	}
}

// check is one caller's answer checked against the table.
func check(t *testing.T, group, item, v string, found bool, err error) {
	t.Helper()
	k, _ := strconv.Atoi(strings.TrimPrefix(item, "u-"))
	switch {
	case err != nil:
		t.Errorf("%s %s: %v", group, item, err)
	case found != (k%2 == 0):
		t.Errorf("%s %s: found %v", group, item, found)
	case found && v != group+"/"+item:
		t.Errorf("%s %s: %q", group, item, v)
	}
}

// TestBatch: 600 calls for 2 groups that miss at once, 300 items each
// asked twice, make one query per group and 256 items, each answered its
// own row or none.
func TestBatch(t *testing.T) {
	r := newBatchRig()
	ctx := r.share.With(context.Background())
	release := r.hold(t, 600)
	var wg sync.WaitGroup
	for _, group := range []string{"g", "h"} {
		for i := range 600 / 2 {
			item := fmt.Sprintf("u-%d", i%300)
			wg.Go(func() {
				v, found, err := r.b.Get(ctx, group, item)
				check(t, group, item, v, found, err)
			})
		}
	}
	release()
	wg.Wait()
	if got := r.reads.Load(); got != 4 { // 256 + 44 items per group
		t.Errorf("%d queries, want 4", got)
	}
	// Nothing is left waiting, and a later miss is read again.
	if len(r.b.pending) != 0 {
		t.Errorf("left waiting: %v", r.b.pending)
	}
	v, found, err := r.b.Get(ctx, "g", "u-2")
	check(t, "g", "u-2", v, found, err)
	if got := r.reads.Load(); got != 5 {
		t.Errorf("%d queries, want 5", got)
	}
}

// TestBatchReaderGoesAway: when the caller whose query reads the others'
// items goes away during it, it gets its ctx's end and they are read
// again (check); a query's own failure is every caller's.
func TestBatchReaderGoesAway(t *testing.T) {
	type id struct{}
	r := newBatchRig()
	var cancels sync.Map // caller -> its cancel
	var fail atomic.Bool
	r.onRead = func(ctx context.Context, n int64) error {
		if n == 1 {
			cancel, _ := cancels.Load(ctx.Value(id{}))
			cancel.(context.CancelFunc)()
			return ctx.Err()
		}
		if fail.Load() {
			return errors.New("the query failed")
		}
		return nil
	}
	release := r.hold(t, 20)
	var wg sync.WaitGroup
	var gone atomic.Int64
	for i := range 20 {
		ctx, cancel := context.WithCancel(context.WithValue(r.share.With(context.Background()), id{}, i))
		cancels.Store(i, cancel)
		item := fmt.Sprintf("u-%d", i)
		wg.Go(func() {
			defer cancel()
			v, found, err := r.b.Get(ctx, "g", item)
			if ctx.Err() != nil {
				if !errs.Is(err, errs.Unavailable) {
					t.Errorf("the caller that went away: %v", err)
				}
				gone.Add(1)
				return
			}
			check(t, "g", item, v, found, err)
		})
	}
	release()
	wg.Wait()
	if gone.Load() != 1 || r.reads.Load() < 2 {
		t.Errorf("%d callers went away, %d queries; want 1, 2 or more", gone.Load(), r.reads.Load())
	}

	// A query that fails fails each caller it read for.
	fail.Store(true)
	reads := r.reads.Load()
	release = r.hold(t, 5)
	var failed atomic.Int64
	for i := range 5 {
		wg.Go(func() {
			if _, _, err := r.b.Get(r.share.With(context.Background()), "g", fmt.Sprintf("u-%d", i)); err != nil {
				failed.Add(1)
			}
		})
	}
	release()
	wg.Wait()
	if failed.Load() != 5 || r.reads.Load() != reads+1 {
		t.Errorf("%d callers of a failed query failed, %d queries; want 5, 1", failed.Load(), r.reads.Load()-reads)
	}
}

// TestBatchReadPanics: a query that panics panics its caller, and the
// others it read for are read again (check).
func TestBatchReadPanics(t *testing.T) {
	r := newBatchRig()
	r.onRead = func(_ context.Context, n int64) error {
		if n == 1 {
			panic("boom")
		}
		return nil
	}
	ctx := r.share.With(context.Background())
	release := r.hold(t, 10)
	var wg sync.WaitGroup
	var panicked atomic.Int64
	for i := range 10 {
		item := fmt.Sprintf("u-%d", i)
		wg.Go(func() {
			defer func() {
				if recover() != nil {
					panicked.Add(1)
				}
			}()
			v, found, err := r.b.Get(ctx, "g", item)
			check(t, "g", item, v, found, err)
		})
	}
	release()
	wg.Wait()
	if panicked.Load() != 1 {
		t.Errorf("%d callers panicked, want 1", panicked.Load())
	}
}

// TestBatchWithoutShare: without a Share a caller reads at once.
func TestBatchWithoutShare(t *testing.T) {
	r := newBatchRig()
	v, found, err := r.b.Get(context.Background(), "g", "u-4")
	check(t, "g", "u-4", v, found, err)
	if _, found, err = r.b.Get(context.Background(), "g", "u-5"); err != nil || found {
		t.Errorf("u-5: %v %v", found, err)
	}
}

// TestBatchCallerGivesUp: an item whose callers all stopped waiting before
// a query took it is not read.
func TestBatchCallerGivesUp(t *testing.T) {
	r := newBatchRig()
	r.share.places <- struct{}{} // held until the caller has given up
	ctx, cancel := context.WithCancel(r.share.With(context.Background()))
	done := make(chan error)
	go func() {
		_, _, err := r.b.Get(ctx, "g", "u-1")
		done <- err
	}()
	for waiting := false; !waiting; time.Sleep(time.Millisecond) {
		r.b.mu.Lock()
		waiting = len(r.b.pending["g"]) == 1
		r.b.mu.Unlock()
	}
	cancel()
	if err := <-done; !errs.Is(err, errs.Unavailable) {
		t.Errorf("the caller that gave up: %v", err)
	}
	<-r.share.places
	if len(r.b.pending) != 0 {
		t.Errorf("left waiting: %v", r.b.pending)
	}
	v, found, err := r.b.Get(r.share.With(context.Background()), "g", "u-2")
	check(t, "g", "u-2", v, found, err)
	if got := r.reads.Load(); got != 1 {
		t.Errorf("%d queries, want 1 (u-2 alone)", got)
	}
}
