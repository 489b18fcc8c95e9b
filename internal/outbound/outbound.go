// Package outbound is the one HTTP client Latchkey uses to talk to URLs that
// app developers configure (OAuth token URLs, provider APIs).
//
// Those URLs are untrusted: a developer could point one at the cloud metadata
// service, at localhost, or at a host on our private network (SSRF). The
// client therefore refuses to connect to any address that is not a public
// unicast address, unless the address is in an explicit allow-list.
//
// The check runs in the dialer's Control hook, on the IP the socket is about
// to connect to, after name resolution. Checking the URL's host name instead
// would not be enough: a name can resolve to 127.0.0.1, or resolve to a
// public address when checked and a private one when dialled (DNS
// rebinding). Because the hook runs before connect(2), a refused address
// never sees a single packet from us.
package outbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
)

// Defaults used when the matching Options field is zero or negative.
const (
	DefaultDialTimeout           = 5 * time.Second
	DefaultTLSHandshakeTimeout   = 5 * time.Second
	DefaultResponseHeaderTimeout = 10 * time.Second
	DefaultTimeout               = 30 * time.Second
	DefaultMaxResponseBytes      = 1 << 20 // 1 MiB
)

// maxRedirects bounds redirect chains when Options.FollowRedirects is set.
// It matches net/http's own default.
const maxRedirects = 10

// maxResponseHeaderBytes bounds the response header block. net/http allows
// 10 MB by default, which is far more than any OAuth provider sends and
// lets a hostile server make us buffer a lot before the body cap applies.
const maxResponseHeaderBytes = 1 << 20

// ErrResponseTooLarge is returned by reads of a response body obtained from
// Client.Do, and by Client.ReadAll, once the body is longer than
// Options.MaxResponseBytes. Bodies are never silently truncated: a truncated
// token response would fail later in a far more confusing way.
var ErrResponseTooLarge = errors.New("outbound: response body exceeds the size limit")

// ErrBadScheme is returned (wrapped, usually inside a *url.Error) when a
// request URL's scheme is not http or https. Nothing is dialled.
var ErrBadScheme = errors.New("outbound: only http and https URLs are allowed")

// ErrUserinfo is returned (wrapped, usually inside a *url.Error) when a
// request URL carries user information ("https://user:pass@host/").
// Nothing is dialled.
var ErrUserinfo = errors.New("outbound: URLs with user information are not allowed")

// Options configures a Client. The zero value is usable: every zero field
// gets the default described on it.
type Options struct {
	// Allow lists prefixes whose addresses are permitted even though they
	// would otherwise be refused, e.g. 127.0.0.0/8 for development and
	// tests, or one private subnet that really hosts a provider. An
	// IPv4-mapped IPv6 address is matched in both its forms.
	Allow []netip.Prefix

	// DialTimeout bounds name resolution plus TCP connect. Default 5s.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake. Default 5s.
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for response headers after
	// the request is written. Default 10s.
	ResponseHeaderTimeout time.Duration
	// Timeout bounds the whole exchange, including reading the body.
	// Default 30s.
	Timeout time.Duration

	// MaxResponseBytes caps response bodies read through Client.Do and
	// Client.ReadAll. It counts decoded bytes, so a gzip bomb is caught
	// too. Default 1 MiB.
	MaxResponseBytes int64

	// FollowRedirects makes the client follow up to 10 redirects, checking
	// every hop like the first. When false (the default) a 3xx response is
	// returned to the caller as is and nothing is sent to its Location:
	// a token endpoint has no business redirecting, and following would
	// resend the request body to a place nobody configured.
	FollowRedirects bool

	// MaxIdleConnsPerHost bounds kept-alive connections per host. Zero
	// means net/http's default (2).
	MaxIdleConnsPerHost int

	// Observe, if set, is told of every request: the host, the time until
	// response headers, and the error when there was no response (a
	// *BlockedError for a refused address). For metrics.
	Observe func(host string, d time.Duration, err error)

	// RootCAs, if set, replaces the system roots for verifying servers,
	// e.g. for httptest.NewTLSServer in tests. Verification itself is
	// always on.
	RootCAs *x509.CertPool
}

// Client sends HTTP requests to untrusted URLs. It is safe for concurrent
// use; create one and share it, so that connections are reused.
type Client struct {
	hc       *http.Client
	maxBytes int64
	g        *guard
	observe  func(host string, d time.Duration, err error)

	opts  Options
	certs *certClients // shared by c and the clients WithCertificate makes
}

