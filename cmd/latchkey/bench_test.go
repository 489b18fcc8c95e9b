package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/internal/dbtest"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/settings"
)

// hotPath is a Latchkey server with one app, installation, user token and
// API, and the same upstream reached four ways: directly, through a plain
// httputil.ReverseProxy that adds the header (the baseline Latchkey is
// measured against), through Latchkey's proxy, and through Latchkey's
// headers route (which answers the header for the caller to use).
type hotPath struct {
	direct, reverse, proxy, headers string
	key                             string
	header                          http.Header // the caller's Authorization
}

// upstreamBody is ~1 KiB of JSON, like a small API answer.
var upstreamBody = bytes.Repeat([]byte(`{"id":"item-000001","ok":true},`), 32)

func newHotPath(tb testing.TB) *hotPath {
	tb.Helper()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok-123" {
			w.WriteHeader(401)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(upstreamBody)
	}))
	tb.Cleanup(upstream.Close)
	target, _ := url.Parse(upstream.URL)
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Header.Set("Authorization", "Bearer tok-123")
	}}
	reverse := httptest.NewServer(rp)
	tb.Cleanup(reverse.Close)

	db := dbtest.Open(tb)
	cipher, err := secret.New(testKeys)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := config.Config{PublicURL: "http://latchkey.test", OutboundTimeout: 5 * time.Second,
		OutboundAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		OutboundIdle:  64, CacheEntries: 10000, CacheTTL: 5 * time.Minute}
	handler, jobs := newServer(cfg, db.DB, cipher, slog.New(slog.NewTextHandler(io.Discard, nil)))
	jobs.listen(tb)
	srv := httptest.NewServer(handler)
	tb.Cleanup(srv.Close)
	apps := app.NewStore(db.DB)
	acct, _ := apps.EnsureAccount(context.Background(), "bench")
	key, _, err := apps.CreateKey(context.Background(), acct.ID, "bench")
	if err != nil {
		tb.Fatal(err)
	}
	post := func(method, path string, body any) map[string]any {
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(raw))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			tb.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		if resp.StatusCode >= 300 {
			tb.Fatalf("%s %s: %d %v", method, path, resp.StatusCode, m)
		}
		return m
	}
	post("POST", "/v1/apps", map[string]any{"name": "Bench", "slug": "bench"})
	post("POST", "/v1/apps/bench/settings", map[string]any{"key": "access_token", "level": "user", "secret": true})
	inst := post("POST", "/v1/installations", map[string]any{"app_id": "bench", "organization_id": "org"})["id"].(string)
	post("PATCH", "/v1/installations/"+inst+"/users/u1/settings", map[string]any{"values": map[string]any{"access_token": "tok-123"}})
	post("POST", "/v1/apps/bench/apis", map[string]any{"name": "up", "base_url": upstream.URL,
		"headers": map[string]string{"Authorization": "Bearer <<access_token>>"}})
	return &hotPath{
		direct:  upstream.URL + "/items",
		reverse: reverse.URL + "/items",
		proxy:   srv.URL + "/v1/installations/" + inst + "/users/u1/apis/up/proxy/items",
		headers: srv.URL + "/v1/installations/" + inst + "/users/u1/apis/up/headers",
		key:     key,
		header:  http.Header{"Authorization": {"Bearer " + key}},
	}
}

// get makes one call and reports an error unless it answers 200. It may
// run on any goroutine.
func get(tb testing.TB, client *http.Client, u string, header http.Header) bool {
	req, _ := http.NewRequest("GET", u, nil)
	req.Header = header
	resp, err := client.Do(req)
	if err != nil {
		tb.Error(err)
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		tb.Errorf("GET %s: status %d", u, resp.StatusCode)
		return false
	}
	return true
}

// BenchmarkProxy measures one call at a time, with allocations (client
// and server, both in this process): directly, through a plain reverse
// proxy adding the header, through Latchkey's proxy and headers route.
func BenchmarkProxy(b *testing.B) {
	h := newHotPath(b)
	for _, tt := range []struct {
		name, url string
		header    http.Header
	}{
		{"direct", h.direct, http.Header{"Authorization": {"Bearer tok-123"}}},
		{"reverseproxy", h.reverse, http.Header{}},
		{"proxy", h.proxy, h.header},
		{"headers", h.headers, h.header},
	} {
		b.Run(tt.name, func(b *testing.B) {
			client := &http.Client{}
			b.ReportAllocs()
			for b.Loop() {
				if !get(b, client, tt.url, tt.header) {
					b.FailNow()
				}
			}
		})
	}
}

