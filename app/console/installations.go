package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/callback"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/oauthconfig"
	"github.com/latchkey/latchkey/oauthconfig/connection"
	"github.com/latchkey/latchkey/settings"
)

// installation returns the installation named by the :installation
// parameter and its app, if the app is the signed-in account's; another
// account's installation is not found, exactly like a missing one.
func (h *Handler) installation(c echo.Context) (settings.Installation, app.App, error) {
	id, err := httpapi.Param(c, "installation")
	if err != nil {
		return settings.Installation{}, app.App{}, err
	}
	ctx := c.Request().Context()
	inst, err := h.Settings.Installation(ctx, id)
	if err != nil {
		return settings.Installation{}, app.App{}, err
	}
	a, err := h.Apps.Find(ctx, accountID(c), inst.AppID)
	if errs.Is(err, errs.NotFound) {
		return settings.Installation{}, app.App{}, errs.NotFoundf("installation %q not found", id)
	}
	return inst, a, err
}

// appInstallation returns installation id of app a, which a form named in
// field; any other id is an errs.Invalid naming field.
func (h *Handler) appInstallation(ctx context.Context, a app.App, field, id string) (settings.Installation, error) {
	if id == "" {
		return settings.Installation{}, errs.Fields{{Field: field, Message: "is required"}}.Err()
	}
	inst, err := h.Settings.Installation(ctx, id)
	if errs.Is(err, errs.NotFound) || err == nil && inst.AppID != a.ID {
		return settings.Installation{}, errs.Fields{{Field: field, Message: "is not an installation of " + a.Name}}.Err()
	}
	return inst, err
}

// maxPicked is how many installations a picker lists; an app with more
// gets a text field for the id.
const maxPicked = 100

// installationInput adds a field that picks one of the app's
// installations: a list of them, or a text field when there are many.
func (h *Handler) installationInput(ctx context.Context, a app.App, f *form, name, selected string) error {
	insts, err := h.Settings.Installations(ctx, settings.InstallationFilter{AppIDs: []string{a.ID}, Limit: maxPicked + 1})
	if err != nil {
		return err
	}
	in := input{Name: name, Label: "Installation", Value: selected}
	if len(insts) <= maxPicked {
		in.Type = "select"
		for _, inst := range insts {
			in.Options = append(in.Options, option{Value: inst.ID, Label: inst.OrganizationID + " (" + inst.ID + ")", Selected: inst.ID == selected})
		}
		if len(insts) == 0 {
			in.Hint = a.Name + " is not installed yet: install it under Installations first."
		}
	} else {
		in.Hint = "The installation's id."
	}
	f.add(in)
	return nil
}

var installationsTemplate = parse("console-installations", `
{{template "notice" .}}
<h1>Installations of {{.App.Name}}</h1>
{{if .D.Installations}}<table>
<thead><tr><th scope="col">Organization</th><th scope="col">Installation</th><th scope="col">Installed</th></tr></thead>
<tbody>{{range .D.Installations}}<tr><td>{{.OrganizationID}}</td><td><a href="/console/installations/{{.ID}}"><code>{{.ID}}</code></a></td><td>{{.Created}}</td></tr>
{{end}}</tbody>
</table>
{{template "pager" .D.Pager}}{{else}}<p>No organization has installed {{.App.Name}} yet.</p>{{end}}
<h2 id="install-title">Install for an organization</h2>
<p>As <code>POST /v1/installations</code> does, with the same checks as the hosted install page. Organizations can also install through an install link (<code>POST /v1/apps/{app}/install-links</code>).</p>
{{template "summary" .D.Form}}
<form method="post" action="/console/apps/{{.App.ID}}/installations" aria-labelledby="install-title" novalidate>
<input type="hidden" name="_csrf" value="{{.CSRF}}">
{{range .D.Form.Inputs}}{{template "input" .}}{{end}}
<div class="actions"><button type="submit" id="install">Install</button></div>
</form>
`)

type instRow struct{ ID, OrganizationID, Created string }

