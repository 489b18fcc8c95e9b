package hooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/errs"
)

// The sources as the README sets them up, defaults applied.
var (
	slackVerification = Verification{Method: HMACSHA256, SecretSetting: "signing_secret",
		SignatureHeader: "X-Slack-Signature", SignaturePrefix: "v0=", BaseString: "v0:<<timestamp>>:<<body>>",
		TimestampHeader: "X-Slack-Request-Timestamp"}
	githubVerification = Verification{Method: HMACSHA256, SecretSetting: "signing_secret",
		SignatureHeader: "X-Hub-Signature-256", SignaturePrefix: "sha256="}
	stripeVerification = Verification{Method: HMACSHA256, SecretSetting: "signing_secret",
		SignatureHeader: "Stripe-Signature", SignatureFormat: Stripe}
	zoomVerification = Verification{Method: HMACSHA256, SecretSetting: "signing_secret",
		SignatureHeader: "x-zm-signature", SignaturePrefix: "v0=", BaseString: "v0:<<timestamp>>:<<body>>",
		TimestampHeader: "x-zm-request-timestamp"}
	shopifyVerification = Verification{Method: HMACSHA256, SecretSetting: "signing_secret",
		SignatureHeader: "X-Shopify-Hmac-Sha256", Encoding: "base64"}
	slackTokenVerification = Verification{Method: Token, SecretSetting: "signing_secret", TokenPath: "$.token"}
)

func withDefaults(v Verification) Verification {
	s := Source{Verification: v}
	s.applyDefaults()
	return s.Verification
}

