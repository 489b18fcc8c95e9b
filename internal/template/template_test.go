package template

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// hostile holds the characters that break out of each context.
const hostile = "a&b=c\"d\\e\nf é/?#<<other>>"

func mustParse(t testing.TB, src string, ctx Context) *Template {
	t.Helper()
	tm, err := Parse(src, ctx)
	if err != nil {
		t.Fatalf("Parse(%q, %v): %v", src, ctx, err)
	}
	return tm
}

func TestRenderEscaping(t *testing.T) {
	tests := []struct {
		ctx  Context
		src  string
		want string
	}{
		{Text, "v=<<v>>", "v=" + hostile},
		{Query, "a=<<v>>&b=1", "a=a%26b%3Dc%22d%5Ce%0Af+%C3%A9%2F%3F%23%3C%3Cother%3E%3E&b=1"},
		{Form, "grant_type=authorization_code&code=<<v>>", "grant_type=authorization_code&code=" + url.QueryEscape(hostile)},
		{JSON, `{"v":"<<v>>","n":1}`, `{"v":"a&b=c\"d\\e\nf é/?#<<other>>","n":1}`},
		{JSON, `{"<<v>>":"x"}`, `{"a&b=c\"d\\e\nf é/?#<<other>>":"x"}`},
		{URL, "https://api.example.com/u/<<v>>?q=<<v>>#<<v>>",
			"https://api.example.com/u/" + url.PathEscape(hostile) + "?q=" + url.QueryEscape(hostile) + "#" + url.PathEscape(hostile)},
		{Header, "Bearer <<v>>", "Bearer a&b=c\"d\\e\tf é/?#<<other>>"},
	}
	for _, tt := range tests {
		v := hostile
		if tt.ctx == Header {
			v = strings.ReplaceAll(v, "\n", "\t")
		}
		got, err := mustParse(t, tt.src, tt.ctx).Render(map[string]string{"v": v, "other": "NO"})
		if err != nil {
			t.Errorf("%v %q: %v", tt.ctx, tt.src, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%v %q:\n got %s\nwant %s", tt.ctx, tt.src, got, tt.want)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	tm := mustParse(t, `{"code":"<<auth_code>>","client_id":"pre <<client_id>> post"}`, JSON)
	vals := map[string]string{"auth_code": hostile + "\x00\x1f\u2028\u2029\x7f", "client_id": `</script>&<>`}
	got, err := tm.Render(vals)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(got), &m); err != nil {
		t.Fatalf("Render gave invalid JSON %s: %v", got, err)
	}
	if m["code"] != vals["auth_code"] || m["client_id"] != "pre "+vals["client_id"]+" post" {
		t.Errorf("decoded %q, want the values back", m)
	}
	if strings.Contains(got, `\u003c`) {
		t.Errorf("HTML escaping is on: %s", got)
	}
}

// TestEscapersMatchStd checks the table-driven escapers against the
// standard library functions the package documents.
func TestEscapersMatchStd(t *testing.T) {
	var all []byte
	for i := range 256 {
		all = append(all, byte(i))
	}
	inputs := []string{
		"", "plain", string(all), "é\u2028x\u2029y\U0001F600", "bad\xffutf8\xc3", "\xe2\x80", "<>&",
	}
	for _, s := range inputs {
		if got, want := escape(t, s, kindQuery), url.QueryEscape(s); got != want {
			t.Errorf("query escape %q:\n got %q\nwant %q", s, got, want)
		}
		if got, want := escape(t, s, kindPath), url.PathEscape(s); got != want {
			t.Errorf("path escape %q:\n got %q\nwant %q", s, got, want)
		}
		if got, want := escape(t, s, kindJSON), jsonContent(t, s); got != want {
			t.Errorf("JSON escape %q:\n got %q\nwant %q", s, got, want)
		}
	}
}

func escape(t *testing.T, s string, k kind) string {
	t.Helper()
	var b strings.Builder
	n, err := k.write(&b, s)
	if err != nil || n != b.Len() {
		t.Fatalf("write = %d, %v; wrote %d bytes", n, err, b.Len())
	}
	return b.String()
}

// jsonContent is json.Marshal of s, HTML escaping off, without quotes.
func jsonContent(t testing.TB, s string) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	out := strings.TrimSuffix(b.String(), "\n")
	return out[1 : len(out)-1]
}

func TestOnePass(t *testing.T) {
	for _, ctx := range []Context{Text, Header, JSON} {
		src := "<<a>>"
		if ctx == JSON {
			src = `"<<a>>"`
		}
		got, err := mustParse(t, src, ctx).Render(map[string]string{"a": "<<b>>", "b": "expanded"})
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.ReplaceAll(src, "<<a>>", "<<b>>"); got != want {
			t.Errorf("%v: got %q, want %q", ctx, got, want)
		}
	}
}

func TestMissing(t *testing.T) {
	tm := mustParse(t, "a=<<a>>&b=<<b>>", Form)
	for _, vars := range []map[string]string{
		{"a": "1"},
		{"a": "1", "b": ""},
		nil,
	} {
		_, err := tm.Render(vars)
		var me *MissingError
		if !errors.As(err, &me) {
			t.Errorf("Render(%v) error = %v, want *MissingError", vars, err)
			continue
		}
		want := "b"
		if vars == nil {
			want = "a"
		}
		if me.Name != want {
			t.Errorf("Render(%v) missing %q, want %q", vars, me.Name, want)
		}
		if got, want := err.Error(), `no value for variable "`+want+`"`; got != want {
			t.Errorf("message %q, want %q", got, want)
		}
	}
}

func TestCheck(t *testing.T) {
	tm := mustParse(t, "https://<<tenant>>.example.com/<<foo>>/<<bar>>", URL)
	known := map[string]bool{"tenant": true, "bar": true}
	err := tm.Check(func(name string) bool { return known[name] })
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Check error = %v, want *Error", err)
	}
	if got, want := err.Error(), `at byte 31: unknown variable "foo"`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if err := tm.Check(func(string) bool { return true }); err != nil {
		t.Errorf("Check with all known: %v", err)
	}
}

