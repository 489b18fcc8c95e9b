package dbtest

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/database"
)

// Relay is a TCP relay in front of the test's PostgreSQL that a test can
// cut, as a database that dies (kill -9, a network partition) would: Cut
// drops every connection and refuses new ones until Restore.
type Relay struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]bool
}

// NewRelay starts a relay to d's PostgreSQL and returns a connection pool
// on d's schema that goes through it. It skips the test on SQLite, which
// cannot go away under a running process.
func (d *DB) NewRelay(tb testing.TB) (*Relay, *gorm.DB) {
	tb.Helper()
	if d.URL == "" {
		tb.Skip("needs PostgreSQL (set " + EnvURL + "): SQLite cannot be cut off from the process")
	}
	u, err := url.Parse(d.URL)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	r := &Relay{ln: ln, target: u.Host, conns: make(map[net.Conn]bool)}
	go r.serve()
	tb.Cleanup(func() { ln.Close(); r.Cut() })
	u.Host = ln.Addr().String()
	db, err := database.Open(context.Background(), u.String(), "")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { database.Close(db) })
	return r, db
}

func (r *Relay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		if r.cut {
			r.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", r.target)
		if err != nil {
			r.mu.Unlock()
			c.Close()
			continue
		}
		r.conns[c], r.conns[up] = true, true
		r.mu.Unlock()
		go r.pipe(c, up)
		go r.pipe(up, c)
	}
}

func (r *Relay) pipe(dst, src net.Conn) {
	io.Copy(dst, src)
	dst.Close()
	src.Close()
	r.mu.Lock()
	delete(r.conns, dst)
	delete(r.conns, src)
	r.mu.Unlock()
}

// Cut drops every relayed connection and refuses new ones.
func (r *Relay) Cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cut = true
	for c := range r.conns {
		c.Close()
		delete(r.conns, c)
	}
}

// Restore lets connections through again.
func (r *Relay) Restore() {
	r.mu.Lock()
	r.cut = false
	r.mu.Unlock()
}