// New returns a Client configured by opts. It returns no error: every
// option has a usable zero value.
func New(opts Options) *Client {
	g := &guard{allow: append([]netip.Prefix(nil), opts.Allow...)}
	g.dialer = net.Dialer{
		Timeout:   orDefault(opts.DialTimeout, DefaultDialTimeout),
		KeepAlive: 30 * time.Second,
	}
	maxBytes := opts.MaxResponseBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxResponseBytes
	}
	c := &Client{maxBytes: maxBytes, g: g, observe: opts.Observe, opts: opts, certs: newCertClients()}
	c.hc = c.httpClient(newTransport(opts, g, nil))
	return c
}

// newTransport makes the guarded transport of opts; with cert set, it
// presents that client certificate whenever a server asks for one.
func newTransport(opts Options, g *guard, cert *tls.Certificate) *http.Transport {
	tlsConfig := &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12}
	if cert != nil {
		// Present the certificate whatever CAs the server names: a
		// self-signed one (RFC 8705 §2.2) is issued by none of them, and
		// crypto/tls would otherwise send no certificate at all.
		tlsConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return cert, nil
		}
	}
	return &http.Transport{
		// Never read HTTP_PROXY and friends: a proxy would make the
		// connection to the proxy, not to the target, and the guard
		// would check the wrong address.
		Proxy:                  nil,
		DialContext:            g.dialContext,
		ForceAttemptHTTP2:      true, // custom DialContext turns it off otherwise
		TLSClientConfig:        tlsConfig,
		TLSHandshakeTimeout:    orDefault(opts.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout),
		ResponseHeaderTimeout:  orDefault(opts.ResponseHeaderTimeout, DefaultResponseHeaderTimeout),
		ExpectContinueTimeout:  1 * time.Second,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    opts.MaxIdleConnsPerHost,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
}

// httpClient wraps tr with the URL checks, c's timeout and its redirect
// policy.
func (c *Client) httpClient(tr *http.Transport) *http.Client {
	hc := &http.Client{
		Transport: &checkedTransport{next: tr},
		Timeout:   orDefault(c.opts.Timeout, DefaultTimeout),
	}
	if c.opts.FollowRedirects {
		hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("outbound: stopped after %d redirects", maxRedirects)
			}
			return nil // each hop goes through checkedTransport and the guard again
		}
	} else {
		hc.CheckRedirect = func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}
	}
	return hc
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Do sends req and returns the response with its Body capped: a read past
// Options.MaxResponseBytes fails with ErrResponseTooLarge. The caller must
// close the Body, as with http.Client.Do.
//
// Errors come wrapped in a *url.Error, as from http.Client.Do, whose URL
// is cut to scheme and host: the path and query of a developer-configured
// URL may carry a credential, and errors end up in logs. Use errors.As and
// errors.Is to look inside:
//   - *BlockedError when the address (or a redirect's) is refused;
//   - ErrBadScheme or ErrUserinfo when the URL is refused before dialling;
//   - a timeout, for which IsTimeout reports true;
//   - any other network or TLS error from net/http.
//
// A 3xx response is not an error: unless Options.FollowRedirects is set, it
// is returned as is.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := c.hc.Do(req)
	if c.observe != nil {
		c.observe(req.URL.Hostname(), time.Since(start), err)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = req.URL.Scheme + "://" + req.URL.Host
		ue.Err = plainNetError(req.URL.Hostname(), ue.Err)
	}
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{rc: resp.Body, left: c.maxBytes}
	return resp, nil
}

// ReadAll reads resp.Body, at most Options.MaxResponseBytes of it, and
// closes it. resp must not be nil. It returns ErrResponseTooLarge if the body is longer, or the
// read error (a timeout, a reset connection). It applies the cap even to a
// response that did not come from Do. A nil Body reads as empty.
func (c *Client) ReadAll(resp *http.Response) ([]byte, error) {
	if resp.Body == nil {
		return nil, nil
	}
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	if _, ok := r.(*cappedBody); !ok {
		r = &cappedBody{rc: resp.Body, left: c.maxBytes}
	}
	return io.ReadAll(r)
}

// HTTPClient returns an *http.Client for uses that must stream, such as
// proxying: bodies read through it are NOT capped. It shares the guarded
// transport, redirect policy and Options.Timeout with c. It is a fresh
// copy on each call, so changing it (e.g. setting Timeout to 0 for a long
// stream, and bounding the request with a context instead) does not affect
// c. It returns no error.
func (c *Client) HTTPClient() *http.Client {
	hc := *c.hc
	return &hc
}