// TestForeignPlaceholders: templates written in another platform's syntax
// are refused by Check, with a hint, unless the braces are written as a
// literal placeholder.
func TestForeignPlaceholders(t *testing.T) {
	all := func(string) bool { return true }
	tests := []struct {
		ctx  Context
		src  string
		pos  int    // -1: no error
		hint string // in the message
	}{
		{Form, "grant_type=client_credentials&client_id={{client_id}}", 40, "Latchkey placeholders are written <<client_id>>"},
		{JSON, `{"key": "{{ api_key }}"}`, 9, "<<api_key>>"},
		{Header, "Bearer {{$json.access_token}}", 7, "Latchkey placeholders are written <<name>>"},
		{URL, "https://api.example.com/<<p>>?key={{api_key}}", 34, "<<api_key>>"},
		{Text, "a {{{triple}}} b", 3, "<<triple>>"},
		{Text, "{{a{{b}}", 3, "<<b>>"},
		{Text, `<<x>> {{Client_ID}}`, 6, `to send "{{" as it is, write <<"{{">>`},
		// Not another platform's placeholder.
		{Text, "{{}} {{ }} {{a\nb}} {{ {a} }}", -1, ""},
		{Text, "{{" + strings.Repeat("a", 101) + "}}", -1, ""},
		{Text, "{{ open", -1, ""},
		{JSON, `{"a":{"b":1}}`, -1, ""},
		{Text, "{{<<x>>}}", -1, ""},
		// Escaped: the braces written as literal placeholders.
		{Text, `<<"{{">>client_id}}`, -1, ""},
		{JSON, `{"t": "<<"{{client_id}}">>"}`, -1, ""},
	}
	for _, tt := range tests {
		tm := mustParse(t, tt.src, tt.ctx)
		err := tm.Check(all)
		var e *Error
		switch {
		case tt.pos < 0 && err != nil:
			t.Errorf("Check(%q) = %v, want nil", tt.src, err)
		case tt.pos >= 0 && (!errors.As(err, &e) || e.Pos != tt.pos || !strings.Contains(e.Msg, tt.hint)):
			t.Errorf("Check(%q) = %v, want at byte %d: ...%s...", tt.src, err, tt.pos, tt.hint)
		}
	}
	// An unknown variable is reported first, and Parse takes the foreign
	// syntax: templates stored before Check refused it still render.
	if err := mustParse(t, "{{a}} <<b>>", Text).Check(func(string) bool { return false }); err == nil || !strings.Contains(err.Error(), `unknown variable "b"`) {
		t.Errorf("Check = %v, want the unknown variable", err)
	}
	if got, err := mustParse(t, "{{a}} <<b>>", Text).Render(map[string]string{"b": "x"}); got != "{{a}} x" || err != nil {
		t.Errorf("Render = %q, %v", got, err)
	}
}

// TestLiteralPlaceholders: <<"text">> renders as its text, escaped for
// where it lands like a value.
func TestLiteralPlaceholders(t *testing.T) {
	tests := []struct {
		ctx      Context
		src, out string
	}{
		{Text, `<<"{{">>client_id}}`, "{{client_id}}"},
		{Form, `a=<<"{{b}}">>&c=<<c>>`, "a=%7B%7Bb%7D%7D&c=x"},
		{JSON, `{"t":"<<"a'b">>"}`, `{"t":"a'b"}`},
		{URL, `https://<<"api">>.example.com/<<"a b">>`, "https://api.example.com/a%20b"},
		{Header, `X <<"(a)">>`, "X (a)"},
	}
	for _, tt := range tests {
		got, err := mustParse(t, tt.src, tt.ctx).Render(map[string]string{"c": "x"})
		if got != tt.out || err != nil {
			t.Errorf("Render(%q) = %q, %v; want %q", tt.src, got, err, tt.out)
		}
		if got, _ := mustParse(t, tt.src, tt.ctx).RenderMasked(map[string]string{"c": "x"}, func(string) bool { return true }); strings.Contains(tt.src, "<<c>>") == !strings.Contains(got, "****") {
			t.Errorf("RenderMasked(%q) = %q", tt.src, got)
		}
		if vars := mustParse(t, tt.src, tt.ctx).Vars(); strings.Contains(strings.Join(vars, ","), "{") {
			t.Errorf("Vars(%q) = %v", tt.src, vars)
		}
	}
	for _, tt := range []struct {
		ctx      Context
		src, msg string
		pos      int
	}{
		{Text, `<<"">>`, "empty string literal", 2},
		{Text, `<<"a"b>>`, `unexpected "b" after a string literal`, 5},
		{Text, `<<"a\b">>`, "may not contain", 4},
		{URL, `<<"https://a.example">>`, "must be a variable, not a call or a literal", 0},
		{JSON, `{"a":<<"x">>}`, `placeholder <<"x">> is not inside a JSON string`, 5},
		{URL, `https://<<"a/b">>.example.com/`, "", -1}, // parses; the host check refuses it when rendered
	} {
		_, err := Parse(tt.src, tt.ctx)
		var e *Error
		switch {
		case tt.pos < 0 && err != nil:
			t.Errorf("Parse(%q): %v", tt.src, err)
		case tt.pos >= 0 && (!errors.As(err, &e) || e.Pos != tt.pos || !strings.Contains(e.Msg, tt.msg)):
			t.Errorf("Parse(%q) = %v, want at byte %d: ...%s...", tt.src, err, tt.pos, tt.msg)
		}
	}
	if _, err := mustParse(t, `https://<<"a/b">>.example.com/`, URL).Render(nil); err == nil {
		t.Error("a literal with '/' renders into a URL's host")
	}
}