func (h *Handler) listInstallations(c echo.Context) error {
	a, err := h.app(c)
	if err != nil {
		return err
	}
	return h.showInstallations(c, http.StatusOK, a, nil, nil)
}

func (h *Handler) showInstallations(c echo.Context, status int, a app.App, values url.Values, problem error) error {
	ctx := c.Request().Context()
	insts, err := h.Settings.Installations(ctx, settings.InstallationFilter{AppIDs: []string{a.ID}, After: c.QueryParam("after"), Limit: pageSize + 1})
	if err != nil {
		return err
	}
	var rows []instRow
	for i, inst := range insts {
		if i == pageSize {
			break
		}
		rows = append(rows, instRow{ID: inst.ID, OrganizationID: inst.OrganizationID, Created: when(&inst.CreatedAt)})
	}
	var last string
	if len(rows) > 0 {
		last = rows[len(rows)-1].ID
	}
	defs, err := h.Settings.Definitions(ctx, a.ID, settings.Organization)
	if err != nil {
		return err
	}
	f := newForm(problem, values)
	f.ID = "install"
	f.add(input{Name: "organization_id", Label: "Organization id", Required: true, Hint: "Your platform's id of the organization."})
	for _, d := range defs {
		if !d.Prompted() || d.Fixed() {
			continue // the developer's value or Latchkey's; the API refuses them too
		}
		label := d.Label
		if label == "" {
			label = d.Key
		}
		in := input{Name: d.Key, Label: label, Required: d.Required && !d.HasDefault(), Hint: d.Description}
		switch {
		case d.Type == settings.Certificate || d.Type == settings.PrivateKey:
			// PEM text has line breaks, which a one-line input drops.
			in.Type, in.Secret, in.Rows = "textarea", true, 6
		case d.Secret:
			in.Type = "password"
		}
		if d.DefaultValue != nil {
			in.Placeholder = *d.DefaultValue
		}
		f.add(in)
	}
	return h.render(c, installationsTemplate, status, f.title("Installations of "+a.Name), view{App: &a, Section: "installations", D: map[string]any{
		"Installations": rows, "Form": f,
		"Pager": newPager(Path+"/apps/"+a.ID+"/installations", c.QueryParams(), map[string]string{"after": last}, len(insts), pageSize),
	}})
}

