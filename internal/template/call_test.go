package template

import (
	"encoding/base64"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clockAt is a clock stopped at 2023-11-14T22:13:20.123Z.
var clockAt = time.UnixMilli(1700000000123)

func stopped() time.Time { return clockAt }

func TestCallParseErrors(t *testing.T) {
	tests := []struct {
		ctx Context
		src string
		pos int
		msg string // substring of the message
	}{
		{Text, "x <<md5(a)>>", 4, `unknown function "md5"; known functions are base64, base64url, urlencode, unix_time, unix_time_ms, first`},
		{Text, "<<Base64(a)>>", 2, `unknown function "Base64"`},
		{Text, "<<(a)>>", 2, `unexpected "(", want a function name`},
		{Text, "<<base64 (a)>>", 8, `want "(" after function name base64`},
		{Text, "<<base64(a>>", 8, `unclosed "("`},
		{Text, "<<base64(a >> <<b>>", 8, `unclosed "("`},
		{Text, "<<base64()>>", 9, "base64 takes at least one argument"},
		{Text, "<<base64(  )>>", 11, "base64 takes at least one argument"},
		{Text, "<<unix_time(a)>>", 12, "unix_time takes no arguments"},
		{Text, `<<unix_time_ms("x")>>`, 15, "unix_time_ms takes no arguments"},
		{Text, "<<base64(a)b>>", 11, `unexpected "b" after a call`},
		{Text, "<<base64(a) >>", 11, `unexpected " " after a call`},
		{Text, "<<base64(a,b)>>", 10, `unexpected "," after an argument; separate arguments with spaces`},
		{Text, `<<base64(a":")>>`, 10, `unexpected "\"" after an argument`},
		{Text, "<<base64(,)>>", 9, `unexpected ",", want a variable, a string literal or a call`},
		{Text, "<<base64(A)>>", 9, `bad variable name "A"`},
		{Text, "<<base64(1a)>>", 9, `bad variable name "1a"`},
		{Text, "<<base64(a " + strings.Repeat("b", 65) + ")>>", 11, "longer than 64"},
		{Text, `<<base64("")>>`, 9, "empty string literal"},
		{Text, `<<base64("abc)>>`, 9, "unterminated string literal"},
		{Text, `<<base64(a "x\"y")>>`, 13, `string literal may not contain "\\"`},
		{Text, `<<base64("<")>>`, 10, `string literal may not contain "<"`},
		{Text, `<<base64("a>b")>>`, 11, `string literal may not contain ">"`},
		{Text, "<<base64(\"a\tb\")>>", 11, `string literal may not contain "\t"`},
		{Text, "<<base64(\"\x7f\")>>", 10, `may not contain "\x7f"`},
		// The tag ends at the first ">>", inside what was meant as a literal.
		{Text, `<<base64("a>>b")>>`, 9, "unterminated string literal"},
		{Text, "<<base64(urlencode(base64(a)))>>", 19, "calls may be nested only one deep"},
		{Text, "<<base64(urlencode(a)>>", 8, `unclosed "("`},
		{Text, "<<base64(md5(a))>>", 9, `unknown function "md5"`},
		{Text, "<<a(b)>>", 2, `unknown function "a"`},
		{Text, "<<base64(a<<b)>>", 10, `unexpected "<" after an argument`},
		// Each context's own rules still apply around a call.
		{JSON, `{"a":<<base64(x)>>}`, 5, "placeholder <<base64(...)>> is not inside a JSON string"},
		{JSON, `{"a":"\<<base64(x)>>"}`, 7, "<<base64(...)>> is inside an escape sequence"},
		{URL, "<<base64(a)>>", 0, "must be a variable, not a call"},
		{URL, "https://a.com/?x=<<urlencode(a)>>", 19, "urlencode is not allowed in a URL template"},
		{URL, "https://<<urlencode(a)>>.com/", 10, "urlencode is not allowed"},
		{Query, "a=<<urlencode(b)>>", 4, "urlencode is not allowed in a Query template"},
		{Form, "a=1&b=<<urlencode(b)>>", 8, "urlencode is not allowed in a Form template"},
		{Header, "Basic <<base64(a)>>\n", 19, "control character"},
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
	}
}

func TestCallParseOK(t *testing.T) {
	tests := []struct {
		ctx Context
		src string
	}{
		{Text, "<<unix_time()>><<unix_time_ms(  )>>"},
		{Text, `<<base64(  a   ":"  b  )>>`},
		{Text, `<<base64(" é ;=()'")>>`},
		{Text, "<<base64(urlencode(a) urlencode(b) unix_time())>>"},
		{Text, "<<urlencode(a)>>"},
		{Header, "<<urlencode(a)>>"},
		{JSON, `{"<<base64url(k)>>":"<<urlencode(v)>>"}`},
		// Nested urlencode is not encoded twice by the context.
		{Form, "assertion=<<base64url(urlencode(a))>>"},
		{URL, "https://<<unix_time()>>.example.com/<<base64(p)>>?q=<<base64url(q)>>#<<unix_time_ms()>>"},
	}
	for _, tt := range tests {
		if _, err := Parse(tt.src, tt.ctx); err != nil {
			t.Errorf("Parse(%q, %v): %v", tt.src, tt.ctx, err)
		}
	}
}

func TestCallRender(t *testing.T) {
	vars := map[string]string{
		"client_id":     "s6BhdRkqt3",
		"client_secret": "7Fjfp0Z+r1K/DRbn fVd\xffmIw:",
		"v":             hostile,
	}
	std := base64.StdEncoding.EncodeToString
	raw := base64.RawURLEncoding.EncodeToString
	basic := std([]byte(vars["client_id"] + ":" + vars["client_secret"]))
	tests := []struct {
		ctx  Context
		src  string
		want string
	}{
		{Header, `Basic <<base64(client_id ":" client_secret)>>`, "Basic " + basic},
		{Header, `Basic <<base64(urlencode(client_id) ":" urlencode(client_secret))>>`,
			"Basic " + std([]byte(url.QueryEscape(vars["client_id"])+":"+url.QueryEscape(vars["client_secret"])))},
		{Header, "<<base64url(v)>>", raw([]byte(hostile))},
		{Header, "x=<<urlencode(v)>>", "x=" + url.QueryEscape(hostile)},
		{Header, "<<unix_time()>> <<unix_time_ms()>> <<unix_time()>>", "1700000000 1700000000123 1700000000"},
		{Text, `<<base64("a" "b" v)>>`, std([]byte("ab" + hostile))},
		{Text, "<<urlencode(v)>>", url.QueryEscape(hostile)},
		{Text, `<<base64(unix_time() ".")>>`, std([]byte("1700000000."))},
		{Text, `<<urlencode(" é+" unix_time_ms())>>`, "+%C3%A9%2B1700000000123"},
		// Each result is escaped for its context as a value would be.
		{Query, "a=<<base64(client_secret)>>", "a=" + url.QueryEscape(std([]byte(vars["client_secret"])))},
		{Form, "client_assertion=<<base64url(v)>>&t=<<unix_time()>>", "client_assertion=" + raw([]byte(hostile)) + "&t=1700000000"},
		{JSON, `{"basic":"<<base64(client_id ":" client_secret)>>","enc":"<<urlencode(v)>>"}`,
			`{"basic":"` + basic + `","enc":"` + url.QueryEscape(hostile) + `"}`},
		{URL, "https://<<unix_time()>>.example.com/<<base64(client_secret)>>?q=<<base64(client_secret)>>#<<base64(client_secret)>>",
			"https://1700000000.example.com/" + url.PathEscape(std([]byte(vars["client_secret"]))) +
				"?q=" + url.QueryEscape(std([]byte(vars["client_secret"]))) + "#" + url.PathEscape(std([]byte(vars["client_secret"])))},
		// A result is never expanded again.
		{Text, "<<base64url(v)>>", raw([]byte(hostile))},
	}
	for _, tt := range tests {
		got, err := mustParse(t, tt.src, tt.ctx).WithClock(stopped).Render(vars)
		if err != nil {
			t.Errorf("%v %q: %v", tt.ctx, tt.src, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%v %q:\n got %s\nwant %s", tt.ctx, tt.src, got, tt.want)
		}
	}
}

func TestCallOnePass(t *testing.T) {
	// A value that holds a placeholder goes into a call as text.
	tm := mustParse(t, `<<base64url(a)>> <<base64(a)>>`, Text)
	got, err := tm.Render(map[string]string{"a": "<<b>>", "b": "expanded"})
	if want := base64.RawURLEncoding.EncodeToString([]byte("<<b>>")) + " " + base64.StdEncoding.EncodeToString([]byte("<<b>>")); got != want || err != nil {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
}

func TestCallValueError(t *testing.T) {
	tm := mustParse(t, "https://<<base64(tenant)>>.example.com/<<base64url(id)>>", URL)
	// base64 of "i\xb7\x1d" is "abcd", a fine host.
	got, err := tm.Render(map[string]string{"tenant": "i\xb7\x1d", "id": "1"})
	if want := "https://abcd.example.com/MQ"; got != want || err != nil {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	// "s3cr3t?" encodes to "czNjcjN0Pw==", which no host may hold.
	for _, masked := range []bool{false, true} {
		vars := map[string]string{"tenant": "s3cr3t?", "id": "1"}
		if masked {
			_, err = tm.RenderMasked(vars, func(string) bool { return true })
		} else {
			_, err = tm.Render(vars)
		}
		var ve *ValueError
		if !errors.As(err, &ve) || ve.Name != "base64()" || ve.Pos != 8 {
			t.Fatalf("masked %v: error = %#v, want *ValueError for base64() at 8", masked, err)
		}
		if got, want := err.Error(), "at byte 8: bad result of base64(): "+reasonHost; got != want {
			t.Errorf("message %q, want %q", got, want)
		}
		if msg := err.Error(); strings.Contains(msg, "s3cr3t") || strings.Contains(msg, "czNjcjN0") {
			t.Errorf("error %q holds the value or the result", msg)
		}
	}
}

func TestCallMissing(t *testing.T) {
	tm := mustParse(t, `Basic <<base64(urlencode(client_id) ":" urlencode(client_secret))>>`, Header)
	for _, tt := range []struct {
		vars map[string]string
		want string
	}{
		{nil, "client_id"},
		{map[string]string{"client_id": "a"}, "client_secret"},
		{map[string]string{"client_id": "a", "client_secret": ""}, "client_secret"},
		{map[string]string{"client_id": "", "client_secret": "b"}, "client_id"},
	} {
		for _, masked := range []bool{false, true} {
			var err error
			if masked {
				_, err = tm.RenderMasked(tt.vars, func(string) bool { return true })
			} else {
				_, err = tm.Render(tt.vars)
			}
			var me *MissingError
			if !errors.As(err, &me) || me.Name != tt.want {
				t.Errorf("Render(%v) masked %v: error %v, want *MissingError for %q", tt.vars, masked, err, tt.want)
			}
		}
	}
}

func TestCallMasked(t *testing.T) {
	src := `{"auth":"Basic <<base64(client_id ":" client_secret)>>","id":"<<base64url(client_id)>>","t":"<<unix_time()>>","c":"<<base64("x")>>","s":"<<client_secret>>"}`
	tm := mustParse(t, src, JSON).WithClock(stopped)
	vars := map[string]string{"client_id": "app", "client_secret": "s3cr3t"}
	secret := func(name string) bool { return name == "client_secret" }
	got, err := tm.RenderMasked(vars, secret)
	want := `{"auth":"Basic ****","id":"YXBw","t":"1700000000","c":"eA==","s":"****"}`
	if got != want || err != nil {
		t.Errorf("got %s, %v\nwant %s", got, err, want)
	}
	got, err = tm.RenderMasked(vars, nil)
	if want := base64.StdEncoding.EncodeToString([]byte("app:s3cr3t")); err != nil || !strings.Contains(got, want) {
		t.Errorf("nil secret: %s, %v; want %s in it", got, err, want)
	}
}

func TestCallVarsAndCheck(t *testing.T) {
	src := `<<b>> <<base64(urlencode(c) ":" a b unix_time())>> <<base64url(d)>> <<a>>`
	tm := mustParse(t, src, Text)
	if got, want := strings.Join(tm.Vars(), ","), "b,c,a,d"; got != want {
		t.Errorf("Vars = %s, want %s", got, want)
	}
	if got := mustParse(t, `<<unix_time()>><<base64("x")>>`, Text).Vars(); len(got) != 0 {
		t.Errorf("Vars = %q, want none", got)
	}
	for _, tt := range []struct {
		unknown string
		pos     int
	}{
		{"b", 0},  // the placeholder's "<<"
		{"c", 25}, // the argument
		{"a", 32},
		{"d", 63},
	} {
		err := tm.Check(func(name string) bool { return name != tt.unknown })
		var e *Error
		if !errors.As(err, &e) || e.Pos != tt.pos || e.Msg != "unknown variable "+strconv.Quote(tt.unknown) {
			t.Errorf("Check without %s = %v, want at byte %d", tt.unknown, err, tt.pos)
		}
		if src[tt.pos:] == "" || !strings.HasPrefix(src[tt.pos:], tt.unknown) && !strings.HasPrefix(src[tt.pos:], "<<"+tt.unknown) {
			t.Errorf("position %d is not at %s", tt.pos, tt.unknown)
		}
	}
}

func TestWithClock(t *testing.T) {
	tm := mustParse(t, "<<unix_time_ms()>>/<<base64(unix_time_ms())>>/<<unix_time()>>", Text)
	calls := 0
	clock := func() time.Time {
		calls++
		return clockAt.Add(time.Duration(calls) * time.Hour)
	}
	got, err := tm.WithClock(clock).Render(nil)
	ms := strconv.FormatInt(clockAt.Add(time.Hour).UnixMilli(), 10)
	want := ms + "/" + base64.StdEncoding.EncodeToString([]byte(ms)) + "/" + strconv.FormatInt(clockAt.Add(time.Hour).Unix(), 10)
	if got != want || err != nil || calls != 1 {
		t.Errorf("got %q, %v after %d clock reads; want %q after 1", got, err, calls, want)
	}

	// The original keeps time.Now.
	before := time.Now().Unix()
	got, err = tm.Render(nil)
	after := time.Now().Unix()
	secs, _ := strconv.ParseInt(got[strings.LastIndexByte(got, '/')+1:], 10, 64)
	if err != nil || secs < before || secs > after {
		t.Errorf("Render = %q, %v; want seconds in [%d, %d]", got, err, before, after)
	}
	if got, _ := tm.WithClock(nil).Render(nil); got == want {
		t.Errorf("WithClock(nil) kept the injected clock")
	}

	// A template without clock calls never reads the clock.
	calls = 0
	if _, err := mustParse(t, "<<base64(a)>>", Text).WithClock(clock).Render(map[string]string{"a": "x"}); err != nil || calls != 0 {
		t.Errorf("Render = %v after %d clock reads; want none", err, calls)
	}
}

// TestEvalScratch checks that evaluating into a buffer that already holds
// bytes, with and without room to spare, leaves them alone.
func TestEvalScratch(t *testing.T) {
	tm := mustParse(t, `<<base64(urlencode(a) "-" base64url(a) b)>>`, Text)
	c := tm.phs[0].call
	vars := map[string]string{"a": "a b/é", "b": strings.Repeat("x", 100)}
	inner := url.QueryEscape(vars["a"]) + "-" + base64.RawURLEncoding.EncodeToString([]byte(vars["a"])) + vars["b"]
	want := "prefix" + base64.StdEncoding.EncodeToString([]byte(inner))
	for _, capacity := range []int{6, 7, 64, 4096} {
		b := append(make([]byte, 0, capacity), "prefix"...)
		got, err := c.eval(b, vars, clockAt)
		if string(got) != want || err != nil {
			t.Errorf("cap %d: got %q, %v; want %q", capacity, got, err, want)
		}
	}
}

// TestFirst: first gives its first argument that is not empty, skipping
// variables without a value and calls that need one.
func TestFirst(t *testing.T) {
	tests := []struct {
		ctx  Context
		src  string
		vars map[string]string
		want string
	}{
		{Header, `<<first(region_url "https://app.intercom.com")>>`, nil, "https://app.intercom.com"},
		{Header, `<<first(region_url "https://app.intercom.com")>>`, map[string]string{"region_url": "https://eu.intercom.io"}, "https://eu.intercom.io"},
		{Header, `<<first(a b "c")>>`, map[string]string{"b": "B"}, "B"},
		{Header, `Basic <<first(base64(id ":" secret) "anonymous")>>`, map[string]string{"id": "i"}, "Basic anonymous"},
		{Header, `Basic <<first(base64(id ":" secret) "anonymous")>>`, map[string]string{"id": "i", "secret": "s"}, "Basic aTpz"},
		{Query, `<<first(q "a b")>>`, nil, "a+b"}, // escaped for where it lands
		{Text, `x<<base64(first(a "d"))>>`, nil, "xZA=="},
	}
	for _, tt := range tests {
		tp, err := Parse(tt.src, tt.ctx)
		if err != nil {
			t.Fatalf("%s: %v", tt.src, err)
		}
		got, err := tp.Render(tt.vars)
		if err != nil || got != tt.want {
			t.Errorf("%s with %v = %q, %v; want %q", tt.src, tt.vars, got, err, tt.want)
		}
	}
	tp, _ := Parse(`<<first(a b)>>`, Header)
	var missing *MissingError
	if _, err := tp.Render(nil); !errors.As(err, &missing) || missing.Name != "a" {
		t.Errorf("first with no value: %v, want a MissingError for a", err)
	}
	if _, err := Parse(`<<first()>>`, Header); err == nil {
		t.Error("first() with no argument parses")
	}
}

// TestOptional: <<name?>> leaves a header or query parameter out when the
// value is missing, and is refused where a field cannot be left out.
func TestOptional(t *testing.T) {
	tp, err := Parse("<<company_id?>>", Header)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tp.Render(map[string]string{"company_id": "42"}); err != nil || got != "42" {
		t.Errorf("with a value: %q, %v", got, err)
	}
	if _, err := tp.Render(nil); !errors.Is(err, ErrOmitted) {
		t.Errorf("without a value: %v, want ErrOmitted", err)
	}
	if got := tp.Vars(); len(got) != 1 || got[0] != "company_id" {
		t.Errorf("Vars = %v", got)
	}
	q, _ := Parse("id-<<x?>>", Query)
	if _, err := q.Render(nil); !errors.Is(err, ErrOmitted) {
		t.Errorf("query: %v", err)
	}
	for _, ctx := range []Context{URL, Form, JSON, Text} {
		src := "<<x?>>"
		switch ctx {
		case URL:
			src = "https://a.example/<<x?>>"
		case JSON:
			src = `{"a":"<<x?>>"}`
		}
		if _, err := Parse(src, ctx); err == nil || !strings.Contains(err.Error(), "optional") {
			t.Errorf("%v: %v, want a refusal", ctx, err)
		}
	}
}

// TestBaseURL: a URL template may start with a variable holding a base URL
// that a path follows; the value is checked as a whole, and the path after
// it cannot climb out of it.
func TestBaseURL(t *testing.T) {
	tp, err := Parse("<<api_domain>>/api/v1/<<id>>?x=<<q>>", URL)
	if err != nil {
		t.Fatal(err)
	}
	if got := tp.BaseVars(); len(got) != 1 || got[0] != "api_domain" {
		t.Errorf("BaseVars = %q", got)
	}
	for _, tt := range []struct {
		base, want string
		bad        bool
	}{
		{"https://acme.pipedrive.com", "https://acme.pipedrive.com/api/v1/a%2Fb?x=1+2", false},
		{"https://looker.example.com:19999/", "https://looker.example.com:19999/api/v1/a%2Fb?x=1+2", false},
		{"https://eu.example.com/tenant", "https://eu.example.com/tenant/api/v1/a%2Fb?x=1+2", false},
		{"ftp://x.example", "", true},
		{"https://x.example/?q=1", "", true},
		{"https://u:p@x.example", "", true},
		{"https://x.example/a/../b", "", true},
		{"https://x.example/%2e%2e", "", true},
		{"api.example.com", "", true},
	} {
		got, err := tp.Render(map[string]string{"api_domain": tt.base, "id": "a/b", "q": "1 2"})
		if tt.bad {
			var ve *ValueError
			if !errors.As(err, &ve) || ve.Name != "api_domain" {
				t.Errorf("base %q: %q, %v; want a ValueError", tt.base, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("base %q: %q, %v; want %q", tt.base, got, err, tt.want)
		}
	}
	if (&Template{}).BaseVars() != nil {
		t.Error("an empty template has a base")
	}
	if tp, _ := Parse("https://<<h>>/x", URL); tp.BaseVars() != nil {
		t.Error("a host placeholder is a base")
	}
}

// TestJSONValues: a variable alone as a JSON value is written as is, and
// must be a JSON number or boolean.
func TestJSONValues(t *testing.T) {
	tp, err := Parse(`{"amount": <<amount>>, "live": <<live>>, "name": "<<name>>"}`, JSON)
	if err != nil {
		t.Fatal(err)
	}
	if got := tp.ValueVars(); len(got) != 2 || got[0] != "amount" || got[1] != "live" {
		t.Errorf("ValueVars = %v", got)
	}
	got, err := tp.Render(map[string]string{"amount": "12.5", "live": "true", "name": `a"b`})
	if err != nil || got != `{"amount": 12.5, "live": true, "name": "a\"b"}` {
		t.Errorf("Render = %s, %v", got, err)
	}
	for _, bad := range []string{`1, "x": 2`, "tru", `"1"`, "{}", "1e"} {
		var ve *ValueError
		if _, err := tp.Render(map[string]string{"amount": bad, "live": "false", "name": "n"}); !errors.As(err, &ve) || ve.Name != "amount" {
			t.Errorf("amount %q: %v, want a ValueError", bad, err)
		}
	}
}

// TestBaseFirst: first() of url settings and literal base URLs may be a
// URL's base (Intercom's regions), each literal checked when parsed and
// the result when rendered.
func TestBaseFirst(t *testing.T) {
	tp, err := Parse(`<<first(region_url "https://app.intercom.com")>>/oauth?client_id=<<id>>`, URL)
	if err != nil {
		t.Fatal(err)
	}
	if got := tp.BaseVars(); len(got) != 1 || got[0] != "region_url" {
		t.Errorf("BaseVars = %q", got)
	}
	for _, tt := range []struct{ region, want string }{
		{"", "https://app.intercom.com/oauth?client_id=c"},
		{"https://app.eu.intercom.com/", "https://app.eu.intercom.com/oauth?client_id=c"},
	} {
		if got, err := tp.Render(map[string]string{"region_url": tt.region, "id": "c"}); err != nil || got != tt.want {
			t.Errorf("region %q: %q, %v; want %q", tt.region, got, err, tt.want)
		}
	}
	if _, err := tp.Render(map[string]string{"region_url": "https://x.example/a?q=1", "id": "c"}); err == nil {
		t.Error("a base with a query was rendered")
	}
	for _, src := range []string{
		`<<first(region_url "app.intercom.com")>>/oauth`,      // a literal that is not a base URL
		`<<first(base64(region_url) "https://a.example")>>/x`, // a call among the arguments
		`<<base64(region_url)>>/x`,                            // another function
	} {
		if _, err := Parse(src, URL); err == nil {
			t.Errorf("%s was accepted as a URL", src)
		}
	}
}

// TestHostPort: a placeholder that ends a URL's authority takes a host
// with a port (Looker's looker.example.com:19999), and nothing else.
func TestHostPort(t *testing.T) {
	tp, err := Parse("https://<<host>>/api/4.0/login", URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		host string
		ok   bool
	}{
		{"looker.example.com:19999", true}, {"looker.example.com", true}, {"10.1.2.3:8443", true}, {"[2001:db8::1]:443", true},
		{"[2001:db8::1]", true}, {"a.example:", false}, {"a.example:123456", false}, {"a.example:80x", false},
		{"a.example/x", false}, {"u@a.example", false}, {"[nope]:80", false}, {"a.example:80:80", false}, {"", false},
	} {
		got, err := tp.Render(map[string]string{"host": tt.host})
		if tt.ok != (err == nil) || tt.ok && got != "https://"+tt.host+"/api/4.0/login" {
			t.Errorf("host %q: %q, %v", tt.host, got, err)
		}
	}
	// Inside the authority, as a subdomain, a port cannot come in.
	sub, err := Parse("https://<<tenant>>.example.com/x", URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Render(map[string]string{"tenant": "a:80"}); err == nil {
		t.Error("a subdomain value carried a port")
	}
}
