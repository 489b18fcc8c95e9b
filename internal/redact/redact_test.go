package redact

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestStringEveryForm(t *testing.T) {
	secret := `s3cr+t/va<l>ue "x"`
	r := New(secret, "ab") // "ab" is too short to redact
	for _, form := range []string{
		secret,
		url.QueryEscape(secret),
		url.PathEscape(secret),
		base64.StdEncoding.EncodeToString([]byte(secret)),
		base64.RawURLEncoding.EncodeToString([]byte(secret)),
		`s3cr+t/va\u003cl\u003eue \"x\"`, // encoding/json's default
		`s3cr+t/va<l>ue \"x\"`,           // JSON without HTML escaping
	} {
		got := r.String("got client_secret=" + form + " ab.")
		if strings.Contains(got, form) || !strings.Contains(got, Mark) || !strings.HasSuffix(got, " ab.") {
			t.Errorf("form %q: String = %q", form, got)
		}
	}
	var nilR *Redactor
	if got := nilR.String("x"); got != "x" {
		t.Errorf("nil Redactor changed text: %q", got)
	}
}

func TestLongestFirst(t *testing.T) {
	r := New("abcd", "abcdefgh")
	if got := r.String("[abcdefgh]"); got != "["+Mark+"]" {
		t.Errorf("String = %q, want one mark", got)
	}
}

func TestHeader(t *testing.T) {
	r := New("tok-1234")
	got := r.Header(http.Header{"Authorization": {"Bearer x"}, "X-Echo": {"you sent tok-1234"}, "Content-Type": {"text/plain"}})
	if got["Authorization"] != Mark || got["X-Echo"] != "you sent "+Mark || got["Content-Type"] != "text/plain" {
		t.Errorf("Header = %v", got)
	}
}

func TestBody(t *testing.T) {
	r := New("known-secret")
	tests := []struct {
		name, body string
		gone       []string
		kept       []string
	}{
		{"json", `{"access_token":"at-1","id_token":"idt","error":"invalid_grant","token_type":"Bearer","note":"known-secret","nested":[{"refresh_token":"rt-1"}]}`,
			[]string{"at-1", "idt", "rt-1", "known-secret"}, []string{"invalid_grant", "Bearer", `"note"`}},
		{"json keeps no HTML escapes", `{"error_description":"a<b & c"}`, nil, []string{"a<b & c"}},
		{"form", "access_token=at-2&scope=read&error=x", []string{"at-2"}, []string{"scope=read", "error=x"}},
		{"broken json", `{"access_token": "at-3", "refresh_token":"rt-3", "expires_in": 3600,`, []string{"at-3", "rt-3"}, []string{"expires_in"}},
		{"text", "oops: client_secret=cs-4; code=c-5 error=server_error", []string{"cs-4", "c-5"}, []string{"error=server_error"}},
	}
	for _, tt := range tests {
		got := r.Body([]byte(tt.body))
		for _, s := range tt.gone {
			if strings.Contains(got, s) {
				t.Errorf("%s: Body kept %q: %s", tt.name, s, got)
			}
		}
		for _, s := range tt.kept {
			if !strings.Contains(got, s) {
				t.Errorf("%s: Body lost %q: %s", tt.name, s, got)
			}
		}
	}
}