// BenchmarkHotPath is a small load driver: in each of 9 rounds it sends
// the same number of calls to each target, interleaved so that a busy
// machine slows all alike, from 1 and from 32 concurrent callers, and
// reports the median round's p50 and p99 latency and throughput of
// Latchkey's proxy and headers route as ratios to the plain reverse
// proxy's in the same run. Run it with -benchtime=1x; on PostgreSQL set
// LATCHKEY_TEST_DATABASE_URL.
func BenchmarkHotPath(b *testing.B) {
	h := newHotPath(b)
	targets := []struct {
		name, url string
		header    http.Header
	}{
		{"direct", h.direct, http.Header{"Authorization": {"Bearer tok-123"}}},
		{"reverseproxy", h.reverse, http.Header{}},
		{"proxy", h.proxy, h.header},
		{"headers", h.headers, h.header},
	}
	for _, callers := range []int{1, 32} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			transport := &http.Transport{MaxIdleConnsPerHost: callers, MaxConnsPerHost: callers}
			client := &http.Client{Transport: transport}
			defer transport.CloseIdleConnections()
			calls := 100 * callers
			if callers == 1 {
				calls = 500
			}
			type stats struct{ p50, p99, rps float64 }
			results := make(map[string][]stats)
			for b.Loop() {
				for round := 0; round < 9; round++ {
					for _, t := range targets {
						drive(b, client, t.url, t.header, callers, calls/10) // warm up
						start := time.Now()
						lat := drive(b, client, t.url, t.header, callers, calls)
						if b.Failed() {
							b.FailNow()
						}
						rps := float64(calls) / time.Since(start).Seconds()
						slices.Sort(lat)
						results[t.name] = append(results[t.name], stats{
							p50: ms(lat[len(lat)/2]), p99: ms(lat[len(lat)*99/100]), rps: rps})
					}
				}
			}
			median := func(name string, f func(stats) float64) float64 {
				var v []float64
				for _, s := range results[name] {
					v = append(v, f(s))
				}
				slices.Sort(v)
				return v[len(v)/2]
			}
			p50 := func(s stats) float64 { return s.p50 }
			p99 := func(s stats) float64 { return s.p99 }
			rps := func(s stats) float64 { return s.rps }
			for _, t := range targets {
				b.Logf("%-12s p50 %.3f ms  p99 %.3f ms  %8.0f req/s", t.name, median(t.name, p50), median(t.name, p99), median(t.name, rps))
			}
			base := "reverseproxy"
			b.ReportMetric(median("proxy", p50)/median(base, p50), "proxy-p50/rp")
			b.ReportMetric(median("proxy", rps)/median(base, rps), "proxy-rps/rp")
			b.ReportMetric(median("headers", p99), "headers-p99-ms")
			b.ReportMetric(median("proxy", p50), "proxy-p50-ms")
			b.ReportMetric(median(base, p50), "rp-p50-ms")
		})
	}
}

