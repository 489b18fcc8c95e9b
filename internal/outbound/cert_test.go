package outbound

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testpki"
)

// issue returns a client certificate of ca for cn and its key, as PEM.
func issue(t *testing.T, ca *testpki.CA, cn string) (chain, key string) {
	c := ca.Issue(t, pkix.Name{CommonName: cn})
	return c.Chain, c.Key
}

// mtlsServer requires a client certificate of ca, answers its common
// name, and records which certificates each connection presented.
type mtlsServer struct {
	*httptest.Server
	mu    sync.Mutex
	conns map[string]map[string]bool // remote address -> common names
}

func newMTLSServer(t *testing.T, ca *testpki.CA, h2 bool, h http.HandlerFunc) *mtlsServer {
	t.Helper()
	s := &mtlsServer{conns: map[string]map[string]bool{}}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cn := r.TLS.PeerCertificates[0].Subject.CommonName
		s.mu.Lock()
		if s.conns[r.RemoteAddr] == nil {
			s.conns[r.RemoteAddr] = map[string]bool{}
		}
		s.conns[r.RemoteAddr][cn] = true
		s.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		io.WriteString(w, cn)
	}))
	s.EnableHTTP2 = h2
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	s.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *mtlsServer) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	return pool
}

func mtlsClient(s *mtlsServer, opts Options) *Client {
	opts.Allow, opts.RootCAs = loopback4, s.roots()
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	return newTest(opts)
}

func body(t *testing.T, c *Client, resp *http.Response, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.ReadAll(resp)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCertificatePresented(t *testing.T) {
	ca := testpki.NewCA(t)
	srv := newMTLSServer(t, ca, false, nil)
	c := mtlsClient(srv, Options{})
	chain, key := issue(t, ca, "org-a")
	ac, err := c.WithCertificate(chain, key)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := get(t, ac, srv.URL)
	if got := body(t, ac, resp, err); got != "org-a" {
		t.Errorf("the server saw %q, want org-a", got)
	}
	if again, _ := c.WithCertificate(chain, key); again != ac {
		t.Error("the same texts made a second client: connections are not reused")
	}

	// Without a certificate, or with one the server does not trust, the
	// server refuses, and CertificateRefused says so.
	_, err = get(t, c, srv.URL)
	if err == nil || !CertificateRefused(err) {
		t.Errorf("without a certificate: got %v, want a refusal CertificateRefused reports", err)
	}
	strayChain, strayKey := issue(t, testpki.NewCA(t), "stray")
	sc, err := c.WithCertificate(strayChain, strayKey)
	if err != nil {
		t.Fatal(err)
	}
	_, err = get(t, sc, srv.URL)
	if err == nil || !CertificateRefused(err) {
		t.Errorf("with an untrusted certificate: got %v, want a refusal CertificateRefused reports", err)
	}
	if err != nil && !strings.Contains(err.Error(), "ended the TLS connection: tls:") {
		t.Errorf("the refusal says %q, want the TLS alert in plain words", err)
	}

	// A key that is not the certificate's never makes a client.
	_, otherKey := issue(t, ca, "org-b")
	_, err = c.WithCertificate(chain, otherKey)
	var ce *CertificateError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "does not belong") {
		t.Errorf("mismatched key: got %v, want a *CertificateError", err)
	}
	if strings.Contains(err.Error(), strings.Split(otherKey, "\n")[1]) {
		t.Error("the error quotes the key")
	}
}

