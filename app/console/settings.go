package console

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/settings"
)

var settingsTemplate = parse("console-settings", `
{{template "notice" .}}
<h1>Settings of {{.App.Name}}</h1>
<p>Organization settings are asked for when an organization installs the app; user settings are kept per end user (tokens go there). Secret values are encrypted at rest and never shown again.</p>
{{if .D.Defs}}<table>
<thead><tr><th scope="col">Key</th><th scope="col">Level</th><th scope="col">Label</th><th scope="col">Visibility</th><th scope="col">Type</th><th scope="col">Secret</th><th scope="col">Required</th><th scope="col">Default</th><th scope="col">Pattern</th></tr></thead>
<tbody>{{range .D.Defs}}<tr><td><a href="/console/apps/{{$.App.ID}}/settings/{{.Key}}"><code>{{.Key}}</code></a></td><td>{{.Level}}</td><td>{{.Label}}</td><td>{{.Visibility}}</td><td>{{.Type}}</td><td>{{if .Secret}}yes{{else}}no{{end}}</td><td>{{if .Required}}yes{{else}}no{{end}}</td><td>{{.Default}}</td><td>{{with .Pattern}}<code>{{.}}</code>{{end}}</td></tr>
{{end}}</tbody>
</table>{{else}}<p>The app has no settings yet.</p>{{end}}
<h2 id="add-title">Add a setting</h2>
{{template "summary" .D.Form}}
<form method="post" action="/console/apps/{{.App.ID}}/settings" aria-labelledby="add-title" novalidate>
<input type="hidden" name="_csrf" value="{{.CSRF}}">
{{range .D.Form.Inputs}}{{template "input" .}}{{end}}
<div class="actions"><button type="submit" id="add-setting">Add setting</button></div>
</form>
<h2 id="prompt-title">The install prompt</h2>
<p>What an organization is asked when it installs {{.App.Name}} (on the hosted install page, or in your platform through <code>GET /v1/apps/{app}/install-prompt</code>). Hidden settings are not shown.</p>
{{if .D.Prompt.Inputs}}<fieldset aria-labelledby="prompt-title" disabled>
{{range .D.Prompt.Inputs}}{{template "input" .}}{{end}}
</fieldset>{{else}}<p>Organizations have nothing to fill in.</p>{{end}}
`)

type defRow struct {
	Key, Level, Label, Visibility, Type, Default, Pattern string
	Secret, Required                                      bool
}

// shownDefault is how a definition's default is shown: a hidden secret
// one is write-only.
func shownDefault(d settings.Definition) string {
	switch {
	case d.FixedSecret != nil:
		return "set (secret, not shown)"
	case d.DefaultValue != nil:
		return *d.DefaultValue
	}
	return ""
}

func typeOf(d settings.Definition) string {
	if d.Type == "" {
		return string(settings.String)
	}
	return string(d.Type)
}

const typeHint = "string: any text; url: an absolute http(s) URL without query or fragment (a base URL templates start with); host: a host name or IP address, with an optional port; certificate and private_key: PEM text of a client certificate chain and its key, for mutual TLS (secret)."

func visibilityOf(d settings.Definition) string {
	if d.Visibility == "" {
		return string(settings.Editable)
	}
	return string(d.Visibility)
}

// definitionForm is the form of a new setting.
func definitionForm(values url.Values, problem error) *form {
	f := newForm(problem, values)
	f.ID = "setting"
	f.add(input{Name: "key", Label: "Key", Required: true, Hint: "Lowercase letters, digits and “_”, starting with a letter: the name templates use, as <<key>>."})
	f.add(input{Name: "level", Label: "Level", Type: "select", Options: options("organization", "organization", "user")})
	f.add(input{Name: "label", Label: "Label"})
	f.add(input{Name: "description", Label: "Description", Type: "textarea", Rows: 2})
	f.add(input{Name: "visibility", Label: "Visibility", Type: "select", Options: options("editable", "editable", "read_only", "hidden", "managed"),
		Hint: "editable: filled in by organizations or users; read_only: shown with its default, which is fixed; hidden: never shown, its default only used in templates; managed: written only by Latchkey (tokens), never asked for."})
	f.add(input{Name: "type", Label: "Type", Type: "select", Options: options("string", "string", "url", "host", "certificate", "private_key"), Hint: typeHint})
	f.add(input{Name: "secret", Label: "Secret (encrypted, write-only)", Type: "checkbox"})
	f.add(input{Name: "required", Label: "Required", Type: "checkbox"})
	f.add(input{Name: "default", Label: "Default"})
	f.add(input{Name: "pattern", Label: "Pattern", Hint: "A regular expression the whole value must match."})
	return f
}

