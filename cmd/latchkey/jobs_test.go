package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/dbtest"
	"github.com/latchkey/latchkey/internal/oauthtest"
)

// receiver is a webhook endpoint that fails its first failures requests.
type receiver struct {
	mu       sync.Mutex
	failures int
	got      []*http.Request
	bodies   []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.got = append(rc.got, r)
	rc.bodies = append(rc.bodies, string(body))
	if rc.failures > 0 {
		rc.failures--
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) requests() ([]*http.Request, []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]*http.Request(nil), rc.got...), append([]string(nil), rc.bodies...)
}

// deliver runs a dispatcher round with no backoff, as if time had passed.
func deliver(t *testing.T, jobs *background) {
	t.Helper()
	jobs.dispatcher.Backoff = func(int) time.Duration { return 0 }
	if _, err := jobs.dispatcher.DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestWebhooks: events are queued with the change they report, signed,
// retried while the receiver fails, delivered by another replica after a
// "restart", and each claimed by one dispatcher only.
func TestWebhooks(t *testing.T) {
	e := newEnv(t)
	p := newProvider(t, e, oauthtest.AuthBasic)
	f := newFlowApp(t, e, providerConfig(p, "basic"))
	rc := &receiver{failures: 2}
	hook := httptest.NewServer(rc)
	t.Cleanup(hook.Close)

	wantFields(t, e.must(422, "POST", "/v1/apps/acme/webhooks", e.key, map[string]any{"url": "ftp://x", "events": []string{"nope"}}), "url", "events[0]")
	created := e.must(201, "POST", "/v1/apps/acme/webhooks", e.key, map[string]any{"url": hook.URL})
	secret, _ := created["secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("created = %v", created)
	}
	id := created["id"].(string)
	if got := e.must(200, "GET", "/v1/apps/acme/webhooks/"+id, e.key, nil); got["secret"] != nil {
		t.Errorf("the secret is shown again: %v", got)
	}
	e.must(404, "GET", "/v1/apps/acme/webhooks/"+id, e.other, nil)

	f.connect(t, p, "user-1")
	deliver(t, e.jobs) // the receiver fails
	// A restart: another replica's dispatcher, with only the database in common.
	_, other := e.replicaWithJobs()
	deliver(t, other) // fails again
	deliver(t, other) // delivered
	deliver(t, other) // nothing left
	reqs, bodies := rc.requests()
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(reqs))
	}
	first := reqs[0].Header.Get("Latchkey-Delivery")
	for i, r := range reqs {
		if r.Header.Get("Latchkey-Delivery") != first || r.Header.Get("Latchkey-Event") != "connection.created" {
			t.Errorf("request %d: delivery %q event %q", i, r.Header.Get("Latchkey-Delivery"), r.Header.Get("Latchkey-Event"))
		}
		if !validSignature(secret, r.Header.Get("Latchkey-Signature"), bodies[i]) {
			t.Errorf("request %d: bad signature %q", i, r.Header.Get("Latchkey-Signature"))
		}
	}
	var ev app.Event
	json.Unmarshal([]byte(bodies[2]), &ev)
	data, _ := ev.Data.(map[string]any)
	if ev.ID != first || ev.Type != "connection.created" || data["user_id"] != "user-1" || data["installation_id"] != f.instID || data["status"] != "connected" {
		t.Errorf("event = %+v", ev)
	}
	ds := e.must(200, "GET", "/v1/apps/acme/webhooks/"+id+"/deliveries", e.key, nil)["deliveries"].([]any)
	if d := ds[0].(map[string]any); d["attempts"] != float64(3) || d["delivered_at"] == nil || d["last_status"] != float64(204) {
		t.Errorf("delivery = %v", d)
	}

	// A refresh is reported too; two dispatchers racing for it send it once.
	f.addAPI(t, "me", p.URL())
	f.expire(t)
	if r := e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/me/proxy/api/me", nil, ""); r.status != 200 {
		t.Fatalf("call: %d %s", r.status, r.body)
	}
	var wg sync.WaitGroup
	for _, jobs := range []*background{e.jobs, other} {
		wg.Add(1)
		go func() { defer wg.Done(); deliver(t, jobs) }()
	}
	wg.Wait()
	reqs, _ = rc.requests()
	if len(reqs) != 4 || reqs[3].Header.Get("Latchkey-Event") != "connection.refreshed" {
		t.Errorf("after the refresh the receiver has %d requests", len(reqs))
	}

	// A token the provider refuses: reauthorization_required is reported.
	e.must(200, "PATCH", "/v1/installations/"+f.instID+"/users/user-1/settings", e.key,
		map[string]any{"values": map[string]any{"refresh_token": "not-a-refresh-token"}})
	f.expire(t)
	e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/me/proxy/api/me", nil, "")
	deliver(t, e.jobs)
	reqs, _ = rc.requests()
	if len(reqs) != 5 || reqs[4].Header.Get("Latchkey-Event") != "connection.reauthorization_required" {
		t.Errorf("after invalid_grant the receiver has %d requests", len(reqs))
	}
	e.must(204, "DELETE", "/v1/apps/acme/webhooks/"+id, e.key, nil)
	if strings.Contains(e.logs.String(), secret) {
		t.Error("the webhook secret appears in a log")
	}
}

