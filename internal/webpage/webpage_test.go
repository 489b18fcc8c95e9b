package webpage

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

func TestImageOrigin(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"https://cdn.example/a/logo.png?v=2", "https://cdn.example"},
		{"HTTPS://CDN.Example:8443/logo.png", "https://cdn.example:8443"},
		{"http://127.0.0.1:9/logo.png", "http://127.0.0.1:9"},
		{"", ""},
		{"data:image/png;base64,AAAA", ""},
		{"javascript:alert(1)", ""},
		{"https://user:pw@cdn.example/logo.png", ""},
		{"https://[::1]/logo.png", ""}, // not written into a CSP: the logo is dropped
		{"//cdn.example/logo.png", ""},
		{"https://cdn.example;script-src *", ""},
	} {
		if got := ImageOrigin(tt.in); got != tt.want {
			t.Errorf("ImageOrigin(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCSP(t *testing.T) {
	for _, tt := range []struct {
		origin string
		form   bool
		want   string
	}{
		{"", false, "default-src 'none'; style-src " + styleHash + "; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"},
		{"https://cdn.example", true, "default-src 'none'; style-src " + styleHash + "; img-src https://cdn.example; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"},
	} {
		if got := CSP(tt.origin, tt.form); got != tt.want {
			t.Errorf("CSP(%q, %v) =\n %s\nwant\n %s", tt.origin, tt.form, got, tt.want)
		}
	}
}

var testTemplate = Parse("test", `<h1>{{.Name}}</h1>`)

// TestRender checks a rendered page: its headers, that the stylesheet it
// carries is the one the CSP's hash allows, and that what it shows is
// escaped.
func TestRender(t *testing.T) {
	e := echo.New()
	rec := httptest.NewRecorder()
	c := e.NewContext(httptest.NewRequest("GET", "/", nil), rec)
	err := Render(c, testTemplate, Page{
		Status: http.StatusGone, Title: "T", Heading: "<b>App</b>", Logo: "https://cdn.example/l.png",
		Body: map[string]string{"Name": "<script>x</script>"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusGone {
		t.Errorf("status %d", rec.Code)
	}
	h := rec.Header()
	if h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", h)
	}
	if got, want := h.Get("Content-Security-Policy"), CSP("https://cdn.example", false); got != want {
		t.Errorf("CSP %q, want %q", got, want)
	}
	body := rec.Body.String()
	m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no <style>")
	}
	sum := sha256.Sum256([]byte(m[1]))
	if got := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; got != styleHash {
		t.Errorf("the page's stylesheet hashes to %s; the CSP allows %s", got, styleHash)
	}
	for _, bad := range []string{"<script>", "<b>App</b>"} {
		if strings.Contains(body, bad) {
			t.Errorf("unescaped %s in the page", bad)
		}
	}

	// A logo that cannot be allowed exactly is left out, with its img-src.
	rec = httptest.NewRecorder()
	c = e.NewContext(httptest.NewRequest("GET", "/", nil), rec)
	if err := Render(c, testTemplate, Page{Logo: "javascript:alert(1)", Body: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(rec.Body.String(), "<img") || strings.Contains(rec.Header().Get("Content-Security-Policy"), "img-src") {
		t.Errorf("an unusable logo is still on the page:\n%s", rec.Body.String())
	}
}

// TestNav checks that a page may define the layout's "nav" template, which
// is rendered before <main>, and that pages that do not have none.
func TestNav(t *testing.T) {
	withNav := Parse("with-nav", `<h1>{{.Name}}</h1>`)
	template.Must(withNav.New("nav").Parse(`<nav aria-label="Sections">{{.Name}}</nav>`))
	for _, tt := range []struct {
		t    *template.Template
		wide bool
		want string
	}{
		{withNav, true, "<body>\n<nav aria-label=\"Sections\">x</nav>\n<main class=\"wide\">"},
		{testTemplate, false, "<body>\n\n\n<main>"},
	} {
		rec := httptest.NewRecorder()
		c := echo.New().NewContext(httptest.NewRequest("GET", "/", nil), rec)
		if err := Render(c, tt.t, Page{Wide: tt.wide, Body: map[string]string{"Name": "x"}}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("page lacks %q:\n%s", tt.want, rec.Body.String())
		}
	}
}
