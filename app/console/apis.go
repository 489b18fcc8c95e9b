package console

import (
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/oauthconfig"
	"github.com/latchkey/latchkey/oauthconfig/call"
	"github.com/latchkey/latchkey/oauthconfig/token"
)

// apiMethods are the methods an API may allow, as app.API says.
var apiMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// bodyShown is how much of an answer "try it" shows.
const bodyShown = 4 << 10

var apisTemplate = parse("console-apis", `
{{template "notice" .}}
<h1>APIs of {{.App.Name}}</h1>
<p>The provider APIs the app calls through Latchkey, with credentials added from settings.</p>
{{if .D.APIs}}<table>
<thead><tr><th scope="col">Name</th><th scope="col">Base URL</th><th scope="col">Methods</th><th scope="col">OAuth config</th></tr></thead>
<tbody>{{range .D.APIs}}<tr><td><a href="/console/apps/{{$.App.ID}}/apis/{{.ID}}">{{.Name}}</a></td><td><code>{{.BaseURL}}</code></td><td>{{.Methods}}</td><td>{{.Config}}</td></tr>
{{end}}</tbody>
</table>{{else}}<p>The app has no APIs yet.</p>{{end}}
<h2 id="add-title">Add an API</h2>
{{template "summary" .D.Form}}
<form method="post" action="/console/apps/{{.App.ID}}/apis" aria-labelledby="add-title" novalidate>
<input type="hidden" name="_csrf" value="{{.CSRF}}">
{{template "api-fields" .D}}
<div class="actions"><button type="submit" id="add-api">Add API</button></div>
</form>
`+apiFields)

// apiFields is the API form's fields, shared by the new and edit forms.
const apiFields = `
{{define "api-fields"}}{{range .Form.Inputs}}{{template "input" .}}{{end}}
<fieldset><legend>Methods it allows</legend>
<p class="hint">None checked: GET, POST, PUT, PATCH and DELETE.</p>
{{range .Methods}}<div class="field"><label class="check" for="{{$.Form.ID}}-method-{{.Value}}"><input type="checkbox" id="{{$.Form.ID}}-method-{{.Value}}" name="methods" value="{{.Value}}"{{if .Selected}} checked{{end}}>{{.Value}}</label></div>
{{end}}</fieldset>{{end}}`

type apiRow struct{ ID, Name, BaseURL, Methods, Config string }

// apiForm is the form of an API's fields, with x's values unless values
// (a submission) is set.
func apiForm(x app.API, cfgs []oauthconfig.Config, values url.Values, problem error) (*form, []option) {
	f := newForm(problem, values)
	f.ID = "api"
	cid := ""
	if x.ConfigID != nil {
		cid = *x.ConfigID
	}
	configOptions := []option{{Value: "", Label: "(none: credentials are plain settings)", Selected: cid == ""}}
	for _, cfg := range cfgs {
		configOptions = append(configOptions, option{Value: cfg.ID, Label: cfg.Name, Selected: cfg.ID == cid})
	}
	f.add(input{Name: "name", Label: "Name", Value: x.Name, Required: true, Hint: "Lowercase letters, digits, “_” and “-”: it names the API in call URLs."})
	f.add(input{Name: "description", Label: "Description", Value: x.Description})
	f.add(input{Name: "base_url", Label: "Base URL", Value: x.BaseURL, Required: true, Hint: "A template without a query, e.g. https://<<subdomain>>.provider.example/api/v2."})
	f.add(input{Name: "config_id", Label: "OAuth config", Type: "select", Options: configOptions, Hint: "Whose tokens the templates use, kept fresh before each call."})
	f.add(input{Name: "headers", Label: "Headers", Type: "textarea", Value: showPairs(x.Headers), Hint: "One “Name: value” a line; values are templates, e.g. Authorization: Bearer <<access_token>>."})
	f.add(input{Name: "query", Label: "Query parameters", Type: "textarea", Value: showPairs(x.Query), Hint: "One “name: value” a line; values are templates."})
	allowed := map[string]bool{}
	if values != nil {
		for _, m := range values["methods"] {
			allowed[m] = true
		}
	} else {
		for _, m := range x.Methods {
			allowed[m] = true
		}
	}
	var methods []option
	for _, m := range apiMethods {
		methods = append(methods, option{Value: m, Selected: allowed[m]})
	}
	return f, methods
}

