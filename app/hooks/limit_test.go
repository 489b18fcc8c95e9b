package hooks

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/httpapi"
)

// TestLimiter: each source has its own bucket of burst requests, refilled
// at the rate; a refused request spends nothing; only known sources get a
// bucket; a nil Limiter allows everything.
func TestLimiter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := NewLimiter(4, 3) // one request every 250 ms, 3 at once
	l.now = func() time.Time { return now }

	if wait, known := l.take("src-a", false); wait != 0 || known {
		t.Fatalf("a source never made known: wait %v, known %v; want 0, false", wait, known)
	}
	if len(l.sources) != 0 {
		t.Fatalf("a bucket was made for a source not known to exist")
	}
	for i := range 3 {
		if wait, known := l.take("src-a", i == 0); wait != 0 || !known {
			t.Fatalf("request %d of the burst: wait %v, known %v", i+1, wait, known)
		}
	}
	for range 5 { // refused requests do not push the next one further out
		if wait, _ := l.take("src-a", false); wait != 250*time.Millisecond {
			t.Fatalf("over the burst: wait %v, want 250ms", wait)
		}
	}
	if wait, _ := l.take("src-b", true); wait != 0 {
		t.Fatalf("another source is limited by src-a's requests: wait %v", wait)
	}
	now = now.Add(125 * time.Millisecond)
	if wait, _ := l.take("src-a", false); wait != 125*time.Millisecond {
		t.Fatalf("125ms later: wait %v, want 125ms", wait)
	}
	now = now.Add(125 * time.Millisecond)
	if wait, _ := l.take("src-a", false); wait != 0 {
		t.Fatalf("once the wait is over: wait %v, want 0", wait)
	}
	if wait, _ := l.take("src-a", false); wait != 250*time.Millisecond {
		t.Fatalf("the refilled request was spent: wait %v, want 250ms", wait)
	}

	var none *Limiter
	if NewLimiter(0, 500) != nil {
		t.Error("rate 0 makes a limit")
	}
	for range 1000 {
		if wait, known := none.take("src-a", false); wait != 0 || !known {
			t.Fatalf("no limit: wait %v, known %v", wait, known)
		}
	}
}

// TestLimiterPrunes: the map of buckets does not grow with sources that
// are gone; a full bucket is dropped (a new one is the same), a busy one
// is kept.
func TestLimiterPrunes(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := NewLimiter(1, 2)
	l.now = func() time.Time { return now }
	l.take("busy", true)
	l.take("busy", true)
	for i := range minPrune - 1 {
		l.take(fmt.Sprint("idle-", i), true)
	}
	now = now.Add(time.Second) // idle buckets full again; "busy" holds 1 of 2
	l.take("new", true)
	if len(l.sources) != 2 {
		t.Fatalf("%d buckets after pruning, want 2 (busy, new)", len(l.sources))
	}
	if wait, known := l.take("busy", false); !known || wait != 0 {
		t.Fatalf("busy bucket: wait %v, known %v", wait, known)
	}
	if wait, _ := l.take("busy", false); wait != time.Second {
		t.Fatalf("the busy bucket was reset by pruning: wait %v, want 1s", wait)
	}
}

// untouched is a request body that records whether anything read it.
type untouched struct {
	text string
	r    *strings.Reader
	read bool
}

func newBody(text string) *untouched { return &untouched{text: text, r: strings.NewReader(text)} }

func (u *untouched) Read(p []byte) (int, error) { u.read = true; return u.r.Read(p) }
func (u *untouched) Close() error               { return nil }

// TestReceiveRateLimited: over its limit, a source is answered 429 with
// Retry-After, as a problem, before its body is read (a body over the
// size limit is not even noticed), and counted as rate_limited; other
// sources are not held up; once Retry-After has passed, the source's
// events are taken in again.
func TestReceiveRateLimited(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if _, err := f.settings.Install(ctx, f.app.ID, "org-1", map[string]string{"team_id": "T1"}); err != nil {
		t.Fatal(err)
	}
	src, other := slackSource(f.app.ID), slackSource(f.app.ID)
	other.Name = "slack, another workspace's app"
	for _, s := range []*Source{&src, &other} {
		if err := f.store.Create(ctx, s, f.defs); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Unix(1_700_000_000, 0)
	lim := NewLimiter(0.5, 2) // one request every 2 seconds, 2 at once
	lim.now = func() time.Time { return now }
	log := slog.New(slog.DiscardHandler)
	h := NewHandler(Deps{Store: f.store, Settings: f.settings, PublicURL: "https://latchkey.example", Log: log, Limiter: lim})
	h.now = func() time.Time { return now } // Slack's timestamp tolerance
	var outcomes []string
	h.Observe = func(o string) { outcomes = append(outcomes, o) }
	e := httpapi.New(log, nil)
	h.Register(e.Group("/v1"), e)

	n := 0
	post := func(s Source, body *untouched) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest("POST", Path+s.ID, nil)
		req.Body = body
		req.Header.Set("Content-Type", "application/json")
		ts := strconv.FormatInt(now.Unix(), 10)
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		req.Header.Set("X-Slack-Signature", "v0="+hexMAC("slack-signing-secret", "v0:"+ts+":"+body.text))
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec
	}
	event := func() *untouched {
		n++
		return newBody(fmt.Sprintf(`{"team_id":"T1","event":{"type":"message"},"event_id":"Ev%d"}`, n))
	}
	accepted := func(rec *httptest.ResponseRecorder) {
		t.Helper()
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"accepted"`) {
			t.Fatalf("got %d %s, want the event accepted", rec.Code, rec.Body)
		}
	}
	limited := func(rec *httptest.ResponseRecorder, body *untouched, retryAfter string) {
		t.Helper()
		var p httpapi.Problem
		json.Unmarshal(rec.Body.Bytes(), &p)
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Content-Type") != httpapi.ProblemContentType || p.Code != "too_many_requests" {
			t.Fatalf("got %d %s, want a 429 problem", rec.Code, rec.Body)
		}
		if got := rec.Header().Get("Retry-After"); got != retryAfter {
			t.Errorf("Retry-After: %q, want %q", got, retryAfter)
		}
		if body.read {
			t.Error("the body of a request over the limit was read")
		}
	}

	accepted(post(src, event()))
	accepted(post(src, event()))
	huge := newBody(strings.Repeat("x", 2*MaxBodyBytes))
	limited(post(src, huge), huge, "2") // not 413: the body is never read
	accepted(post(other, event()))
	now = now.Add(time.Second)
	ev := event()
	limited(post(src, ev), ev, "1")
	now = now.Add(time.Second)
	accepted(post(src, event()))

	want := "accepted accepted rate_limited accepted rate_limited accepted"
	if got := strings.Join(outcomes, " "); got != want {
		t.Errorf("outcomes %q, want %q", got, want)
	}
}
