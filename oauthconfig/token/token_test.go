package token

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/redact"
	"github.com/latchkey/latchkey/oauthconfig"
)

func testConfig() *oauthconfig.Config {
	c := &oauthconfig.Config{Mappings: []oauthconfig.Mapping{{Path: "$.user.id", Setting: "uid"}}}
	c.ApplyDefaults()
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
		{"form", "application/x-www-form-urlencoded", `access_token=a&expires_in=5&user=x`, 200, "a", 5, ""},
		{"error in 200", "application/json", `{"error":"invalid_grant"}`, 200, "", 0, "invalid_grant"},
		{"error 400", "application/json", `{"error":"invalid_client","error_description":"bad secret"}`, 400, "", 0, "invalid_client (bad secret)"},
		{"html", "text/html", `<html>`, 200, "", 0, "HTML page"},
		{"bad json", "application/json", `{"a":`, 200, "", 0, "not valid JSON"},
		{"array", "application/json", `[1]`, 200, "", 0, "not an object"},
		{"negative expiry: a problem, not a lost token", "application/json", `{"access_token":"a","expires_in":-5,"user":{"id":1}}`, 200, "a", 0, ""},
		{"object token", "application/json", `{"access_token":{"x":1},"user":{"id":1}}`, 200, "", 0, "no access token"},
		{"503", "text/plain", `down`, 503, "", 0, "answered 503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{"Content-Type": {tt.ctype}}}
			tok, err := parseResponse(testConfig(), resp, []byte(tt.body), false)
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

// TestExtractKeepsTokens: once the provider issued an access token, what
// else is wrong with its answer is a problem to report, never an error
// that would drop the token.
func TestExtractKeepsTokens(t *testing.T) {
	cfg := &oauthconfig.Config{Mappings: []oauthconfig.Mapping{
		{Path: "$.instance_url", Setting: "instance_url", Required: true},
		{Path: "$.team.id", Setting: "team"},
		{Path: "$.obj", Setting: "obj"},
	}}
	cfg.ApplyDefaults()
	doc := map[string]any{"access_token": "at", "refresh_token": "rt", "expires_in": "soon", "obj": map[string]any{}}
	for _, tt := range []struct {
		refresh      bool
		wantProblems []string
	}{
		{false, []string{"expires_in at $.expires_in is not a number", "mappings[0]: the token response has no value at $.instance_url", "mappings[2]:"}},
		{true, []string{"expires_in", "mappings[2]:"}}, // a refresh keeps what it lacks
	} {
		tok, err := Extract(cfg, doc, tt.refresh)
		if err != nil || tok.AccessToken != "at" || tok.RefreshToken != "rt" {
			t.Fatalf("refresh=%v: Extract = %+v, %v; want the tokens", tt.refresh, tok, err)
		}
		if len(tok.Problems) != len(tt.wantProblems) {
			t.Fatalf("refresh=%v: problems %q, want %d", tt.refresh, tok.Problems, len(tt.wantProblems))
		}
		for i, want := range tt.wantProblems {
			if !strings.HasPrefix(tok.Problems[i], want) {
				t.Errorf("refresh=%v: problem %d = %q, want %q...", tt.refresh, i, tok.Problems[i], want)
			}
		}
		if _, ok := tok.Extra["instance_url"]; ok {
			t.Errorf("a missing value was extracted: %v", tok.Extra)
		}
	}
	if _, err := Extract(cfg, map[string]any{"refresh_token": "rt"}, true); err == nil {
		t.Error("an answer without an access token is not an error")
	}
}

func TestRedactor(t *testing.T) {
	vars := Vars{Values: map[string]string{"client_secret": "s3cr et&x", "client_id": "public-id", "auth_code": "code-777"}, Secret: map[string]bool{"client_secret": true}}
	sent := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("public-id:s3cr+et%26x"))}}
	r := newRedactor(vars, Token{AccessToken: "tok-123456", RefreshToken: "ref-654321"}, sent)
	body := "client_id=public-id&client_secret=" + url.QueryEscape("s3cr et&x") + "&code=code-777"
	if got := r.String(body); strings.Contains(got, "s3cr") || strings.Contains(got, "code-777") || !strings.Contains(got, "public-id") {
		t.Errorf("String = %q", got)
	}
	if got := r.Body([]byte(`{"access_token":"tok-123456","id_token":"eyJ.other","scope":"read"}`)); strings.Contains(got, "tok-") || strings.Contains(got, "eyJ") || !strings.Contains(got, "read") {
		t.Errorf("Body = %q", got)
	}
	if got := r.Header(http.Header{"Authorization": {"Basic abc"}, "X-Trace": {"ref-654321"}}); got["Authorization"] != redact.Mark || strings.Contains(got["X-Trace"], "ref-") {
		t.Errorf("Header = %v", got)
	}
	echo := "you sent " + sent.Get("Authorization")
	if got := r.String(echo); strings.Contains(got, sent.Get("Authorization")[6:]) {
		t.Errorf("the Basic credentials survive: %q", got)
	}
	// A refusal that echoes the request loses the secrets in its message
	// and in its description.
	err := redactError(upstream(&RetrieveError{Status: 400, ErrorCode: "invalid_client", ErrorDescription: "got " + body}, "the provider refused the token request: invalid_client (got %s)", body), r)
	var re *RetrieveError
	if strings.Contains(err.Error(), "s3cr") || strings.Contains(err.Error(), "code-777") || !errors.As(err, &re) || strings.Contains(re.ErrorDescription, "s3cr") {
		t.Errorf("redactError = %v (%+v)", err, re)
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
		tok, err := parseResponse(cfg, resp, []byte(body), false)
		if err == nil && tok.AccessToken == "" {
			t.Fatalf("accepted a response without an access token: %q", body)
		}
		q, _ := url.ParseQuery(query)
		if code, err := ExtractCode(cfg, q); err == nil && code == "" {
			t.Fatal("accepted an empty code")
		}
	})
}

