package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/internal/oauthtest"
	"github.com/latchkey/latchkey/internal/testpki"
	"github.com/latchkey/latchkey/settings"
)

// issue returns a client certificate of pki for cn, as an installer
// pastes it, with the thumbprint a provider knows it by.
func issue(t *testing.T, pki *testpki.CA, cn string) testpki.Certificate {
	return pki.Issue(t, pkix.Name{CommonName: cn, Organization: []string{"Acme"}})
}

// secretLines are the base64 lines of the PEM texts, which must never
// appear in an answer, a log line or a stored row.
func secretLines(c testpki.Certificate) []string {
	var out []string
	for _, text := range []string{c.Chain, c.Key} {
		for _, line := range strings.Split(text, "\n") {
			if line != "" && !strings.HasPrefix(line, "-----") {
				out = append(out, line)
			}
		}
	}
	return out
}

// mtlsFront stands in front of an oauthtest server as a provider that
// authenticates clients by certificate (RFC 8705) does: it requires a
// certificate of its CA, knows each client by its certificate's
// thumbprint, binds the tokens it issues to that certificate (§3) and
// refuses them with another. For tls_client_auth, a token request that
// names only its client_id is passed on with the client's secret, which
// the server behind it wants.
type mtlsFront struct {
	*httptest.Server
	target string // the oauthtest server's URL
	secret string

	mu      sync.Mutex
	clients map[string]string // thumbprint -> client id
	bound   map[string]string // access token -> thumbprint
	seen    []frontRequest
}

type frontRequest struct {
	path, thumbprint string
	form             url.Values // of token requests, as received
	basic            bool
}

func newMTLSFront(t *testing.T, pki *testpki.CA) *mtlsFront {
	t.Helper()
	f := &mtlsFront{secret: testClientSecret, clients: map[string]string{}, bound: map[string]string{}}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.Pool}
	f.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	f.StartTLS()
	t.Cleanup(f.Close)
	return f
}

// roots trusts the front's server certificate, for Latchkey's outbound
// client.
func (f *mtlsFront) roots(c *config.Config) {
	pool := x509.NewCertPool()
	pool.AddCert(f.Certificate())
	c.OutboundRootCAs = pool
}

func (f *mtlsFront) allow(cert testpki.Certificate, clientID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clients[cert.Thumbprint] = clientID
}

func (f *mtlsFront) requests() []frontRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]frontRequest(nil), f.seen...)
}

func (f *mtlsFront) serve(w http.ResponseWriter, r *http.Request) {
	sum := sha256.Sum256(r.TLS.PeerCertificates[0].Raw)
	thumb := hex.EncodeToString(sum[:])
	body, _ := io.ReadAll(r.Body)
	rec := frontRequest{path: r.URL.Path, thumbprint: thumb}
	_, _, rec.basic = r.BasicAuth()
	if r.URL.Path == oauthtest.TokenPath {
		rec.form, _ = url.ParseQuery(string(body))
	}
	f.mu.Lock()
	f.seen = append(f.seen, rec)
	clientID, known := f.clients[thumb]
	f.mu.Unlock()
	refuse := func(status int, code string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": code})
	}
	if !known {
		refuse(http.StatusUnauthorized, "invalid_client")
		return
	}
	out, _ := http.NewRequest(r.Method, f.target+r.URL.RequestURI(), bytes.NewReader(body))
	out.Header = r.Header.Clone()
	switch r.URL.Path {
	case oauthtest.TokenPath:
		if !rec.basic && rec.form.Get("client_secret") == "" {
			// RFC 8705 §2: the certificate authenticated the client;
			// the client_id must be the one it was issued to.
			if rec.form.Get("client_id") != clientID {
				refuse(http.StatusUnauthorized, "invalid_client")
				return
			}
			out.SetBasicAuth(clientID, f.secret)
		}
	default:
		_, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		f.mu.Lock()
		boundTo := f.bound[tok]
		f.mu.Unlock()
		if boundTo != thumb {
			refuse(http.StatusUnauthorized, "invalid_token") // RFC 8705 §3: bound to another certificate
			return
		}
	}
	resp, err := http.DefaultClient.Do(out)
	if err != nil {
		refuse(http.StatusBadGateway, "server_error")
		return
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if r.URL.Path == oauthtest.TokenPath && resp.StatusCode == http.StatusOK {
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		json.Unmarshal(answer, &tok)
		f.mu.Lock()
		f.bound[tok.AccessToken] = thumb
		f.mu.Unlock()
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(answer)
}

// certSettings adds the settings of a client certificate to the flow app.
func certSettings(e *env) {
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "client_cert", "secret": true, "type": "certificate"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "client_key", "secret": true, "type": "private_key"})
}

