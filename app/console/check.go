package console

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/oauthconfig"
	"github.com/latchkey/latchkey/oauthconfig/connection"
	"github.com/latchkey/latchkey/oauthconfig/token"
)

var checkTemplate = parse("console-config-check", `
<p class="crumbs"><a href="/console/apps/{{.App.ID}}/configs/{{.D.Config.ID}}">OAuth config {{.D.Config.Name}}</a></p>
<h1>Explain and test {{.D.Config.Name}}</h1>

<h2 id="explain-title">Explain</h2>
<p>The authorization link and the token and refresh requests as they would be sent for an installation and user, secrets masked, with where each variable's value comes from.</p>
{{template "summary" .D.Explain}}
<form method="post" action="/console/apps/{{.App.ID}}/configs/{{.D.Config.ID}}/explain" aria-labelledby="explain-title" novalidate>
<input type="hidden" name="_csrf" value="{{.CSRF}}">
{{range .D.Explain.Inputs}}{{template "input" .}}{{end}}
<div class="actions"><button type="submit" id="explain">Explain</button></div>
</form>
{{with .D.Explained}}<section aria-labelledby="explained-title" id="explanation">
<h3 id="explained-title">What would be sent</h3>
<table>
<thead><tr><th scope="col">Variable</th><th scope="col">Source</th><th scope="col">Value</th></tr></thead>
<tbody>{{range .Variables}}<tr><td><code>{{.Name}}</code></td><td>{{.Source}}</td><td>{{if .Secret}}{{if ne .Source "missing"}}**** (secret){{end}}{{else}}{{.Value}}{{end}}</td></tr>
{{end}}</tbody>
</table>
{{with .LinkURL}}<h4>Authorization link</h4><pre><code id="explained-link">{{.}}</code></pre>{{end}}
{{with .Token}}<h4>Token request</h4><pre><code id="explained-token">{{.}}</code></pre>{{end}}
{{with .Refresh}}<h4>Refresh request</h4><pre><code>{{.}}</code></pre>{{end}}
{{with .Problems}}<h4>What cannot be rendered</h4><ul class="problems">{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}
</section>{{end}}

<h2 id="extract-title">Test the extraction</h2>
<p>Paste a sample token response (JSON or form text) and, if you like, the query of a sample callback: the config's paths are applied as they would be to a real answer. Tokens are shown masked.</p>
{{template "summary" .D.Extract}}
<form method="post" action="/console/apps/{{.App.ID}}/configs/{{.D.Config.ID}}/test-extraction" aria-labelledby="extract-title" novalidate>
<input type="hidden" name="_csrf" value="{{.CSRF}}">
{{range .D.Extract.Inputs}}{{template "input" .}}{{end}}
<div class="actions"><button type="submit" id="test-extraction">Test</button></div>
</form>
{{with .D.Extracted}}<section aria-labelledby="extracted-title" id="extraction">
<h3 id="extracted-title">What the paths find</h3>
<dl>{{range .Rows}}<dt>{{.Key}}</dt><dd>{{.Shown}}</dd>{{end}}</dl>
{{with .Problems}}<h4>Problems</h4><ul>{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}
</section>{{end}}

{{if .D.Token}}<h2 id="token-title">Retrieve a token now</h2>
<p>For a grant without an end user at the provider: the token request is sent now for an installation (and user, for tokens kept per user), and the tokens are stored as a renewal would store them.</p>
{{template "summary" .D.Token}}
<form method="post" action="/console/apps/{{.App.ID}}/configs/{{.D.Config.ID}}/token" aria-labelledby="token-title" novalidate>
<input type="hidden" name="_csrf" value="{{.CSRF}}">
{{range .D.Token.Inputs}}{{template "input" .}}{{end}}
<div class="actions"><button type="submit" id="fetch-token">Retrieve a token</button></div>
</form>
{{with .D.Fetched}}<section aria-labelledby="fetched-title" id="fetched">
<h3 id="fetched-title">Token stored</h3>
<dl>{{range .}}<dt>{{.Key}}</dt><dd>{{.Shown}}</dd>{{end}}</dl>
</section>{{end}}{{end}}
`)

