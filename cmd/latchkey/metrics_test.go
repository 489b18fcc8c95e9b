package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/oauthtest"
)

// TestMetrics checks /metrics counts requests by route, token requests by
// config and outcome, outbound requests by host and SSRF refusals, and that
// no label carries a user id, an installation id or a token.
func TestMetrics(t *testing.T) {
	e := newEnv(t)
	p := newProvider(t, e, oauthtest.AuthBasic)
	f := newFlowApp(t, e, providerConfig(p, "basic"))
	f.connect(t, p, "user-canary-77")
	f.addAPI(t, "me", p.URL())
	if r := e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-canary-77/apis/me/proxy/api/me", nil, ""); r.status != 200 {
		t.Fatalf("call: %d %s", r.status, r.body)
	}
	// An API on the cloud metadata address: the guard refuses it.
	e.must(201, "POST", "/v1/apps/acme/apis", e.key, map[string]any{"name": "metadata", "base_url": "http://169.254.169.254"})
	if r := e.proxy(e.url, "GET", "/v1/installations/"+f.instID+"/users/user-canary-77/apis/metadata/proxy/latest", nil, ""); r.status != http.StatusBadGateway {
		t.Fatalf("metadata call: %d %s", r.status, r.body)
	}
	e.call("GET", "/no/such/route/user-canary-77", "", nil)

	r := e.call("GET", "/metrics", "", nil)
	if r.status != 200 {
		t.Fatalf("/metrics: %d", r.status)
	}
	out := string(r.body)
	for _, want := range []string{
		`latchkey_http_requests_total{method="GET",route="/v1/installations/:installation/users/:user/apis/:api/proxy/*",status="200"} 1`,
		`latchkey_http_requests_total{method="POST",route="/v1/apps",status="201"} 1`,
		`latchkey_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`latchkey_token_requests_total{config_id="` + f.configID + `",kind="exchange",outcome="ok"} 1`,
		`latchkey_ssrf_refusals_total 1`,
		`latchkey_outbound_errors_total{host="169.254.169.254",reason="refused"} 1`,
		`latchkey_outbound_request_duration_seconds_count{host="127.0.0.1"} 2`,
		`go_sql_max_open_connections{db_name="latchkey"}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	tokens := f.resolve("user-canary-77").Values
	for name, s := range map[string]string{"user id": "user-canary-77", "installation id": f.instID,
		"access token": tokens["access_token"], "client secret": testClientSecret} {
		if strings.Contains(out, s) {
			t.Errorf("/metrics contains the %s", name)
		}
	}
}
