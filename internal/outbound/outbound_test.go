package outbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var loopback4 = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// counted is an httptest server that counts the requests it receives.
type counted struct {
	*httptest.Server
	hits atomic.Int32
}

func newCounted(t *testing.T, h http.HandlerFunc) *counted {
	t.Helper()
	s := &counted{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *counted) port() string {
	_, port, _ := net.SplitHostPort(s.Listener.Addr().String())
	return port
}

// errOffLoopback is the safety net's refusal; see newTest.
var errOffLoopback = errors.New("test safety net: refusing a non-loopback address the policy permitted")

// newTest is New for tests. Every test client must come from here: it adds
// a last check, independent of the policy under test, that refuses any
// non-loopback address, so that no test can ever send a packet off the
// machine, even with a broken policy.
func newTest(opts Options) *Client {
	c := New(opts)
	c.g.permitted = func(ip netip.Addr) error {
		if !ip.Unmap().IsLoopback() {
			return errOffLoopback
		}
		return nil
	}
	return c
}

// testClient builds a Client with timeouts short enough that a broken test
// fails instead of hanging, and long enough for -race on a busy machine.
func testClient(allow []netip.Prefix) *Client {
	return newTest(Options{
		Allow:                 allow,
		DialTimeout:           2 * time.Second,
		TLSHandshakeTimeout:   3 * time.Second,
		ResponseHeaderTimeout: 3 * time.Second,
		Timeout:               5 * time.Second,
	})
}

func get(t *testing.T, c *Client, rawURL string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatalf("NewRequest(%q): %v", rawURL, err)
	}
	return c.Do(req)
}

// wantBlocked checks that err carries a *BlockedError for ip, reached
// through the *url.Error that http.Client wraps everything in.
func wantBlocked(t *testing.T, err error, ip netip.Addr) *BlockedError {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want a *BlockedError for %v", ip)
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Errorf("got %T, want the error inside a *url.Error", err)
	}
	var be *BlockedError
	if !errors.As(err, &be) {
		t.Fatalf("got %v (%T), want a *BlockedError", err, err)
	}
	if got, want := be.IP, ip; got != want {
		t.Errorf("BlockedError.IP: got %v, want %v", got, want)
	}
	return be
}

// mustRefuse stops a test before it sends anything to a non-loopback
// address, should the policy ever stop refusing it: tests must never
// reach out of the machine.
func mustRefuse(t *testing.T, ip netip.Addr) {
	t.Helper()
	if refusal(ip) == "" {
		t.Fatalf("policy does not refuse %v; not sending a request to it", ip)
	}
}

func TestRefusal(t *testing.T) {
	tests := []struct {
		addr    string
		refused bool
	}{
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"2606:4700:4700::1111", false},
		{"64:ff9b::808:808", false}, // NAT64 to a public address
		{"::ffff:8.8.8.8", false},
		{"127.0.0.1", true},
		{"127.255.255.254", true},
		{"::1", true},
		{"0.0.0.0", true},
		{"::", true},
		{"0.1.2.3", true},
		{"10.0.0.1", true},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"172.32.0.1", false},
		{"192.168.1.1", true},
		{"fc00::1", true},
		{"fd00:ec2::254", true},
		{"169.254.169.254", true},
		{"169.254.1.1", true},
		{"fe80::1", true},
		{"100.64.0.1", true},
		{"100.127.255.255", true},
		{"100.128.0.1", false},
		{"224.0.0.1", true},
		{"239.255.255.250", true},
		{"ff02::1", true},
		{"255.255.255.255", true},
		{"192.0.0.8", true},
		{"198.18.0.1", true},
		{"198.19.255.255", true},
		{"240.0.0.1", true},
		{"::ffff:127.0.0.1", true},
		{"::ffff:169.254.169.254", true},
		{"::ffff:10.0.0.1", true},
		{"64:ff9b::7f00:1", true},
		{"64:ff9b::a9fe:a9fe", true},
		{"64:ff9b::a00:1", true},
		{"::7f00:1", true}, // IPv4-compatible
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			reason := refusal(netip.MustParseAddr(tt.addr))
			if got, want := reason != "", tt.refused; got != want {
				t.Errorf("refusal(%s) = %q; got refused=%v, want %v", tt.addr, reason, got, want)
			}
		})
	}
}

