package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/dbtest"
	"github.com/latchkey/latchkey/internal/oauthtest"
	"github.com/latchkey/latchkey/internal/secret"
)

// TestThreeReplicas holds the service to its scale-out promise: replicas
// share one PostgreSQL database and nothing else. Three real latchkey
// processes run behind a round-robin balancer, which is their public URL.
// A user is authorized on one replica, called back on another and calls
// the API through the third; then 30 calls at once with an expired token,
// spread over all three, make exactly one refresh at the provider.
func TestThreeReplicas(t *testing.T) {
	if os.Getenv(dbtest.EnvURL) == "" {
		t.Skip("replicas share PostgreSQL; the embedded SQLite database serves one process (set " + dbtest.EnvURL + " to run this test)")
	}
	db := dbtest.Open(t)
	lb := newBalancer(t)
	replicas := startReplicas(t, 3, map[string]string{
		"DATABASE_URL":              db.URL,
		"LATCHKEY_ENCRYPTION_KEYS":  keyRing(testKeys),
		"LATCHKEY_PUBLIC_URL":       lb.url,
		"LATCHKEY_OUTBOUND_ALLOW":   "127.0.0.0/8", // the test provider is on loopback
		"LATCHKEY_OUTBOUND_TIMEOUT": "5s",
		"LATCHKEY_SHUTDOWN_TIMEOUT": "5s",
		"LATCHKEY_LOG_LEVEL":        "debug", // the most a replica ever logs, for the secrets check
	})
	lb.route(replicas)

	// From here on the test reaches the service only through the balancer.
	// The API key is made in the shared database, as `latchkey keys
	// create` would make it.
	e := &env{t: t, db: db, url: lb.url, cipher: testCipher(t)}
	e.key = e.newKey("acme")
	p := newProvider(t, e, oauthtest.AuthBasic) // redirect URI: the balancer's /oauth/callback
	f := newFlowApp(t, e, providerConfig(p, "basic"))
	f.addAPI(t, "me", p.URL())
	mePath := "/v1/installations/" + f.instID + "/users/user-1/apis/me/proxy/api/me"

	// The link is opened on one replica, which keeps the state in the
	// database and binds it to the browser with a cookie.
	b := newBrowser(t)
	status, hdr, page := b.get(f.link("user-1", ""))
	authorizedOn := lb.lastHop(t, "/oauth/authorize/")
	if status != http.StatusFound {
		t.Fatalf("authorize link answered %d:\n%s", status, page)
	}
	back, err := p.Consent(hdr.Get("Location"), true)
	if err != nil {
		t.Fatal(err)
	}
	// The provider sends the browser back to another replica, which finds
	// the state in the database and checks the cookie against it.
	status, _, page = b.get(back.String())
	calledBackOn := lb.lastHop(t, "/oauth/callback")
	if status != http.StatusOK || !strings.Contains(page, "Connected") {
		t.Fatalf("callback answered %d:\n%s", status, page)
	}
	// The call goes through a third replica, with the stored token.
	r := e.proxy(e.url, "GET", mePath, nil, "")
	calledOn := lb.lastHop(t, mePath)
	if r.status != http.StatusOK || !strings.Contains(r.body, `"id":"alice"`) {
		t.Fatalf("call: %d %s", r.status, r.body)
	}
	if authorizedOn == calledBackOn || calledBackOn == calledOn || calledOn == authorizedOn {
		t.Errorf("authorize on replica %d, callback on %d, call on %d: want three different replicas", authorizedOn, calledBackOn, calledOn)
	}
	connected := f.resolve("user-1")

	// The token expires; calls at once on every replica refresh it once.
	f.expire(t)
	const calls = 30
	from := lb.hops()
	statuses := callAtOnce(e, mePath, calls)
	if failed := slices.DeleteFunc(statuses, func(s int) bool { return s == http.StatusOK }); len(failed) > 0 {
		t.Errorf("%d of %d calls after expiry failed, with statuses %v", len(failed), calls, failed)
	}
	if got, want := lb.servedSince(from), map[int]int{1: calls / 3, 2: calls / 3, 3: calls / 3}; !maps.Equal(got, want) {
		t.Errorf("calls served per replica = %v, want %v", got, want)
	}
	if n := refreshRequests(p); n != 1 {
		t.Errorf("the provider saw %d refresh requests, want 1", n)
	}
	refreshed := f.resolve("user-1")
	if refreshed.Values["access_token"] == connected.Values["access_token"] {
		t.Error("the access token was not replaced by the refresh")
	}

	// What one replica changes, every replica sees within a second,
	// although each keeps it in its caches: a changed setting, a revoked
	// API key, a deleted installation.
	headersPath := "/v1/installations/" + f.instID + "/users/user-1/apis/me/headers"
	within := func(what string, ok func(rep *replica) (bool, string)) {
		t.Helper()
		for _, rep := range replicas {
			deadline := time.Now().Add(time.Second)
			for {
				good, got := ok(rep)
				if good {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("%s: replica %d still answers %s after a second", what, rep.n, got)
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	for _, rep := range replicas { // warm every replica's caches
		if r := e.proxy(rep.url, "GET", headersPath, nil, ""); r.status != 200 {
			t.Fatalf("headers on replica %d: %d %s", rep.n, r.status, r.body)
		}
	}
	if r := e.proxy(replicas[0].url, "PATCH", "/v1/installations/"+f.instID+"/users/user-1/settings",
		http.Header{"Content-Type": {"application/json"}}, `{"values":{"access_token":"set-by-hand"}}`); r.status != 200 {
		t.Fatalf("PATCH on replica 1: %d %s", r.status, r.body)
	}
	within("a changed setting", func(rep *replica) (bool, string) {
		r := e.proxy(rep.url, "GET", headersPath, nil, "")
		return r.status == 200 && strings.Contains(r.body, "Bearer set-by-hand"), r.body
	})
	second := e.newKey("acme")
	withKey := func(base, key, path string) int {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, rep := range replicas {
		if got := withKey(rep.url, second, "/v1/apps"); got != 200 {
			t.Fatalf("the second key on replica %d: %d", rep.n, got)
		}
	}
	var list struct{ Keys []struct{ ID, Prefix string } }
	r = e.proxy(replicas[1].url, "GET", "/v1/keys", nil, "")
	json.Unmarshal([]byte(r.body), &list)
	var secondID string
	for _, k := range list.Keys {
		if strings.HasPrefix(second, k.Prefix) && k.Prefix != "" {
			secondID = k.ID
		}
	}
	if r := e.proxy(replicas[1].url, "DELETE", "/v1/keys/"+secondID, nil, ""); r.status != http.StatusNoContent {
		t.Fatalf("revoking the second key on replica 2: %d %s", r.status, r.body)
	}
	within("a revoked API key", func(rep *replica) (bool, string) {
		got := withKey(rep.url, second, "/v1/apps")
		return got == http.StatusUnauthorized, strconv.Itoa(got)
	})
	if r := e.proxy(replicas[2].url, "DELETE", "/v1/installations/"+f.instID, nil, ""); r.status != http.StatusNoContent {
		t.Fatalf("deleting the installation on replica 3: %d %s", r.status, r.body)
	}
	within("a deleted installation", func(rep *replica) (bool, string) {
		r := e.proxy(rep.url, "GET", headersPath, nil, "")
		return r.status == http.StatusNotFound, strconv.Itoa(r.status)
	})

	stopAll(t, replicas)
	secrets := map[string]string{
		"client secret":           testClientSecret,
		"API key":                 e.key,
		"authorization code":      back.Query().Get("code"),
		"code verifier":           p.TokenRequests()[0].Form.Get("code_verifier"),
		"access token":            connected.Values["access_token"],
		"refresh token":           connected.Values["refresh_token"],
		"refreshed access token":  refreshed.Values["access_token"],
		"refreshed refresh token": refreshed.Values["refresh_token"],
	}
	for _, rep := range replicas {
		logs := rep.output()
		for name, s := range secrets {
			if s == "" {
				t.Errorf("the %s is empty: the secrets check would prove nothing", name)
			} else if strings.Contains(logs, s) {
				t.Errorf("the %s appears in replica %d's log", name, rep.n)
			}
		}
	}
}

// callAtOnce makes n GET calls of path through e at the same time and
// returns their statuses, 0 for a call that got no response.
func callAtOnce(e *env, path string, n int) []int {
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", e.url+path, nil)
			req.Header.Set("Authorization", "Bearer "+e.key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	wg.Wait()
	return statuses
}

func refreshRequests(p *oauthtest.Server) int {
	n := 0
	for _, r := range p.TokenRequests() {
		if r.GrantType == "refresh_token" {
			n++
		}
	}
	return n
}

func testCipher(t *testing.T) *secret.Cipher {
	t.Helper()
	c, err := secret.New(testKeys)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// keyRing is keys as LATCHKEY_ENCRYPTION_KEYS spells them.
func keyRing(keys []secret.Key) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.ID + ":" + base64.StdEncoding.EncodeToString(k.Secret)
	}
	return strings.Join(parts, ",")
}

// balancer is a round-robin load balancer in front of the replicas, as an
// ingress would be: request i goes to replica i mod 3 + 1. It records which
// replica served each request, so the test can say where each step ran.
type balancer struct {
	url string

	mu      sync.Mutex
	proxies []*httputil.ReverseProxy // proxies[i] reaches replica i+1
	served  []hop
}

// hop is one request through the balancer and the replica that served it.
type hop struct {
	method, path string
	replica      int
}

// newBalancer starts a balancer with no replicas yet (it answers 503), so
// that its URL can be the replicas' public URL.
func newBalancer(t *testing.T) *balancer {
	lb := &balancer{}
	srv := httptest.NewServer(lb)
	t.Cleanup(srv.Close)
	lb.url = srv.URL
	return lb
}

// route sends requests to replicas, in turn.
func (lb *balancer) route(replicas []*replica) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	for _, r := range replicas {
		target, _ := url.Parse(r.url)
		lb.proxies = append(lb.proxies, &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // as an ingress does: the replica sees the public host
			pr.SetXForwarded()
		}})
	}
}

func (lb *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	lb.mu.Lock()
	if len(lb.proxies) == 0 {
		lb.mu.Unlock()
		http.Error(w, "no replicas yet", http.StatusServiceUnavailable)
		return
	}
	i := len(lb.served) % len(lb.proxies)
	lb.served = append(lb.served, hop{r.Method, r.URL.Path, i + 1})
	proxy := lb.proxies[i]
	lb.mu.Unlock()
	proxy.ServeHTTP(w, r)
}

// hops is how many requests the balancer has passed on.
func (lb *balancer) hops() int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return len(lb.served)
}

// lastHop returns the replica that served the last request, and fails the
// test unless that request's path starts with path.
func (lb *balancer) lastHop(t *testing.T, path string) int {
	t.Helper()
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if len(lb.served) == 0 {
		t.Fatalf("no request went through the balancer, want one to %s", path)
	}
	h := lb.served[len(lb.served)-1]
	if !strings.HasPrefix(h.path, path) {
		t.Fatalf("the last request through the balancer was %s %s, want one to %s", h.method, h.path, path)
	}
	return h.replica
}

// servedSince counts, per replica, the requests after the first from.
func (lb *balancer) servedSince(from int) map[int]int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	counts := map[int]int{}
	for _, h := range lb.served[from:] {
		counts[h.replica]++
	}
	return counts
}

