// Package webpage renders the HTML pages Latchkey shows to people (the
// hosted install page, the connect page, the OAuth result page and the
// developer console): one layout with one inline stylesheet, and the
// headers that make them safe to show anywhere.
//
// The pages run no script and load nothing from elsewhere but the app's
// logo. Their Content-Security-Policy allows exactly that:
//
//	default-src 'none'; style-src 'sha256-…'; img-src <the logo's origin>;
//	form-action 'self' (or 'none'); frame-ancestors 'none'; base-uri 'none'
//
// The stylesheet is allowed by its hash, not by 'unsafe-inline', so an
// injected <style> or style attribute does nothing. The logo is the only
// third-party request: img-src names the origin of that one URL (never
// "https:", which would let injected markup load from anywhere), and
// Referrer-Policy: no-referrer keeps the page's URL, which carries a link
// token, from reaching it.
package webpage

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"
)

// css is the one stylesheet. It is emitted verbatim into <style>, and its
// hash goes in the CSP: change it freely, the hash follows.
const css = `
:root{color-scheme:light;--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--accent:#0b5cad;--accent-fg:#fff;--bad:#b3261e;--bad-bg:#fdecea;--ok:#1a7f37;--bg:#f4f6f8;--focus:#0b5cad}
*{box-sizing:border-box}
html{font-size:100%}
body{margin:0;padding:1rem;font:1rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:34rem;margin:0 auto;background:#fff;border:1px solid var(--line);border-radius:12px;padding:1.25rem}
@media (min-width:40rem){body{padding:3rem 1rem}main{padding:2rem 2.25rem}}
header{display:flex;align-items:center;gap:.875rem;margin-bottom:1rem}
header img{width:48px;height:48px;object-fit:contain;border-radius:8px;flex:none}
header p{margin:0;color:var(--muted);font-size:.9375rem}
h1{font-size:1.375rem;line-height:1.3;margin:0}
h2{font-size:1.0625rem;margin:1.5rem 0 .5rem}
p{margin:.75rem 0}
a{color:var(--accent)}
.muted{color:var(--muted);font-size:.9375rem}
.ref{color:var(--muted);font-size:.875rem}
.ref code{font-size:.875rem}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.875em;background:#eef1f4;border-radius:4px;padding:.1em .3em;overflow-wrap:anywhere}
pre{white-space:pre-wrap;padding:.5rem .75rem;margin:.5rem 0}
pre code{padding:0}
ul.scopes{padding-left:1.25rem}
.field{margin:0 0 1.25rem}
label,.label{display:block;font-weight:600;margin-bottom:.25rem}
.req{color:var(--bad);font-weight:400}
.hint{display:block;color:var(--muted);font-size:.875rem;margin:.125rem 0 .375rem}
input[type=text],input[type=password],select,textarea{display:block;width:100%;font:inherit;padding:.625rem .75rem;border:1px solid #8c959f;border-radius:8px;background:#fff;color:inherit}
textarea{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.875rem;min-height:5rem}
a:focus,input:focus,select:focus,textarea:focus,summary:focus,.button:focus,button:focus{outline:3px solid var(--focus);outline-offset:2px}
input[aria-invalid=true],select[aria-invalid=true],textarea[aria-invalid=true]{border:2px solid var(--bad)}
.error{color:var(--bad);font-weight:600;font-size:.9375rem;margin:.375rem 0 0}
.summary{border:2px solid var(--bad);background:var(--bad-bg);border-radius:8px;padding:.75rem 1rem;margin:0 0 1.25rem}
.summary h2{margin:0 0 .25rem;font-size:1rem;color:var(--bad)}
.summary ul{margin:0;padding-left:1.25rem}
.summary a{color:var(--bad)}
.fixed{margin:0;padding:.5rem .75rem;background:#eef1f4;border-radius:8px;overflow-wrap:anywhere}
.button,button{display:inline-block;font:inherit;font-weight:600;text-align:center;text-decoration:none;cursor:pointer;border:0;border-radius:8px;padding:.75rem 1.25rem;background:var(--accent);color:var(--accent-fg);min-height:44px}
.button.secondary{background:#fff;color:var(--accent);border:1px solid var(--accent)}
.actions{display:flex;flex-wrap:wrap;gap:.75rem;margin-top:1.5rem}
@media (max-width:30rem){.actions .button,.actions button{width:100%}}
.status{font-weight:600}
.status.ok{color:var(--ok)}
.status.bad{color:var(--bad)}
dl{display:grid;grid-template-columns:minmax(7rem,auto) 1fr;gap:.375rem 1rem;margin:.5rem 0}
dt{color:var(--muted)}
dd{margin:0;overflow-wrap:anywhere}
main.wide{max-width:72rem;overflow-x:auto}
h3{font-size:1rem;margin:1.25rem 0 .375rem}
h4{font-size:.9375rem;margin:1rem 0 .25rem}
[aria-current=page]{font-weight:700;text-decoration:none}
body>nav{max-width:72rem;margin:0 auto 1rem;display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1.25rem}
body>nav ul{display:flex;flex-wrap:wrap;gap:.25rem 1rem;list-style:none;margin:0;padding:0}
body>nav form{margin-left:auto}
body>nav button{min-height:0;padding:.375rem .875rem}
.crumbs{color:var(--muted);font-size:.9375rem;margin:0 0 .5rem}
table{width:100%;border-collapse:collapse;margin:.5rem 0 1rem}
th,td{text-align:left;vertical-align:top;padding:.5rem .5rem .5rem 0;border-bottom:1px solid var(--line);overflow-wrap:break-word}
th{font-weight:600}
td code{overflow-wrap:break-word}
td pre,td pre code{overflow-wrap:anywhere}
fieldset{border:1px solid var(--line);border-radius:8px;margin:0 0 1.25rem;padding:.75rem 1rem 0}
legend{font-weight:600;padding:0 .25rem}
.check{display:flex;gap:.5rem;align-items:center;font-weight:400}
.check input{width:1.25rem;height:1.25rem;margin:0}
.row{display:flex;flex-wrap:wrap;gap:0 1rem}
.row>.field{flex:1 1 14rem}
.notice{border:2px solid var(--ok);border-radius:8px;padding:.75rem 1rem;margin:0 0 1.25rem}
details{margin:.25rem 0}
summary{cursor:pointer}
mark{background:#ffe08a;color:var(--fg)}
`