func TestGuardCheck(t *testing.T) {
	g := &guard{allow: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("fe80::/10"),
	}}
	tests := []struct {
		address string
		ok      bool
	}{
		{"127.0.0.1:80", true},
		{"[::ffff:127.0.0.1]:80", true}, // mapped form matches a v4 prefix
		{"[fe80::1%eth0]:80", true},     // zone does not defeat the allow-list
		{"[::1]:80", false},
		{"10.0.0.1:80", false},
		{"[fd00::1%eth0]:80", false},
		{"8.8.8.8:443", true},
		{"not-an-address", false}, // fail closed
	}
	for _, tt := range tests {
		t.Run(tt.address, func(t *testing.T) {
			err := g.check("h", tt.address)
			if got, want := err == nil, tt.ok; got != want {
				t.Errorf("check(%q): got %v, want ok=%v", tt.address, err, want)
			}
		})
	}
}

// TestAllowNonLoopback checks that the allow-list permits non-loopback
// addresses too. The test safety net stands in for the connection, so
// reaching it (errOffLoopback) means the policy said yes.
func TestAllowNonLoopback(t *testing.T) {
	c := newTest(Options{Allow: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("169.254.169.254/32"),
	}})
	tests := []struct {
		url  string
		want error // errOffLoopback: permitted by the policy
	}{
		{"http://10.1.2.3/", errOffLoopback},
		{"http://169.254.169.254/", errOffLoopback},
		{"http://[::ffff:10.0.0.1]/", errOffLoopback},
		{"http://192.168.0.1/", nil}, // refused: a *BlockedError
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := get(t, c, tt.url)
			var be *BlockedError
			switch {
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Errorf("got %v, want %v", err, tt.want)
			case tt.want == nil && !errors.As(err, &be):
				t.Errorf("got %v, want a *BlockedError", err)
			}
		})
	}
}