// install installs the app for an organization with settings.Store.Install,
// as the API and the hosted install page do.
func (h *Handler) install(c echo.Context) error {
	a, err := h.app(c)
	if err != nil {
		return err
	}
	form, err := readForm(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	defs, err := h.Settings.Definitions(ctx, a.ID, settings.Organization)
	if err != nil {
		return err
	}
	values := map[string]string{}
	for _, d := range defs {
		if !d.Fixed() && !d.Managed() {
			values[d.Key] = form.Get(d.Key)
		}
	}
	inst, err := h.Settings.Install(ctx, a.ID, form.Get("organization_id"), values)
	if err != nil {
		if formProblem(err) {
			return h.showInstallations(c, statusOf(err), a, form, err)
		}
		return err
	}
	return redirect(c, Path+"/installations/"+inst.ID, "installed")
}

var installationTemplate = parse("console-installation", `
{{template "notice" .}}
<p class="crumbs"><a href="/console/apps/{{.App.ID}}/installations">Installations of {{.App.Name}}</a></p>
<h1>{{.App.Name}} for {{.D.Inst.OrganizationID}}</h1>
<dl>
<dt>Installation</dt><dd><code id="installation-id">{{.D.Inst.ID}}</code></dd>
<dt>Organization</dt><dd>{{.D.Inst.OrganizationID}}</dd>
</dl>
{{with .D.Link}}<div class="notice" role="status"><p>A {{.Kind}} link for <strong>{{.User}}</strong>, valid until {{.Expires}}. Hand it to that user:</p>
<p><a id="new-link" href="{{.URL}}">{{.URL}}</a></p></div>{{end}}
{{with .D.Checked}}<div class="notice" role="status"><p>The connection of <strong>{{.User}}</strong> answered the identity request.</p>
{{if .Values}}<dl>{{range .Values}}<dt>{{.Key}}</dt><dd>{{.Shown}}</dd>{{end}}</dl>{{end}}</div>{{end}}
{{template "summary" .D.Problem}}
<h2>Settings</h2>
{{if .D.Values}}<table>
<thead><tr><th scope="col">Setting</th><th scope="col">Value</th></tr></thead>
<tbody>{{range .D.Values}}<tr><td>{{.Label}} <code>{{.Key}}</code></td><td>{{.Shown}}</td></tr>
{{end}}</tbody></table>{{else}}<p>The app has no organization settings.</p>{{end}}
<h2>Connections</h2>
{{if .D.Connections}}<table>
<thead><tr><th scope="col">User</th><th scope="col">Config</th><th scope="col">Status</th><th scope="col">Expires</th><th scope="col">Last refresh</th><th scope="col">Last error</th><th scope="col">Actions</th></tr></thead>
<tbody>{{range .D.Connections}}<tr><td>{{if .UserID}}{{.UserID}}{{else}}(the installation){{end}}</td><td>{{.Config}}</td><td class="conn-status">{{.Status}}</td><td>{{.Expires}}</td><td>{{.Refreshed}}</td><td>{{.LastError}}{{with .LastErrorAt}} <span class="muted">({{.}})</span>{{end}}</td>
<td><a href="/console/apps/{{$.App.ID}}/logs?installation={{$.D.Inst.ID}}&amp;user={{.UserID}}&amp;config={{.ConfigID}}">Request log</a>
{{if .CanCheck}}<form method="post" action="/console/installations/{{$.D.Inst.ID}}/check"><input type="hidden" name="_csrf" value="{{$.CSRF}}"><input type="hidden" name="config_id" value="{{.ConfigID}}"><input type="hidden" name="user_id" value="{{.UserID}}"><button type="submit" class="button secondary" aria-label="Check now: {{.UserID}}, {{.Config}}">Check now</button></form>{{end}}
<form method="post" action="/console/installations/{{$.D.Inst.ID}}/remove"><input type="hidden" name="_csrf" value="{{$.CSRF}}"><input type="hidden" name="config_id" value="{{.ConfigID}}"><input type="hidden" name="user_id" value="{{.UserID}}"><button type="submit" class="button secondary" aria-label="Remove the connection: {{.UserID}}, {{.Config}}">Remove</button></form>
{{if .CanLink}}<form method="post" action="/console/installations/{{$.D.Inst.ID}}/links"><input type="hidden" name="_csrf" value="{{$.CSRF}}"><input type="hidden" name="kind" value="connect"><input type="hidden" name="config_id" value="{{.ConfigID}}"><input type="hidden" name="user_id" value="{{.UserID}}"><button type="submit" class="button secondary" aria-label="New connect link: {{.UserID}}, {{.Config}}">Connect link</button></form>{{end}}</td></tr>
{{end}}</tbody></table>
{{template "pager" .D.Pager}}{{else}}<p>No connections yet.</p>{{end}}
<p class="muted">Removing a connection deletes its state and the tokens it stored; the user connects again with a connect link.</p>
{{if .D.LinkForm}}<h2 id="link-title">Connect a user</h2>
<p>Make a link for one of your users: a connect link shows what the app will access first, an authorize link goes straight to the provider. Links work for an hour.</p>
{{template "summary" .D.LinkForm}}
<form method="post" action="/console/installations/{{.D.Inst.ID}}/links" aria-labelledby="link-title" novalidate>
<input type="hidden" name="_csrf" value="{{.CSRF}}">
{{range .D.LinkForm.Inputs}}{{template "input" .}}{{end}}
<div class="actions"><button type="submit" id="make-link">Make the link</button></div>
</form>{{end}}
<h2>Try an API</h2>
<p>Call one of the app's <a href="/console/apps/{{.App.ID}}/apis">APIs</a> for this installation.</p>
`)

type valueRow struct{ Key, Label, Shown string }

type connRow struct {
	UserID, ConfigID, Config, Status, Expires, Refreshed, LastError, LastErrorAt string
	CanCheck, CanLink                                                            bool
}

type madeLink struct{ Kind, User, URL, Expires string }

type checked struct {
	User   string
	Values []valueRow
}

// installationPage is what the installation page shows besides what it
// reads itself: the result of its last action.
type installationPage struct {
	link      *madeLink
	checked   *checked
	linkForm  url.Values
	linkError error
	problem   error // of a row's action
}

func (h *Handler) showInstallation(c echo.Context) error {
	inst, a, err := h.installation(c)
	if err != nil {
		return err
	}
	return h.renderInstallation(c, http.StatusOK, inst, a, installationPage{})
}

func (h *Handler) renderInstallation(c echo.Context, status int, inst settings.Installation, a app.App, p installationPage) error {
	ctx := c.Request().Context()
	vs, err := h.Settings.OrganizationValues(ctx, inst)
	if err != nil {
		return err
	}
	var values []valueRow
	for _, v := range vs {
		r := valueRow{Key: v.Definition.Key, Label: v.Definition.Label}
		switch {
		case v.Definition.Secret && v.Set:
			r.Shown = "set (secret, not shown)"
		case v.Definition.Secret:
			r.Shown = "not set"
		case v.Set:
			r.Shown = v.Value
		case v.FromDefault:
			r.Shown = v.Value + " (default)"
		default:
			r.Shown = "not set"
		}
		values = append(values, r)
	}
	cfgs, err := h.Configs.List(ctx, a.ID)
	if err != nil {
		return err
	}
	byID := map[string]oauthconfig.Config{}
	var codeConfigs []option
	for _, cfg := range cfgs {
		byID[cfg.ID] = cfg
		if cfg.GrantType == oauthconfig.AuthorizationCode {
			codeConfigs = append(codeConfigs, option{Value: cfg.ID, Label: cfg.Name})
		}
	}
	q := c.QueryParams()
	conns, err := h.Connections.Page(ctx, inst.ID, connection.Page{
		AfterUser: q.Get("after_user"), AfterConfig: q.Get("after_config"), Limit: pageSize + 1})
	if err != nil {
		return err
	}
	var rows []connRow
	for i, cn := range conns {
		if i == pageSize {
			break
		}
		cfg := byID[cn.ConfigID]
		rows = append(rows, connRow{UserID: cn.UserID, ConfigID: cn.ConfigID, Config: cfg.Name, Status: cn.Status,
			Expires: when(cn.ExpiresAt), Refreshed: when(cn.RefreshedAt), LastError: cn.LastError, LastErrorAt: when(cn.LastErrorAt),
			CanCheck: cfg.IdentityURL != "", CanLink: cfg.GrantType == oauthconfig.AuthorizationCode && cn.UserID != ""})
	}
	cursor := map[string]string{"after_user": "", "after_config": ""}
	if len(rows) > 0 {
		cursor = map[string]string{"after_user": rows[len(rows)-1].UserID, "after_config": rows[len(rows)-1].ConfigID}
	}
	var linkForm *form
	if len(codeConfigs) > 0 {
		linkForm = newForm(p.linkError, p.linkForm)
		linkForm.ID = "link"
		linkForm.add(input{Name: "kind", Label: "Link", Type: "select", Options: []option{
			{Value: "connect", Label: "Connect link (a page first)", Selected: true}, {Value: "authorize", Label: "Authorize link (straight to the provider)"}}})
		linkForm.add(input{Name: "config_id", Label: "OAuth config", Type: "select", Options: codeConfigs})
		linkForm.add(input{Name: "user_id", Label: "User id", Required: true, Hint: "Your platform's id of the user."})
		returns := []option{{Value: "", Label: "(none: Latchkey's result page)"}}
		for _, u := range a.ReturnURLs {
			returns = append(returns, option{Value: u, Label: u})
		}
		linkForm.add(input{Name: "return_url", Label: "Return URL", Type: "select", Options: returns})
	}
	problem := newForm(p.problem, nil)
	problem.ID = "action"
	return h.render(c, installationTemplate, status, a.Name+" for "+inst.OrganizationID, view{App: &a, Section: "installations", D: map[string]any{
		"Inst": inst, "Values": values, "Connections": rows, "LinkForm": linkForm,
		"Link": p.link, "Checked": p.checked, "Problem": problem,
		"Pager": newPager(Path+"/installations/"+inst.ID, q, cursor, len(conns), pageSize),
	}})
}

// makeLink makes a connect or authorize link with callback.Handler.MakeLink,
// which checks it as POST .../connect-links and .../authorize-links do.
func (h *Handler) makeLink(c echo.Context) error {
	inst, a, err := h.installation(c)
	if err != nil {
		return err
	}
	form, err := readForm(c)
	if err != nil {
		return err
	}
	path, kind := callback.ConnectPath, "connect"
	if form.Get("kind") == "authorize" {
		path, kind = callback.AuthorizePath, "authorize"
	}
	user := strings.TrimSpace(form.Get("user_id"))
	u, expires, err := h.Links.MakeLink(c.Request().Context(), inst, a, path, form.Get("config_id"), user, form.Get("return_url"))
	if err != nil {
		if formProblem(err) {
			return h.renderInstallation(c, statusOf(err), inst, a, installationPage{linkForm: form, linkError: err})
		}
		return err
	}
	return h.renderInstallation(c, http.StatusOK, inst, a, installationPage{link: &madeLink{
		Kind: kind, User: user, URL: u, Expires: when(&expires)}})
}

// connectionForm reads the installation of the path and the config and
// user a connection form names, for the connection's buttons.
func (h *Handler) connectionForm(c echo.Context) (settings.Installation, app.App, oauthconfig.Config, string, error) {
	inst, a, err := h.installation(c)
	if err != nil {
		return settings.Installation{}, app.App{}, oauthconfig.Config{}, "", err
	}
	form, err := readForm(c)
	if err != nil {
		return settings.Installation{}, app.App{}, oauthconfig.Config{}, "", err
	}
	cfg, err := h.Configs.Find(c.Request().Context(), a.ID, form.Get("config_id"))
	return inst, a, cfg, form.Get("user_id"), err
}

// removeConnection disconnects a user from a config, as DELETE
// .../connections/{config} does.
func (h *Handler) removeConnection(c echo.Context) error {
	inst, a, cfg, user, err := h.connectionForm(c)
	if err != nil {
		return err
	}
	err = oauthconfig.CheckOwner(&cfg, user)
	if err == nil {
		err = h.Connections.Remove(c.Request().Context(), inst, cfg.Owner(user), &cfg)
	}
	if err != nil {
		if errs.CodeOf(err) == errs.Internal {
			return err
		}
		return h.renderInstallation(c, statusOf(err), inst, a, installationPage{problem: err})
	}
	return c.Redirect(http.StatusSeeOther, "/console/installations/"+inst.ID)
}

// checkConnection runs the config's identity request for a connection
// now, with call.Caller.Check, as POST .../check does.
func (h *Handler) checkConnection(c echo.Context) error {
	inst, a, cfg, user, err := h.connectionForm(c)
	if err != nil {
		return err
	}
	_, identity, err := h.Caller.Check(c.Request().Context(), inst, &cfg, user)
	if err != nil {
		if errs.CodeOf(err) == errs.Internal {
			return err
		}
		// The provider's or the config's answer: shown on the page.
		return h.renderInstallation(c, statusOf(err), inst, a, installationPage{problem: err})
	}
	ch := &checked{User: user}
	for _, k := range sortedKeys(identity) {
		ch.Values = append(ch.Values, valueRow{Key: k, Shown: identity[k]})
	}
	return h.renderInstallation(c, http.StatusOK, inst, a, installationPage{checked: ch})
}
