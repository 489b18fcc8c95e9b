package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/httpapi"
)

// app returns the signed-in account's app named by the :app parameter (an
// id or a slug); another account's app is not found, as in the API.
func (h *Handler) app(c echo.Context) (app.App, error) {
	ref, err := httpapi.Param(c, "app")
	if err != nil {
		return app.App{}, err
	}
	return h.Apps.Find(c.Request().Context(), accountID(c), ref)
}

var appsTemplate = parse("console-apps", `
{{template "notice" .}}
<h1>Your apps</h1>
<p class="actions"><a class="button" id="new-app" href="/console/apps/new">New app</a></p>
{{if .D.Apps}}<table>
<thead><tr><th scope="col">Name</th><th scope="col">Slug</th><th scope="col">Id</th><th scope="col">Created</th></tr></thead>
<tbody>{{range .D.Apps}}<tr><td><a href="/console/apps/{{.ID}}">{{.Name}}</a></td><td><code>{{.Slug}}</code></td><td><code>{{.ID}}</code></td><td>{{.Created}}</td></tr>
{{end}}</tbody>
</table>
{{template "pager" .D.Pager}}{{else}}<p>You have no apps yet.</p>{{end}}
<h2 id="find-title">Find a reference</h2>
<p>An end user's error page shows a reference. Paste it to open the request log entry it names.</p>
<form method="get" action="/console/find" aria-labelledby="find-title">
{{range .D.Find.Inputs}}{{template "input" .}}{{end}}
<div class="actions"><button type="submit" id="find">Find</button></div>
</form>
`)

type appRow struct{ ID, Name, Slug, Created string }

// findForm is the "find a reference" form.
func findForm(ref string) *form {
	f := newForm(nil, nil)
	f.ID = "find"
	f.add(input{Name: "reference", Label: "Reference", Value: ref})
	return f
}

func (h *Handler) listApps(c echo.Context) error {
	after := c.QueryParam("after")
	apps, err := h.Apps.ListPage(c.Request().Context(), accountID(c), after, pageSize+1)
	if err != nil {
		return err
	}
	var rows []appRow
	for i, a := range apps {
		if i == pageSize {
			break
		}
		rows = append(rows, appRow{ID: a.ID, Name: a.Name, Slug: a.Slug, Created: when(&a.CreatedAt)})
	}
	var last string
	if len(rows) > 0 {
		last = rows[len(rows)-1].ID
	}
	return h.render(c, appsTemplate, http.StatusOK, "Your apps", view{Section: "apps", D: map[string]any{
		"Apps":  rows,
		"Pager": newPager(Path+"/apps", c.QueryParams(), map[string]string{"after": last}, len(apps), pageSize),
		"Find":  findForm(""),
	}})
}

var appTemplate = parse("console-app", `
{{template "notice" .}}
{{if .D.App.ID}}<h1>{{.D.App.Name}}</h1>
<dl>
<dt>Id</dt><dd><code id="app-id">{{.D.App.ID}}</code></dd>
<dt>Slug</dt><dd><code>{{.D.App.Slug}}</code></dd>
</dl>
<h2>Set it up</h2>
<ul>
<li><a href="/console/apps/{{.D.App.ID}}/settings">Settings</a>: what organizations and users fill in, and the install prompt.</li>
<li><a href="/console/apps/{{.D.App.ID}}/configs">OAuth configs</a>: how to get tokens from the provider; explain and test them.</li>
<li><a href="/console/apps/{{.D.App.ID}}/apis">APIs</a>: the provider APIs the app calls; try a call.</li>
<li><a href="/console/apps/{{.D.App.ID}}/installations">Installations</a>: organizations that installed the app, their users' connections.</li>
<li><a href="/console/apps/{{.D.App.ID}}/logs">Request log</a> and <a href="/console/apps/{{.D.App.ID}}/deliveries">webhook deliveries</a>.</li>
</ul>
<h2 id="edit-title">Edit the app</h2>{{else}}<h1 id="edit-title">New app</h1>{{end}}
{{template "summary" .D.Form}}
<form method="post" action="{{.D.Action}}" aria-labelledby="edit-title" novalidate>
<input type="hidden" name="_csrf" value="{{.CSRF}}">
{{range .D.Form.Inputs}}{{template "input" .}}{{end}}
<div class="actions"><button type="submit" id="save-app">{{if .D.App.ID}}Save{{else}}Create app{{end}}</button></div>
</form>
`)