func (f *flowApp) useCert(t *testing.T, c testpki.Certificate) {
	t.Helper()
	f.e.must(200, "PATCH", "/v1/installations/"+f.instID+"/settings", f.e.key,
		map[string]any{"values": map[string]any{"client_cert": c.Chain, "client_key": c.Key}})
}

// noPEM fails the test if a PEM text's body appears in what the server
// said, logged or stored.
func noPEM(t *testing.T, e *env, certs ...testpki.Certificate) {
	t.Helper()
	out := e.output() + e.storedText(t)
	for _, c := range certs {
		for _, line := range secretLines(c) {
			if strings.Contains(out, line) {
				t.Fatalf("a line of a PEM text appears in an answer, a log line or a stored row: %q", line)
			}
		}
	}
}

// mtlsRig is an app with the certificate settings and a config of an
// oauthtest server behind an mtlsFront that knows good (of its CA) as
// the test client; other is of the same CA but unknown, stray of another
// CA.
type mtlsRig struct {
	good, other, stray testpki.Certificate
	front              *mtlsFront
	e                  *env
	p                  *oauthtest.Server
	f                  *flowApp
}

func newMTLSRig(t *testing.T) mtlsRig {
	t.Helper()
	pki := testpki.NewCA(t)
	r := mtlsRig{good: issue(t, pki, "acme-org-1"), other: issue(t, pki, "acme-org-2"), stray: issue(t, testpki.NewCA(t), "stray")}
	r.front = newMTLSFront(t, pki)
	r.front.allow(r.good, testClientID)
	r.e = newEnvWith(t, r.front.roots)
	r.p = newProvider(t, r.e, oauthtest.AuthBasic)
	r.front.target = r.p.URL()
	r.f = newFlowApp(t, r.e, providerConfig(r.p, "basic"))
	certSettings(r.e)
	return r
}