// drive sends n calls from callers goroutines and returns each call's
// latency.
func drive(tb testing.TB, client *http.Client, u string, header http.Header, callers, n int) []time.Duration {
	lat := make([]time.Duration, n)
	var next sync.Mutex
	i := 0
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				k := i
				i++
				next.Unlock()
				if k >= n {
					return
				}
				start := time.Now()
				if !get(tb, client, u, header) {
					return
				}
				lat[k] = time.Since(start)
			}
		}()
	}
	wg.Wait()
	return lat
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkRefreshStorm renews the tokens of 1,000 users at once against a
// provider that takes 500 ms per token request, and meanwhile times an
// ordinary route (GET /v1/apps) against its latency when idle: renewals
// must not hold the database's connections while the provider thinks.
//
// The 1,000 clients with the provider, and the ordinary route's timer,
// run in two other processes (see stormDriverEnv), on the same two cores
// as the server and the database. The clients' connections are open
// before the storm, as a platform's pooled ones are. As a control, the
// same clients then call a server that only waits 500 ms, while the
// ordinary route is timed for as long as the storm took:
// apps-p99-driver/idle is what the load driver alone costs the ordinary
// route. Run it with -benchtime=1x, on PostgreSQL with
// LATCHKEY_TEST_DATABASE_URL.
func BenchmarkRefreshStorm(b *testing.B) {
	const users = 1000
	e := newEnvWith(b, nil)
	clients, timer := startStormDriver(b), startStormDriver(b)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	b.Cleanup(api.Close)
	f := newFlowApp(b, e, map[string]any{"link_url": clients.provider + "/authorize", "token_url": clients.provider + "/token"})
	e.must(201, "POST", "/v1/apps/acme/apis", e.key, map[string]any{"name": "api", "base_url": api.URL, "config_id": f.configID,
		"headers": map[string]string{"Authorization": "Bearer <<access_token>>"}})
	store := settings.NewStore(e.db.DB, e.cipher)
	inst, err := store.Installation(context.Background(), f.instID)
	if err != nil {
		b.Fatal(err)
	}
	expired := time.Now().Add(-time.Hour).UTC()
	for i := range users {
		user := fmt.Sprintf("user-%d", i)
		at, rt := "at-"+user, "rt-"+user
		if err := store.SetUserValues(context.Background(), inst, user, map[string]*string{"access_token": &at, "refresh_token": &rt}); err != nil {
			b.Fatal(err)
		}
		if err := e.db.Exec("INSERT INTO connections (installation_id, user_id, config_id, status, expires_at, issued_at, connected_at, updated_at) VALUES (?, ?, ?, 'connected', ?, ?, ?, ?)",
			f.instID, user, f.configID, expired, expired, expired, expired).Error; err != nil {
			b.Fatal(err)
		}
	}
	e.sqlChanged()

	apps := stormCommand{URL: e.url + "/v1/apps", Key: e.key}
	quantile := func(l []time.Duration, q int) float64 {
		slices.Sort(l)
		if len(l) == 0 {
			return 0
		}
		return ms(l[len(l)*q/100])
	}
	p50 := func(l []time.Duration) float64 { return quantile(l, 50) }
	p99 := func(l []time.Duration) float64 { return quantile(l, 99) }
	// during runs the clients' calls to url and times the ordinary route
	// meanwhile, for at least least.
	during := func(url string, least time.Duration) (stormResult, []time.Duration) {
		start := apps
		start.Op = "start"
		timer.do(b, start)
		res := clients.do(b, stormCommand{Op: "calls", URL: url, Key: e.key, N: users})
		time.Sleep(least - res.Took)
		return res, timer.do(b, stormCommand{Op: "stop"}).Latency
	}
	for b.Loop() {
		clients.do(b, stormCommand{Op: "calls", URL: e.url + "/healthz?%d", N: users})
		clients.do(b, stormCommand{Op: "calls", URL: clients.waiter + "/open?%d", N: users})
		time.Sleep(time.Second) // for what opening them left to do (its garbage)
		// As many samples idle as during a storm (5 ms apart), so that
		// both p99s are estimated alike: with 400, the idle one alone
		// varied about twofold from run to run.
		idle := apps
		idle.Op, idle.N = "time", 1000
		idleLat := timer.do(b, idle).Latency
		storm, busy := during(e.url+"/v1/installations/"+f.instID+"/users/user-%d/apis/api/proxy/x", 0)
		_, driver := during(clients.waiter+"/%d", storm.Took)
		b.Logf("%d users renewed in %s, %d failed; GET /v1/apps p50/p99 idle %.2f/%.2f ms, during the storm %.2f/%.2f ms (%d calls), "+
			"with the same clients calling a server that only waits %.2f/%.2f ms (%d calls)",
			users, storm.Took.Round(time.Millisecond), storm.Failed, p50(idleLat), p99(idleLat), p50(busy), p99(busy), len(busy),
			p50(driver), p99(driver), len(driver))
		b.ReportMetric(storm.Took.Seconds(), "storm-s")
		b.ReportMetric(p99(busy)/p99(idleLat), "apps-p99-busy/idle")
		b.ReportMetric(p99(driver)/p99(idleLat), "apps-p99-driver/idle")
		b.ReportMetric(float64(storm.Failed), "failed")
	}
}