func TestVarsAndString(t *testing.T) {
	src := "<<b>> <<a>> <<b>> <<c_1>>"
	tm := mustParse(t, src, Text)
	if got, want := strings.Join(tm.Vars(), ","), "b,a,c_1"; got != want {
		t.Errorf("Vars = %s, want %s", got, want)
	}
	tm.Vars()[0] = "changed"
	if tm.Vars()[0] != "b" {
		t.Error("Vars shares its slice")
	}
	if tm.String() != src {
		t.Errorf("String = %q", tm.String())
	}
	if got := mustParse(t, "none", Text).Vars(); len(got) != 0 {
		t.Errorf("Vars = %q, want none", got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		ctx Context
		src string
		pos int
		msg string // substring of the message
	}{
		{Text, "ab <<x", 3, `unclosed "<<"`},
		{Text, "<<a>> <<x", 6, `unclosed "<<"`},
		{Text, "ab<<>>", 2, "empty variable name"},
		{Text, "<<a>><<Ab>>", 5, `bad variable name "Ab"`},
		{Text, "<< a >>", 0, "bad variable name"},
		{Text, "<<1a>>", 0, "bad variable name"},
		{Text, "<<a-b>>", 0, "bad variable name"},
		{Text, "<<a<<b>>", 0, "bad variable name"},
		{Text, "x<<" + strings.Repeat("a", 65) + ">>", 1, "longer than 64"},
		{Context(0), "x", 0, "invalid context"},
		{Context(99), "x", 0, "invalid context"},
		{JSON, `{"a": <<base64(x)>>}`, 6, "<<base64(...)>> is not inside a JSON string"},
		{JSON, `{<<x>>: 1}`, 1, "<<x>> is not inside a JSON string"},
		{JSON, `{"a": "b", <<x>>: 1}`, 11, "not inside a JSON string"},
		{JSON, `{"a":"<<x>>",}`, 13, "invalid JSON"},
		{JSON, `{"a":"<<long_name>>" "b":1}`, 21, "invalid JSON"},
		{JSON, `{"a":"<<x>>"`, 12, "unexpected end"},
		{JSON, `{"a":"<<x>>"}}`, 13, "after top-level value"},
		{JSON, `{"a":"\<<x>>"}`, 7, "<<x>> is inside an escape sequence"},
		{JSON, `{"a":"\u00<<x>>"}`, 10, "escape sequence"},
		{JSON, `{"a":"x"} <<x>>`, 10, "not inside a JSON string"},
		{JSON, "", 0, "unexpected end"},
		{Header, "Bearer\r\n<<t>>", 6, "control character"},
		{Header, "<<t>>\x00", 5, "control character"},
		{URL, "<<base>>token", 0, "must start with http"},
		{URL, "<<base?>>/token", 0, "must start with http"},
		{URL, "ftp://<<h>>/", 0, "must start with http"},
		{URL, "https://a.com/%4<<x>>", 14, "'%' not followed"},
		{URL, "https://a b.com/<<x>>", 0, "invalid URL"},
		{URL, "https:///<<x>>", 0, "no host"},
		{Query, "a=%<<x>>", 2, "'%' not followed"},
		{Form, "a=<<x>>%zz", 7, "'%' not followed"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.src, tt.ctx)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Parse(%q, %v) = %v, want *Error", tt.src, tt.ctx, err)
			continue
		}
		if e.Pos != tt.pos || !strings.Contains(e.Msg, tt.msg) {
			t.Errorf("Parse(%q, %v) = %q, want at byte %d: ...%s...", tt.src, tt.ctx, err, tt.pos, tt.msg)
		}
		if !strings.HasPrefix(err.Error(), "at byte "+strconv.Itoa(e.Pos)+": ") {
			t.Errorf("message %q does not start with the position", err)
		}
	}
}

func TestParseOK(t *testing.T) {
	tests := []struct {
		ctx Context
		src string
	}{
		{Text, "no placeholders <b> >> <"},
		{Text, "<<a>>>"},
		{JSON, `{"a":"\\<<x>>","b":["<<y>>", 1, true, null],"c":{"<<k>>":"\"<<z>>\""}}`},
		{JSON, `"<<x>>"`},
		{URL, "<<token_url>>"},
		{URL, "HTTPS://<<tenant>>.example.com:<<port>>/a/<<b>>?c=<<d>>#<<e>>"},
		{URL, "http://example.com"},
		{Header, "Bearer\t<<t>> é"},
		{Query, "a=%41<<x>>"},
	}
	for _, tt := range tests {
		if _, err := Parse(tt.src, tt.ctx); err != nil {
			t.Errorf("Parse(%q, %v): %v", tt.src, tt.ctx, err)
		}
	}
}