func (h *Handler) listAPIs(c echo.Context) error {
	a, err := h.app(c)
	if err != nil {
		return err
	}
	return h.showAPIs(c, http.StatusOK, a, nil, nil)
}

func (h *Handler) showAPIs(c echo.Context, status int, a app.App, values url.Values, problem error) error {
	ctx := c.Request().Context()
	apis, err := h.Apps.ListAPIs(ctx, a.ID)
	if err != nil {
		return err
	}
	cfgs, err := h.Configs.List(ctx, a.ID)
	if err != nil {
		return err
	}
	names := map[string]string{}
	for _, cfg := range cfgs {
		names[cfg.ID] = cfg.Name
	}
	var rows []apiRow
	for _, x := range apis {
		r := apiRow{ID: x.ID, Name: x.Name, BaseURL: x.BaseURL, Methods: strings.Join(x.Methods, ", ")}
		if x.ConfigID != nil {
			r.Config = names[*x.ConfigID]
		}
		rows = append(rows, r)
	}
	f, methods := apiForm(app.API{}, cfgs, values, problem)
	return h.render(c, apisTemplate, status, f.title("APIs of "+a.Name), view{App: &a, Section: "apis", D: map[string]any{
		"APIs": rows, "Form": f, "Methods": methods,
	}})
}

// apiFromForm reads an API's fields; fs gets lines it cannot read.
func apiFromForm(f url.Values, fs *errs.Fields) (name, desc, base string, cid *string, methods []string, headers, query map[string]string) {
	name, desc, base = strings.TrimSpace(f.Get("name")), f.Get("description"), strings.TrimSpace(f.Get("base_url"))
	if v := f.Get("config_id"); v != "" {
		cid = &v
	}
	methods = f["methods"]
	return name, desc, base, cid, methods, pairs(fs, "headers", f.Get("headers")), pairs(fs, "query", f.Get("query"))
}

// createAPI creates an API as POST /v1/apps/{app}/apis does, with the same
// checks (app.APIChecks and the API's validation).
func (h *Handler) createAPI(c echo.Context) error {
	a, err := h.app(c)
	if err != nil {
		return err
	}
	form, err := readForm(c)
	if err != nil {
		return err
	}
	var fs errs.Fields
	x := app.API{AppID: a.ID}
	x.Name, x.Description, x.BaseURL, x.ConfigID, x.Methods, x.Headers, x.Query = apiFromForm(form, &fs)
	ctx := c.Request().Context()
	err = fs.Err()
	if err == nil {
		var known func(string) bool
		if known, err = app.APIChecks(ctx, oauthconfig.APIReferences{Settings: h.Settings, Configs: h.Configs}, a.ID, x.ConfigID); err == nil {
			err = h.Apps.CreateAPI(ctx, &x, known)
		}
	}
	if err != nil {
		if formProblem(err) {
			return h.showAPIs(c, statusOf(err), a, form, err)
		}
		return err
	}
	return redirect(c, Path+"/apps/"+a.ID+"/apis/"+x.ID, "created")
}