// validSignature checks a Latchkey-Signature as a receiver would.
func validSignature(secret, header, body string) bool {
	var ts string
	for _, part := range strings.Split(header, ",") {
		if v, ok := strings.CutPrefix(part, "t="); ok {
			ts = v
		}
	}
	return ts != "" && header == app.Sign(secret, unixTime(ts), []byte(body))
}

func unixTime(s string) time.Time {
	var n int64
	for _, c := range s {
		n = n*10 + int64(c-'0')
	}
	return time.Unix(n, 0)
}

// TestKeepAlive: idle connections of a config with keepalive_seconds are
// refreshed once, also with two replicas running the job at once (on
// PostgreSQL, which replicas share; SQLite serves one replica).
func TestKeepAlive(t *testing.T) {
	t.Run("one replica", func(t *testing.T) { testKeepAlive(t, 1) })
	t.Run("two replicas", func(t *testing.T) {
		if os.Getenv(dbtest.EnvURL) == "" {
			t.Skip("replicas share a PostgreSQL database: set " + dbtest.EnvURL)
		}
		testKeepAlive(t, 2)
	})
}

func testKeepAlive(t *testing.T, replicas int) {
	e := newEnv(t)
	// A slow token endpoint, so that replicas racing for one refresh
	// overlap, and a duplicate refresh would be sent.
	p := oauthtest.NewServer(t, oauthtest.Options{TokenDelay: 300 * time.Millisecond}, oauthtest.Client{
		ID: testClientID, Secret: testClientSecret, AuthMethod: oauthtest.AuthBasic,
		RedirectURIs: []string{e.url + "/oauth/callback"},
	})
	cfg := providerConfig(p, "basic")
	cfg["keepalive_seconds"] = 3600
	f := newFlowApp(t, e, cfg)
	f.connect(t, p, "user-1")
	f.connect(t, p, "user-2")
	jobs := []*background{e.jobs}
	for len(jobs) < replicas {
		_, other := e.replicaWithJobs()
		jobs = append(jobs, other)
	}

	run := func() {
		var wg sync.WaitGroup
		for _, j := range jobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := j.keepAlive.RunOnce(context.Background()); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	run() // nothing is idle yet
	if n := p.Issued("refresh_token"); n != 0 {
		t.Fatalf("%d refreshes of fresh connections", n)
	}
	old := time.Now().Add(-2 * time.Hour).UTC()
	if err := e.db.Exec("UPDATE connections SET issued_at = ? WHERE user_id = ?", old, "user-1").Error; err != nil {
		t.Fatal(err)
	}
	e.sqlChanged()
	before := f.resolve("user-1").Values["refresh_token"]
	run()
	if n := refreshRequests(p); n != 1 {
		t.Errorf("%d refresh requests, want 1 (user-1 only, once)", n)
	}
	if f.resolve("user-1").Values["refresh_token"] == before {
		t.Error("the refresh token was not rotated")
	}
	run() // user-1 is fresh again
	if n := refreshRequests(p); n != 1 {
		t.Errorf("%d refreshes after a second run, want still 1", n)
	}
	e.must(422, "PATCH", "/v1/apps/acme/oauth-configs/"+f.configID, e.key, map[string]any{"keepalive_seconds": 10})
}