// TestMTLSClientCredentials: ADP Workforce Now's shape, client_credentials
// with client_id and client_secret (Basic) and a client certificate. The
// token request and the calls to the API present the certificate; another
// certificate, or one the provider does not trust, is a configuration
// error that keeps the token; the right one works again.
func TestMTLSClientCredentials(t *testing.T) {
	rig := newMTLSRig(t)
	good, other, stray, front, e, f := rig.good, rig.other, rig.stray, rig.front, rig.e, rig.f
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "app_token", "secret": true})

	cc := e.must(201, "POST", "/v1/apps/acme/oauth-configs", e.key, map[string]any{
		"name": "adp", "grant_type": "client_credentials", "token_url": front.URL + oauthtest.TokenPath,
		"client_auth": "basic", "client_cert_setting": "client_cert", "client_key_setting": "client_key",
		"scopes": []string{"read"}, "access_token_setting": "app_token", "log_requests": true,
	})
	if cc["client_cert_setting"] != "client_cert" || cc["client_key_setting"] != "client_key" {
		t.Errorf("config = %v", cc)
	}

	// A key that is not the certificate's (the config pairs them) is
	// refused when it is stored, naming the setting, without quoting
	// either text; so is a key where the certificate goes.
	wantFields(t, e.must(422, "PATCH", "/v1/installations/"+f.instID+"/settings", e.key,
		map[string]any{"values": map[string]any{"client_cert": good.Chain, "client_key": other.Key}}), "values.client_key")
	wantFields(t, e.must(422, "PATCH", "/v1/installations/"+f.instID+"/settings", e.key,
		map[string]any{"values": map[string]any{"client_cert": good.Key}}), "values.client_cert")
	f.useCert(t, good)
	wantFields(t, e.must(422, "PATCH", "/v1/installations/"+f.instID+"/settings", e.key,
		map[string]any{"values": map[string]any{"client_key": other.Key}}), "values.client_key")
	cfgID := cc["id"].(string)
	e.must(201, "POST", "/v1/apps/acme/apis", e.key, map[string]any{
		"name": "hr", "base_url": front.URL, "config_id": cfgID,
		"headers": map[string]string{"Authorization": "Bearer <<app_token>>"},
	})
	call := func() proxied {
		t.Helper()
		return e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/apis/hr/proxy/api/me", nil, "")
	}
	if r := call(); r.status != 200 || !strings.Contains(r.body, `"id":"`+testClientID+`"`) {
		t.Fatalf("call: %d %s", r.status, r.body)
	}
	seen := front.requests()
	if len(seen) != 2 || seen[0].path != oauthtest.TokenPath || !seen[0].basic || seen[1].path != oauthtest.MePath {
		t.Fatalf("the provider saw %+v, want the token request with Basic, then the call", seen)
	}
	for _, r := range seen {
		if r.thumbprint != good.Thumbprint {
			t.Errorf("%s came with certificate %s, want %s", r.path, r.thumbprint, good.Thumbprint)
		}
	}

	// explain names the settings and shows the certificate as a server
	// sees it.
	ex := e.must(200, "POST", "/v1/apps/acme/oauth-configs/"+cfgID+"/explain", e.key, map[string]any{"installation_id": f.instID})
	cert, _ := ex["client_certificate"].(map[string]any)
	if cert["certificate_setting"] != "client_cert" || cert["key_setting"] != "client_key" || cert["sha256"] != good.Thumbprint ||
		!strings.Contains(cert["subject"].(string), "CN=acme-org-1") {
		t.Errorf("explained certificate = %v", cert)
	}
	if problems := ex["problems"].([]any); len(problems) != 0 {
		t.Errorf("problems = %v", problems)
	}

	// Another certificate: the provider refuses the client; the token is
	// kept, and calls answer 409 until the settings change.
	token := f.resolve("").Values["app_token"]
	path := "/v1/installations/" + f.instID + "/oauth-configs/" + cfgID + "/token"
	for _, wrong := range []testpki.Certificate{other, stray} {
		f.useCert(t, wrong)
		r := e.call("POST", path, e.key, map[string]any{})
		if r.status != http.StatusConflict || r.json(t)["code"] != "configuration_error" {
			t.Fatalf("token with another certificate: %d %s", r.status, r.body)
		}
		detail := r.json(t)["detail"].(string)
		if !strings.Contains(detail, "client_cert") || !strings.Contains(detail, "client_key") {
			t.Errorf("the detail does not name the settings to fix: %s", detail)
		}
		if wrong == stray && !strings.Contains(detail, "refused the client certificate") {
			t.Errorf("an untrusted certificate: %s", detail)
		}
		if got := f.resolve("").Values["app_token"]; got != token {
			t.Error("the stored token was dropped")
		}
		if r := call(); r.status != http.StatusConflict || r.problemCode(t) != "configuration_error" {
			t.Errorf("call with another certificate: %d %s", r.status, r.body)
		}
	}
	conns := e.must(200, "GET", "/v1/installations/"+f.instID+"/connections", e.key, nil)["connections"].([]any)
	if len(conns) != 1 || conns[0].(map[string]any)["status"] != "configuration_error" {
		t.Errorf("connections = %v", conns)
	}

	// The right certificate again: the next call tries, and works.
	f.useCert(t, good)
	e.must(200, "POST", path, e.key, map[string]any{})
	if r := call(); r.status != 200 {
		t.Errorf("call with the certificate back: %d %s", r.status, r.body)
	}
	noPEM(t, e, good, other, stray)
}