// promptForm shows the organization-level settings as the hosted install
// page asks for them.
func promptForm(defs []settings.Definition) *form {
	f := newForm(nil, nil)
	f.ID = "prompt"
	for _, d := range defs {
		if d.Level != settings.Organization || !d.Prompted() {
			continue
		}
		label := d.Label
		if label == "" {
			label = d.Key
		}
		in := input{Name: d.Key, Label: label, Required: d.Required && !d.HasDefault(), Disabled: true, Hint: d.Description}
		switch {
		case d.Fixed():
			in.Hint = "Set by the app's developer."
			in.Value = shownDefault(d)
		case d.Secret:
			in.Type = "password"
			in.Hint += " Kept encrypted; it is never shown again."
		}
		if d.Pattern != nil {
			in.Hint += " Format: must match the pattern " + *d.Pattern + "."
		}
		if d.DefaultValue != nil && !d.Fixed() {
			in.Placeholder = *d.DefaultValue
		}
		f.add(in)
	}
	return f
}

func (h *Handler) listSettings(c echo.Context) error {
	a, err := h.app(c)
	if err != nil {
		return err
	}
	return h.showSettings(c, http.StatusOK, a, nil, nil)
}

func (h *Handler) showSettings(c echo.Context, status int, a app.App, values url.Values, problem error) error {
	defs, err := h.Settings.Definitions(c.Request().Context(), a.ID, "")
	if err != nil {
		return err
	}
	var rows []defRow
	for _, d := range defs {
		r := defRow{Key: d.Key, Level: string(d.Level), Label: d.Label, Visibility: visibilityOf(d), Type: typeOf(d),
			Secret: d.Secret, Required: d.Required, Default: shownDefault(d)}
		if d.Pattern != nil {
			r.Pattern = *d.Pattern
		}
		rows = append(rows, r)
	}
	f := definitionForm(values, problem)
	return h.render(c, settingsTemplate, status, f.title("Settings of "+a.Name), view{App: &a, Section: "settings", D: map[string]any{
		"Defs": rows, "Form": f, "Prompt": promptForm(defs),
	}})
}