// TestPathForEscapes: a value in a JSONPath's string literal is escaped,
// so it is compared, never read as path syntax.
func TestPathForEscapes(t *testing.T) {
	doc := []any{map[string]any{"url": `a") || (@.x == "`, "id": "evil"}, map[string]any{"url": "b", "id": "good"}}
	for _, tt := range []struct{ value, want string }{
		{"b", "good"},
		{`a") || (@.x == "`, "evil"}, // matched as a plain string, whole
		{`x" || "y`, ""},
	} {
		path, err := pathFor(`$[?(@.url == "<<site>>")].id`, Vars{Values: map[string]string{"site": tt.value}})
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := LookupString(path, doc)
		if err != nil || got != tt.want {
			t.Errorf("value %q: path %s gives %q, %v; want %q", tt.value, path, got, err, tt.want)
		}
	}
	if _, err := pathFor(`$[?(@.url == "<<site>>")].id`, Vars{}); err == nil {
		t.Error("a missing value is not an error")
	}
}

// TestAlternativePaths: the first alternative with a value wins.
func TestAlternativePaths(t *testing.T) {
	cfg := &oauthconfig.Config{AccessTokenPath: "$.authed_user.access_token | $.access_token"}
	cfg.ApplyDefaults()
	for _, tt := range []struct {
		doc  map[string]any
		want string
	}{
		{map[string]any{"access_token": "bot", "authed_user": map[string]any{"access_token": "user"}}, "user"},
		{map[string]any{"access_token": "bot"}, "bot"},
	} {
		tok, err := Extract(cfg, tt.doc, false)
		if err != nil || tok.AccessToken != tt.want {
			t.Errorf("%v: %q, %v; want %q", tt.doc, tok.AccessToken, err, tt.want)
		}
	}
	if got := oauthconfig.Alternatives(`$[?(@.a == "x | $y")]`); len(got) != 1 {
		t.Errorf("a filter was split: %q", got)
	}
}
