package oauthconfig

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func testConfig() *Config {
	c := &Config{Mappings: []Mapping{{Path: "$.user.id", Setting: "uid"}}}
	c.applyDefaults()
	return c
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name, ctype, body string
		status            int
		wantAccess        string
		wantExpires       int64
		wantErr           string
	}{
		{"json", "application/json", `{"access_token":"a","expires_in":60,"user":{"id":7}}`, 200, "a", 60, ""},
		{"expires as string", "application/json; charset=utf-8", `{"access_token":"a","expires_in":"3600","user":{"id":"u"}}`, 200, "a", 3600, ""},
		{"form", "application/x-www-form-urlencoded", `access_token=a&expires_in=5&user=x`, 200, "", 0, "mappings[0]"},
		{"error in 200", "application/json", `{"error":"invalid_grant"}`, 200, "", 0, "invalid_grant"},
		{"error 400", "application/json", `{"error":"invalid_client","error_description":"bad secret"}`, 400, "", 0, "invalid_client (bad secret)"},
		{"html", "text/html", `<html>`, 200, "", 0, "HTML page"},
		{"bad json", "application/json", `{"a":`, 200, "", 0, "not valid JSON"},
		{"array", "application/json", `[1]`, 200, "", 0, "not an object"},
		{"negative expiry", "application/json", `{"access_token":"a","expires_in":-5,"user":{"id":1}}`, 200, "", 0, "not a number of seconds"},
		{"object token", "application/json", `{"access_token":{"x":1},"user":{"id":1}}`, 200, "", 0, "no access token"},
		{"503", "text/plain", `down`, 503, "", 0, "answered 503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{"Content-Type": {tt.ctype}}}
			tok, err := parseResponse(testConfig(), resp, []byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || tok.AccessToken != tt.wantAccess || tok.ExpiresIn != tt.wantExpires {
				t.Fatalf("got %+v, %v", tok, err)
			}
		})
	}
}

func TestRedactor(t *testing.T) {
	vars := Vars{Values: map[string]string{"client_secret": "s3cr et&x", "client_id": "public-id"}, Secret: map[string]bool{"client_secret": true}}
	r := newRedactor(vars, Token{AccessToken: "tok-123456", RefreshToken: "ref-654321"})
	body := "client_id=public-id&client_secret=" + url.QueryEscape("s3cr et&x")
	if got := r.text(body); strings.Contains(got, "s3cr") || !strings.Contains(got, "public-id") {
		t.Errorf("text = %q", got)
	}
	if got := r.body([]byte(`{"access_token":"tok-123456","id_token":"eyJ.other","scope":"read"}`)); strings.Contains(got, "tok-") || strings.Contains(got, "eyJ") || !strings.Contains(got, "read") {
		t.Errorf("body = %q", got)
	}
	if got := r.header(http.Header{"Authorization": {"Basic abc"}, "X-Trace": {"ref-654321"}}); got["Authorization"] != redacted || strings.Contains(got["X-Trace"], "ref-") {
		t.Errorf("header = %v", got)
	}
}

// FuzzCallbackParsing feeds arbitrary provider answers to the parts of the
// callback that read them: they must never panic, and whatever they accept
// must carry an access token.
func FuzzCallbackParsing(f *testing.F) {
	f.Add("application/json", `{"access_token":"a","user":{"id":1}}`, "code=x&state=y", 200)
	f.Add("application/x-www-form-urlencoded", "access_token=a&user=1", "error=access_denied", 200)
	f.Add("text/html", "<html>", "code=%zz", 500)
	f.Add("application/json", `{"error":"invalid_grant"}`, "", 400)
	f.Fuzz(func(t *testing.T, ctype, body, query string, status int) {
		cfg := testConfig()
		resp := &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {ctype}}}
		tok, err := parseResponse(cfg, resp, []byte(body))
		if err == nil && tok.AccessToken == "" {
			t.Fatalf("accepted a response without an access token: %q", body)
		}
		q, _ := url.ParseQuery(query)
		if code, err := ExtractCode(cfg, q); err == nil && code == "" {
			t.Fatal("accepted an empty code")
		}
	})
}