// TestCertificatesNeverShareConnections: requests with two certificates,
// interleaved and concurrent, over HTTP/1.1 and HTTP/2, each reach the
// server on connections that presented their own certificate only, and
// connections are still reused.
func TestCertificatesNeverShareConnections(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2], func(t *testing.T) {
			ca := testpki.NewCA(t)
			srv := newMTLSServer(t, ca, h2, nil)
			c := mtlsClient(srv, Options{MaxIdleConnsPerHost: 4})
			var clients []*Client
			for _, cn := range []string{"org-a", "org-b"} {
				chain, key := issue(t, ca, cn)
				cc, err := c.WithCertificate(chain, key)
				if err != nil {
					t.Fatal(err)
				}
				clients = append(clients, cc)
			}
			var wg sync.WaitGroup
			for i := range 40 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cc := clients[i%2]
					resp, err := get(t, cc, srv.URL)
					if err != nil {
						t.Error(err)
						return
					}
					b, _ := cc.ReadAll(resp)
					if want := []string{"org-a", "org-b"}[i%2]; string(b) != want {
						t.Errorf("request %d was seen as %q, want %s", i, b, want)
					}
				}()
			}
			wg.Wait()
			if h2 {
				resp, err := get(t, clients[0], srv.URL)
				if err != nil || resp.ProtoMajor != 2 {
					t.Fatalf("got %v, %v; want an HTTP/2 response", resp, err)
				}
				clients[0].ReadAll(resp)
			}
			// Concurrent requests may each need a connection; requests one
			// after another reuse those kept idle.
			srv.mu.Lock()
			before := len(srv.conns)
			srv.mu.Unlock()
			for i := range 20 {
				cc := clients[i%2]
				resp, err := get(t, cc, srv.URL)
				if err != nil {
					t.Fatal(err)
				}
				cc.ReadAll(resp)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			for addr, cns := range srv.conns {
				if len(cns) != 1 {
					t.Errorf("connection %s carried requests of %d certificates", addr, len(cns))
				}
			}
			// A connection goes back to the pool a moment after its
			// response is read, so a request may now and then dial anew;
			// without reuse, every one would.
			if added := len(srv.conns) - before; added >= 10 {
				t.Errorf("20 requests one after another opened %d connections: kept ones were not reused", added)
			}
		})
	}
}

// TestCertificateClientKeepsOptions: a client with a certificate is
// guarded like its parent, with the same cap, redirect policy and Observe.
func TestCertificateClientKeepsOptions(t *testing.T) {
	ca := testpki.NewCA(t)
	chain, key := issue(t, ca, "org-a")

	// The guard still refuses: no allow-list here.
	blocked, err := newTest(Options{}).WithCertificate(chain, key)
	if err != nil {
		t.Fatal(err)
	}
	_, err = get(t, blocked, "https://127.0.0.1:1/")
	wantBlocked(t, err, netip.MustParseAddr("127.0.0.1"))

	srv := newMTLSServer(t, ca, false, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		w.Write(make([]byte, 100))
	})
	var observed []string
	var mu sync.Mutex
	c := mtlsClient(srv, Options{MaxResponseBytes: 10, Observe: func(host string, _ time.Duration, _ error) {
		mu.Lock()
		observed = append(observed, host)
		mu.Unlock()
	}})
	cc, err := c.WithCertificate(chain, key)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := get(t, cc, srv.URL+"/redirect")
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("redirect: got %v, %v; want the 302 itself", resp, err)
	}
	cc.ReadAll(resp)
	resp, err = get(t, cc, srv.URL+"/big")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cc.ReadAll(resp); !errors.Is(err, ErrResponseTooLarge) {
		t.Errorf("a long body: got %v, want ErrResponseTooLarge", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(observed) != 2 || observed[0] != "127.0.0.1" {
		t.Errorf("Observe saw %v, want the two requests", observed)
	}
}

// TestCertificateClientsDropped: clients unused for a while, and the
// least recently used beyond the bound, are dropped; a kept client whose
// certificate has expired is refused.
func TestCertificateClientsDropped(t *testing.T) {
	ca := testpki.NewCA(t)
	c := newTest(Options{})
	now := time.Now()
	c.certs.now = func() time.Time { return now }
	c.certs.max = 2
	var texts [][2]string
	for _, cn := range []string{"a", "b", "c"} {
		chain, key := issue(t, ca, cn)
		texts = append(texts, [2]string{chain, key})
		if _, err := c.WithCertificate(chain, key); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Second)
	}
	if got := c.certs.len(); got != 2 {
		t.Errorf("%d clients kept, want 2 (the bound)", got)
	}
	now = now.Add(certIdle + 2*time.Minute)
	if _, err := c.WithCertificate(texts[2][0], texts[2][1]); err != nil {
		t.Fatal(err)
	}
	if got := c.certs.len(); got != 1 {
		t.Errorf("%d clients kept after %s unused, want 1", got, certIdle)
	}
	now = now.Add(25 * time.Hour) // past the certificates' NotAfter (a day)
	_, err := c.WithCertificate(texts[2][0], texts[2][1])
	var ce *CertificateError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("an expired certificate: got %v, want a *CertificateError", err)
	}
}