// IsTimeout reports whether err, anywhere in its chain, is a timeout: a
// context deadline, one of the Options timeouts, or a net.Error whose
// Timeout method says so.
func IsTimeout(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// NetError is a failure to reach a host, said in plain words that name
// the host and what went wrong, and nothing of this server's network: Go's
// own errors name the resolver ("lookup x on 10.0.0.2:53") and the local
// address of a connection, which must not reach callers or providers'
// developers. Unwrap gives the original error for errors.Is and As.
type NetError struct {
	Host    string
	Message string // e.g. "could not resolve api.example.com"
	err     error
}

func (e *NetError) Error() string { return e.Message }
func (e *NetError) Unwrap() error { return e.err }

// Timeout reports whether the failure was a timeout, as net.Error does.
func (e *NetError) Timeout() bool { return IsTimeout(e.err) }

// Temporary is false: retrying is the caller's decision (net.Error).
func (e *NetError) Temporary() bool { return false }

// plainNetError rewrites network errors from the transport as NetError.
// Refusals by the guard, URL checks and TLS errors pass unchanged: their
// texts name only the target.
func plainNetError(host string, err error) error {
	var blocked *BlockedError
	if err == nil || errors.As(err, &blocked) {
		return err
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		msg := "could not resolve " + dns.Name
		switch {
		case dns.IsTimeout:
			msg += ": the lookup timed out"
		case dns.IsNotFound:
			msg += ": no such host"
		}
		return &NetError{Host: host, Message: msg, err: err}
	}
	var op *net.OpError
	if errors.As(err, &op) {
		what := "the connection to " + host + " failed"
		switch op.Op {
		case "dial":
			what = "could not connect to " + host
		case "remote error":
			// A TLS alert from the server, in crypto/tls's fixed words
			// ("tls: unknown certificate authority").
			return &NetError{Host: host, Message: host + " ended the TLS connection: " + op.Err.Error(), err: err}
		}
		var sys *os.SyscallError
		switch {
		case IsTimeout(err):
			what += ": timed out"
		case errors.As(op.Err, &sys):
			what += ": " + sys.Err.Error() // "connection refused", never an address
		}
		return &NetError{Host: host, Message: what, err: err}
	}
	return err
}

// BlockedError reports a refused address. It reaches callers wrapped in a
// *url.Error (and, from the dialer, a *net.OpError); find it with errors.As.
type BlockedError struct {
	// Host is the host the URL named: a name ("localhost") or an IP
	// literal as written.
	Host string
	// IP is the address that was refused. For a host written as a number
	// in a non-standard form ("0x7f.1") it is the address that form
	// denotes, when it denotes one.
	IP netip.Addr
	// Reason says why, e.g. "loopback address".
	Reason string

	// nonCanonical marks a host refused for its numeric form, which the
	// allow-list cannot permit.
	nonCanonical bool
}

// Error describes the refusal and how to lift it. It names the host, the
// address and the reason, all taken from the configured URL, never a secret.
func (e *BlockedError) Error() string {
	if e.nonCanonical {
		return fmt.Sprintf("outbound: refusing to connect to %s (%s); write IP addresses in standard form", e.Host, e.Reason)
	}
	ip := e.IP.String()
	if e.Host == "" || e.Host == ip {
		return fmt.Sprintf("outbound: refusing to connect to %s (%s); add it to the allow-list to permit it", ip, e.Reason)
	}
	return fmt.Sprintf("outbound: refusing to connect to %s at %s (%s); add it to the allow-list to permit it", e.Host, ip, e.Reason)
}

// checkedTransport refuses URLs before any dialling. It sits in front of
// the *http.Transport so that HTTPClient's users and redirect hops get the
// same checks as Do.
type checkedTransport struct {
	next http.RoundTripper
}

func (t *checkedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := checkURL(req); err != nil {
		// A RoundTripper must close the body, even on error.
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return t.next.RoundTrip(req)
}

func checkURL(req *http.Request) error {
	u := req.URL
	if u == nil {
		return errors.New("outbound: request has no URL")
	}
	// url.Parse lower-cases the scheme, but a URL built by hand may not be.
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	default:
		return fmt.Errorf("%w (got %q)", ErrBadScheme, u.Scheme)
	}
	// Userinfo is a classic parser-confusion trick
	// ("https://good.example@127.0.0.1/") and puts credentials in logs.
	// net/http turns it into an Authorization header; providers take
	// credentials in the body or an explicit header instead.
	if u.User != nil {
		return ErrUserinfo
	}
	return checkNumericHost(u.Hostname())
}

// checkNumericHost refuses hosts that are numbers but not standard IP
// literals: "2130706433", "0x7f.1", "127.1", "0177.0.0.1", "127.0.0.1.".
// Depending on the resolver (cgo's getaddrinfo or Go's own), these are
// either read as IPv4 addresses the inet_aton(3) way or sent to DNS. The
// dial hook would refuse a bad result either way, but refusing here makes
// the outcome the same everywhere and keeps such names out of DNS. No real
// DNS name has an all-numeric top-level label, so nothing is lost.
func checkNumericHost(host string) error {
	if host == "" {
		return nil // net/http reports the missing host
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil // a standard literal: the dial hook checks it
	}
	trimmed := strings.TrimSuffix(host, ".")
	last := trimmed[strings.LastIndexByte(trimmed, '.')+1:]
	if !isNumericLabel(last) {
		return nil
	}
	e := &BlockedError{Host: host, Reason: "numeric host in a non-standard form", nonCanonical: true}
	if ip, ok := parseLegacyIPv4(trimmed); ok {
		e.IP = ip
		e.Reason = "non-standard form of " + ip.String()
	}
	return e
}

// guard holds the policy and the base dialer.
type guard struct {
	allow  []netip.Prefix
	dialer net.Dialer

	// permitted, if set, gets the last word on an address the policy
	// permits. Only tests set it, as a safety net that keeps them on
	// loopback even if the policy under test is broken.
	permitted func(netip.Addr) error
}

// dialContext dials addr with a Control hook that checks every address the
// dialer tries (a name can resolve to several) just before connect(2).
func (g *guard) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	d := g.dialer // a copy per dial, so the hook knows the host for errors
	d.Control = func(_, address string, _ syscall.RawConn) error {
		return g.check(host, address)
	}
	return d.DialContext(ctx, network, addr)
}

