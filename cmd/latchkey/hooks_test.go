package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/config"
)

const (
	slackSigningSecret = "8f742231b10e8888abcd99yyyzzz85a5"
	githubSecret       = "It's a Secret to Everybody"
	zoomSecret         = "zoom-secret-token-4711"
	graphClientState   = "graph-client-state-0815"
)

// hook posts body to a webhook source's URL as a provider would, and checks
// the exchange against openapi.yaml like env.call.
func (e *env) hook(url string, header map[string]string, body string) response {
	e.t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	e.mu.Lock()
	e.bodies.Write(raw)
	e.bodies.WriteByte('\n')
	e.mu.Unlock()
	checkSpec(e.t, req, resp, raw)
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

func hmacHex(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// slackHeaders signs body as Slack does (v0 signing, "v0:<ts>:<body>").
func slackHeaders(secret string, at time.Time, body string) map[string]string {
	ts := strconv.FormatInt(at.Unix(), 10)
	return map[string]string{"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + hmacHex(secret, "v0:"+ts+":"+body)}
}

// stripeHeaders signs body as Stripe does (Stripe-Signature: t=,v1=).
func stripeHeaders(secret string, at time.Time, body string) map[string]string {
	ts := strconv.FormatInt(at.Unix(), 10)
	return map[string]string{"Stripe-Signature": "t=" + ts + ",v1=" + hmacHex(secret, ts+"."+body)}
}

// TestProviderWebhooks: events from Slack, GitHub, Stripe, Zoom and
// Microsoft Graph, signed as each documents, are verified, answered,
// routed to their installation and user, and delivered once as
// provider.event, byte for byte unless they carry a secret (Graph's
// clientState arrives redacted); forged, replayed, unroutable and
// oversized ones are refused with a 4xx, counted, and never delivered.
func TestProviderWebhooks(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": "Acme", "slug": "acme"})
	for _, d := range []map[string]any{
		{"key": "slack_signing_secret", "secret": true, "visibility": "hidden", "default": slackSigningSecret},
		{"key": "github_secret", "secret": true, "visibility": "hidden", "default": githubSecret},
		{"key": "zoom_secret", "secret": true, "visibility": "hidden", "default": zoomSecret},
		{"key": "graph_client_state", "secret": true, "visibility": "hidden", "default": graphClientState},
		{"key": "stripe_secret", "secret": true},
		{"key": "slack_team_id"},
		{"key": "github_installation_id"},
		{"key": "stripe_account"},
		{"key": "slack_user_id", "level": "user"},
	} {
		e.must(201, "POST", "/v1/apps/acme/settings", e.key, d)
	}
	install := func(org string, values map[string]string) string {
		return e.must(201, "POST", "/v1/installations", e.key, map[string]any{"app_id": "acme", "organization_id": org, "values": values})["id"].(string)
	}
	inst1 := install("org-1", map[string]string{"slack_team_id": "T1", "github_installation_id": "111", "stripe_account": "acct_1", "stripe_secret": "whsec_one"})
	inst2 := install("org-2", map[string]string{"slack_team_id": "T2", "stripe_account": "acct_2", "stripe_secret": "whsec_two"})
	install("org-3", map[string]string{"slack_team_id": "T3"})
	install("org-3b", map[string]string{"slack_team_id": "T3"}) // claims org-3's team too
	e.must(200, "PATCH", "/v1/installations/"+inst1+"/users/user-7/settings", e.key, map[string]any{"values": map[string]any{"slack_user_id": "U7"}})
	e.must(200, "PATCH", "/v1/installations/"+inst1+"/users/user-8/settings", e.key, map[string]any{"values": map[string]any{"slack_user_id": "U8"}})

	rc := &receiver{}
	platform := httptest.NewServer(rc)
	t.Cleanup(platform.Close)
	whsec := e.must(201, "POST", "/v1/apps/acme/webhooks", e.key, map[string]any{"url": platform.URL, "events": []string{"provider.event"}})["secret"].(string)

	// Saving checks the source against the app's settings.
	wantFields(t, e.must(422, "POST", "/v1/apps/acme/webhook-sources", e.key, map[string]any{
		"name": "bad",
		"verification": map[string]any{"method": "hmac_sha256", "secret_setting": "slack_team_id",
			"signature_header": "X-Slack-Signature", "base_string": "v0:<<timestamp>>:<<nope>>"},
		"routing": map[string]any{"organization": map[string]any{"path": "team_id", "setting": "stripe_secret"}},
	}), "verification.secret_setting", "verification.base_string", "routing.organization.path", "routing.organization.setting")

	source := func(body map[string]any) (string, string) {
		s := e.must(201, "POST", "/v1/apps/acme/webhook-sources", e.key, body)
		return s["id"].(string), s["url"].(string)
	}
	slackID, slackURL := source(map[string]any{
		"name": "slack",
		"verification": map[string]any{"method": "hmac_sha256", "secret_setting": "slack_signing_secret",
			"signature_header": "X-Slack-Signature", "signature_prefix": "v0=",
			"base_string": "v0:<<timestamp>>:<<body>>", "timestamp_header": "X-Slack-Request-Timestamp"},
		"handshake":  "slack",
		"routing":    map[string]any{"organization": map[string]any{"path": "$.team_id", "setting": "slack_team_id"}, "user": map[string]any{"path": "$.event.user", "setting": "slack_user_id"}},
		"event_type": map[string]any{"path": "$.event.type"},
		"event_id":   map[string]any{"path": "$.event_id"},
	})
	_, githubURL := source(map[string]any{
		"name":         "github",
		"verification": map[string]any{"method": "hmac_sha256", "secret_setting": "github_secret", "signature_header": "X-Hub-Signature-256", "signature_prefix": "sha256="},
		"routing":      map[string]any{"organization": map[string]any{"path": "$.installation.id", "setting": "github_installation_id"}},
		"event_type":   map[string]any{"header": "X-GitHub-Event"},
		"event_id":     map[string]any{"header": "X-GitHub-Delivery"},
	})
	_, stripeURL := source(map[string]any{
		"name":         "stripe",
		"verification": map[string]any{"method": "hmac_sha256", "secret_setting": "stripe_secret", "signature_header": "Stripe-Signature", "signature_format": "stripe"},
		"routing":      map[string]any{"organization": map[string]any{"path": "$.account", "setting": "stripe_account"}},
		"event_type":   map[string]any{"path": "$.type"},
		"event_id":     map[string]any{"path": "$.id"},
	})
	_, zoomURL := source(map[string]any{
		"name": "zoom",
		"verification": map[string]any{"method": "hmac_sha256", "secret_setting": "zoom_secret", "signature_header": "x-zm-signature",
			"signature_prefix": "v0=", "base_string": "v0:<<timestamp>>:<<body>>", "timestamp_header": "x-zm-request-timestamp"},
		"handshake": "zoom",
		"routing":   map[string]any{"organization": map[string]any{"path": "$.payload.account_id", "setting": "slack_team_id"}},
	})
	_, graphURL := source(map[string]any{
		"name":         "graph",
		"verification": map[string]any{"method": "token", "secret_setting": "graph_client_state", "token_path": "$.value[0].clientState"},
		"handshake":    "graph",
		"routing":      map[string]any{"organization": map[string]any{"path": "$.value[0].tenantId", "setting": "slack_team_id"}},
	})
	if !strings.HasPrefix(slackURL, e.url+"/hooks/") || len(slackID) != 43 || !strings.HasSuffix(slackURL, slackID) {
		t.Fatalf("source url %q, id %q", slackURL, slackID)
	}
	got := e.must(200, "GET", "/v1/apps/acme/webhook-sources/"+slackID, e.key, nil)
	if v := got["verification"].(map[string]any); v["encoding"] != "hex" || v["signature_format"] != "plain" || v["tolerance_seconds"] != float64(300) {
		t.Errorf("defaults not filled in: %v", v)
	}
	e.must(404, "GET", "/v1/apps/acme/webhook-sources/"+slackID, e.other, nil)
	if n := len(e.must(200, "GET", "/v1/apps/acme/webhook-sources", e.key, nil)["webhook_sources"].([]any)); n != 5 {
		t.Errorf("%d sources listed, want 5", n)
	}

	now := time.Now()
	accepted := func(r response, want string) {
		t.Helper()
		if r.status != 200 || !strings.Contains(string(r.body), `"status":"`+want+`"`) {
			t.Fatalf("status %d %s, want 200 %s", r.status, r.body, want)
		}
	}
	refused := func(r response, status int) {
		t.Helper()
		if r.status != status || r.header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("status %d %s, want %d problem", r.status, r.body, status)
		}
	}

	// Slack: the URL check, then an event routed to org-1 and user-7.
	challenge := `{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`
	r := e.hook(slackURL, slackHeaders(slackSigningSecret, now, challenge), challenge)
	if r.status != 200 || string(r.body) != `{"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}`+"\n" {
		t.Fatalf("url_verification: %d %s", r.status, r.body)
	}
	refused(e.hook(slackURL, map[string]string{"X-Slack-Request-Timestamp": "1", "X-Slack-Signature": "v0=00"}, challenge), 401)
	slackEvent := `{"token":"x","team_id":"T1","event":{"type":"message","user":"U7","text":"hi"},"type":"event_callback","event_id":"Ev01"}`
	accepted(e.hook(slackURL, slackHeaders(slackSigningSecret, now, slackEvent), slackEvent), "accepted")
	// Slack retries: same event id, new timestamp and signature.
	accepted(e.hook(slackURL, slackHeaders(slackSigningSecret, now.Add(time.Second), slackEvent), slackEvent), "duplicate")
	// A captured request replayed after 10 minutes, and a forged one.
	refused(e.hook(slackURL, slackHeaders(slackSigningSecret, now.Add(-10*time.Minute), slackEvent), slackEvent), 401)
	forged := strings.Replace(slackEvent, "Ev01", "Ev02", 1)
	r = e.hook(slackURL, slackHeaders("not-the-secret", now, forged), forged)
	refused(r, 401)
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Signature ") {
		t.Errorf("401 without a challenge: %q", r.header.Get("WWW-Authenticate"))
	}
	tampered := strings.Replace(slackEvent, `"T1"`, `"T2"`, 1)
	refused(e.hook(slackURL, slackHeaders(slackSigningSecret, now, slackEvent), tampered), 401)
	// Signed, but for a team no installation has, or that two claim.
	unknownTeam := strings.NewReplacer(`"T1"`, `"T9"`, "Ev01", "Ev03").Replace(slackEvent)
	refused(e.hook(slackURL, slackHeaders(slackSigningSecret, now, unknownTeam), unknownTeam), 404)
	sharedTeam := strings.NewReplacer(`"T1"`, `"T3"`, "Ev01", "Ev04").Replace(slackEvent)
	refused(e.hook(slackURL, slackHeaders(slackSigningSecret, now, sharedTeam), sharedTeam), 404)
	// A user no one has: the event is the installation's alone.
	noUser := strings.NewReplacer(`"U7"`, `"U99"`, "Ev01", "Ev05").Replace(slackEvent)
	accepted(e.hook(slackURL, slackHeaders(slackSigningSecret, now, noUser), noUser), "accepted")
	refused(e.hook(e.url+"/hooks/"+strings.Repeat("A", 43), slackHeaders(slackSigningSecret, now, slackEvent), slackEvent), 404)
	refused(e.hook(e.url+"/hooks/short", slackHeaders(slackSigningSecret, now, slackEvent), slackEvent), 404)
	big := `{"team_id":"T1","pad":"` + strings.Repeat("x", 1<<20) + `"}`
	refused(e.hook(slackURL, slackHeaders(slackSigningSecret, now, big), big), 413)

	// GitHub: X-Hub-Signature-256 over the raw body; type and id in headers.
	ghBody := `{"action":"opened","installation":{"id":111},"issue":{"number":1}}`
	ghHeaders := map[string]string{"X-Hub-Signature-256": "sha256=" + hmacHex(githubSecret, ghBody),
		"X-GitHub-Event": "issues", "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
	accepted(e.hook(githubURL, ghHeaders, ghBody), "accepted")
	accepted(e.hook(githubURL, ghHeaders, ghBody), "duplicate") // a redelivery
	ghHeaders["X-Hub-Signature-256"] = "sha256=" + hmacHex("wrong", ghBody)
	refused(e.hook(githubURL, ghHeaders, ghBody), 401)

	// Stripe: one endpoint secret per installation, found by routing.
	stripeBody := `{"id":"evt_1","type":"invoice.paid","account":"acct_2"}`
	accepted(e.hook(stripeURL, stripeHeaders("whsec_two", now, stripeBody), stripeBody), "accepted")
	other := strings.Replace(stripeBody, "evt_1", "evt_2", 1)
	refused(e.hook(stripeURL, stripeHeaders("whsec_one", now, other), other), 401) // org-1's secret for org-2's account
	nobody := strings.Replace(other, "acct_2", "acct_9", 1)
	refused(e.hook(stripeURL, stripeHeaders("whsec_two", now, nobody), nobody), 401)
	refused(e.hook(stripeURL, stripeHeaders("whsec_two", now.Add(-6*time.Minute), other), other), 401)

	// Zoom: the URL check answers the plain token and its HMAC.
	zoomCheck := `{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}`
	ts := strconv.FormatInt(now.Unix(), 10)
	r = e.hook(zoomURL, map[string]string{"x-zm-request-timestamp": ts, "x-zm-signature": "v0=" + hmacHex(zoomSecret, "v0:"+ts+":"+zoomCheck)}, zoomCheck)
	var zoomAnswer map[string]string
	json.Unmarshal(r.body, &zoomAnswer)
	if r.status != 200 || zoomAnswer["plainToken"] != "qgg8vlvZRS6UYooatFL8Aw" || zoomAnswer["encryptedToken"] != hmacHex(zoomSecret, "qgg8vlvZRS6UYooatFL8Aw") {
		t.Fatalf("endpoint.url_validation: %d %s", r.status, r.body)
	}

	// Microsoft Graph: the validation token echoed, then a notification
	// whose clientState is the verification token.
	req, _ := http.NewRequest("POST", graphURL+"?validationToken=Validation%3A+Testing+client+application+reachability", nil)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	checkSpec(t, req, resp, raw)
	if resp.StatusCode != 200 || string(raw) != "Validation: Testing client application reachability" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("validationToken: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	graphBody := `{"value":[{"subscriptionId":"s1","clientState":"` + graphClientState + `","tenantId":"T2","changeType":"created"}]}`
	accepted(e.hook(graphURL, nil, graphBody), "accepted")
	refused(e.hook(graphURL, nil, strings.Replace(graphBody, graphClientState, "guess", 1)), 401)

	// A Slack slash command comes as a form, signed the same way.
	command := "token=x&team_id=T2&user_id=U8&command=%2Fweather&text=94070&trigger_id=13345224609.738474920.8088930838d88f008e0"
	slack := slackHeaders(slackSigningSecret, now, command)
	slack["Content-Type"] = "application/x-www-form-urlencoded"
	accepted(e.hook(slackURL, slack, command), "accepted")

	// Delivered: one provider.event per accepted event, and nothing else.
	deliver(t, e.jobs)
	reqs, bodies := rc.requests()
	if len(reqs) != 6 {
		t.Fatalf("the platform got %d events, want 6 (slack 3, github, stripe, graph)", len(reqs))
	}
	type data struct {
		SourceID, InstallationID, OrganizationID, UserID, EventType, EventID, ContentType, Body, BodyEncoding string
		Redacted                                                                                              bool
	}
	var events []data
	for i, b := range bodies {
		if !validSignature(whsec, reqs[i].Header.Get("Latchkey-Signature"), b) || reqs[i].Header.Get("Latchkey-Event") != "provider.event" {
			t.Errorf("delivery %d: event %q, signature %q", i, reqs[i].Header.Get("Latchkey-Event"), reqs[i].Header.Get("Latchkey-Signature"))
		}
		if err := loadSpec(t).CheckSchema("Event", []byte(b)); err != nil {
			t.Errorf("delivery %d does not match openapi.yaml: %v\n%s", i, err, b)
		}
		var ev struct {
			Type string
			Data struct {
				SourceID       string `json:"source_id"`
				InstallationID string `json:"installation_id"`
				OrganizationID string `json:"organization_id"`
				UserID         string `json:"user_id"`
				EventType      string `json:"event_type"`
				EventID        string `json:"event_id"`
				ContentType    string `json:"content_type"`
				Body           string `json:"body"`
				BodyEncoding   string `json:"body_encoding"`
				Redacted       bool   `json:"redacted"`
			}
		}
		if err := json.Unmarshal([]byte(b), &ev); err != nil || ev.Type != "provider.event" {
			t.Fatalf("delivery %d: %v %s", i, err, b)
		}
		events = append(events, data(ev.Data))
	}
	want := []data{
		{slackID, inst1, "org-1", "user-7", "message", "Ev01", "application/json", slackEvent, "text", false},
		{slackID, inst1, "org-1", "", "message", "Ev05", "application/json", noUser, "text", false},
	}
	for i, w := range want {
		if events[i] != w {
			t.Errorf("event %d = %+v\nwant %+v", i, events[i], w)
		}
	}
	if ev := events[2]; ev.InstallationID != inst1 || ev.EventType != "issues" || ev.EventID != "72d3162e-cc78-11e3-81ab-4c9367dc0958" || ev.Body != ghBody || ev.Redacted {
		t.Errorf("github event = %+v", ev)
	}
	if ev := events[3]; ev.InstallationID != inst2 || ev.EventType != "invoice.paid" || ev.EventID != "evt_1" || ev.Body != stripeBody || ev.Redacted {
		t.Errorf("stripe event = %+v", ev)
	}
	// Graph's clientState is the verification token, in every
	// notification: it is replaced, and nothing else is.
	graphRedacted := strings.Replace(graphBody, graphClientState, "[REDACTED]", 1)
	if ev := events[4]; ev.InstallationID != inst2 || ev.Body != graphRedacted || ev.BodyEncoding != "text" || !ev.Redacted {
		t.Errorf("graph event = %+v\nwant body %s, redacted", ev, graphRedacted)
	}
	if ev := events[5]; ev.InstallationID != inst2 || ev.Body != command || ev.ContentType != "application/x-www-form-urlencoded" || ev.Redacted {
		t.Errorf("slash command event = %+v", ev)
	}
	var stored []string
	if err := e.db.Raw("SELECT payload FROM webhook_deliveries").Scan(&stored).Error; err != nil || len(stored) != 6 {
		t.Fatalf("%d stored deliveries, %v; want 6", len(stored), err)
	}
	for _, p := range stored {
		if strings.Contains(p, graphClientState) {
			t.Errorf("a stored delivery holds Graph's clientState: %s", p)
		}
	}

	// Counted by outcome; no label names a source, a team or a secret.
	metrics := string(e.call("GET", "/metrics", "", nil).body)
	for outcome, n := range map[string]int{"accepted": 6, "duplicate": 2, "handshake": 3, "unverified": 9,
		"unroutable": 1, "ambiguous": 1, "unknown_source": 2, "too_large": 1} {
		if want := `latchkey_hook_events_total{outcome="` + outcome + `"} ` + strconv.Itoa(n) + "\n"; !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", strings.TrimSpace(want))
		}
	}
	if strings.Contains(metrics, slackID) || strings.Contains(metrics, "T1") {
		t.Error("/metrics names a source or a team")
	}
	for name, s := range map[string]string{"Slack secret": slackSigningSecret, "GitHub secret": githubSecret, "Zoom secret": zoomSecret,
		"Graph client state": graphClientState, "Stripe secret": "whsec_one", "other Stripe secret": "whsec_two"} {
		if strings.Contains(e.output(), s) {
			t.Errorf("a response or log line contains the %s", name)
		}
	}

	// Updated: objects replaced whole, checked again; the URL stays.
	path := "/v1/apps/acme/webhook-sources/" + slackID
	upd := e.must(200, "PATCH", path, e.key, map[string]any{"name": "slack (prod)", "event_id": nil, "handshake": ""})
	if upd["name"] != "slack (prod)" || upd["url"] != slackURL || upd["handshake"] != "" || upd["event_id"].(map[string]any)["path"] != "$.event_id" {
		t.Errorf("after PATCH: %v", upd)
	}
	wantFields(t, e.must(422, "PATCH", path, e.key, map[string]any{
		"routing": map[string]any{"organization": map[string]any{"header": "X Team", "setting": "slack_user_id"}}}),
		"routing.organization.header", "routing.organization.setting")
	// Bounds the spec states are the server's.
	for _, tt := range []struct {
		field    string
		ok, over any
	}{
		{"name", strings.Repeat("n", 200), strings.Repeat("n", 201)},
		{"name", "n", " "},
		{"verification", map[string]any{"method": "token", "secret_setting": "graph_client_state", "token_header": "Authorization", "signature_prefix": "Bearer "},
			map[string]any{"method": "token", "secret_setting": "graph_client_state", "token_header": "Authorization", "signature_prefix": strings.Repeat("p", 51)}},
		{"verification", map[string]any{"method": "hmac_sha256", "secret_setting": "github_secret", "signature_header": "X-Sig", "timestamp_header": "X-Ts", "tolerance_seconds": 86400},
			map[string]any{"method": "hmac_sha256", "secret_setting": "github_secret", "signature_header": "X-Sig", "timestamp_header": "X-Ts", "tolerance_seconds": 86401}},
	} {
		e.must(200, "PATCH", path, e.key, map[string]any{tt.field: tt.ok})
		e.must(422, "PATCH", path, e.key, map[string]any{tt.field: tt.over})
		if e.specAccepts("PATCH", path, e.key, map[string]any{tt.field: tt.over}) {
			t.Errorf("openapi.yaml accepts %s past its bound", tt.field)
		}
	}

	// Deleted: the URL is gone.
	e.must(204, "DELETE", "/v1/apps/acme/webhook-sources/"+slackID, e.key, nil)
	refused(e.hook(slackURL, slackHeaders(slackSigningSecret, now, slackEvent), slackEvent), 404)
}

// TestProviderEventRedacted: a provider's event that echoes an
// installation's secrets (the client secret, as is and JSON-escaped both
// ways, in a JSON body, a text body and a body that is not UTF-8; the
// user's token in a header the event id is read from) is delivered with
// each of them replaced, and with nothing else changed; neither the
// delivered payload, nor the stored delivery, nor the repeat check's row,
// nor any log line or response holds them.
func TestProviderEventRedacted(t *testing.T) {
	const (
		hookSecret   = "acme-hook-signing-secret"
		clientSecret = `cs-"q"<x>&y/9Z+`
		userToken    = "at-user7-0123456789"
	)
	e := newEnv(t)
	e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": "Acme", "slug": "acme"})
	for _, d := range []map[string]any{
		{"key": "hook_secret", "secret": true, "visibility": "hidden", "default": hookSecret},
		{"key": "client_secret", "secret": true},
		{"key": "account"},
		{"key": "acme_user", "level": "user"},
		{"key": "access_token", "level": "user", "secret": true},
	} {
		e.must(201, "POST", "/v1/apps/acme/settings", e.key, d)
	}
	inst := e.must(201, "POST", "/v1/installations", e.key, map[string]any{"app_id": "acme", "organization_id": "org-1",
		"values": map[string]string{"account": "A1", "client_secret": clientSecret}})["id"].(string)
	e.must(200, "PATCH", "/v1/installations/"+inst+"/users/user-7/settings", e.key,
		map[string]any{"values": map[string]any{"acme_user": "U7", "access_token": userToken}})

	rc := &receiver{}
	platform := httptest.NewServer(rc)
	t.Cleanup(platform.Close)
	e.must(201, "POST", "/v1/apps/acme/webhooks", e.key, map[string]any{"url": platform.URL, "events": []string{"provider.event"}})
	url := e.must(201, "POST", "/v1/apps/acme/webhook-sources", e.key, map[string]any{
		"name":         "acme",
		"verification": map[string]any{"method": "hmac_sha256", "secret_setting": "hook_secret", "signature_header": "X-Acme-Signature", "signature_prefix": "sha256="},
		"routing": map[string]any{"organization": map[string]any{"header": "X-Acme-Account", "setting": "account"},
			"user": map[string]any{"header": "X-Acme-User", "setting": "acme_user"}},
		"event_type": map[string]any{"header": "X-Acme-Event"},
		"event_id":   map[string]any{"header": "X-Acme-Delivery"},
	})["url"].(string)

	escaped, _ := json.Marshal(clientSecret) // "cs-\"q\"\u003cx\u003e\u0026y/9Z+"
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(clientSecret)
	noHTML := strings.TrimSuffix(b.String(), "\n") // "cs-\"q\"<x>&y/9Z+"
	forms := map[string]string{
		"plain":                clientSecret,
		"JSON-escaped":         string(escaped[1 : len(escaped)-1]),
		"JSON-escaped no HTML": noHTML[1 : len(noHTML)-1],
		"user token":           userToken,
		"signing secret":       hookSecret,
	}
	if forms["JSON-escaped"] == clientSecret || forms["JSON-escaped no HTML"] == clientSecret || forms["JSON-escaped"] == forms["JSON-escaped no HTML"] {
		t.Fatalf("the client secret does not test JSON escaping: %v", forms)
	}

	// Each event is a template: %[1]s where a secret's form is. Sent with
	// the forms, delivered with [REDACTED] in their place.
	type event struct {
		contentType, id, tmpl string
		fill                  []any
	}
	events := []event{
		{"application/json", "evt-1", `{"type":"ping","text":"nothing secret here"}`, nil},
		{"application/json", "evt-2", `{"error":"invalid_client","error_description":"bad client_secret \"%s\"","echo":"%s","token":"%s"}`,
			[]any{forms["JSON-escaped"], forms["JSON-escaped no HTML"], forms["user token"]}},
		{"text/plain; charset=utf-8", "evt-3", `you sent client_secret=%s and signed with %s`, []any{forms["plain"], forms["signing secret"]}},
		{"application/octet-stream", "evt-4", "\xff\xfe\x00%s\x00\x01", []any{forms["plain"]}},
		{"application/json", "evt-" + userToken, `{"type":"ping"}`, nil}, // the event id echoes the token
	}
	marks := func(n int) []any {
		m := make([]any, n)
		for i := range m {
			m[i] = "[REDACTED]"
		}
		return m
	}
	for _, ev := range events {
		body := fmt.Sprintf(ev.tmpl, ev.fill...)
		if len(ev.fill) == 0 {
			body = ev.tmpl
		}
		r := e.hook(url, map[string]string{"Content-Type": ev.contentType, "X-Acme-Account": "A1", "X-Acme-User": "U7",
			"X-Acme-Event": "notice", "X-Acme-Delivery": ev.id, "X-Acme-Signature": "sha256=" + hmacHex(hookSecret, body)}, body)
		if r.status != 200 || !strings.Contains(string(r.body), `"accepted"`) {
			t.Fatalf("event %s: %d %s", ev.id, r.status, r.body)
		}
	}

	deliver(t, e.jobs)
	_, bodies := rc.requests()
	if len(bodies) != len(events) {
		t.Fatalf("the platform got %d events, want %d", len(bodies), len(events))
	}
	for i, b := range bodies {
		if err := loadSpec(t).CheckSchema("Event", []byte(b)); err != nil {
			t.Errorf("delivery %d does not match openapi.yaml: %v\n%s", i, err, b)
		}
		var got struct {
			Data struct {
				UserID       string `json:"user_id"`
				EventID      string `json:"event_id"`
				Body         string `json:"body"`
				BodyEncoding string `json:"body_encoding"`
				Redacted     bool   `json:"redacted"`
			}
		}
		if err := json.Unmarshal([]byte(b), &got); err != nil {
			t.Fatal(err)
		}
		ev := events[i]
		want, wantEncoding, wantID := ev.tmpl, "text", ev.id
		if len(ev.fill) > 0 {
			want = fmt.Sprintf(ev.tmpl, marks(len(ev.fill))...)
		}
		body := got.Data.Body
		if ev.contentType == "application/octet-stream" {
			wantEncoding = "base64"
			raw, err := base64.StdEncoding.DecodeString(body)
			if err != nil {
				t.Fatalf("event %s: body is not base64: %v", ev.id, err)
			}
			body = string(raw)
		}
		if strings.Contains(ev.id, userToken) {
			wantID = "evt-[REDACTED]"
		}
		wantRedacted := len(ev.fill) > 0 || wantID != ev.id
		if body != want || got.Data.BodyEncoding != wantEncoding || got.Data.EventID != wantID || got.Data.Redacted != wantRedacted || got.Data.UserID != "user-7" {
			t.Errorf("event %s delivered as %+v (body %q)\nwant body %q, %s, event_id %s, redacted %v", ev.id, got.Data, body, want, wantEncoding, wantID, wantRedacted)
		}
	}

	var stored, seen []string
	if err := e.db.Raw("SELECT payload FROM webhook_deliveries").Scan(&stored).Error; err != nil || len(stored) != len(events) {
		t.Fatalf("%d stored deliveries, %v", len(stored), err)
	}
	if err := e.db.Raw("SELECT event_id FROM webhook_events_seen").Scan(&seen).Error; err != nil || len(seen) != len(events) {
		t.Fatalf("%d seen event ids, %v", len(seen), err)
	}
	places := map[string]string{"output (responses and logs)": e.output(), "deliveries sent": strings.Join(bodies, "\n"),
		"deliveries stored": strings.Join(stored, "\n"), "seen event ids": strings.Join(seen, "\n")}
	for place, text := range places {
		for name, form := range forms {
			// The payload is JSON: a form may be in it as is or escaped again.
			again, _ := json.Marshal(form)
			if strings.Contains(text, form) || strings.Contains(text, string(again[1:len(again)-1])) {
				t.Errorf("the %s hold the %s form of a secret", place, name)
			}
		}
		if strings.Contains(text, base64.StdEncoding.EncodeToString([]byte(clientSecret))) {
			t.Errorf("the %s hold the client secret in base64", place)
		}
	}
}

// TestProviderWebhookRateLimit: with LATCHKEY_HOOK_RATE and _BURST set
// low, a source's requests over the burst answer 429 with Retry-After (as
// openapi.yaml says, checked by e.hook), whatever they carry, before the
// body is read; other sources are not held up; the refusals are counted.
// The rate is so low (one request in 1000 seconds) that no request of the
// test can find the bucket refilled; refilling is TestReceiveRateLimited's
// (app/hooks), on a clock of its own.
func TestProviderWebhookRateLimit(t *testing.T) {
	e := newEnvWith(t, func(c *config.Config) { c.HookRate, c.HookBurst = 0.001, 2 })
	e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": "Acme", "slug": "acme"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "github_secret", "secret": true, "visibility": "hidden", "default": githubSecret})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "github_installation_id"})
	e.must(201, "POST", "/v1/installations", e.key, map[string]any{"app_id": "acme", "organization_id": "org-1", "values": map[string]string{"github_installation_id": "111"}})
	source := func(name string) string {
		return e.must(201, "POST", "/v1/apps/acme/webhook-sources", e.key, map[string]any{
			"name":         name,
			"verification": map[string]any{"method": "hmac_sha256", "secret_setting": "github_secret", "signature_header": "X-Hub-Signature-256", "signature_prefix": "sha256="},
			"routing":      map[string]any{"organization": map[string]any{"path": "$.installation.id", "setting": "github_installation_id"}},
			"event_id":     map[string]any{"header": "X-GitHub-Delivery"},
		})["url"].(string)
	}
	first, second := source("github"), source("github, the other app")
	body := `{"action":"opened","installation":{"id":111}}`
	signed := func(id string) map[string]string {
		return map[string]string{"X-Hub-Signature-256": "sha256=" + hmacHex(githubSecret, body), "X-GitHub-Delivery": id}
	}

	if r := e.hook(first, signed("d-1"), body); r.status != 200 {
		t.Fatalf("first event: %d %s", r.status, r.body)
	}
	if r := e.hook(first, map[string]string{"X-Hub-Signature-256": "sha256=00"}, body); r.status != 401 {
		t.Fatalf("a forgery within the burst: %d %s, want 401", r.status, r.body) // it counts all the same
	}
	for name, r := range map[string]response{
		"a signed event":           e.hook(first, signed("d-2"), body),
		"a body over 1 MiB":        e.hook(first, nil, `{"pad":"`+strings.Repeat("x", 2<<20)+`"}`),
		"a forgery over the limit": e.hook(first, map[string]string{"X-Hub-Signature-256": "sha256=00"}, body),
	} {
		retry, err := strconv.Atoi(r.header.Get("Retry-After"))
		if r.status != 429 || r.header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(r.body), `"code":"too_many_requests"`) {
			t.Errorf("%s over the limit: %d %s, want a 429 problem", name, r.status, r.body)
		}
		if err != nil || retry < 1 || retry > 1000 {
			t.Errorf("%s over the limit: Retry-After %q, want 1 to 1000 seconds", name, r.header.Get("Retry-After"))
		}
	}
	if r := e.hook(second, signed("d-3"), body); r.status != 200 {
		t.Fatalf("another source is held up by the first one's requests: %d %s", r.status, r.body)
	}

	metrics := string(e.call("GET", "/metrics", "", nil).body)
	for outcome, n := range map[string]int{"accepted": 2, "unverified": 1, "rate_limited": 3} {
		if want := `latchkey_hook_events_total{outcome="` + outcome + `"} ` + strconv.Itoa(n) + "\n"; !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", strings.TrimSpace(want))
		}
	}
	if strings.Contains(metrics, `outcome="too_large"`) {
		t.Error("a request over the limit had its body read")
	}
}