func TestHeaderInjection(t *testing.T) {
	tm := mustParse(t, "Bearer <<access_token>>", Header)
	for _, v := range []string{
		"tok-s3cr3t\r\nX-Evil: 1", "tok-s3cr3t\n", "tok-s3cr3t\r", "tok-s3cr3t\x00", "tok-s3cr3t\x1b", "tok-s3cr3t\x7f",
	} {
		out, err := tm.Render(map[string]string{"access_token": v})
		var ve *ValueError
		if !errors.As(err, &ve) {
			t.Errorf("Render(%q) = %q, %v; want *ValueError", v, out, err)
			continue
		}
		if ve.Name != "access_token" || ve.Pos != 7 {
			t.Errorf("ValueError = %+v", ve)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error %q contains the value", err)
		}
	}
}

func TestURLValues(t *testing.T) {
	tm := mustParse(t, "https://<<tenant>>.example.com/x/<<id>>?a=<<b>>", URL)
	render := func(tenant, id, b string) (string, error) {
		return tm.Render(map[string]string{"tenant": tenant, "id": id, "b": b})
	}
	got, err := render("acme-1.eu", "a b/c..d", "x&y=z")
	if want := "https://acme-1.eu.example.com/x/a%20b%2Fc..d?a=x%26y%3Dz"; got != want || err != nil {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	// Escaped or not, a dot segment could climb the path on a server that
	// decodes %2F first.
	for _, id := range []string{"..", ".", "../x", "a/..", "a/./b", "..\\x", "/.."} {
		if _, err := render("acme", id, "1"); !isValueError(err, "id") {
			t.Errorf("id %q: error = %v, want *ValueError", id, err)
		}
	}
	// A literal that needs escaping in the path is refused when parsed.
	if _, err := Parse("http://h/a b/<<id>>", URL); err == nil {
		t.Error("a space in the path literal was accepted")
	}
	for _, tenant := range []string{"evil.com/", "evil.com?", "evil.com#", "u@evil.com", "evil.com:1", "a%2e", "a b", "é", "a\\b", "[::1]"} {
		if _, err := render(tenant+"s3cr3t", "1", "1"); !isValueError(err, "tenant") {
			t.Errorf("tenant %q: error = %v, want *ValueError", tenant, err)
		} else if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error %q contains the value", err)
		}
	}
	for _, id := range []string{".", "..", "..."} {
		if _, err := render("a", id, "1"); !isValueError(err, "id") {
			t.Errorf("id %q: error = %v, want *ValueError", id, err)
		}
	}
	// Dots are only dangerous in the path.
	if _, err := render("a", "1", ".."); err != nil {
		t.Errorf("query value \"..\": %v", err)
	}
}

func TestWholeURL(t *testing.T) {
	tm := mustParse(t, "<<token_url>>", URL)
	for _, v := range []string{"https://login.example.com/oauth/token?x=1", "http://localhost:8080"} {
		got, err := tm.Render(map[string]string{"token_url": v})
		if got != v || err != nil {
			t.Errorf("Render(%q) = %q, %v", v, got, err)
		}
	}
	for _, v := range []string{"javascript:alert(1)", "/relative", "ftp://example.com/", "https://", "https:opaque", "https://a.com/\r\nx", "example.com"} {
		if _, err := tm.Render(map[string]string{"token_url": v}); !isValueError(err, "token_url") {
			t.Errorf("Render(%q) error = %v, want *ValueError", v, err)
		}
	}
}

func isValueError(err error, name string) bool {
	var ve *ValueError
	return errors.As(err, &ve) && ve.Name == name
}

func TestRenderMasked(t *testing.T) {
	tm := mustParse(t, `{"client_id":"<<client_id>>","client_secret":"<<client_secret>>"}`, JSON)
	vars := map[string]string{"client_id": "app", "client_secret": "s3cr3t\"\n"}
	secret := func(name string) bool { return name == "client_secret" }
	got, err := tm.RenderMasked(vars, secret)
	if want := `{"client_id":"app","client_secret":"****"}`; got != want || err != nil {
		t.Errorf("got %s, %v; want %s", got, err, want)
	}
	if got, err := tm.RenderMasked(vars, nil); err != nil || !strings.Contains(got, `s3cr3t\"\n`) {
		t.Errorf("nil secret: %s, %v", got, err)
	}
	if _, err := tm.RenderMasked(map[string]string{"client_id": "app"}, secret); err == nil {
		t.Error("missing secret rendered")
	}

	// A masked value is still checked, so masking never hides a failure.
	h := mustParse(t, "Bearer <<t>>", Header)
	if _, err := h.RenderMasked(map[string]string{"t": "a\r\nb"}, secret); err == nil {
		t.Error("masked bad header value did not fail")
	}
}