var apiTemplate = parse("console-api", `
{{template "notice" .}}
<p class="crumbs"><a href="/console/apps/{{.App.ID}}/apis">APIs of {{.App.Name}}</a></p>
<h1>API {{.D.API.Name}}</h1>
<h2 id="try-title">Try it</h2>
<p>A call through the proxy, as <code>/v1/installations/{installation}/users/{user}/apis/{{.D.API.Name}}/proxy/{path}</code> makes it: credentials added, the token renewed if it must be. The answer's secrets are redacted.</p>
{{template "summary" .D.Try}}
<form method="post" action="/console/apps/{{.App.ID}}/apis/{{.D.API.ID}}/try" aria-labelledby="try-title" novalidate>
<input type="hidden" name="_csrf" value="{{.CSRF}}">
{{range .D.Try.Inputs}}{{template "input" .}}{{end}}
<div class="actions"><button type="submit" id="try">Send</button></div>
</form>
{{with .D.Answer}}<section aria-labelledby="answer-title" id="answer">
<h3 id="answer-title">The answer</h3>
<p>Status: <strong id="answer-status">{{.Status}}</strong></p>
<h4>Headers</h4>
<table><thead><tr><th scope="col">Header</th><th scope="col">Value</th></tr></thead>
<tbody>{{range .Headers}}<tr><td>{{.Key}}</td><td>{{.Shown}}</td></tr>{{end}}</tbody></table>
<h4>Body{{if .Truncated}} (the first {{.Shown}} bytes){{end}}</h4>
<pre><code id="answer-body">{{.Body}}</code></pre>
</section>{{end}}
<h2 id="edit-title">Edit the API</h2>
{{template "summary" .D.Form}}
<form method="post" action="/console/apps/{{.App.ID}}/apis/{{.D.API.ID}}" aria-labelledby="edit-title" novalidate>
<input type="hidden" name="_csrf" value="{{.CSRF}}">
{{template "api-fields" .D}}
<div class="actions"><button type="submit" id="save-api">Save</button></div>
</form>
`+apiFields)

type answer struct {
	Status    string
	Headers   []valueRow
	Body      string
	Truncated bool
	Shown     int
}

// apiPage is the result of the API page's last action.
type apiPage struct {
	values, try       url.Values
	problem, tryError error
	answer            *answer
}

func (h *Handler) api(c echo.Context) (app.App, app.API, error) {
	a, err := h.app(c)
	if err != nil {
		return app.App{}, app.API{}, err
	}
	ref, err := httpapi.Param(c, "api")
	if err != nil {
		return app.App{}, app.API{}, err
	}
	x, err := h.Apps.FindAPI(c.Request().Context(), a.ID, ref)
	return a, x, err
}

func (h *Handler) showAPI(c echo.Context) error {
	a, x, err := h.api(c)
	if err != nil {
		return err
	}
	return h.renderAPI(c, http.StatusOK, a, x, apiPage{})
}

func (h *Handler) renderAPI(c echo.Context, status int, a app.App, x app.API, p apiPage) error {
	ctx := c.Request().Context()
	cfgs, err := h.Configs.List(ctx, a.ID)
	if err != nil {
		return err
	}
	f, methods := apiForm(x, cfgs, p.values, p.problem)
	try := newForm(p.tryError, p.try)
	try.ID = "try"
	if err := h.installationInput(ctx, a, try, "installation_id", p.try.Get("installation_id")); err != nil {
		return err
	}
	try.add(input{Name: "user_id", Label: "User id", Hint: "Whose tokens to use; empty for an API whose tokens are the installation's."})
	method := p.try.Get("method")
	if method == "" && len(x.Methods) > 0 {
		method = x.Methods[0]
	}
	try.add(input{Name: "method", Label: "Method", Type: "select", Options: options(method, x.Methods...)})
	try.add(input{Name: "path", Label: "Path and query", Hint: "Under the base URL, e.g. contacts?limit=10."})
	try.add(input{Name: "content_type", Label: "Content type of the body", Value: "application/json"})
	try.add(input{Name: "body", Label: "Body", Type: "textarea"})
	title := "API " + x.Name
	if len(f.Summary())+len(try.Summary()) > 0 {
		title = "Error: " + title
	}
	return h.render(c, apiTemplate, status, title, view{App: &a, Section: "apis", D: map[string]any{
		"API": x, "Form": f, "Methods": methods, "Try": try, "Answer": p.answer,
	}})
}