func TestParseLegacyIPv4(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" for not an address
	}{
		{"127.0.0.1", "127.0.0.1"},
		{"127.1", "127.0.0.1"},
		{"0x7f.1", "127.0.0.1"},
		{"0X7F.0.0.1", "127.0.0.1"},
		{"2130706433", "127.0.0.1"},
		{"0x7f000001", "127.0.0.1"},
		{"017700000001", "127.0.0.1"},
		{"0177.0.0.1", "127.0.0.1"},
		{"169.254.43518", "169.254.169.254"},
		{"10.1", "10.0.0.1"},
		{"256.0.0.1", ""},
		{"1.2.3.4.5", ""},
		{"1.2.3.256", ""},
		{"08.0.0.1", ""},
		{"4294967296", ""},
		{"a.b", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ip, ok := parseLegacyIPv4(tt.in)
			got := ""
			if ok {
				got = ip.String()
			}
			if got != tt.want {
				t.Errorf("parseLegacyIPv4(%q): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestLoopbackServer(t *testing.T) {
	srv := newCounted(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tests := []struct {
		name    string
		host    string
		allow   []netip.Prefix
		blocked bool
	}{
		{"127.0.0.1 refused", "127.0.0.1", nil, true},
		{"127.0.0.1 allow-listed", "127.0.0.1", loopback4, false},
		{"mapped refused", "[::ffff:127.0.0.1]", nil, true},
		{"mapped allow-listed", "[::ffff:127.0.0.1]", loopback4, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.hits.Load()
			resp, err := get(t, testClient(tt.allow), "http://"+tt.host+":"+srv.port()+"/")
			hits := srv.hits.Load() - before
			if tt.blocked {
				wantBlocked(t, err, netip.MustParseAddr("127.0.0.1"))
				if hits != 0 {
					t.Errorf("server saw %d requests, want 0", hits)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want success", err)
			}
			body, err := testClient(nil).ReadAll(resp)
			if err != nil || string(body) != "ok" {
				t.Errorf("body: got %q, %v; want \"ok\"", body, err)
			}
			if hits != 1 {
				t.Errorf("server saw %d requests, want 1", hits)
			}
		})
	}
}

// TestRefusedWithoutTraffic covers addresses nothing listens on. The
// Control hook runs before connect(2), so no packet is sent.
func TestRefusedWithoutTraffic(t *testing.T) {
	tests := []struct {
		url string
		ip  string
	}{
		{"http://[::1]:1/", "::1"},
		{"http://169.254.169.254/latest/meta-data/", "169.254.169.254"},
		{"https://169.254.169.254/", "169.254.169.254"},
		{"http://10.0.0.1/", "10.0.0.1"},
		{"http://192.168.0.1:8080/", "192.168.0.1"},
		{"http://[fd00:ec2::254]/", "fd00:ec2::254"},
		{"http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe"},
		{"http://[fe80::1%25lo]/", "fe80::1"},
		{"http://0.0.0.0:1/", "0.0.0.0"},
		{"http://[::]:1/", "::"},
	}
	c := testClient(nil)
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			ip := netip.MustParseAddr(tt.ip)
			mustRefuse(t, ip)
			_, err := get(t, c, tt.url)
			wantBlocked(t, err, ip)
		})
	}
}

func TestLocalhostName(t *testing.T) {
	addrs, err := net.DefaultResolver.LookupHost(context.Background(), "localhost")
	if err != nil || len(addrs) == 0 {
		t.Skipf("localhost does not resolve here: %v", err)
	}
	srv := newCounted(t, nil)
	_, err = get(t, testClient(nil), "http://localhost:"+srv.port()+"/")
	var be *BlockedError
	if !errors.As(err, &be) {
		t.Fatalf("got %v, want a *BlockedError", err)
	}
	if got, want := be.Host, "localhost"; got != want {
		t.Errorf("Host: got %q, want %q", got, want)
	}
	if !be.IP.IsLoopback() {
		t.Errorf("IP: got %v, want a loopback address", be.IP)
	}
	if got, want := be.Error(), "refusing to connect to localhost at "; !strings.Contains(got, want) {
		t.Errorf("message %q lacks %q", got, want)
	}
	if got := srv.hits.Load(); got != 0 {
		t.Errorf("server saw %d requests, want 0", got)
	}

	// With loopback allow-listed the same name works.
	allow := append(loopback4, netip.MustParsePrefix("::1/128"))
	resp, err := get(t, testClient(allow), "http://localhost:"+srv.port()+"/")
	if err != nil {
		t.Fatalf("allow-listed: got %v, want success", err)
	}
	resp.Body.Close()
}

// TestOddForms checks numeric hosts in non-standard forms. Whatever the
// resolver makes of them, nothing may reach the server.
func TestOddForms(t *testing.T) {
	srv := newCounted(t, nil)
	hosts := []string{
		"0x7f.1",
		"2130706433",
		"127.1",
		"0177.0.0.1",
		"0x7f000001",
		"127.0.0.1.",
		"0X7F.0.0.1",
	}
	for _, allow := range [][]netip.Prefix{nil, loopback4} {
		for _, host := range hosts {
			t.Run(fmt.Sprintf("%s/allow=%v", host, allow), func(t *testing.T) {
				_, err := get(t, testClient(allow), "http://"+host+":"+srv.port()+"/")
				be := wantBlocked(t, err, netip.MustParseAddr("127.0.0.1"))
				if got, want := be.Host, host; got != want {
					t.Errorf("Host: got %q, want %q", got, want)
				}
			})
		}
	}
	// The IPv6 spelling is a standard literal: refused by the hook unless
	// allow-listed (covered in TestLoopbackServer).
	_, err := get(t, testClient(nil), "http://[::ffff:127.0.0.1]:"+srv.port()+"/")
	wantBlocked(t, err, netip.MustParseAddr("127.0.0.1"))
	if got := srv.hits.Load(); got != 0 {
		t.Errorf("server saw %d requests, want 0", got)
	}
}

func TestSchemeAndUserinfo(t *testing.T) {
	srv := newCounted(t, nil)
	tests := []struct {
		url  string
		want error
	}{
		{"ftp://127.0.0.1:" + srv.port() + "/", ErrBadScheme},
		{"file:///etc/passwd", ErrBadScheme},
		{"gopher://127.0.0.1:" + srv.port() + "/", ErrBadScheme},
		{"ws://127.0.0.1:" + srv.port() + "/", ErrBadScheme},
		{"http://user:pass@127.0.0.1:" + srv.port() + "/", ErrUserinfo},
		{"http://user@127.0.0.1:" + srv.port() + "/", ErrUserinfo},
		{"https://good.example@127.0.0.1:" + srv.port() + "/", ErrUserinfo},
	}
	c := testClient(loopback4) // allow-listed, so only these checks stop it
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := get(t, c, tt.url)
			if !errors.Is(err, tt.want) {
				t.Errorf("Do: got %v, want %v", err, tt.want)
			}
			// The streaming client gets the same checks.
			req, _ := http.NewRequest(http.MethodGet, tt.url, nil)
			resp, err := c.HTTPClient().Do(req)
			if resp != nil {
				resp.Body.Close()
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("HTTPClient().Do: got %v, want %v", err, tt.want)
			}
		})
	}
	if got := srv.hits.Load(); got != 0 {
		t.Errorf("server saw %d requests, want 0", got)
	}
}