// TestMTLSAuthorizationCode: tls_client_auth (RFC 8705 §2.1) for an
// authorization-code config: the exchange sends the client_id and no
// secret, the certificate authenticates it; the identity request, the
// refresh and the calls present the same certificate, to which the
// provider binds its tokens.
func TestMTLSAuthorizationCode(t *testing.T) {
	rig := newMTLSRig(t)
	good, other, stray, front, e, p, f := rig.good, rig.other, rig.stray, rig.front, rig.e, rig.p, rig.f
	f.useCert(t, stray)
	e.must(200, "PATCH", "/v1/apps/acme/oauth-configs/"+f.configID, e.key, map[string]any{
		"token_url": front.URL + oauthtest.TokenPath, "client_auth": "tls_client_auth",
		"client_cert_setting": "client_cert", "client_key_setting": "client_key",
		"identity_url": front.URL + oauthtest.MePath, "identity_headers": map[string]string{"Authorization": "Bearer <<access_token>>"},
		"identity_mappings": []map[string]string{{"path": "$.id", "setting": "provider_user"}},
	})
	f.addAPI(t, "me", front.URL)

	// A certificate the provider does not trust: the exchange fails, and
	// no connection is made.
	b := newBrowser(t)
	_, hdr, _ := b.get(f.link("user-1", ""))
	back, err := p.Consent(hdr.Get("Location"), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, page := b.get(back.String()); !strings.Contains(page, "client certificate") {
		t.Errorf("the result page does not say the certificate was refused:\n%s", page)
	}
	if v := f.resolve("user-1").Values["access_token"]; v != "" {
		t.Fatal("tokens were stored after a refused exchange")
	}

	f.useCert(t, good)
	f.connect(t, p, "user-1")
	r := f.resolve("user-1")
	if r.Values["access_token"] == "" || r.Values["provider_user"] != "alice" {
		t.Fatalf("after connecting: token set %v, provider_user %q", r.Values["access_token"] != "", r.Values["provider_user"])
	}
	var exchange *frontRequest
	for _, req := range front.requests() {
		if req.path == oauthtest.TokenPath && req.thumbprint == good.Thumbprint {
			exchange = &req
		}
	}
	if exchange == nil || exchange.basic || exchange.form.Get("client_secret") != "" || exchange.form.Get("client_id") != testClientID {
		t.Fatalf("the exchange: %+v; want client_id in the body and no secret", exchange)
	}
	if got := front.requests(); got[len(got)-1].path != oauthtest.MePath || got[len(got)-1].thumbprint != good.Thumbprint {
		t.Errorf("the identity request: %+v", got[len(got)-1])
	}
	call := func() proxied {
		t.Helper()
		return e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-1/apis/me/proxy/api/me", nil, "")
	}
	if r := call(); r.status != 200 || !strings.Contains(r.body, `"id":"alice"`) {
		t.Fatalf("call: %d %s", r.status, r.body)
	}

	// Another certificate: the refresh is refused as the client's fault,
	// the tokens are kept, calls answer 409.
	f.useCert(t, other)
	f.expire(t)
	if r := call(); r.status != http.StatusConflict || r.problemCode(t) != "configuration_error" {
		t.Fatalf("call with another certificate: %d %s", r.status, r.body)
	}
	if got := f.resolve("user-1").Values["access_token"]; got != r.Values["access_token"] {
		t.Error("the tokens were dropped")
	}

	// The right one: the refresh goes through, and the call works.
	f.useCert(t, good)
	if r := call(); r.status != 200 || p.Issued("refresh_token") != 1 {
		t.Errorf("call with the certificate back: %d %s; %d refreshes", r.status, r.body, p.Issued("refresh_token"))
	}
	noPEM(t, e, good, other, stray)
}

// TestMTLSConfigValidation: the certificate's settings are checked when a
// config is saved.
func TestMTLSConfigValidation(t *testing.T) {
	e := newEnv(t)
	setupApp(e)
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "svc_token", "secret": true})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "client_cert", "secret": true, "type": "certificate"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "client_key", "secret": true, "type": "private_key"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "plain_pem", "secret": true})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "user_key", "level": "user", "secret": true, "type": "private_key"})
	// A PEM setting must be secret.
	wantFields(t, e.must(422, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "shown_cert", "type": "certificate"}), "secret")
	base := map[string]any{"name": "svc", "grant_type": "client_credentials", "token_url": "https://p.example/token", "access_token_setting": "svc_token"}
	for _, tt := range []struct {
		name  string
		cfg   map[string]any
		field string
	}{
		{"tls_client_auth without a certificate", map[string]any{"client_auth": "tls_client_auth"}, "client_cert_setting"},
		{"a certificate without its key", map[string]any{"client_cert_setting": "client_cert"}, "client_key_setting"},
		{"a key without its certificate", map[string]any{"client_key_setting": "client_key"}, "client_cert_setting"},
		{"an untyped setting", map[string]any{"client_cert_setting": "plain_pem", "client_key_setting": "client_key"}, "client_cert_setting"},
		{"a user-level key", map[string]any{"client_cert_setting": "client_cert", "client_key_setting": "user_key"}, "client_key_setting"},
		{"an unknown setting", map[string]any{"client_cert_setting": "client_cert", "client_key_setting": "nope"}, "client_key_setting"},
		{"the same setting twice", map[string]any{"client_cert_setting": "client_cert", "client_key_setting": "client_cert"}, "client_key_setting"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := map[string]any{}
			for k, v := range base {
				body[k] = v
			}
			for k, v := range tt.cfg {
				body[k] = v
			}
			wantFields(t, e.must(422, "POST", "/v1/apps/acme/oauth-configs", e.key, body), tt.field)
		})
	}
	// self_signed_tls_client_auth with its settings: the default body
	// names the client and carries no secret.
	body := map[string]any{"client_auth": "self_signed_tls_client_auth", "client_cert_setting": "client_cert", "client_key_setting": "client_key"}
	for k, v := range base {
		body[k] = v
	}
	cfg := e.must(201, "POST", "/v1/apps/acme/oauth-configs", e.key, body)
	if cfg["token_body"] != "grant_type=client_credentials&client_id=<<client_id>>" {
		t.Errorf("token_body = %v", cfg["token_body"])
	}
}