// checkPage is what the check page shows: its three forms and the result
// of the one last sent.
type checkPage struct {
	explain, extract, token        url.Values // submitted values
	explainErr, extractErr, tokErr error
	explained                      *explained
	extracted                      *extracted
	fetched                        []valueRow
}

type explained struct {
	Variables               []token.ExplainedVariable
	LinkURL, Token, Refresh string
	Problems                []string
}

type extracted struct {
	Rows     []valueRow
	Problems []string
}

func (h *Handler) checkPage(c echo.Context) error {
	a, cfg, err := h.config(c)
	if err != nil {
		return err
	}
	return h.renderCheck(c, http.StatusOK, a, cfg, checkPage{})
}

func (h *Handler) renderCheck(c echo.Context, status int, a app.App, cfg oauthconfig.Config, p checkPage) error {
	ctx := c.Request().Context()
	ex := newForm(p.explainErr, p.explain)
	ex.ID = "explain"
	if err := h.installationInput(ctx, a, ex, "installation_id", p.explain.Get("installation_id")); err != nil {
		return err
	}
	ex.add(input{Name: "user_id", Label: "User id", Hint: "Whose user settings to use; empty for organization settings only."})

	tx := newForm(p.extractErr, p.extract)
	tx.ID = "extract"
	tx.add(input{Name: "response", Label: "Sample token response", Type: "textarea", Rows: 5,
		Placeholder: `{"access_token": "…", "refresh_token": "…", "expires_in": 3600}`})
	if cfg.GrantType == oauthconfig.AuthorizationCode {
		tx.add(input{Name: "callback_query", Label: "Sample callback query", Hint: "Optional, e.g. code=abc&state=xyz: where the authorization code path finds the code."})
	}

	var tok *form
	if cfg.GrantType != oauthconfig.AuthorizationCode {
		tok = newForm(p.tokErr, p.token)
		tok.ID = "token"
		if err := h.installationInput(ctx, a, tok, "installation_id", p.token.Get("installation_id")); err != nil {
			return err
		}
		if cfg.TokenLevel != "organization" {
			tok.add(input{Name: "user_id", Label: "User id", Required: true, Hint: "This config keeps a token per end user."})
		}
	}
	title := "Explain and test " + cfg.Name
	for _, f := range []*form{ex, tx, tok} {
		if f != nil && len(f.Summary()) > 0 {
			title = "Error: " + title
			break
		}
	}
	return h.render(c, checkTemplate, status, title, view{App: &a, Section: "configs", D: map[string]any{
		"Config": cfg, "Explain": ex, "Extract": tx, "Token": tok,
		"Explained": p.explained, "Extracted": p.extracted, "Fetched": p.fetched,
	}})
}

// explain shows token.Explain for an installation and user, as POST
// .../explain does.
func (h *Handler) explain(c echo.Context) error {
	a, cfg, err := h.config(c)
	if err != nil {
		return err
	}
	form, err := readForm(c)
	if err != nil {
		return err
	}
	p := checkPage{explain: form}
	ctx := c.Request().Context()
	inst, err := h.appInstallation(ctx, a, "installation_id", form.Get("installation_id"))
	if err != nil {
		p.explainErr = err
		return h.renderCheck(c, statusOf(err), a, cfg, p)
	}
	resolved, err := h.Settings.Resolve(ctx, inst, strings.TrimSpace(form.Get("user_id")))
	if err != nil {
		return err
	}
	defs, err := h.Settings.Definitions(ctx, a.ID, "")
	if err != nil {
		return err
	}
	ex := token.Explain(&cfg, defs, resolved, h.Links.RedirectURI())
	p.explained = &explained{Variables: ex.Variables, LinkURL: ex.LinkURL, Problems: ex.Problems,
		Token: showRequest(ex.TokenRequest), Refresh: showRequest(ex.RefreshRequest)}
	return h.renderCheck(c, http.StatusOK, a, cfg, p)
}

