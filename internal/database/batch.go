package database

import (
	"context"
	"errors"
	"math/bits"
	"sync"

	"github.com/latchkey/latchkey/internal/errs"
)

// Batch reads in one query the rows that calls missing their caches at the
// same moment ask for: a thousand users' calls after a restart, or at the
// start of a renewal storm, make a few queries instead of a thousand.
//
// A row is an item of a group (a user's connection of an installation's
// config, say); one query reads items of one group. A call that misses
// waits for a place in its ctx's Share (see Take), or for another call's
// query to read its item, whichever comes first. Holding a place, it reads
// every item of its group that calls are waiting for, up to maxBatch.
// Without a Share in ctx it reads at once, with whatever else is waiting.
type Batch[V any] struct {
	// read returns the rows of items in group that exist, by item. The
	// items may repeat (see padded).
	read func(ctx context.Context, group string, items []string) (map[string]V, error)

	mu      sync.Mutex
	pending map[string]map[string]*batchWait[V] // group -> item -> its callers' wait
}

// maxBatch bounds the items of one query (and so its parameters).
const maxBatch = 256

type batchWait[V any] struct {
	waiters int // callers waiting, while it is pending; under Batch.mu

	done  chan struct{} // closed when the fields below are set
	v     V
	found bool
	err   error
}

// errReadAgain is what the callers whose items a query took are told when
// that query ended with its own caller's ctx: their ctx may still run.
var errReadAgain = errors.New("read again")

// NewBatch returns a Batch whose queries are read.
func NewBatch[V any](read func(ctx context.Context, group string, items []string) (map[string]V, error)) *Batch[V] {
	return &Batch[V]{read: read, pending: make(map[string]map[string]*batchWait[V])}
}

// Get returns the row of item in group, and whether there is one. Its
// errors are read's, or errs.Unavailable when ctx ends while it waits.
func (b *Batch[V]) Get(ctx context.Context, group, item string) (v V, found bool, err error) {
	for {
		w := b.wait(group, item)
		release, err := takeUnless(ctx, w.done)
		if err != nil {
			b.leave(group, item, w)
			return v, false, err
		}
		if release != nil {
			// Unless another call's query took item while this one got
			// its place, this one reads it, with what else waits.
			b.readFor(ctx, group, item, release)
			select {
			case <-w.done:
			case <-ctx.Done():
				return v, false, errs.Wrap(errs.Unavailable, ctx.Err(), unavailableMessage)
			}
		}
		if w.err == errReadAgain {
			if ctx.Err() != nil {
				return v, false, errs.Wrap(errs.Unavailable, ctx.Err(), unavailableMessage)
			}
			continue
		}
		return w.v, w.found, w.err
	}
}

// readFor reads item and what else of group waits, and tells their
// callers, then gives back the place (release) it holds.
func (b *Batch[V]) readFor(ctx context.Context, group, item string, release func()) {
	defer release()
	items, waits := b.take(group, item)
	if len(waits) == 0 {
		return
	}
	var rows map[string]V
	err := errReadAgain // if read panics, the others read again
	defer func() {
		for i, item := range items {
			row, ok := rows[item]
			waits[i].v, waits[i].found, waits[i].err = row, ok, err
			close(waits[i].done)
		}
	}()
	rows, err = b.read(ctx, group, padded(items))
	if err != nil && ctx.Err() != nil {
		err = errReadAgain // not the others' fault: their ctx may run
	}
}

// wait registers a caller of item in group, with the others already
// waiting for it, if any.
func (b *Batch[V]) wait(group, item string) *batchWait[V] {
	b.mu.Lock()
	defer b.mu.Unlock()
	items := b.pending[group]
	if items == nil {
		items = make(map[string]*batchWait[V])
		b.pending[group] = items
	}
	w := items[item]
	if w == nil {
		w = &batchWait[V]{done: make(chan struct{})}
		items[item] = w
	}
	w.waiters++
	return w
}

// leave is for a caller that stops waiting for w before a query took it:
// an item no one waits for any more is not read.
func (b *Batch[V]) leave(group, item string, w *batchWait[V]) {
	b.mu.Lock()
	defer b.mu.Unlock()
	items := b.pending[group]
	if items[item] != w {
		return // a query has it
	}
	if w.waiters--; w.waiters == 0 {
		delete(items, item)
		if len(items) == 0 {
			delete(b.pending, group)
		}
	}
}

// take removes from the waiting items of group those one query reads:
// item first, if it still waits, then others up to maxBatch. It takes none
// when item no longer waits (another query has it).
func (b *Batch[V]) take(group, item string) ([]string, []*batchWait[V]) {
	b.mu.Lock()
	defer b.mu.Unlock()
	pending := b.pending[group]
	first, ok := pending[item]
	if !ok {
		return nil, nil
	}
	n := min(len(pending), maxBatch)
	items, waits := make([]string, 1, n), make([]*batchWait[V], 1, n)
	items[0], waits[0] = item, first
	delete(pending, item)
	for it, w := range pending {
		if len(items) == n {
			break
		}
		items, waits = append(items, it), append(waits, w)
		delete(pending, it)
	}
	if len(pending) == 0 {
		delete(b.pending, group)
	}
	return items, waits
}

// padded returns items padded to a power of two with the last, so that
// the queries that read them in a list have few forms, each prepared once
// per pooled connection.
func padded(items []string) []string {
	n := len(items)
	if n&(n-1) == 0 {
		return items
	}
	out := make([]string, 1<<bits.Len(uint(n)))
	for i := copy(out, items); i < len(out); i++ {
		out[i] = items[n-1]
	}
	return out
}
