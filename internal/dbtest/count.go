package dbtest

import (
	"sync/atomic"
	"testing"

	"gorm.io/gorm"
)

// Counter counts the statements a connection pool sends to the database.
type Counter struct {
	n  atomic.Int64
	on atomic.Bool
}

// Count returns the statements sent since the last Reset.
func (c *Counter) Count() int64 { return c.n.Load() }

// Reset starts counting again from zero.
func (c *Counter) Reset() { c.n.Store(0); c.on.Store(true) }

// CountQueries registers a Counter on db: every query, row, raw, create,
// update and delete statement GORM sends is counted once Reset is called.
func CountQueries(tb testing.TB, db *gorm.DB) *Counter {
	tb.Helper()
	c := &Counter{}
	count := func(*gorm.DB) {
		if c.on.Load() {
			c.n.Add(1)
		}
	}
	cb := db.Callback()
	for _, err := range []error{
		cb.Query().Before("gorm:query").Register("dbtest:count", count),
		cb.Row().Before("gorm:row").Register("dbtest:count", count),
		cb.Raw().Before("gorm:raw").Register("dbtest:count", count),
		cb.Create().Before("gorm:create").Register("dbtest:count", count),
		cb.Update().Before("gorm:update").Register("dbtest:count", count),
		cb.Delete().Before("gorm:delete").Register("dbtest:count", count),
	} {
		if err != nil {
			tb.Fatal(err)
		}
	}
	return c
}