// showRequest writes a request as it goes on the wire, roughly.
func showRequest(r *token.Request) string {
	if r == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(r.Method + " " + r.URL + "\n")
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		b.WriteString(k + ": " + r.Header.Get(k) + "\n")
	}
	if r.Body != "" {
		b.WriteString("\n" + r.Body)
	}
	return b.String()
}

// testExtraction applies the config's paths to a pasted sample, with
// token.TryExtraction and ExtractCode, as POST .../test-extraction
// does.
func (h *Handler) testExtraction(c echo.Context) error {
	a, cfg, err := h.config(c)
	if err != nil {
		return err
	}
	form, err := readForm(c)
	if err != nil {
		return err
	}
	p := checkPage{extract: form}
	x := &extracted{}
	fail := func(err error) error {
		p.extractErr = err
		return h.renderCheck(c, statusOf(err), a, cfg, p)
	}
	if q := strings.TrimSpace(form.Get("callback_query")); q != "" {
		values, err := url.ParseQuery(strings.TrimPrefix(q, "?"))
		if err != nil {
			return fail(errs.Fields{{Field: "callback_query", Message: "is not a URL query"}}.Err())
		}
		code, err := token.ExtractCode(&cfg, values)
		if err != nil {
			return fail(errs.Fields{{Field: "callback_query", Message: errs.MessageOf(err)}}.Err())
		}
		x.Rows = append(x.Rows, valueRow{Key: "authorization code", Shown: token.Mask(code)})
	}
	if body := strings.TrimSpace(form.Get("response")); body != "" {
		got, err := token.TryExtraction(&cfg, []byte(body))
		if err != nil {
			return fail(err)
		}
		x.Rows = append(x.Rows, valueRow{Key: "access token", Shown: got.AccessToken},
			valueRow{Key: "refresh token", Shown: orNone(got.RefreshToken)},
			valueRow{Key: "expires in", Shown: expiresIn(got.ExpiresIn)})
		for _, k := range sortedKeys(got.Extra) {
			x.Rows = append(x.Rows, valueRow{Key: k, Shown: got.Extra[k]})
		}
		x.Problems = got.Problems
	}
	if len(x.Rows) == 0 {
		return fail(errs.Fields{{Field: "response", Message: "is empty: paste a sample response, a callback query, or both"}}.Err())
	}
	p.extracted = x
	return h.renderCheck(c, http.StatusOK, a, cfg, p)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func expiresIn(n int64) string {
	if n == 0 {
		return "(not given: the config's default lifetime)"
	}
	return strconv.FormatInt(n, 10) + " seconds"
}

// fetchToken retrieves a token now with call.Caller.FetchToken, as
// POST .../token does.
func (h *Handler) fetchToken(c echo.Context) error {
	a, cfg, err := h.config(c)
	if err != nil {
		return err
	}
	form, err := readForm(c)
	if err != nil {
		return err
	}
	p := checkPage{token: form}
	ctx := c.Request().Context()
	inst, err := h.appInstallation(ctx, a, "installation_id", form.Get("installation_id"))
	if err == nil {
		var conn connection.Connection
		var got map[string]string
		conn, got, err = h.Caller.FetchToken(ctx, inst, &cfg, strings.TrimSpace(form.Get("user_id")))
		if err == nil {
			p.fetched = append(p.fetched, valueRow{Key: "status", Shown: conn.Status}, valueRow{Key: "expires", Shown: when(conn.ExpiresAt)})
			for _, k := range sortedKeys(got) {
				p.fetched = append(p.fetched, valueRow{Key: k, Shown: got[k]})
			}
			return h.renderCheck(c, http.StatusOK, a, cfg, p)
		}
	}
	if errs.CodeOf(err) == errs.Internal {
		return err
	}
	// The provider's refusal, or a bad choice: shown with the form.
	p.tokErr = err
	return h.renderCheck(c, statusOf(err), a, cfg, p)
}