// appForm is the form of an app's fields, with a's values unless values
// (a submission) is set.
func appForm(a app.App, values url.Values, problem error) *form {
	f := newForm(problem, values)
	f.ID = "app"
	f.add(input{Name: "name", Label: "Name", Value: a.Name, Required: true})
	f.add(input{Name: "slug", Label: "Slug", Value: a.Slug,
		Hint: "Lowercase letters, digits and “-”; it names the app in URLs. Left empty, it is made from the name."})
	f.add(input{Name: "logo_url", Label: "Logo URL", Value: a.LogoURL,
		Hint: "An https URL of the logo shown on the install and connect pages."})
	f.add(input{Name: "description", Label: "Description", Type: "textarea", Value: a.Description})
	f.add(input{Name: "return_urls", Label: "Return URLs", Type: "textarea", Value: strings.Join(a.ReturnURLs, "\n"),
		Hint: "One URL a line: where a connect flow may send the end user back to."})
	return f
}

func (h *Handler) showAppForm(c echo.Context, status int, a app.App, values url.Values, problem error) error {
	f := appForm(a, values, problem)
	title, action, section, current := "New app", Path+"/apps", "apps", (*app.App)(nil)
	if a.ID != "" {
		title, action, section, current = a.Name, Path+"/apps/"+a.ID, "app", &a
	}
	return h.render(c, appTemplate, status, f.title(title), view{App: current, Section: section, D: map[string]any{
		"App": a, "Form": f, "Action": action,
	}})
}

func (h *Handler) newApp(c echo.Context) error {
	return h.showAppForm(c, http.StatusOK, app.App{}, nil, nil)
}

func (h *Handler) showApp(c echo.Context) error {
	a, err := h.app(c)
	if err != nil {
		return err
	}
	return h.showAppForm(c, http.StatusOK, a, nil, nil)
}

// createApp creates an app as POST /v1/apps does: an empty slug is made
// from the name.
func (h *Handler) createApp(c echo.Context) error {
	form, err := readForm(c)
	if err != nil {
		return err
	}
	a := app.App{
		AccountID:   accountID(c),
		Name:        form.Get("name"),
		Slug:        strings.TrimSpace(form.Get("slug")),
		Description: form.Get("description"),
		LogoURL:     strings.TrimSpace(form.Get("logo_url")),
		ReturnURLs:  lines(form.Get("return_urls")),
	}
	if a.Slug == "" {
		a.Slug = app.SlugFrom(a.Name)
	}
	if err := h.Apps.Create(c.Request().Context(), &a); err != nil {
		if formProblem(err) {
			return h.showAppForm(c, statusOf(err), app.App{}, form, err)
		}
		return err
	}
	return redirect(c, Path+"/apps/"+a.ID, "created")
}

func (h *Handler) updateApp(c echo.Context) error {
	current, err := h.app(c)
	if err != nil {
		return err
	}
	form, err := readForm(c)
	if err != nil {
		return err
	}
	name, slug, desc := form.Get("name"), strings.TrimSpace(form.Get("slug")), form.Get("description")
	logo, returns := strings.TrimSpace(form.Get("logo_url")), lines(form.Get("return_urls"))
	if returns == nil {
		returns = []string{}
	}
	a, err := h.Apps.Update(c.Request().Context(), accountID(c), current.ID, app.Update{
		Name: &name, Slug: &slug, Description: &desc, LogoURL: &logo, ReturnURLs: &returns,
	})
	if err != nil {
		if formProblem(err) {
			return h.showAppForm(c, statusOf(err), current, form, err)
		}
		return err
	}
	return redirect(c, Path+"/apps/"+a.ID, "saved")
}
