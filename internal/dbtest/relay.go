package dbtest

import (
	"bytes"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// Relay is a TCP proxy between a connection pool and the test PostgreSQL,
// for tests of what callers see when the database goes away: Cut refuses
// new connections and breaks the live ones, as a database that died;
// Restore lets connections through again; DropOn breaks the connection
// that next sends a given text, as a database that died mid-query.
type Relay struct {
	URL string // the database's URL, through the relay

	target string // the database's host:port
	addr   string // where the relay listens

	mu      sync.Mutex
	ln      net.Listener // nil while cut
	conns   map[net.Conn]bool
	drop    []byte
	dropped int
}

// NewRelay starts a relay in front of d, which must be PostgreSQL. It stops
// when the test ends.
func NewRelay(tb testing.TB, d *DB) *Relay {
	tb.Helper()
	u, err := url.Parse(d.URL)
	if err != nil || d.URL == "" {
		tb.Fatalf("dbtest: a relay needs a PostgreSQL URL, got %q", d.URL)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	r := &Relay{target: u.Host, addr: ln.Addr().String(), conns: map[net.Conn]bool{}}
	u.Host = r.addr
	r.URL = u.String()
	r.ln = ln
	go r.accept(ln)
	tb.Cleanup(r.Cut)
	return r
}

// Cut closes the relay's listener, so connecting fails, and every live
// connection, so that queries on them fail.
func (r *Relay) Cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
	for c := range r.conns {
		c.Close()
	}
}

// Restore listens again, on the same address.
func (r *Relay) Restore(tb testing.TB) {
	tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln != nil {
		return
	}
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		tb.Fatal(err)
	}
	r.ln = ln
	go r.accept(ln)
}

// DropOn makes the relay close, instead of forwarding, the next client
// message that contains text, with both ends of its connection. Other
// connections, and new ones, work on.
func (r *Relay) DropOn(text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.drop = []byte(text)
}

func (r *Relay) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go r.pipe(c)
	}
}

func (r *Relay) pipe(client net.Conn) {
	server, err := net.Dial("tcp", r.target)
	if err != nil {
		client.Close()
		return
	}
	r.mu.Lock()
	if r.ln == nil { // cut meanwhile
		r.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	r.conns[client], r.conns[server] = true, true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.conns, client)
		delete(r.conns, server)
		r.mu.Unlock()
		client.Close()
		server.Close()
	}()
	go func() {
		io.Copy(client, server)
		client.Close()
		server.Close()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 && r.dropping(buf[:n]) {
			return
		}
		if n > 0 {
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// dropping reports, once, whether msg holds the text given to DropOn.
func (r *Relay) dropping(msg []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.drop) == 0 || !bytes.Contains(msg, r.drop) {
		return false
	}
	r.drop = nil
	r.dropped++
	return true
}

// Dropped returns how many connections DropOn has broken.
func (r *Relay) Dropped() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}