// TestConcurrent runs Render from many goroutines; run with -race.
func TestConcurrent(t *testing.T) {
	tm := mustParse(t, "https://<<h>>/<<p>>?q=<<q>>", URL)
	done := make(chan bool)
	for i := range 8 {
		go func() {
			defer func() { done <- true }()
			for j := range 100 {
				s := strconv.Itoa(i*1000 + j)
				got, err := tm.Render(map[string]string{"h": "h" + s, "p": s, "q": s})
				if want := "https://h" + s + "/" + s + "?q=" + s; got != want || err != nil {
					t.Errorf("got %q, %v; want %q", got, err, want)
					return
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
}

func BenchmarkRenderJSON(b *testing.B) {
	tm := mustParse(b, `{"grant_type":"authorization_code","code":"<<auth_code>>","client_id":"<<client_id>>","client_secret":"<<client_secret>>","redirect_uri":"<<redirect_uri>>"}`, JSON)
	vars := map[string]string{
		"auth_code":     "SplxlOBeZQQYbYS6WxSbIA",
		"client_id":     "s6BhdRkqt3",
		"client_secret": "7Fjfp0ZBr1KtDRbnfVdmIw",
		"redirect_uri":  "https://client.example.com/cb?x=\"1\"",
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tm.Render(vars); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderURL(b *testing.B) {
	tm := mustParse(b, "https://<<tenant>>.example.com/oauth2/v1/authorize?client_id=<<client_id>>&redirect_uri=<<redirect_uri>>&state=<<state>>&scope=<<scope>>", URL)
	vars := map[string]string{
		"tenant":       "acme",
		"client_id":    "s6BhdRkqt3",
		"redirect_uri": "https://client.example.com/cb",
		"state":        "af0ifjsldkj",
		"scope":        "openid profile email",
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tm.Render(vars); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderHeader and BenchmarkRenderHeaderCall compare a plain
// variable with a call that computes the same Basic credentials.
func BenchmarkRenderHeader(b *testing.B) {
	tm := mustParse(b, "Basic <<basic>>", Header)
	vars := map[string]string{"basic": "czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tm.Render(vars); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderHeaderCall(b *testing.B) {
	tm := mustParse(b, `Basic <<base64(urlencode(client_id) ":" urlencode(client_secret))>>`, Header)
	vars := map[string]string{"client_id": "s6BhdRkqt3", "client_secret": "7Fjfp0ZBr1KtDRbnfVdmIw"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tm.Render(vars); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderJSONCalls is BenchmarkRenderJSON with the secret sent
// through base64 and a timestamp added.
func BenchmarkRenderJSONCalls(b *testing.B) {
	tm := mustParse(b, `{"grant_type":"authorization_code","code":"<<auth_code>>","client_id":"<<client_id>>","client_secret":"<<base64(client_secret)>>","redirect_uri":"<<redirect_uri>>","ts":"<<unix_time()>>"}`, JSON)
	vars := map[string]string{
		"auth_code":     "SplxlOBeZQQYbYS6WxSbIA",
		"client_id":     "s6BhdRkqt3",
		"client_secret": "7Fjfp0ZBr1KtDRbnfVdmIw",
		"redirect_uri":  "https://client.example.com/cb?x=\"1\"",
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tm.Render(vars); err != nil {
			b.Fatal(err)
		}
	}
}

var fuzzSeeds = []struct {
	src  string
	ctx  Context
	a, b string
}{
	{`{"code":"<<auth_code>>","client_id":"<<client_id>>"}`, JSON, hostile, "\u2028\xff"},
	{`{"<<k>>":["<<v>>", 1]}`, JSON, "k", "v"},
	{`{"a":"\\<<x>>"}`, JSON, `\`, `"`},
	{"grant_type=authorization_code&code=<<auth_code>>&x=<<y>>", Form, "a&b=c", "+ %"},
	{"<<k>>=<<v>>", Query, "=", "&"},
	{"https://<<tenant>>.example.com/x/<<p>>?a=<<b>>#<<f>>", URL, "acme", "../x y"},
	{"https://example.com/<<a>><<b>>/", URL, ".", "."},
	{"https://<<a>>.example.com/<<b>>", URL, "evil.com/x?#@", "ok"},
	{"https://<<a>>.example.com/<<b>>", URL, "acme", "."},
	{"https://example.com:<<port>>/", URL, "8080", "x"},
	{"<<token_url>>", URL, "https://example.com/t?x=1", ""},
	{"Bearer <<access_token>>", Header, "tok\r\nX: y", "t"},
	{"<<a>> <<b>>", Text, "<<b>>", ""},
	{"x <<unclosed", Text, "", ""},
	{`Basic <<base64(client_id ":" client_secret)>>`, Header, "s6BhdRkqt3", "s3cr3t:\r\n"},
	{`Basic <<base64(urlencode(client_id) ":" urlencode(client_secret))>>`, Header, "a b", "é&="},
	{`{"a":"<<base64url(urlencode(a) "x" b)>>","t":"<<unix_time_ms()>>","<<urlencode(b)>>":1}`, JSON, hostile, "\xff"},
	{"a=<<base64(a)>>&b=<<b>>&t=<<unix_time()>>", Form, "??>", "+ %"},
	{"https://<<base64url(a)>>.example.com/<<base64(b)>>?q=<<base64(a b)>>#<<unix_time()>>", URL, "i\xb7\x1d", "."},
	{"https://<<unix_time()>>.example.com:<<p>>/<<base64url(a)>>", URL, "8080", "x"},
	{`<<urlencode(a " " b)>> <<b>> <<base64("<<a>>")>>`, Text, "<<b>>", "x"},
	{"<<base64(  a   b  )>><<unix_time(  )>>", Text, "", "x"},
	{"q=<<urlencode(a)>>", Query, "a", "b"},
	{`<<base64(a "<" b)>>`, Text, "a", "b"},
	{`<<base64(a ">>" b)>>`, Text, "a", "b"},
	{`<<base64(a "\"" b)>>`, Text, "a", "b"},
	{"<<base64(urlencode(base64(a)))>>", Text, "a", "b"},
	{"<<base64(a,b)>> <<md5(a)>> <<base64()>> <<unix_time(a)>>", Text, "a", "b"},
	{"<<base64(a)>>", URL, "a", "b"},
	{`{"id":"{{client_id}}","x":"<<"{{">>y}}","<<a>>":"<<"lit">>"}`, JSON, "a", "b"},
	{`https://<<"api">>.example.com/<<"a b">>?q=<<"{{x}}">>`, URL, "a", "b"},
	{`<<"x">>`, URL, "a", "b"},
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s.src, uint8(s.ctx))
	}
	f.Fuzz(func(t *testing.T, src string, c uint8) {
		ctx := Context(c % 8)
		tm, err := Parse(src, ctx)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Pos < 0 || e.Pos > len(src) {
				t.Fatalf("Parse(%q, %v) error %#v, want *Error within the source", src, ctx, err)
			}
			return
		}
		if tm.String() != src {
			t.Fatalf("String = %q, want %q", tm.String(), src)
		}
		for _, name := range tm.Vars() {
			if checkName(name) != "" {
				t.Fatalf("Vars has bad name %q", name)
			}
		}
		// With every variable known, Check refuses only another
		// platform's placeholder in the literal text.
		if err := tm.Check(func(string) bool { return true }); err != nil {
			var e *Error
			if !errors.As(err, &e) || !strings.HasPrefix(src[e.Pos:], "{{") || !strings.Contains(e.Msg, "another platform's placeholder") {
				t.Fatalf("Check(all): %v", err)
			}
		}
		checkRefs(t, tm)
		if len(tm.refs) > 0 {
			var e *Error
			if err := tm.Check(func(string) bool { return false }); !errors.As(err, &e) || e.Pos != tm.refs[0].pos {
				t.Fatalf("Check(none) = %v, want the first variable", err)
			}
		}
		// Every template is valid Text, and one pass gives back the source
		// when each variable is its own placeholder, and calls their
		// results.
		text, err := Parse(src, Text)
		if err != nil {
			t.Fatalf("Parse(%v) ok but Parse(Text): %v", ctx, err)
		}
		self := map[string]string{}
		for _, name := range text.Vars() {
			self[name] = "<<" + name + ">>"
		}
		var want strings.Builder
		i := 0
		eachLiteral(src, text.phs, func(lit string, at int) error {
			want.WriteString(lit)
			if at+len(lit) < len(src) {
				if p := &text.phs[i]; p.call != nil {
					v, _ := refEval(p.call, self)
					want.WriteString(v)
				} else if p.lit != "" {
					want.WriteString(p.lit)
				} else {
					want.WriteString(src[p.pos:p.end])
				}
				i++
			}
			return nil
		})
		if got, err := text.WithClock(stopped).Render(self); got != want.String() || err != nil {
			t.Fatalf("Render(self) = %q, %v; want %q", got, err, want.String())
		}
	})
}

// checkRefs checks that each placeholder's variables lie within it, in
// source order, each at its name or at its placeholder's "<<", and that
// they are all of t.refs.
func checkRefs(t *testing.T, tm *Template) {
	t.Helper()
	n, last := 0, -1
	for _, p := range tm.phs {
		if p.call == nil && p.lit == "" && (len(p.refs) != 1 || p.refs[0].pos != p.pos || p.refs[0].name != p.name) {
			t.Fatalf("placeholder %q has refs %v", tm.src[p.pos:p.end], p.refs)
		}
		for _, r := range p.refs {
			if r.pos <= last || r.pos < p.pos || r.pos >= p.end {
				t.Fatalf("ref %v out of order or outside %q at %d", r, tm.src[p.pos:p.end], p.pos)
			}
			if !strings.HasPrefix(tm.src[r.pos:], r.name) && !strings.HasPrefix(tm.src[r.pos:], "<<"+r.name+">>") {
				t.Fatalf("ref %v is not at its name in %q", r, tm.src)
			}
			if r != tm.refs[n] {
				t.Fatalf("ref %v, want %v", r, tm.refs[n])
			}
			last = r.pos
			n++
		}
	}
	if n != len(tm.refs) {
		t.Fatalf("%d refs in placeholders, %d in all", n, len(tm.refs))
	}
}

// refEval computes what c gives at clockAt with the standard library, or
// false if an argument variable has no value.
func refEval(c *call, vars map[string]string) (string, bool) {
	switch c.fn {
	case fnUnixTime:
		return strconv.FormatInt(clockAt.Unix(), 10), true
	case fnUnixTimeMS:
		return strconv.FormatInt(clockAt.UnixMilli(), 10), true
	}
	var in string
	for _, a := range c.args {
		switch {
		case a.call != nil:
			v, ok := refEval(a.call, vars)
			if !ok {
				return "", false
			}
			in += v
		case a.name != "":
			if vars[a.name] == "" {
				return "", false
			}
			in += vars[a.name]
		default:
			in += a.lit
		}
	}
	switch c.fn {
	case fnBase64:
		return base64.StdEncoding.EncodeToString([]byte(in)), true
	case fnBase64URL:
		return base64.RawURLEncoding.EncodeToString([]byte(in)), true
	}
	return url.QueryEscape(in), true
}

// flatten returns a template like tm with each placeholder replaced by a
// plain variable p0, p1..., and the values with which it renders as tm
// does with vars at clockAt: a variable's value, or a call's result from
// refEval. A call with a missing argument has no value. secret says which
// of them tm masks when all its variables are secret.
func flatten(t *testing.T, tm *Template, ctx Context, vars map[string]string) (flat *Template, fvars map[string]string, secret func(string) bool) {
	t.Helper()
	var src strings.Builder
	fvars, masked := map[string]string{}, map[string]bool{}
	i := 0
	eachLiteral(tm.src, tm.phs, func(lit string, at int) error {
		src.WriteString(lit)
		if at+len(lit) < len(tm.src) {
			p, name := &tm.phs[i], "p"+strconv.Itoa(i)
			src.WriteString("<<" + name + ">>")
			switch {
			case p.call != nil:
				fvars[name], _ = refEval(p.call, vars)
			case p.lit != "":
				fvars[name] = p.lit
			default:
				fvars[name] = vars[p.name]
			}
			masked[name] = len(p.refs) > 0
			i++
		}
		return nil
	})
	flat, err := Parse(src.String(), ctx)
	if err != nil {
		t.Fatalf("Parse(%q) ok but flattened %q: %v", tm.src, src.String(), err)
	}
	for i := range tm.phs {
		if tm.phs[i].kind != flat.phs[i].kind {
			t.Fatalf("placeholder %d is kind %d, flattened %d", i, tm.phs[i].kind, flat.phs[i].kind)
		}
	}
	return flat, fvars, func(name string) bool { return masked[name] }
}

// checkSameRender checks that tm renders with vars as flat with fvars: the
// same output, or the same error at the same placeholder.
func checkSameRender(t *testing.T, tm, flat *Template, vars, fvars map[string]string, out string, err error, fout string, ferr error) {
	t.Helper()
	if err == nil && ferr == nil {
		if out != fout {
			t.Fatalf("%q rendered %q, flattened %q", tm.src, out, fout)
		}
		return
	}
	var me, fme *MissingError
	var ve, fve *ValueError
	switch {
	case errors.As(err, &me) && errors.As(ferr, &fme):
		k, _ := strconv.Atoi(strings.TrimPrefix(fme.Name, "p"))
		for _, r := range tm.phs[k].refs {
			if r.name == me.Name {
				return
			}
		}
		t.Fatalf("%q: missing %q, flattened missing %q", tm.src, me.Name, fme.Name)
	case errors.As(err, &ve) && errors.As(ferr, &fve):
		for k := range tm.phs {
			if tm.phs[k].pos == ve.Pos && flat.phs[k].pos == fve.Pos && ve.Reason == fve.Reason {
				return
			}
		}
		t.Fatalf("%q: %v, flattened %v", tm.src, err, ferr)
	default:
		t.Fatalf("%q: error %v, flattened %v", tm.src, err, ferr)
	}
}

func FuzzRender(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s.src, uint8(s.ctx), s.a, s.b)
	}
	f.Fuzz(func(t *testing.T, src string, c uint8, a, b string) {
		ctx := Context(c % 8)
		tm, err := Parse(src, ctx)
		if err != nil {
			return
		}
		// Variables take a and b in turn.
		vars := map[string]string{}
		for i, name := range tm.Vars() {
			vars[name] = a
			if i%2 == 1 {
				vars[name] = b
			}
		}
		// A template with calls renders as one in which each call is a
		// variable with the call's result as its value; the checks below
		// then apply to that one.
		if slices.ContainsFunc(tm.phs, func(p placeholder) bool { return p.call != nil || p.lit != "" }) {
			tm = tm.WithClock(stopped)
			flat, fvars, secret := flatten(t, tm, ctx, vars)
			out, err := tm.Render(vars)
			fout, ferr := flat.Render(fvars)
			checkSameRender(t, tm, flat, vars, fvars, out, err, fout, ferr)
			out, err = tm.RenderMasked(vars, func(string) bool { return true })
			fout, ferr = flat.RenderMasked(fvars, secret)
			checkSameRender(t, tm, flat, vars, fvars, out, err, fout, ferr)
			tm, vars = flat, fvars
		}
		src = tm.src

		// Markers stand for the values in a second rendering, to find
		// where each value should come back.
		markers := map[string]string{}
		var oldnew []string
		for i, name := range tm.Vars() {
			v := vars[name]
			markers[name] = "QqQ" + strconv.Itoa(i) + "QqQ"
			if ctx == JSON {
				v = jsonDecoded(t, v)
			}
			oldnew = append(oldnew, markers[name], v)
		}
		expand := strings.NewReplacer(oldnew...).Replace

		out, err := tm.Render(vars)
		checkMasked(t, tm, vars, err)
		if err != nil {
			checkRenderError(t, src, vars, err)
			return
		}
		for name, v := range vars {
			if v == "" {
				t.Fatalf("Render succeeded with %q empty", name)
			}
		}
		if len(tm.phs) == 1 && tm.phs[0].kind == kindURL {
			if out != vars[tm.phs[0].name] {
				t.Fatalf("whole URL %q rendered as %q", vars[tm.phs[0].name], out)
			}
			return
		}
		if strings.Contains(src, "QqQ") {
			return
		}
		if len(tm.ValueVars()) > 0 {
			// Bare JSON values are numbers or booleans, which text
			// markers cannot stand for; TestJSONValues checks them.
			return
		}
		mout, err := tm.Render(markers)
		if err != nil {
			t.Fatalf("Render(markers): %v", err)
		}

		switch ctx {
		case Text:
			if want := expand(mout); out != want {
				t.Fatalf("got %q, want %q", out, want)
			}
		case Header:
			if i := indexControl(out); i >= 0 {
				t.Fatalf("header %q has a control byte at %d", out, i)
			}
		case JSON:
			checkJSONValues(t, out, mout, expand)
		case Query, Form:
			checkQueryValues(t, out, mout, expand)
		case URL:
			checkURLValues(t, out, mout, expand)
		}
	})
}

// jsonDecoded is what v becomes through JSON: itself if it is valid UTF-8.
func jsonDecoded(t *testing.T, v string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal([]byte(`"`+jsonContent(t, v)+`"`), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkMasked checks that RenderMasked with every variable secret fails
// when Render does and otherwise gives the source with "****" for each
// placeholder.
func checkMasked(t *testing.T, tm *Template, vars map[string]string, renderErr error) {
	t.Helper()
	got, err := tm.RenderMasked(vars, func(string) bool { return true })
	if (err == nil) != (renderErr == nil) {
		t.Fatalf("RenderMasked error %v, Render error %v", err, renderErr)
	}
	if err != nil {
		return
	}
	var want strings.Builder
	eachLiteral(tm.src, tm.phs, func(lit string, at int) error {
		want.WriteString(lit)
		if at+len(lit) < len(tm.src) {
			want.WriteString(mask)
		}
		return nil
	})
	if got != want.String() {
		t.Fatalf("RenderMasked = %q, want %q", got, want.String())
	}
}

// checkRenderError checks the type of a Render error and that its message
// holds no value.
func checkRenderError(t *testing.T, src string, vars map[string]string, err error) {
	t.Helper()
	var me *MissingError
	var ve *ValueError
	var name string
	switch {
	case errors.As(err, &me):
		if vars[me.Name] != "" {
			t.Fatalf("MissingError for %q with value %q", me.Name, vars[me.Name])
		}
		name = me.Name
	case errors.As(err, &ve):
		if vars[ve.Name] == "" {
			t.Fatalf("ValueError for empty %q", ve.Name)
		}
		name = ve.Name
	default:
		t.Fatalf("Render error %#v, want *MissingError or *ValueError", err)
	}
	// A message is made of names and positions, which are in the source,
	// and fixed text. A value found in it must come from one of those,
	// or from the quoted name with the text around it (a value `": ` is
	// in `variable "a": not ...`).
	fixed := src + " " + reasonControl + reasonHost + reasonDots + reasonURL +
		"at byte : bad value for variable no value for variable \"\" 0123456789" +
		fmt.Sprintf(" variable %q: ", name)
	// The position prefix ("at byte 0: ") is fixed text too; a value can
	// match across it ("0:") by chance.
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "at byte "); ok {
		if _, after, ok := strings.Cut(rest, ": "); ok {
			msg = after
		}
	}
	for _, v := range vars {
		if len(v) > 2 && strings.Contains(msg, v) && !strings.Contains(fixed, v) {
			t.Fatalf("error %q contains value %q", err, v)
		}
	}
}

func checkJSONValues(t *testing.T, out, mout string, expand func(string) string) {
	t.Helper()
	if !json.Valid([]byte(out)) {
		t.Fatalf("invalid JSON: %s", out)
	}
	got, want := jsonTokens(t, out), jsonTokens(t, mout)
	if len(got) != len(want) {
		t.Fatalf("%d tokens, want %d:\n%s\n%s", len(got), len(want), out, mout)
	}
	for i := range got {
		w := want[i]
		if s, ok := w.(string); ok {
			w = expand(s)
		}
		if got[i] != w {
			t.Fatalf("token %d = %#v, want %#v", i, got[i], w)
		}
	}
}

func jsonTokens(t *testing.T, s string) []json.Token {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var toks []json.Token
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return toks
		}
		if err != nil {
			t.Fatalf("decoding %s: %v", s, err)
		}
		toks = append(toks, tok)
	}
}

func checkQueryValues(t *testing.T, out, mout string, expand func(string) string) {
	t.Helper()
	want, err := queryPairs(mout)
	if err != nil {
		return // the literal text is not a query
	}
	got, err := queryPairs(out)
	if err != nil {
		t.Fatalf("query %q: %v", out, err)
	}
	if len(got) != len(want) {
		t.Fatalf("%q has %d pairs, want %d", out, len(got), len(want))
	}
	for i := range got {
		if w := [2]string{expand(want[i][0]), expand(want[i][1])}; got[i] != w {
			t.Fatalf("pair %d = %q, want %q", i, got[i], w)
		}
	}
	if _, err := url.ParseQuery(mout); err == nil {
		if _, err := url.ParseQuery(out); err != nil {
			t.Fatalf("url.ParseQuery(%q): %v", out, err)
		}
	}
}

// queryPairs decodes a query as url.ParseQuery does, keeping order.
func queryPairs(q string) ([][2]string, error) {
	var pairs [][2]string
	for _, kv := range strings.Split(q, "&") {
		k, v, _ := strings.Cut(kv, "=")
		k, err := url.QueryUnescape(k)
		if err != nil {
			return nil, err
		}
		v, err = url.QueryUnescape(v)
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, [2]string{k, v})
	}
	return pairs, nil
}

func checkURLValues(t *testing.T, out, mout string, expand func(string) string) {
	t.Helper()
	mu, err := url.Parse(mout)
	if err != nil {
		return // a marker is not a valid port
	}
	u, err := url.Parse(out)
	if err != nil {
		t.Fatalf("url.Parse(%q): %v", out, err)
	}
	if u.Scheme != mu.Scheme || u.User.String() != expand(mu.User.String()) || u.Host != expand(mu.Host) {
		t.Fatalf("%q reaches %q@%q, want %q@%q", out, u.User, u.Host, expand(mu.User.String()), expand(mu.Host))
	}
	if u.Path != expand(mu.Path) || u.Fragment != expand(mu.Fragment) {
		t.Fatalf("%q has path %q#%q, want %q#%q", out, u.Path, u.Fragment, expand(mu.Path), expand(mu.Fragment))
	}
	if got, want := dotSegments(u.EscapedPath()), dotSegments(mu.EscapedPath()); got != want {
		t.Fatalf("%q has %d dot segments, want %d", out, got, want)
	}
	checkQueryValues(t, u.RawQuery, mu.RawQuery, expand)
}

func dotSegments(path string) int {
	n := 0
	for _, seg := range strings.Split(path, "/") {
		if seg == "." || seg == ".." {
			n++
		}
	}
	return n
}