// updateAPI changes an API as a PATCH naming every field does.
func (h *Handler) updateAPI(c echo.Context) error {
	a, x, err := h.api(c)
	if err != nil {
		return err
	}
	form, err := readForm(c)
	if err != nil {
		return err
	}
	var fs errs.Fields
	name, desc, base, cid, methods, headers, query := apiFromForm(form, &fs)
	if methods == nil {
		methods = []string{}
	}
	ctx := c.Request().Context()
	err = fs.Err()
	if err == nil {
		var known func(string) bool
		if known, err = app.APIChecks(ctx, oauthconfig.APIReferences{Settings: h.Settings, Configs: h.Configs}, a.ID, cid); err == nil {
			_, err = h.Apps.UpdateAPI(ctx, a.ID, x.ID, app.APIUpdate{Name: &name, Description: &desc, Methods: &methods,
				BaseURL: &base, ConfigID: &cid, Headers: &headers, Query: &query}, known)
		}
	}
	if err != nil {
		if formProblem(err) {
			return h.renderAPI(c, statusOf(err), a, x, apiPage{values: form, problem: err})
		}
		return err
	}
	return redirect(c, Path+"/apps/"+a.ID+"/apis/"+x.ID, "saved")
}

// tryAPI calls the API in-process with call.Caller.Call, the code
// the REST proxy runs, and shows the status, the headers and the start of
// the body, with the call's secrets redacted.
func (h *Handler) tryAPI(c echo.Context) error {
	a, x, err := h.api(c)
	if err != nil {
		return err
	}
	form, err := readForm(c)
	if err != nil {
		return err
	}
	p := apiPage{try: form}
	ctx := c.Request().Context()
	fail := func(err error) error {
		if errs.CodeOf(err) == errs.Internal {
			return err
		}
		p.tryError = err
		return h.renderAPI(c, statusOf(err), a, x, p)
	}
	inst, err := h.appInstallation(ctx, a, "installation_id", form.Get("installation_id"))
	if err != nil {
		return fail(err)
	}
	target, err := url.Parse("/" + strings.TrimLeft(strings.TrimSpace(form.Get("path")), "/"))
	if err != nil || target.Host != "" {
		return fail(errs.Fields{{Field: "path", Message: "is not a path and query"}}.Err())
	}
	header := http.Header{}
	body := []byte(form.Get("body"))
	if len(body) > 0 {
		header.Set("Content-Type", form.Get("content_type"))
	}
	user := strings.TrimSpace(form.Get("user_id"))
	resp, err := h.Caller.Call(ctx, inst, a, x.ID, user, call.Request{
		Method: form.Get("method"), Path: strings.TrimPrefix(target.EscapedPath(), "/"), RawQuery: target.RawQuery,
		Header: header, Body: body,
	})
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	head, err := io.ReadAll(io.LimitReader(resp.Body, bodyShown+1))
	if err != nil {
		return fail(errs.Wrap(errs.Upstream, err, "reading the API's answer failed"))
	}
	// The answer is the provider's: it passes the redactor of the
	// installation's and user's secrets (as they are after the call, with
	// a renewed token) before it is shown.
	resolved, err := h.Settings.Resolve(ctx, inst, user)
	if err != nil {
		return err
	}
	red := token.Redactor(token.Vars{Values: resolved.Values, Secret: resolved.Secret})
	ans := &answer{Status: resp.Status, Truncated: len(head) > bodyShown, Shown: bodyShown}
	if ans.Truncated {
		head = []byte(strings.ToValidUTF8(string(head[:bodyShown]), "\uFFFD"))
	}
	ans.Body = red.Body(head)
	hdr := red.Header(resp.Header)
	for _, k := range sortedKeys(hdr) {
		ans.Headers = append(ans.Headers, valueRow{Key: k, Shown: hdr[k]})
	}
	p.answer = ans
	return h.renderAPI(c, http.StatusOK, a, x, p)
}