// TestMTLSInstallPage: the hosted install page asks for a certificate and
// its key in text areas (PEM has line breaks), never fills them back in,
// and checks them together, as the API does.
func TestMTLSInstallPage(t *testing.T) {
	e := newEnv(t)
	a := newHostedApp(t, e, "https://cdn.acme.example/logo.png")
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "client_cert", "label": "Client certificate", "secret": true, "type": "certificate", "required": true})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "client_key", "label": "Private key", "secret": true, "type": "private_key", "required": true})
	e.must(200, "PATCH", "/v1/apps/acme/oauth-configs/"+a.configID, e.key, map[string]any{"client_cert_setting": "client_cert", "client_key_setting": "client_key"})
	pki := testpki.NewCA(t)
	good, other := issue(t, pki, "acme-org-1"), issue(t, pki, "acme-org-2")

	link := a.installLink("org-42", "")
	b := newPage(e)
	r := b.get(link)
	doc := unescaped(r)
	for _, want := range []string{`<textarea id="f-client_cert" name="client_cert"`, `<textarea id="f-client_key" name="client_key"`} {
		if !strings.Contains(doc, want) {
			t.Errorf("the form lacks %s", want)
		}
	}
	form := url.Values{"_csrf": {csrf(t, r)}, "client_id": {testClientID}, "client_secret": {testClientSecret},
		"client_cert": {good.Chain}, "client_key": {other.Key}}
	r = b.post(link, form)
	if r.status != 422 || !strings.Contains(unescaped(r), `id="f-client_key-error"`) || !strings.Contains(unescaped(r), "does not belong to the certificate") {
		t.Fatalf("a key of another certificate: %d\n%s", r.status, r.body)
	}
	form.Set("client_key", good.Key)
	if r = b.post(link, form); r.status != 200 {
		t.Fatalf("install: %d\n%s", r.status, r.body)
	}
	noPEM(t, e, good, other)
}