func TestRedirects(t *testing.T) {
	target := newCounted(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "target") })
	tests := []struct {
		name        string
		follow      bool
		location    string
		wantStatus  int
		wantHits    int32
		wantBlocked string // IP, if the redirect must be refused
	}{
		{"not followed", false, target.URL + "/x", http.StatusTemporaryRedirect, 0, ""},
		{"followed", true, target.URL + "/x", http.StatusOK, 1, ""},
		{"followed to metadata", true, "http://169.254.169.254/latest/", 0, 0, "169.254.169.254"},
		{"followed to file scheme", true, "file:///etc/passwd", 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.wantBlocked != "" {
				mustRefuse(t, netip.MustParseAddr(tt.wantBlocked))
			}
			redirector := newCounted(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, tt.location, http.StatusTemporaryRedirect)
			})
			before := target.hits.Load()
			c := newTest(Options{Allow: loopback4, FollowRedirects: tt.follow, Timeout: 5 * time.Second})
			req, _ := http.NewRequest(http.MethodPost, redirector.URL, strings.NewReader("code=secret"))
			resp, err := c.Do(req)
			if got := target.hits.Load() - before; got != tt.wantHits {
				t.Errorf("target saw %d requests, want %d", got, tt.wantHits)
			}
			switch {
			case tt.wantBlocked != "":
				wantBlocked(t, err, netip.MustParseAddr(tt.wantBlocked))
				return
			case tt.wantStatus == 0:
				if err == nil {
					resp.Body.Close()
					t.Fatal("got success, want an error")
				}
				return
			case err != nil:
				t.Fatalf("got %v, want status %d", err, tt.wantStatus)
			}
			defer resp.Body.Close()
			if got, want := resp.StatusCode, tt.wantStatus; got != want {
				t.Errorf("status: got %d, want %d", got, want)
			}
			if !tt.follow {
				if got, want := resp.Header.Get("Location"), tt.location; got != want {
					t.Errorf("Location: got %q, want %q", got, want)
				}
			}
		})
	}
}

func TestResponseTooLarge(t *testing.T) {
	const limit = 1024
	tests := []struct {
		name    string
		size    int
		chunked bool
		wantErr error
	}{
		{"under", limit - 1, false, nil},
		{"exact", limit, false, nil},
		{"exact chunked", limit, true, nil},
		{"one over", limit + 1, false, ErrResponseTooLarge},
		{"one over chunked", limit + 1, true, ErrResponseTooLarge},
		{"far over", 100 * limit, false, ErrResponseTooLarge},
		{"far over chunked", 100 * limit, true, ErrResponseTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := bytes.Repeat([]byte("a"), tt.size)
			srv := newCounted(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.chunked {
					w.WriteHeader(http.StatusOK)
					w.(http.Flusher).Flush() // no Content-Length
				} else {
					w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				}
				w.Write(body)
			})
			c := newTest(Options{Allow: loopback4, MaxResponseBytes: limit, Timeout: 5 * time.Second})

			// Through ReadAll.
			resp, err := get(t, c, srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.ReadAll(resp)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ReadAll: got error %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && len(got) != tt.size {
				t.Errorf("ReadAll: got %d bytes, want %d", len(got), tt.size)
			}
			if len(got) > limit {
				t.Errorf("ReadAll: got %d bytes, more than the %d limit", len(got), limit)
			}

			// Through the Body Do returns, read by anything.
			resp, err = get(t, c, srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err = io.ReadAll(resp.Body)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("io.ReadAll(Body): got error %v, want %v", err, tt.wantErr)
			}
			if len(got) > limit {
				t.Errorf("io.ReadAll(Body): got %d bytes, more than the %d limit", len(got), limit)
			}
		})
	}
}

