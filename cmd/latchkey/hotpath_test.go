package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/dbtest"
	"github.com/latchkey/latchkey/internal/oauthtest"
)

// TestHotPathQueries counts the statements a call through the proxy and
// the headers route send to the database: none once the caches are warm
// and the token is fresh, a few when they are cold, and the caches follow
// every change made through the API.
func TestHotPathQueries(t *testing.T) {
	var queries *dbtest.Counter
	e := newEnvOn(t, nil, func(d *dbtest.DB) *gorm.DB {
		db := d.DB
		if d.URL != "" {
			db = d.Reopen(t) // the server's own pool, counted alone
		}
		queries = dbtest.CountQueries(t, db)
		return db
	})
	if e.db.URL == "" {
		// SQLite: the test's pool is the server's; count only the calls.
		defer queries.Reset()
	}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.Header.Get("Authorization"))) }))
	t.Cleanup(api.Close)
	fault := oauthtest.NewFaultProvider(t)
	f := newFlowApp(t, e, map[string]any{"link_url": fault.URL() + "/authorize", "token_url": fault.URL() + "/token"})
	f.addAPI(t, "api", api.URL)
	if status, page := f.connectWith(t, fault, "user-1", oauthtest.TokenJSON(map[string]any{"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 3600})); status != 200 {
		t.Fatalf("connect: %d %s", status, page)
	}
	proxy := "/v1/installations/" + f.instID + "/users/user-1/apis/api/proxy/x"
	headers := "/v1/installations/" + f.instID + "/users/user-1/apis/api/headers"
	call := func(path, want string) int64 {
		t.Helper()
		queries.Reset()
		r := e.proxy(e.url, "GET", path, nil, "")
		if r.status != 200 {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		if want != "" && r.body != want {
			t.Fatalf("GET %s answered %q, want %q", path, r.body, want)
		}
		return queries.Count()
	}
	e.sqlChanged() // cold
	if n := call(proxy, "Bearer at-1"); n > 9 {
		t.Errorf("a cold call sent %d statements", n)
	} else {
		t.Logf("a cold call sent %d statements", n)
	}
	for i := 0; i < 3; i++ {
		if n := call(proxy, "Bearer at-1"); n != 0 {
			t.Errorf("a warm proxied call sent %d statements, want 0", n)
		}
		if n := call(headers, ""); n != 0 {
			t.Errorf("a warm headers call sent %d statements, want 0", n)
		}
	}

	// Changes through the API are seen at once.
	e.must(200, "PATCH", "/v1/installations/"+f.instID+"/users/user-1/settings", e.key, map[string]any{"values": map[string]any{"access_token": "at-2"}})
	call(proxy, "Bearer at-2")
	e.must(200, "PATCH", "/v1/apps/acme/apis/api", e.key, map[string]any{"headers": map[string]string{"Authorization": "Token <<access_token>>"}})
	call(proxy, "Token at-2")
	f.expire(t)
	fault.Then(oauthtest.TokenJSON(map[string]any{"access_token": "at-3", "refresh_token": "rt-3", "expires_in": 3600}))
	call(proxy, "Token at-3")
	call(proxy, "Token at-3") // reads what the refresh stored
	if n := call(proxy, "Token at-3"); n != 0 {
		t.Errorf("a warm call after a refresh sent %d statements, want 0", n)
	}
	e.must(204, "DELETE", "/v1/installations/"+f.instID, e.key, nil)
	if r := e.proxy(e.url, "GET", proxy, nil, ""); r.status != http.StatusNotFound {
		t.Errorf("a call to a deleted installation: %d %s", r.status, r.body)
	}
}