// TestMTLSFixedPair: a certificate and key that the app developer fixes
// (hidden, with a default) are the same for every installation, so they
// are checked together when a config pairs them and whenever either
// default changes: a key that is not the certificate's, or a certificate
// that has expired since, is a 422 naming the field and the settings,
// never quoting the PEM text.
func TestMTLSFixedPair(t *testing.T) {
	e := newEnv(t)
	appID := setupApp(e)
	pki := testpki.NewCA(t)
	good, other := issue(t, pki, "acme-1"), issue(t, pki, "acme-2")
	expired := pki.IssueValid(t, pkix.Name{CommonName: "acme-old", Organization: []string{"Acme"}}, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	fixed := func(key, typ, text string) {
		e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": key, "secret": true, "type": typ, "visibility": "hidden", "default": text})
	}
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "svc_token", "secret": true})
	fixed("client_cert", "certificate", good.Chain)
	fixed("client_key", "private_key", other.Key)
	svc := map[string]any{"name": "svc", "grant_type": "client_credentials", "token_url": "https://p.example/token",
		"access_token_setting": "svc_token", "client_cert_setting": "client_cert", "client_key_setting": "client_key"}

	// Saved with a key that is not the certificate's.
	p := e.must(422, "POST", "/v1/apps/acme/oauth-configs", e.key, svc)
	wantFields(t, p, "client_key_setting")
	if msg := fieldErrors(t, p)["client_key_setting"]; !strings.Contains(msg, "does not belong to the certificate") ||
		!strings.Contains(msg, `setting "client_cert" holds the certificate and "client_key" its private key`) {
		t.Errorf("client_key_setting: %s", msg)
	}
	e.must(200, "PATCH", "/v1/apps/acme/settings/client_key", e.key, map[string]any{"default": good.Key})
	cfg := e.must(201, "POST", "/v1/apps/acme/oauth-configs", e.key, svc)
	cfgPath := "/v1/apps/acme/oauth-configs/" + cfg["id"].(string)

	// Either default changed to one of another pair.
	for key, text := range map[string]string{"client_key": other.Key, "client_cert": other.Chain} {
		p := e.must(422, "PATCH", "/v1/apps/acme/settings/"+key, e.key, map[string]any{"default": text})
		wantFields(t, p, "default")
		if msg := fieldErrors(t, p)["default"]; !strings.Contains(msg, `paired by OAuth config "svc"`) {
			t.Errorf("%s default: %s", key, msg)
		}
	}

	// A new pair in new settings, the config pointed at them, the old
	// ones deleted once nothing uses them.
	fixed("client_cert_2", "certificate", other.Chain)
	fixed("client_key_2", "private_key", other.Key)
	e.must(200, "PATCH", cfgPath, e.key, map[string]any{"client_cert_setting": "client_cert_2", "client_key_setting": "client_key_2"})
	e.must(204, "DELETE", "/v1/apps/acme/settings/client_cert", e.key, nil)
	e.must(204, "DELETE", "/v1/apps/acme/settings/client_key", e.key, nil)

	// The certificate expires while stored (written behind the store's
	// back: a default that has expired is refused when it is set): the
	// next save of the config says so.
	sealed, err := e.cipher.Seal(expired.Chain, settings.FixedSecretColumn().AAD([]string{appID, "client_cert_2"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.Exec("UPDATE setting_definitions SET fixed_secret = ? WHERE app_id = ? AND key = ?", sealed, appID, "client_cert_2").Error; err != nil {
		t.Fatal(err)
	}
	e.sqlChanged()
	p = e.must(422, "PATCH", cfgPath, e.key, map[string]any{"description": "mTLS"})
	wantFields(t, p, "client_cert_setting")
	if msg := fieldErrors(t, p)["client_cert_setting"]; !strings.Contains(msg, "expired") {
		t.Errorf("client_cert_setting: %s", msg)
	}
	// A new label is not a new value: it is not held back by the pair.
	e.must(200, "PATCH", "/v1/apps/acme/settings/client_cert_2", e.key, map[string]any{"label": "Client certificate"})
	noPEM(t, e, good, other, expired)
}
