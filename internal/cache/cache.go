// Package cache keeps in memory what every API call reads and few requests
// change (API keys, apps, installations, configs, setting definitions,
// values, connections), so that a call whose token is fresh costs no
// database round trip.
//
// A Cache is read-through, bounded (least recently used entries go first)
// and has a TTL backstop. Each store that uses one invalidates it on every
// write path, through a Bus: in this process at once, and on PostgreSQL in
// every other replica by NOTIFY, sent when the writing transaction commits.
// A replica that loses its LISTEN connection flushes everything and stops
// caching until it listens again.
package cache

import (
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
)

// Options size the caches: Entries per cache (default 10000) and the TTL
// after which an entry is read again whatever happened (default 5m).
// Entries 0 or less turns caching off.
type Options struct {
	Entries int
	TTL     time.Duration
}

// Cache maps keys to values loaded from the database.
type Cache[V any] struct {
	lru *expirable.LRU[string, V]
	bus *Bus
	// gen counts invalidations: a value loaded while one happened may be
	// the old one, and is not kept.
	gen atomic.Uint64
}

// New returns a cache registered on bus under topic: a change published
// for topic with a key removes that key, one with "" empties the cache. A
// nil Cache (bus nil, or caching off) loads every time.
func New[V any](bus *Bus, topic string) *Cache[V] {
	if bus == nil || bus.opts.Entries <= 0 {
		return nil
	}
	c := &Cache[V]{lru: expirable.NewLRU[string, V](bus.opts.Entries, nil, bus.opts.TTL), bus: bus}
	bus.register(topic, c)
	return c
}

// Load returns the value of key, from memory or from load. A value that
// load returns with an error is not kept, nor one loaded while the cache
// was invalidated or the bus was not listening.
func (c *Cache[V]) Load(key string, load func() (V, error)) (V, error) {
	if c == nil {
		return load()
	}
	if v, ok := c.lru.Get(key); ok {
		return v, nil
	}
	gen := c.gen.Load()
	v, err := load()
	if err == nil && c.bus.live() && c.gen.Load() == gen {
		c.lru.Add(key, v)
	}
	return v, err
}

// Get returns the value of key when it is in memory, without loading it.
func (c *Cache[V]) Get(key string) (V, bool) {
	if c == nil {
		var zero V
		return zero, false
	}
	return c.lru.Get(key)
}

// Mark is a cache's state before a read that fills it from outside Load:
// one query that reads for several caches at once, on a miss of any.
type Mark[V any] struct {
	c   *Cache[V]
	gen uint64
}

// Mark returns the cache's state now; take it before the query.
func (c *Cache[V]) Mark() Mark[V] {
	if c == nil {
		return Mark[V]{}
	}
	return Mark[V]{c: c, gen: c.gen.Load()}
}

// Keep adds v, read after m was taken, under key, as Load would: not if
// the cache was invalidated since (v may be the old value) or the bus is
// not listening.
func (m Mark[V]) Keep(key string, v V) {
	if m.c != nil && m.c.bus.live() && m.c.gen.Load() == m.gen {
		m.c.lru.Add(key, v)
	}
}

// Remove forgets key.
func (c *Cache[V]) Remove(key string) {
	if c == nil {
		return
	}
	c.gen.Add(1)
	c.lru.Remove(key)
}

// Purge forgets everything.
func (c *Cache[V]) Purge() {
	if c == nil {
		return
	}
	c.gen.Add(1)
	c.lru.Purge()
}

// Len is how many entries are kept, for tests and metrics.
func (c *Cache[V]) Len() int {
	if c == nil {
		return 0
	}
	return c.lru.Len()
}