// replica is one latchkey process: this test binary run again as the
// program (see TestMain), serving until it is sent SIGTERM.
type replica struct {
	n      int // 1, 2, 3, as the balancer numbers them
	cmd    *exec.Cmd
	url    string        // where it listens, once it has said so
	exited chan struct{} // closed when the process has exited; then err is set
	err    error
	waited sync.Once

	mu  sync.Mutex
	out bytes.Buffer // stdout and stderr
}

// startReplicas starts n replicas with the environment vars, each
// listening on a port of its own choosing, and waits until all are ready.
// They are stopped when the test ends, and their output is logged if the
// test failed.
func startReplicas(t *testing.T, n int, vars map[string]string) []*replica {
	t.Helper()
	var rs []*replica
	for i := range n {
		rs = append(rs, startReplica(t, i+1, vars))
	}
	for _, r := range rs {
		r.waitReady(t)
	}
	return rs
}

func startReplica(t *testing.T, n int, vars map[string]string) *replica {
	t.Helper()
	r := &replica{n: n, exited: make(chan struct{})}
	r.cmd = exec.Command(os.Args[0], "serve")
	r.cmd.Env = replicaEnviron(vars)
	// One writer for both streams, so exec copies them in one goroutine, in order.
	out := lockedWriter{&r.mu, &r.out}
	r.cmd.Stdout, r.cmd.Stderr = out, out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.exited)
	}()
	// Cleanups run last first: the process is stopped, then its output shown.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replica %d output:\n%s", r.n, r.output())
		}
	})
	t.Cleanup(func() { r.stop(t) })
	return r
}

