package database

import (
	"context"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/errs"
)

// Share is the part of the connection pool that one kind of work may use
// at once: the reads that API calls make on a cache miss. However many
// calls miss together (a thousand users' calls after a restart, or during
// a renewal storm, when every renewal invalidates what the next call
// reads), other requests still find free connections instead of queueing
// behind them: database/sql hands a freed connection to any waiter, not
// the first.
type Share struct {
	places chan struct{}
}

// sharePlaces is how many reads of a Share run at once, at most half the
// pool. Measured with 1,000 calls missing at once (BenchmarkRefreshStorm),
// more places only slow other requests: the reads are short, the
// database's cores bound them, not its connections. With 4 instead of 2,
// the storm took as long and the ordinary route's p99 was about a fifth
// longer.
const sharePlaces = 2

// NewShare returns a Share of db's pool, or nil (no bound) when the pool
// has a single connection (SQLite), which every request waits for anyway.
func NewShare(db *gorm.DB) *Share {
	sqlDB, err := db.DB()
	if err != nil {
		return nil
	}
	n := min(sharePlaces, sqlDB.Stats().MaxOpenConnections/2)
	if n < 1 {
		return nil
	}
	return &Share{places: make(chan struct{}, n)}
}

type shareKey struct{}

// With returns ctx carrying s: the reads made under it that call Take wait
// for a place in s. A nil Share bounds nothing.
func (s *Share) With(ctx context.Context) context.Context {
	if s == nil {
		return ctx
	}
	return context.WithValue(ctx, shareKey{}, s)
}

// Unshared returns ctx without its Share, for work bounded otherwise (a
// renewal holds one of its own few slots, which must not wait in a queue
// of calls).
func Unshared(ctx context.Context) context.Context {
	if s, _ := ctx.Value(shareKey{}).(*Share); s == nil {
		return ctx
	}
	return context.WithValue(ctx, shareKey{}, (*Share)(nil))
}

// Take waits for a place in ctx's Share, if it carries one, and returns
// the function that gives it back. It returns errs.Unavailable if ctx ends
// first.
func Take(ctx context.Context) (release func(), err error) {
	return takeUnless(ctx, nil) // a nil channel never closes
}

// takeUnless is Take, unless done closes first: then it returns a nil
// release and no error.
func takeUnless(ctx context.Context, done <-chan struct{}) (release func(), err error) {
	s, _ := ctx.Value(shareKey{}).(*Share)
	if s == nil {
		return func() {}, nil
	}
	select {
	case s.places <- struct{}{}:
		return func() { <-s.places }, nil
	case <-done:
		return nil, nil
	case <-ctx.Done():
		return nil, errs.Wrap(errs.Unavailable, ctx.Err(), unavailableMessage)
	}
}