func TestCappedBodyHugeLimit(t *testing.T) {
	// A limit near MaxInt64 must not overflow into a bogus slice bound.
	b := &cappedBody{rc: io.NopCloser(strings.NewReader("hello")), left: 1<<63 - 1}
	got, err := io.ReadAll(b)
	if err != nil || string(got) != "hello" {
		t.Errorf("got %q, %v; want \"hello\", nil", got, err)
	}
}

// stall blocks a handler until the client goes away (or a safety limit),
// so that server Close does not wait long.
func stall(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(3 * time.Second):
	}
}

func TestTimeouts(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		handler http.HandlerFunc
	}{
		{
			name: "response header",
			opts: Options{ResponseHeaderTimeout: 100 * time.Millisecond},
			handler: func(w http.ResponseWriter, r *http.Request) {
				stall(r)
			},
		},
		{
			name: "whole request, while awaiting headers",
			opts: Options{Timeout: 100 * time.Millisecond},
			handler: func(w http.ResponseWriter, r *http.Request) {
				stall(r)
			},
		},
		{
			name: "whole request, while reading the body",
			opts: Options{Timeout: 100 * time.Millisecond},
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "partial")
				w.(http.Flusher).Flush()
				stall(r)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newCounted(t, tt.handler)
			opts := tt.opts
			opts.Allow = loopback4
			c := newTest(opts)
			start := time.Now()
			resp, err := get(t, c, srv.URL)
			if err == nil {
				_, err = c.ReadAll(resp)
			}
			if elapsed := time.Since(start); elapsed > 2*time.Second {
				t.Errorf("took %v, want about 100ms", elapsed)
			}
			if !IsTimeout(err) {
				t.Errorf("IsTimeout(%v) = false, want true", err)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("errors.Is(%v, context.DeadlineExceeded) = false, want true", err)
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("got %v, want a net.Error with Timeout() true", err)
			}
		})
	}
}

func TestIsTimeout(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"deadline", context.DeadlineExceeded, true},
		{"wrapped deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"os deadline in url.Error", &url.Error{Op: "Get", URL: "u", Err: os.ErrDeadlineExceeded}, true},
		{"canceled", context.Canceled, false},
		{"too large", ErrResponseTooLarge, false},
		{"blocked", &url.Error{Op: "Get", URL: "u", Err: &BlockedError{IP: netip.MustParseAddr("::1")}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsTimeout(tt.err); got != tt.want {
				t.Errorf("IsTimeout(%v): got %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestBlockedErrorMessage(t *testing.T) {
	tests := []struct {
		err  *BlockedError
		want string
	}{
		{
			&BlockedError{Host: "127.0.0.1", IP: netip.MustParseAddr("127.0.0.1"), Reason: "loopback address"},
			"outbound: refusing to connect to 127.0.0.1 (loopback address); add it to the allow-list to permit it",
		},
		{
			&BlockedError{IP: netip.MustParseAddr("10.0.0.1"), Reason: "private address"},
			"outbound: refusing to connect to 10.0.0.1 (private address); add it to the allow-list to permit it",
		},
		{
			&BlockedError{Host: "localhost", IP: netip.MustParseAddr("127.0.0.1"), Reason: "loopback address"},
			"outbound: refusing to connect to localhost at 127.0.0.1 (loopback address); add it to the allow-list to permit it",
		},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got  %q\nwant %q", got, tt.want)
		}
	}
	err := checkNumericHost("0x7f.1")
	if got, want := err.Error(), "outbound: refusing to connect to 0x7f.1 (non-standard form of 127.0.0.1); write IP addresses in standard form"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestEnvProxyIgnored sets the proxy variables and checks that requests go
// straight to their target, where the guard sees the real address.
func TestEnvProxyIgnored(t *testing.T) {
	proxy := newCounted(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "via proxy") })
	for _, k := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"} {
		t.Setenv(k, proxy.URL)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")

	c := testClient(loopback4) // the proxy itself would be allowed
	tr := c.hc.Transport.(*checkedTransport).next.(*http.Transport)
	if tr.Proxy != nil {
		t.Fatal("transport has a Proxy function, want nil")
	}

	// Loopback targets are exempt from env proxies anyway, so use a
	// refused non-loopback target: through a proxy it would reach the
	// (allowed) proxy; dialled directly it is refused before connect.
	mustRefuse(t, netip.MustParseAddr("10.0.0.1"))
	_, err := get(t, c, "http://10.0.0.1/")
	wantBlocked(t, err, netip.MustParseAddr("10.0.0.1"))

	target := newCounted(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "direct") })
	resp, err := get(t, c, target.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := c.ReadAll(resp)
	if err != nil || string(body) != "direct" {
		t.Errorf("body: got %q, %v; want \"direct\"", body, err)
	}
	if got := proxy.hits.Load(); got != 0 {
		t.Errorf("proxy saw %d requests, want 0", got)
	}
}

func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "tls") }))
	t.Cleanup(srv.Close)

	// Trusted via RootCAs.
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c := newTest(Options{Allow: loopback4, RootCAs: pool, Timeout: 5 * time.Second})
	resp, err := get(t, c, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if body, err := c.ReadAll(resp); err != nil || string(body) != "tls" {
		t.Errorf("body: got %q, %v; want \"tls\"", body, err)
	}

	// Not trusted without: verification stays on.
	_, err = get(t, testClient(loopback4), srv.URL)
	if err == nil {
		t.Fatal("got success against an untrusted certificate, want an error")
	}
	if IsTimeout(err) {
		t.Errorf("got a timeout %v, want a certificate error", err)
	}
}

