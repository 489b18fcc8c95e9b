package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/internal/dbtest"
	"github.com/latchkey/latchkey/internal/secret"
)

// BenchmarkProxy measures a call through the proxy (API key check, API and
// installation lookup, settings decrypted, templates rendered, the request
// relayed and the response streamed back) against the same call made
// directly; the ratio of the two is the proxy's overhead.
func BenchmarkProxy(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok-123" {
			w.WriteHeader(401)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	defer upstream.Close()

	db := dbtest.Open(b)
	cipher, err := secret.New(testKeys)
	if err != nil {
		b.Fatal(err)
	}
	cfg := config.Config{PublicURL: "http://latchkey.test", OutboundTimeout: 5 * time.Second,
		OutboundAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	handler, _ := newServer(cfg, db.DB, cipher, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(handler)
	defer srv.Close()
	apps := app.NewStore(db.DB)
	acct, _ := apps.EnsureAccount(context.Background(), "bench")
	key, _, err := apps.CreateKey(context.Background(), acct.ID, "bench")
	if err != nil {
		b.Fatal(err)
	}
	post := func(method, path string, body any) map[string]any {
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(raw))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		if resp.StatusCode >= 300 {
			b.Fatalf("%s %s: %d %v", method, path, resp.StatusCode, m)
		}
		return m
	}
	post("POST", "/v1/apps", map[string]any{"name": "Bench", "slug": "bench"})
	post("POST", "/v1/apps/bench/settings", map[string]any{"key": "access_token", "level": "user", "secret": true})
	inst := post("POST", "/v1/installations", map[string]any{"app_id": "bench", "organization_id": "org"})["id"].(string)
	post("PATCH", "/v1/installations/"+inst+"/users/u1/settings", map[string]any{"values": map[string]any{"access_token": "tok-123"}})
	post("POST", "/v1/apps/bench/apis", map[string]any{"name": "up", "base_url": upstream.URL,
		"headers": map[string]string{"Authorization": "Bearer <<access_token>>"}})

	run := func(b *testing.B, url string, header http.Header) {
		client := &http.Client{}
		b.ReportAllocs()
		for b.Loop() {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header = header
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	}
	b.Run("direct", func(b *testing.B) {
		run(b, upstream.URL+"/items", http.Header{"Authorization": {"Bearer tok-123"}})
	})
	b.Run("proxy", func(b *testing.B) {
		run(b, srv.URL+"/v1/installations/"+inst+"/users/u1/apis/up/proxy/items", http.Header{"Authorization": {"Bearer " + key}})
	})
}