func hexMAC(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// TestVerifyProviders checks signatures made the providers' documented
// ways, two of them the providers' own published examples.
func TestVerifyProviders(t *testing.T) {
	// https://api.slack.com/authentication/verifying-requests-from-slack
	// (the worked example: its secret, timestamp, body and signature).
	const slackBody = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	slackAt := time.Unix(1531420618, 0)
	// https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
	// (the test values: secret, payload and X-Hub-Signature-256).
	const githubSig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

	now := time.Unix(1700000000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	stripeBody := `{"id":"evt_1","type":"invoice.paid","account":"acct_1"}`
	zoomBody := `{"event":"meeting.started","payload":{"account_id":"AAAA"}}`
	shopifyBody := `{"id":820982911946154508}`
	shopifyMAC := hmac.New(sha256.New, []byte("shpss_secret"))
	shopifyMAC.Write([]byte(shopifyBody))

	tests := []struct {
		name    string
		v       Verification
		secret  string
		header  map[string]string
		body    string
		now     time.Time
		wantErr string // "" for verified
	}{
		{"slack documented example", slackVerification, "8f742231b10e8888abcd99yyyzzz85a5",
			map[string]string{"X-Slack-Request-Timestamp": "1531420618", "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"},
			slackBody, slackAt.Add(time.Minute), ""},
		{"slack replayed after the tolerance", slackVerification, "8f742231b10e8888abcd99yyyzzz85a5",
			map[string]string{"X-Slack-Request-Timestamp": "1531420618", "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"},
			slackBody, slackAt.Add(5*time.Minute + time.Second), "more than 300 seconds"},
		{"slack from the future", slackVerification, "8f742231b10e8888abcd99yyyzzz85a5",
			map[string]string{"X-Slack-Request-Timestamp": "1531420618", "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"},
			slackBody, slackAt.Add(-6 * time.Minute), "more than 300 seconds"},
		{"slack with a moved timestamp", slackVerification, "8f742231b10e8888abcd99yyyzzz85a5",
			map[string]string{"X-Slack-Request-Timestamp": "1531420619", "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"},
			slackBody, slackAt, "does not match"},
		{"slack with a changed body", slackVerification, "8f742231b10e8888abcd99yyyzzz85a5",
			map[string]string{"X-Slack-Request-Timestamp": "1531420618", "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"},
			strings.Replace(slackBody, "T1DC2JH3J", "T0000000X", 1), slackAt, "does not match"},
		{"slack with another secret", slackVerification, "another-secret",
			map[string]string{"X-Slack-Request-Timestamp": "1531420618", "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"},
			slackBody, slackAt, "does not match"},
		{"slack without its timestamp", slackVerification, "8f742231b10e8888abcd99yyyzzz85a5",
			map[string]string{"X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"},
			slackBody, slackAt, "no X-Slack-Request-Timestamp header"},
		{"github documented example", githubVerification, "It's a Secret to Everybody",
			map[string]string{"X-Hub-Signature-256": githubSig}, "Hello, World!", now, ""},
		{"github uppercase hex", githubVerification, "It's a Secret to Everybody",
			map[string]string{"X-Hub-Signature-256": "sha256=" + strings.ToUpper(githubSig[7:])}, "Hello, World!", now, ""},
		{"github without the prefix", githubVerification, "It's a Secret to Everybody",
			map[string]string{"X-Hub-Signature-256": githubSig[7:]}, "Hello, World!", now, `does not start with "sha256="`},
		{"github unsigned", githubVerification, "It's a Secret to Everybody", nil, "Hello, World!", now, "no X-Hub-Signature-256 header"},
		{"github truncated signature", githubVerification, "It's a Secret to Everybody",
			map[string]string{"X-Hub-Signature-256": githubSig[:40]}, "Hello, World!", now, "does not match"},
		// https://docs.stripe.com/webhooks#verify-manually: v1 is the hex
		// HMAC-SHA256 of "<t>.<body>", keyed with the whole whsec_ secret.
		{"stripe", stripeVerification, "whsec_test",
			map[string]string{"Stripe-Signature": "t=" + ts + ",v1=" + hexMAC("whsec_test", ts+"."+stripeBody) + ",v0=00"}, stripeBody, now, ""},
		{"stripe rolling secrets", stripeVerification, "whsec_test",
			map[string]string{"Stripe-Signature": "t=" + ts + ",v1=" + hexMAC("whsec_old", ts+"."+stripeBody) + ",v1=" + hexMAC("whsec_test", ts+"."+stripeBody)}, stripeBody, now, ""},
		{"stripe replayed", stripeVerification, "whsec_test",
			map[string]string{"Stripe-Signature": "t=" + ts + ",v1=" + hexMAC("whsec_test", ts+"."+stripeBody)}, stripeBody, now.Add(10 * time.Minute), "more than 300 seconds"},
		{"stripe with another t", stripeVerification, "whsec_test",
			map[string]string{"Stripe-Signature": "t=" + strconv.FormatInt(now.Unix()+1, 10) + ",v1=" + hexMAC("whsec_test", ts+"."+stripeBody)}, stripeBody, now, "does not match"},
		{"stripe v0 only", stripeVerification, "whsec_test",
			map[string]string{"Stripe-Signature": "t=" + ts + ",v0=" + hexMAC("whsec_test", ts+"."+stripeBody)}, stripeBody, now, "is not t=<unix seconds>,v1=<signature>"},
		// https://developers.zoom.us/docs/api/webhooks/#verify-webhook-events
		{"zoom", zoomVerification, "zoom_secret_token",
			map[string]string{"x-zm-request-timestamp": ts, "x-zm-signature": "v0=" + hexMAC("zoom_secret_token", "v0:"+ts+":"+zoomBody)}, zoomBody, now, ""},
		{"zoom timestamp in milliseconds", zoomVerification, "zoom_secret_token",
			map[string]string{"x-zm-request-timestamp": ts + "000", "x-zm-signature": "v0=" + hexMAC("zoom_secret_token", "v0:"+ts+"000:"+zoomBody)}, zoomBody, now, ""},
		// https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook
		{"shopify base64", shopifyVerification, "shpss_secret",
			map[string]string{"X-Shopify-Hmac-Sha256": base64.StdEncoding.EncodeToString(shopifyMAC.Sum(nil))}, shopifyBody, now, ""},
		{"shopify hex is not base64", shopifyVerification, "shpss_secret",
			map[string]string{"X-Shopify-Hmac-Sha256": hex.EncodeToString(shopifyMAC.Sum(nil))}, shopifyBody, now, "does not match"},
		{"slack legacy verification token", slackTokenVerification, "xyzz0WbapA4vBCDEFasx0q6G",
			nil, `{"token":"xyzz0WbapA4vBCDEFasx0q6G","team_id":"T1"}`, now, ""},
		{"wrong verification token", slackTokenVerification, "xyzz0WbapA4vBCDEFasx0q6G",
			nil, `{"token":"xyzz0WbapA4vBCDEFasx0q6","team_id":"T1"}`, now, "does not match"},
		{"no secret stored", githubVerification, "",
			map[string]string{"X-Hub-Signature-256": githubSig}, "Hello, World!", now, "has no value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &request{header: http.Header{}, body: []byte(tt.body), url: "https://latchkey.example/hooks/x"}
			for k, v := range tt.header {
				r.header.Set(k, v)
			}
			v := withDefaults(tt.v)
			err := v.verify(tt.secret, r, tt.now)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("verify: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("verify err = %v, want one containing %q", err, tt.wantErr)
			case err != nil && errs.CodeOf(err) != errs.Unauthorized:
				t.Fatalf("verify err code = %s, want unauthorized", errs.CodeOf(err))
			case err != nil && tt.secret != "" && strings.Contains(err.Error(), tt.secret):
				t.Fatalf("the error shows the secret: %v", err)
			}
		})
	}
}

// TestZoomHandshakeToken checks the encryptedToken Zoom's
// endpoint.url_validation wants: hex HMAC-SHA256 of plainToken.
func TestZoomHandshakeToken(t *testing.T) {
	if got, want := zoomToken("secret", "qgg8vlvZRS6UYooatFL8Aw"), hexMAC("secret", "qgg8vlvZRS6UYooatFL8Aw"); got != want || len(got) != 64 {
		t.Errorf("zoomToken = %s, want %s", got, want)
	}
}

func TestDocument(t *testing.T) {
	r := &request{header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		body: []byte(`team_id=T1&payload=` + "%7B%22team%22%3A%7B%22id%22%3A%22T2%22%7D%7D")}
	if v, _ := r.find(Locator{Path: "$.team_id"}); v != "T1" {
		t.Errorf("form field = %q", v)
	}
	if v, _ := r.find(Locator{Path: "$.payload.team.id"}); v != "T2" {
		t.Errorf("form payload JSON = %q", v)
	}
	r = &request{header: http.Header{}, body: []byte(`{"portalId": 62515, "big": 12345678901234567890, "ok": true, "obj": {}}`)}
	for path, want := range map[string]string{"$.portalId": "62515", "$.big": "12345678901234567890", "$.ok": "true", "$.obj": "", "$.none": ""} {
		if v, _ := r.find(Locator{Path: path}); v != want {
			t.Errorf("%s = %q, want %q", path, v, want)
		}
	}
	r = &request{header: http.Header{}, body: []byte(`{} {}`)}
	if _, err := r.document(); err == nil {
		t.Error("two JSON values parse")
	}
}
