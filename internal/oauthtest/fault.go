package oauthtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Response is one scripted answer of a FaultProvider.
type Response struct {
	Status      int    // default 200
	ContentType string // default application/json; Header may override it
	Body        string
	Header      http.Header

	// Delay is how long to wait before answering. The wait ends early
	// when the client gives up or the provider closes, and then the
	// connection is dropped with no answer at all.
	Delay time.Duration

	// Before, if set, runs when the request has been read and before the
	// answer is written: a test's way to break something in between.
	Before func()

	// Echo, if set, answers a 400 invalid_request whose error_description
	// quotes the request's body and Authorization header, as some real
	// token endpoints do ("got client_secret=...").
	Echo bool

	// BodyBytes, if positive, streams that many bytes of 'x' as the body
	// instead of Body, chunked and without Content-Length, so only a
	// client that limits what it reads is safe from it.
	BodyBytes int
}

// Recorded is one request a FaultProvider received.
type Recorded struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   string
	Form   url.Values // parsed from Body if form-encoded, else nil
}

// FaultProvider is a scriptable provider endpoint: every request, to any
// path, gets the next scripted Response. It is for testing how a client
// copes with a provider that is slow, wrong or hostile; Server is the one
// that follows the RFCs.
type FaultProvider struct {
	srv     *httptest.Server
	closing chan struct{}

	mu       sync.Mutex
	queue    []Response
	last     *Response
	requests []Recorded
}

// NewFaultProvider starts a FaultProvider and closes it when the test ends.
func NewFaultProvider(tb testing.TB) *FaultProvider {
	tb.Helper()
	p := &FaultProvider{closing: make(chan struct{})}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	tb.Cleanup(func() {
		// End pending delays and streams first: Close waits for them.
		close(p.closing)
		p.srv.Close()
	})
	return p
}

// URL is the provider's base URL; any path under it is served.
func (p *FaultProvider) URL() string { return p.srv.URL }

// Then queues rs, to be served in order after those already queued. Once
// the queue is empty the last response served is repeated; before any was
// scripted the provider answers 500 "no response scripted".
func (p *FaultProvider) Then(rs ...Response) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.queue = append(p.queue, rs...)
}

// Requests returns every request received so far, oldest first.
func (p *FaultProvider) Requests() []Recorded {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Recorded, len(p.requests))
	copy(out, p.requests)
	return out
}

func (p *FaultProvider) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	rec := Recorded{
		Method: r.Method,
		Path:   r.URL.Path,
		Query:  r.URL.Query(),
		Header: r.Header.Clone(),
		Body:   string(body),
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" {
		rec.Form, _ = url.ParseQuery(string(body))
	}

	p.mu.Lock()
	p.requests = append(p.requests, rec)
	var resp Response
	switch {
	case len(p.queue) > 0:
		resp = p.queue[0]
		p.queue = p.queue[1:]
		p.last = &resp
	case p.last != nil:
		resp = *p.last
	default:
		resp = Response{Status: http.StatusInternalServerError, ContentType: "text/plain; charset=utf-8", Body: "no response scripted\n"}
	}
	p.mu.Unlock()

	if resp.Delay > 0 {
		t := time.NewTimer(resp.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			panic(http.ErrAbortHandler)
		case <-p.closing:
			panic(http.ErrAbortHandler)
		}
	}

	if resp.Before != nil {
		resp.Before()
	}
	if resp.Echo {
		desc := "got " + string(body) + " with Authorization: " + r.Header.Get("Authorization")
		resp.Status = http.StatusBadRequest
		b, _ := json.Marshal(map[string]any{"error": "invalid_request", "error_description": desc})
		resp.Body = string(b)
	}
	if resp.ContentType == "" {
		resp.ContentType = "application/json"
	}
	w.Header().Set("Content-Type", resp.ContentType)
	for k, vs := range resp.Header {
		w.Header()[http.CanonicalHeaderKey(k)] = vs
	}
	if resp.Status == 0 {
		resp.Status = http.StatusOK
	}
	w.WriteHeader(resp.Status)

	if resp.BodyBytes <= 0 {
		io.WriteString(w, resp.Body)
		return
	}
	chunk := bytes.Repeat([]byte{'x'}, 32<<10)
	for n := resp.BodyBytes; n > 0; n -= len(chunk) {
		select {
		case <-r.Context().Done():
			panic(http.ErrAbortHandler)
		case <-p.closing:
			panic(http.ErrAbortHandler)
		default:
		}
		if n < len(chunk) {
			chunk = chunk[:n]
		}
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

// TokenJSON is a 200 answer with fields as a JSON object, such as a token
// response (RFC 6749 §5.1); set Status on the result for an error response
// (§5.2). It
// panics if fields cannot be encoded, which is a mistake in the test.
func TokenJSON(fields map[string]any) Response {
	b, err := json.Marshal(fields)
	if err != nil {
		panic(fmt.Sprintf("oauthtest: TokenJSON: %v", err))
	}
	return Response{Status: http.StatusOK, ContentType: "application/json", Body: string(b)}
}

// Timeout answers only after d: a client that gives up sooner sees no
// answer at all. One that waits it out gets 504 with an RFC 6749
// temporarily_unavailable error, so a missing client timeout fails too.
func Timeout(d time.Duration) Response {
	return Response{
		Status: http.StatusGatewayTimeout,
		Body:   `{"error":"temporarily_unavailable","error_description":"oauthtest: delayed answer"}`,
		Delay:  d,
	}
}

// HTML is an HTML page with the given status, as a proxy, a login wall or
// a misconfigured provider answers where JSON was expected.
func HTML(status int) Response {
	text := http.StatusText(status)
	return Response{
		Status:      status,
		ContentType: "text/html; charset=utf-8",
		Body: "<!DOCTYPE html>\n<html><head><title>" + text + "</title></head>\n" +
			"<body><h1>" + strings.TrimSpace(fmt.Sprint(status, " ", text)) + "</h1></body></html>\n",
	}
}

// Redirect answers with status and a Location header, and no body.
func Redirect(status int, location string) Response {
	return Response{
		Status:      status,
		ContentType: "text/plain; charset=utf-8",
		Header:      http.Header{"Location": {location}},
	}
}