// createSetting adds a definition as POST /v1/apps/{app}/settings does;
// an empty default or pattern is none.
func (h *Handler) createSetting(c echo.Context) error {
	a, err := h.app(c)
	if err != nil {
		return err
	}
	form, err := readForm(c)
	if err != nil {
		return err
	}
	d := settings.Definition{
		AppID: a.ID, Key: form.Get("key"), Level: settings.Level(form.Get("level")),
		Label: form.Get("label"), Description: form.Get("description"),
		Secret: form.Get("secret") == "true", Required: form.Get("required") == "true",
		DefaultValue: nonEmpty(form.Get("default")), Pattern: nonEmpty(form.Get("pattern")),
		Visibility: settings.Visibility(form.Get("visibility")),
		Type:       settings.Type(form.Get("type")),
	}
	if err := h.Settings.CreateDefinition(c.Request().Context(), &d); err != nil {
		if formProblem(err) {
			return h.showSettings(c, statusOf(err), a, form, err)
		}
		return err
	}
	return redirect(c, Path+"/apps/"+a.ID+"/settings", "created")
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

var settingTemplate = parse("console-setting", `
{{template "notice" .}}
<p class="crumbs"><a href="/console/apps/{{.App.ID}}/settings">Settings of {{.App.Name}}</a></p>
<h1>Setting <code>{{.D.Def.Key}}</code></h1>
<p>A {{.D.Def.Level}}-level setting. Its key and level cannot change: add a new setting instead.</p>
{{template "summary" .D.Form}}
<form method="post" action="/console/apps/{{.App.ID}}/settings/{{.D.Def.Key}}" aria-label="Edit the setting" novalidate>
<input type="hidden" name="_csrf" value="{{.CSRF}}">
{{range .D.Form.Inputs}}{{template "input" .}}{{end}}
<div class="actions"><button type="submit" id="save-setting">Save</button></div>
</form>
<h2 id="delete-title">Delete the setting</h2>
{{template "summary" .D.Delete}}
<form method="post" action="/console/apps/{{.App.ID}}/settings/{{.D.Def.Key}}/delete" aria-labelledby="delete-title">
<input type="hidden" name="_csrf" value="{{.CSRF}}">
{{range .D.Delete.Inputs}}{{template "input" .}}{{end}}
<div class="actions"><button type="submit" id="delete-setting">Delete {{.D.Def.Key}}</button></div>
</form>
`)

func (h *Handler) setting(c echo.Context) (app.App, settings.Definition, error) {
	a, err := h.app(c)
	if err != nil {
		return app.App{}, settings.Definition{}, err
	}
	key, err := httpapi.Param(c, "key")
	if err != nil {
		return app.App{}, settings.Definition{}, err
	}
	d, err := h.Settings.Definition(c.Request().Context(), a.ID, key)
	return a, d, err
}

func (h *Handler) showSetting(c echo.Context) error {
	a, d, err := h.setting(c)
	if err != nil {
		return err
	}
	return h.showSettingForm(c, http.StatusOK, a, d, nil, nil, nil)
}

func (h *Handler) showSettingForm(c echo.Context, status int, a app.App, d settings.Definition, values url.Values, problem, deleteProblem error) error {
	f := newForm(problem, values)
	f.ID = "setting"
	def, pattern := "", ""
	if d.DefaultValue != nil {
		def = *d.DefaultValue
	}
	if d.Pattern != nil {
		pattern = *d.Pattern
	}
	f.add(input{Name: "label", Label: "Label", Value: d.Label})
	f.add(input{Name: "description", Label: "Description", Type: "textarea", Rows: 2, Value: d.Description})
	f.add(input{Name: "visibility", Label: "Visibility", Type: "select", Options: options(visibilityOf(d), "editable", "read_only", "hidden", "managed")})
	f.add(input{Name: "type", Label: "Type", Type: "select", Options: options(typeOf(d), "string", "url", "host"), Hint: typeHint})
	f.add(input{Name: "secret", Label: "Secret (encrypted, write-only)", Type: "checkbox", Checked: d.Secret})
	f.add(input{Name: "required", Label: "Required", Type: "checkbox", Checked: d.Required})
	if d.Secret {
		hint := "A secret setting has a default only when it is hidden; it is encrypted and never shown."
		if d.FixedSecret != nil {
			hint = "A value is set. Leave this empty to keep it; type a new one to replace it."
		}
		f.add(input{Name: "default", Label: "Default", Type: "password", Hint: hint})
	} else {
		f.add(input{Name: "default", Label: "Default", Value: def, Hint: "Empty: no default."})
	}
	f.add(input{Name: "pattern", Label: "Pattern", Value: pattern, Hint: "A regular expression the whole value must match. Empty: none."})
	f.add(input{Name: "delete_values", Label: "If the change makes stored values unused (read_only or hidden), delete them", Type: "checkbox"})
	del := newForm(deleteProblem, nil)
	del.ID = "delete"
	del.add(input{Name: "delete_values", Label: "Also delete the values stored for it", Type: "checkbox"})
	return h.render(c, settingTemplate, status, f.title("Setting "+d.Key), view{App: &a, Section: "settings", D: map[string]any{
		"Def": d, "Form": f, "Delete": del,
	}})
}

// updateSetting changes a definition as PATCH /v1/apps/{app}/settings/{key}
// does with every field given: an empty default or pattern removes it,
// except that an empty secret default keeps the stored one (it is never
// shown, so the form cannot hold it).
func (h *Handler) updateSetting(c echo.Context) error {
	a, d, err := h.setting(c)
	if err != nil {
		return err
	}
	form, err := readForm(c)
	if err != nil {
		return err
	}
	label, desc, pattern := form.Get("label"), form.Get("description"), form.Get("pattern")
	secret, required := form.Get("secret") == "true", form.Get("required") == "true"
	vis := settings.Visibility(form.Get("visibility"))
	u := settings.DefinitionUpdate{Label: &label, Description: &desc, Secret: &secret, Required: &required,
		Pattern: &pattern, Visibility: &vis, DeleteValues: form.Get("delete_values") == "true"}
	if t := settings.Type(form.Get("type")); t != "" {
		u.Type = &t
	}
	if def := form.Get("default"); def != "" || !d.Secret {
		u.Default = &def
	}
	if _, err := h.Settings.UpdateDefinition(c.Request().Context(), a.ID, d.Key, u); err != nil {
		if formProblem(err) {
			return h.showSettingForm(c, statusOf(err), a, d, form, err, nil)
		}
		return err
	}
	return redirect(c, Path+"/apps/"+a.ID+"/settings/"+d.Key, "saved")
}

func (h *Handler) deleteSetting(c echo.Context) error {
	a, d, err := h.setting(c)
	if err != nil {
		return err
	}
	form, err := readForm(c)
	if err != nil {
		return err
	}
	if err := h.Settings.DeleteDefinition(c.Request().Context(), a.ID, d.Key, form.Get("delete_values") == "true"); err != nil {
		if errs.Is(err, errs.Conflict) {
			return h.showSettingForm(c, statusOf(err), a, d, nil, nil, err)
		}
		return err
	}
	return redirect(c, Path+"/apps/"+a.ID+"/settings", "deleted")
}