func TestHTTPClientIsACopy(t *testing.T) {
	c := newTest(Options{})
	hc := c.HTTPClient()
	hc.Timeout = 0
	hc.CheckRedirect = nil
	if got, want := c.hc.Timeout, DefaultTimeout; got != want {
		t.Errorf("Client timeout: got %v, want %v", got, want)
	}
	if c.hc.CheckRedirect == nil {
		t.Error("changing the copy cleared the Client's redirect policy")
	}
	if got, want := c.maxBytes, int64(DefaultMaxResponseBytes); got != want {
		t.Errorf("maxBytes: got %d, want %d", got, want)
	}
}

func BenchmarkDo(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"access_token":"x","token_type":"bearer"}`)
	}))
	defer srv.Close()
	c := newTest(Options{Allow: loopback4, MaxIdleConnsPerHost: 16})
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.ReadAll(resp); err != nil {
			b.Fatal(err)
		}
	}
}

// TestErrorsOmitPathAndQuery: a failed request's error names the host
// only, never the path or query, which may carry a credential.
func TestErrorsOmitPathAndQuery(t *testing.T) {
	c := New(Options{Timeout: time.Second})
	req, _ := http.NewRequest("GET", "http://127.0.0.1:1/tenant-secret?api_key=query-secret", nil)
	_, err := c.Do(req)
	if err == nil {
		t.Fatal("a refused address answered")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error %q names the path or query", err)
	}
}

// TestNetErrorsNameNoServerAddress checks that network failures name the
// host and the failure but not the resolver or a local address.
func TestNetErrorsNameNoServerAddress(t *testing.T) {
	dns := &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{
		Err: "no such host", Name: "acme.acme.example", Server: "10.255.255.53:53", IsNotFound: true}}
	reset := &net.OpError{Op: "read", Net: "tcp",
		Source: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 40000},
		Addr:   &net.TCPAddr{IP: net.IPv4(203, 0, 113, 7), Port: 443},
		Err:    os.NewSyscallError("read", errors.New("connection reset by peer"))}
	tests := []struct {
		err  error
		want string
	}{
		{dns, "could not resolve acme.acme.example: no such host"},
		{reset, "the connection to api.example failed: connection reset by peer"},
	}
	for _, tt := range tests {
		got := plainNetError("api.example", tt.err)
		if got.Error() != tt.want {
			t.Errorf("plainNetError(%v) = %q, want %q", tt.err, got, tt.want)
		}
		if strings.Contains(got.Error(), "10.") {
			t.Errorf("%q names this server's network", got)
		}
		if !errors.Is(got, tt.err) {
			t.Errorf("%v does not unwrap to the original error", got)
		}
	}

	// A real connection refused, through Do.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := New(Options{Allow: loopback4})
	req, _ := http.NewRequest("GET", "http://"+addr+"/x", nil)
	_, err = c.Do(req)
	var ne *NetError
	if !errors.As(err, &ne) || !strings.HasPrefix(ne.Error(), "could not connect to 127.0.0.1") || !strings.Contains(ne.Error(), "connection refused") {
		t.Errorf("Do = %v, want a NetError saying the connection was refused", err)
	}
}
