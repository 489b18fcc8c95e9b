package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/dbtest"
	"github.com/latchkey/latchkey/internal/oauthtest"
	"github.com/latchkey/latchkey/settings"
)

// newCountedEnv is an env whose server's statements are counted: on
// PostgreSQL in a pool of its own; on SQLite, whose pool the test shares,
// only from queries' first Reset on.
func newCountedEnv(t *testing.T) (*env, *dbtest.Counter) {
	var queries *dbtest.Counter
	e := newEnvOn(t, nil, func(d *dbtest.DB) *gorm.DB {
		db := d.DB
		if d.URL != "" {
			db = d.Reopen(t) // the server's own pool, counted alone
		}
		queries = dbtest.CountQueries(t, db)
		return db
	})
	return e, queries
}

// TestHotPathQueries counts the statements a call through the proxy and
// the headers route send to the database: none once the caches are warm
// and the token is fresh, three when they are cold, and the caches follow
// every change made through the API.
func TestHotPathQueries(t *testing.T) {
	e, queries := newCountedEnv(t)
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
	// Cold, after every cache is flushed, a call sends 3 statements: the
	// API key (app.Store.Authenticate); the installation with its app, the
	// API, its config and the user's connection, one row (call's lookup);
	// and the setting definitions with the organization's and the user's
	// values, one UNION ALL (settings.Store.Resolve). The first call of a
	// key in a minute also records its use (one UPDATE per process), which
	// was done here already.
	for _, path := range []string{proxy, headers} {
		e.sqlChanged()
		want := ""
		if path == proxy {
			want = "Bearer at-1"
		}
		if n := call(path, want); n > 3 {
			t.Errorf("a cold call to %s sent %d statements, want at most 3", path, n)
		} else {
			t.Logf("a cold call to %s sent %d statements", path, n)
		}
		// What the cold call read is kept, all of it.
		if n := call(path, want); n != 0 {
			t.Errorf("the call after a cold one to %s sent %d statements, want 0", path, n)
		}
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
	// A call that renews the token, on caches f.expire flushed: the API
	// key and the joined row of a cold call (not the settings: the
	// renewal reads them); the configuration error and whether the app
	// has webhooks, read once per installation and app; and the renewal's
	// 9 (the lease; the settings and the connection under it; the intent
	// record; the request log's entry; the values, one NOTIFY, the
	// connection and the lease's release, in one transaction). On SQLite
	// there is no NOTIFY.
	if n := call(proxy, "Token at-3"); n > 13 {
		t.Errorf("a call that renewed the token on cold caches sent %d statements, want at most 13", n)
	} else {
		t.Logf("a call that renewed the token on cold caches sent %d statements", n)
	}
	if n := e.leases(); n != 0 {
		t.Errorf("%d renewal leases held after the renewal", n)
	}
	call(proxy, "Token at-3") // reads what the refresh stored
	if n := call(proxy, "Token at-3"); n != 0 {
		t.Errorf("a warm call after a refresh sent %d statements, want 0", n)
	}
	e.must(204, "DELETE", "/v1/installations/"+f.instID, e.key, nil)
	if r := e.proxy(e.url, "GET", proxy, nil, ""); r.status != http.StatusNotFound {
		t.Errorf("a call to a deleted installation: %d %s", r.status, r.body)
	}
}

// TestColdAnswers: a call answers the same whether what it reads comes
// from the caches or from the database (the joined read of a cold call),
// errors included.
func TestColdAnswers(t *testing.T) {
	e := newEnv(t)
	other := e.newKey("other")
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.Header.Get("Authorization"))) }))
	t.Cleanup(api.Close)
	fault := oauthtest.NewFaultProvider(t)
	f := newFlowApp(t, e, map[string]any{"link_url": fault.URL() + "/authorize", "token_url": fault.URL() + "/token"})
	f.addAPI(t, "api", api.URL)
	e.must(201, "POST", "/v1/apps/acme/apis", e.key, map[string]any{"name": "plain", "base_url": api.URL,
		"headers": map[string]string{"X-Client": "<<client_id>>"}})
	if status, page := f.connectWith(t, fault, "user-1", oauthtest.TokenJSON(map[string]any{"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 3600})); status != 200 {
		t.Fatalf("connect: %d %s", status, page)
	}
	inst := "/v1/installations/" + f.instID
	for _, tt := range []struct {
		method, path, key string
		status            int
	}{
		{"GET", inst + "/users/user-1/apis/api/proxy/x", e.key, 200},
		{"GET", inst + "/users/user-1/apis/api/headers", e.key, 200},
		{"GET", inst + "/apis/plain/proxy/x", e.key, 200},
		{"GET", inst + "/users/user-2/apis/plain/headers", e.key, 200},
		{"OPTIONS", inst + "/users/user-1/apis/api/proxy/x", e.key, 405},
		{"GET", inst + "/users/user-2/apis/api/proxy/x", e.key, 409}, // never connected
		{"GET", inst + "/apis/api/headers", e.key, 422},              // user tokens without a user
		{"GET", inst + "/users/user-1/apis/nope/proxy/x", e.key, 404},
		{"GET", inst + "/users/user-1/apis/api/proxy/x", other, 404}, // another account's
		{"GET", "/v1/installations/01900000-0000-7000-8000-000000000000/apis/api/headers", e.key, 404},
	} {
		var answers [2]map[string]any
		for i := range answers {
			if i == 0 {
				e.sqlChanged()
			}
			r := e.call(tt.method, tt.path, tt.key, nil)
			if r.status != tt.status {
				t.Fatalf("%s %s (%s): %d, want %d\n%s", tt.method, tt.path, []string{"cold", "warm"}[i], r.status, tt.status, r.body)
			}
			answers[i] = map[string]any{"body": string(r.body)}
			if len(r.body) > 0 && r.body[0] == '{' {
				m := r.json(t)
				delete(m, "request_id")
				if _, ok := m["authorize_url"]; ok {
					m["authorize_url"] = "(a new link each time)"
				}
				answers[i] = m
			}
		}
		if !reflect.DeepEqual(answers[0], answers[1]) {
			t.Errorf("%s %s answers differently cold and warm:\n%v\n%v", tt.method, tt.path, answers[0], answers[1])
		}
	}
}

// TestColdCallsReadTogether: calls of 200 users that miss the caches at
// the same moment read their connections and their values in a few
// queries, not one each (database.Batch), and each gets its own user's
// token.
func TestColdCallsReadTogether(t *testing.T) {
	const users = 200
	e, queries := newCountedEnv(t)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.Header.Get("Authorization"))) }))
	t.Cleanup(api.Close)
	fault := oauthtest.NewFaultProvider(t)
	f := newFlowApp(t, e, map[string]any{"link_url": fault.URL() + "/authorize", "token_url": fault.URL() + "/token"})
	f.addAPI(t, "api", api.URL)
	store := settings.NewStore(e.db.DB, e.cipher)
	inst, err := store.Installation(context.Background(), f.instID)
	if err != nil {
		t.Fatal(err)
	}
	expires := time.Now().Add(time.Hour).UTC()
	for i := range users {
		user, at := fmt.Sprintf("user-%d", i), fmt.Sprintf("at-%d", i)
		if err := store.SetUserValues(context.Background(), inst, user, map[string]*string{"access_token": &at}); err != nil {
			t.Fatal(err)
		}
		if err := e.db.Exec("INSERT INTO connections (installation_id, user_id, config_id, status, expires_at, issued_at, connected_at, updated_at) VALUES (?, ?, ?, 'connected', ?, ?, ?, ?)",
			f.instID, user, f.configID, expires, expires, expires, expires).Error; err != nil {
			t.Fatal(err)
		}
	}
	e.sqlChanged()
	path := func(i int) string {
		return fmt.Sprintf("%s/v1/installations/%s/users/user-%d/apis/api/proxy/x", e.url, f.instID, i)
	}
	// What every user's call reads alike (the installation, app, API and
	// config) is read once, and each caller's connection to Latchkey is
	// opened, before the calls go out together.
	if r := e.proxy(path(0), "GET", "", nil, ""); r.body != "Bearer at-0" {
		t.Fatalf("user-0: %d %s", r.status, r.body)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: users}}
	t.Cleanup(client.CloseIdleConnections)
	get := func(url string) (string, error) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+e.key)
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return string(body), err
	}
	var ready, wg sync.WaitGroup
	start := make(chan struct{})
	ready.Add(users - 1)
	queries.Reset()
	for i := 1; i < users; i++ {
		wg.Go(func() {
			_, err := get(e.url + "/healthz")
			ready.Done()
			if err != nil {
				t.Error(err)
				return
			}
			<-start
			body, err := get(path(i))
			if want := fmt.Sprintf("Bearer at-%d", i); err != nil || body != want {
				t.Errorf("user-%d: %q %v, want %q", i, body, err, want)
			}
		})
	}
	ready.Wait()
	queries.Reset()
	close(start)
	wg.Wait()
	for _, table := range []string{"connections", "user_values"} {
		n := queries.Matching("FROM " + table)
		t.Logf("%d calls read their %s in %d queries", users-1, table, n)
		if e.db.URL != "" && n > users/4 {
			// SQLite has one connection, where the reads queue without a
			// Share of the pool to batch them in.
			t.Errorf("%d calls read their %s in %d queries, want at most %d", users-1, table, n, users/4)
		}
	}
}
