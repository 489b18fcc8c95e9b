package outbound

import (
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/latchkey/latchkey/internal/clientcert"
)

// Bounds of the clients WithCertificate keeps: one per certificate in use,
// dropped after certIdle unused or when more than maxCertClients are kept,
// least recently used first.
const (
	maxCertClients = 256
	certIdle       = 10 * time.Minute
)

// CertificateError is a client certificate that cannot be used: a text
// that does not parse, a key that is not the certificate's, a certificate
// outside its validity. Its message says which (see clientcert.Pair) and
// never quotes either text.
type CertificateError struct{ Err error }

func (e *CertificateError) Error() string { return e.Err.Error() }
func (e *CertificateError) Unwrap() error { return e.Err }

// WithCertificate returns a client that is c in every way (the guard,
// timeouts, response cap, redirect policy, Observe, RootCAs) but presents
// a client certificate when a server asks for one: mutual TLS client
// authentication (RFC 8705 §2). chainPEM is the certificate chain, leaf
// first; keyPEM its private key.
//
// Its connections are its own: a connection a server authenticated with
// one certificate never carries a request of another. The client for a
// certificate (and its pool of connections) is kept while it is used and
// dropped after 10 minutes without use, its idle connections closed; it
// is found again by the texts' hash, so that a call does not parse a key.
//
// Errors are *CertificateError when the texts cannot be used.
func (c *Client) WithCertificate(chainPEM, keyPEM string) (*Client, error) {
	h := sha256.New()
	h.Write([]byte(chainPEM))
	h.Write([]byte{0}) // PEM text has no NUL: the pair's split is unambiguous
	h.Write([]byte(keyPEM))
	var id [sha256.Size]byte
	h.Sum(id[:0])
	now := c.certs.now()
	if cc := c.certs.get(id, now); cc != nil {
		// Expiry is checked on each use: a kept client outlives no
		// certificate.
		if err := clientcert.Valid(cc.cert.Leaf, now); err != nil {
			return nil, &CertificateError{Err: fmt.Errorf("the certificate chain %w", err)}
		}
		return cc.client, nil
	}
	cert, err := clientcert.Pair(chainPEM, keyPEM, now)
	if err != nil {
		return nil, &CertificateError{Err: err}
	}
	tr := newTransport(c.opts, c.g, &cert)
	out := &Client{maxBytes: c.maxBytes, g: c.g, observe: c.observe, opts: c.opts, certs: c.certs}
	out.hc = out.httpClient(tr)
	return c.certs.put(id, &certClient{client: out, tr: tr, cert: &cert}, now).client, nil
}

// certClient is the client of one certificate.
type certClient struct {
	client *Client
	tr     *http.Transport
	cert   *tls.Certificate
	used   time.Time
}

// certClients keeps the clients of certificates by the hash of their
// texts. A lookup is a map read under a mutex; unused clients are swept
// at most once a minute, on a lookup.
type certClients struct {
	mu        sync.Mutex
	m         map[[sha256.Size]byte]*certClient
	max       int
	idle      time.Duration
	lastSweep time.Time
	now       func() time.Time
}

func newCertClients() *certClients {
	return &certClients{m: make(map[[sha256.Size]byte]*certClient), max: maxCertClients, idle: certIdle, now: time.Now}
}

func (cs *certClients) get(id [sha256.Size]byte, now time.Time) *certClient {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cc := cs.m[id]
	if cc != nil {
		cc.used = now
	}
	if now.Sub(cs.lastSweep) > time.Minute {
		cs.sweep(now)
	}
	return cc
}

// put keeps cc unless another caller kept a client for id meanwhile (both
// parsed the same texts), and returns the one kept.
func (cs *certClients) put(id [sha256.Size]byte, cc *certClient, now time.Time) *certClient {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if kept := cs.m[id]; kept != nil {
		kept.used = now
		return kept
	}
	cc.used = now
	cs.m[id] = cc
	cs.sweep(now)
	return cc
}

// sweep drops clients unused for cs.idle, then the least recently used
// while there are too many, closing their idle connections. A request in
// flight on a dropped client finishes; its connection is then closed by
// the transport's idle timeout, never reused by another certificate.
func (cs *certClients) sweep(now time.Time) {
	cs.lastSweep = now
	for id, cc := range cs.m {
		if now.Sub(cc.used) > cs.idle {
			cs.drop(id, cc)
		}
	}
	for len(cs.m) > cs.max {
		var oldest [sha256.Size]byte
		var cc *certClient
		for id, c := range cs.m {
			if cc == nil || c.used.Before(cc.used) {
				oldest, cc = id, c
			}
		}
		cs.drop(oldest, cc)
	}
}

func (cs *certClients) drop(id [sha256.Size]byte, cc *certClient) {
	delete(cs.m, id)
	cc.tr.CloseIdleConnections()
}

// len is how many clients are kept, for tests.
func (cs *certClients) len() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.m)
}

// refusedCertificate are the TLS alerts (RFC 8446 §6.2) by which a server
// says it does not accept the client's certificate, in crypto/tls's words.
var refusedCertificate = map[string]bool{
	"tls: bad certificate":               true,
	"tls: unsupported certificate":       true,
	"tls: revoked certificate":           true,
	"tls: expired certificate":           true,
	"tls: unknown certificate":           true,
	"tls: unknown certificate authority": true,
	"tls: access denied":                 true,
	"tls: certificate required":          true,
	"tls: error decrypting message":      true, // the CertificateVerify signature failed
}

// CertificateRefused reports whether err, from a request, says that the
// server refused the TLS connection because of the client's certificate
// (or its absence): a TLS alert such as bad_certificate, unknown_ca or
// certificate_required. With TLS 1.3 the alert arrives after the client's
// handshake is done, on the first read, so it may come with any request.
func CertificateRefused(err error) bool {
	var op *net.OpError
	for e := err; errors.As(e, &op); e = op.Err {
		if op.Op == "remote error" && op.Err != nil && refusedCertificate[op.Err.Error()] {
			return true
		}
	}
	return false
}