// check decides on one resolved "ip:port". It fails closed: an address it
// cannot read is refused.
func (g *guard) check(host, address string) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("outbound: cannot check address %q: %v", address, err)
	}
	// Zones never match a prefix, so drop them; the zone does not change
	// which kind of address this is.
	ip := ap.Addr().WithZone("")
	if !g.allowed(ip) {
		if reason := refusal(ip); reason != "" {
			return &BlockedError{Host: host, IP: ip, Reason: reason}
		}
	}
	if g.permitted != nil {
		return g.permitted(ip)
	}
	return nil
}

func (g *guard) allowed(ip netip.Addr) bool {
	for _, p := range g.allow {
		if p.Contains(ip) || p.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
}

var (
	v4ThisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	v4SharedCGNAT = netip.MustParsePrefix("100.64.0.0/10")
	v4IETFProto   = netip.MustParsePrefix("192.0.0.0/24")
	v4Benchmark   = netip.MustParsePrefix("198.18.0.0/15")
	v4Reserved    = netip.MustParsePrefix("240.0.0.0/4")
	v4Broadcast   = netip.MustParseAddr("255.255.255.255")
	v4Metadata    = netip.MustParseAddr("169.254.169.254")
	v6Metadata    = netip.MustParseAddr("fd00:ec2::254")
	v6NAT64       = netip.MustParsePrefix("64:ff9b::/96")
	v6Compat      = netip.MustParsePrefix("::/96")
)

// refusal returns why ip must not be connected to, or "" if it may be.
// ip carries no zone.
func refusal(ip netip.Addr) string {
	if ip.Is4In6() {
		// ::ffff:a.b.c.d reaches a.b.c.d; judge it as that.
		if r := refusal(ip.Unmap()); r != "" {
			return "IPv4-mapped " + r
		}
		return ""
	}
	switch {
	case ip == v4Metadata || ip == v6Metadata:
		return "cloud metadata address"
	case ip.IsUnspecified():
		return "unspecified address"
	case ip.IsLoopback():
		return "loopback address"
	case ip.IsPrivate():
		return "private address"
	case ip.IsLinkLocalUnicast():
		return "link-local address"
	case ip.IsMulticast():
		return "multicast address"
	case ip == v4Broadcast:
		return "broadcast address"
	}
	if ip.Is4() {
		switch {
		case v4ThisNetwork.Contains(ip):
			return "this-network address"
		case v4SharedCGNAT.Contains(ip):
			return "shared (CGNAT) address"
		case v4IETFProto.Contains(ip):
			return "IETF protocol assignment address"
		case v4Benchmark.Contains(ip):
			return "benchmarking address"
		case v4Reserved.Contains(ip):
			return "reserved address"
		}
		return ""
	}
	switch {
	case v6NAT64.Contains(ip):
		// A NAT64 gateway forwards 64:ff9b::a.b.c.d to a.b.c.d.
		b := ip.As16()
		v4 := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		if r := refusal(v4); r != "" {
			return "NAT64 address of " + v4.String() + ", a " + r
		}
	case v6Compat.Contains(ip):
		// Deprecated IPv4-compatible form (::a.b.c.d); nothing public
		// lives there, so refuse it all rather than reason about it.
		return "IPv4-compatible IPv6 address"
	}
	return ""
}

// cappedBody fails reads past a byte limit instead of truncating.
type cappedBody struct {
	rc   io.ReadCloser
	left int64 // bytes still allowed
	err  error // sticky ErrResponseTooLarge
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	// Ask for one byte more than allowed: getting it proves the body is
	// too long, without a separate probe read.
	// (Written so that a huge limit cannot overflow.)
	if int64(len(p))-1 > b.left {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.left {
		n = int(b.left)
		b.left = 0
		b.err = ErrResponseTooLarge
		return n, b.err
	}
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }
