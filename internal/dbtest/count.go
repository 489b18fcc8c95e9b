package dbtest

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"gorm.io/gorm"
)

// Counter counts the statements a connection pool sends to the database.
type Counter struct {
	on atomic.Bool

	mu   sync.Mutex
	sqls []string // since Reset
}

// Count returns the statements sent since the last Reset.
func (c *Counter) Count() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int64(len(c.sqls))
}

// Reset starts counting again from zero.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sqls = nil
	c.on.Store(true)
}

// Matching returns how many of the statements counted since the last
// Reset contain sub.
func (c *Counter) Matching(sub string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.sqls {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

// CountQueries registers a Counter on db: every query, row, raw, create,
// update and delete statement GORM sends is counted once Reset is called.
func CountQueries(tb testing.TB, db *gorm.DB) *Counter {
	tb.Helper()
	c := &Counter{}
	// After each kind's own callback, which has built the statement.
	count := func(tx *gorm.DB) {
		if c.on.Load() {
			c.mu.Lock()
			c.sqls = append(c.sqls, tx.Statement.SQL.String())
			c.mu.Unlock()
		}
	}
	cb := db.Callback()
	for _, err := range []error{
		cb.Query().After("gorm:query").Register("dbtest:count", count),
		cb.Row().After("gorm:row").Register("dbtest:count", count),
		cb.Raw().After("gorm:raw").Register("dbtest:count", count),
		cb.Create().After("gorm:create").Register("dbtest:count", count),
		cb.Update().After("gorm:update").Register("dbtest:count", count),
		cb.Delete().After("gorm:delete").Register("dbtest:count", count),
	} {
		if err != nil {
			tb.Fatal(err)
		}
	}
	return c
}