// replicaEnviron is the test's environment without its Latchkey settings,
// plus vars and the switch that makes the test binary the program.
func replicaEnviron(vars map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LATCHKEY_") && !strings.HasPrefix(kv, "DATABASE_URL=") {
			env = append(env, kv)
		}
	}
	env = append(env, asMainEnv+"=1", "LATCHKEY_ADDR=127.0.0.1:0")
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

var listening = regexp.MustCompile(`latchkey listening on (http://\S+)`)

// waitReady waits until the replica has said where it listens and its
// /readyz answers 200, and fails the test if it exits first.
func (r *replica) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if r.url == "" {
			if m := listening.FindStringSubmatch(r.output()); m != nil {
				r.url = m[1]
			}
		}
		if r.url != "" && ready(r.url) {
			return
		}
		select {
		case <-r.exited:
			t.Fatalf("replica %d exited before it was ready (%v):\n%s", r.n, r.err, r.output())
		case <-deadline:
			t.Fatalf("replica %d was not ready after 30s:\n%s", r.n, r.output())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func ready(base string) bool {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(base + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stopAll sends every replica SIGTERM, then waits for each to exit.
func stopAll(t *testing.T, rs []*replica) {
	t.Helper()
	for _, r := range rs {
		r.terminate()
	}
	for _, r := range rs {
		r.waitExit(t)
	}
}

func (r *replica) stop(t *testing.T) {
	r.terminate()
	r.waitExit(t)
}

// terminate sends SIGTERM, as Kubernetes does to a pod it stops, unless the
// process has exited.
func (r *replica) terminate() {
	select {
	case <-r.exited:
	default:
		r.cmd.Process.Signal(syscall.SIGTERM)
	}
}

// waitExit waits for the process to exit and fails the test unless it
// exited with status 0, which run returns after a graceful shutdown.
func (r *replica) waitExit(t *testing.T) {
	r.waited.Do(func() {
		select {
		case <-r.exited:
		case <-time.After(20 * time.Second):
			r.cmd.Process.Kill()
			<-r.exited
			t.Errorf("replica %d did not stop within 20s of SIGTERM; killed", r.n)
			return
		}
		if r.err != nil {
			t.Errorf("replica %d: %v after SIGTERM, want exit status 0 (a graceful shutdown)", r.n, r.err)
		}
	})
}

// output is everything the replica has written to stdout and stderr.
func (r *replica) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}