// styleHash is the CSP source that allows css and nothing else.
var styleHash = func() string {
	sum := sha256.Sum256([]byte(css))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

const layout = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}}</title>
<style>` + css + `</style>
</head>
<body>
{{template "nav" .Body}}
<main{{if .Wide}} class="wide"{{end}}>
{{if or .Logo .Heading}}<header>{{if .Logo}}<img src="{{.Logo}}" alt="{{.LogoAlt}}">{{end}}{{if .Heading}}<p>{{.Heading}}</p>{{end}}</header>{{end}}
{{template "body" .Body}}
</main>
</body>
</html>
{{define "nav"}}
{{end}}`

// Parse returns the layout with body as its "body" template, which is
// executed with Page.Body as its data. It panics if body does not parse:
// templates are constants of the program.
//
// The layout also calls a "nav" template, before <main> and with the same
// data, which is empty here: pages with a navigation bar (the developer
// console) define it on the result before executing it.
func Parse(name, body string) *template.Template {
	t := template.Must(template.New(name).Parse(layout))
	template.Must(t.New("body").Parse(body))
	return t
}

// Page is one page to render.
type Page struct {
	Status  int    // 0 means 200
	Title   string // the document title
	Heading string // a line beside the logo, usually the app's name
	Logo    string // an http(s) URL, or ""; dropped if it cannot be allowed exactly
	LogoAlt string
	// Form says the page has a form that posts to Latchkey itself; other
	// pages get form-action 'none'.
	Form bool
	// Wide makes <main> wider, for the developer console's tables.
	Wide bool
	Body any // the data of the "body" template
}

// Render writes p with t (from Parse) and the security headers: the CSP,
// Cache-Control: no-store (the pages hold link tokens, form tokens and
// per-user outcomes), Referrer-Policy: no-referrer, nosniff.
func Render(c echo.Context, t *template.Template, p Page) error {
	origin := ImageOrigin(p.Logo)
	if origin == "" {
		p.Logo = ""
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		return err
	}
	SetHeaders(c.Response().Header(), origin, p.Form)
	status := p.Status
	if status == 0 {
		status = http.StatusOK
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// CSP returns the Content-Security-Policy of a page whose only image comes
// from imageOrigin ("" for none) and which has a form when form is set.
func CSP(imageOrigin string, form bool) string {
	var b strings.Builder
	b.WriteString("default-src 'none'; style-src ")
	b.WriteString(styleHash)
	if imageOrigin != "" {
		b.WriteString("; img-src ")
		b.WriteString(imageOrigin)
	}
	if form {
		b.WriteString("; form-action 'self'")
	} else {
		b.WriteString("; form-action 'none'")
	}
	b.WriteString("; frame-ancestors 'none'; base-uri 'none'")
	return b.String()
}

// SetHeaders sets the headers of a page (see Render) on h.
func SetHeaders(h http.Header, imageOrigin string, form bool) {
	h.Set("Content-Security-Policy", CSP(imageOrigin, form))
	NoStore(h)
	h.Set("X-Content-Type-Options", "nosniff")
}

// NoStore sets the headers every answer to a person's browser carries,
// redirects included: nothing cached, and no Referer sent onwards (the
// URLs carry link tokens, codes and states).
func NoStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
}

// hostPattern is what a host may be to appear in a CSP source: a name or
// an IPv4 address, with an optional port. Anything else (IPv6 literals,
// odd characters that url.Parse lets through) is not allowed, and the
// logo is left out instead.
var hostPattern = regexp.MustCompile(`^[A-Za-z0-9.-]+(:[0-9]{1,5})?$`)

// ImageOrigin returns the CSP source for the origin of an http(s) image
// URL ("https://cdn.example"), or "" when raw is empty or not such a URL.
func ImageOrigin(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || !hostPattern.MatchString(u.Host) {
		return ""
	}
	return u.Scheme + "://" + strings.ToLower(u.Host)
}
