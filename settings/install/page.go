package install

import (
	"errors"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/webpage"
	"github.com/latchkey/latchkey/oauthconfig"
	"github.com/latchkey/latchkey/settings"
)

// formTemplate is the install form. It works without script: the browser's
// own checks are off (novalidate) so that every message comes from the
// server's validation, worded as the API words it; each error sits under
// its field (aria-describedby) and in a summary at the top that links to
// the field.
var formTemplate = webpage.Parse("install", `
<h1>Install {{.App}}</h1>
{{if .Fields}}<p>{{.App}} needs a few settings for your organization <strong>{{.Org}}</strong>. Fields marked <span class="req">(required)</span> must be filled in.</p>
{{else}}<p>{{.App}} needs no settings: install it for your organization <strong>{{.Org}}</strong> with the button below.</p>{{end}}
{{if .Errors}}<div class="summary" role="alert" aria-labelledby="summary-title">
<h2 id="summary-title">{{if eq (len .Errors) 1}}There is a problem{{else}}There are {{len .Errors}} problems{{end}}</h2>
<ul>{{range .Errors}}<li>{{if .Target}}<a href="#{{.Target}}">{{.Text}}</a>{{else}}{{.Text}}{{end}}</li>{{end}}</ul>
</div>{{end}}
<form method="post" action="{{.Action}}" novalidate>
<input type="hidden" name="_csrf" value="{{.CSRF}}">
{{range .Fields}}<div class="field">
{{if .Fixed}}<span class="label">{{.Label}}</span>
<span class="hint">Set by the app's developer.</span>
<p class="fixed">{{.Value}}</p>
{{else}}<label for="{{.ID}}">{{.Label}}{{if .Required}} <span class="req">(required)</span>{{end}}</label>
{{if .Hint}}<span class="hint" id="{{.ID}}-hint">{{with .Description}}{{.}} {{end}}{{with .Pattern}}Format: must match the pattern <code>{{.}}</code>. {{end}}{{with .Default}}Leave empty to use the default, “{{.}}”. {{end}}{{if .Secret}}Kept encrypted; it is never shown again.{{end}}</span>{{end}}
{{if .PEM}}<textarea id="{{.ID}}" name="{{.Key}}" rows="6"{{if .Required}} required aria-required="true"{{end}}{{if .Error}} aria-invalid="true"{{end}}{{if .DescribedBy}} aria-describedby="{{.DescribedBy}}"{{end}} autocomplete="off" autocapitalize="off" spellcheck="false"></textarea>
{{else}}<input id="{{.ID}}" name="{{.Key}}" type="{{if .Secret}}password{{else}}text{{end}}"{{if not .Secret}} value="{{.Value}}"{{end}}{{if .Placeholder}} placeholder="{{.Placeholder}}"{{end}}{{if .Required}} required aria-required="true"{{end}}{{if .Error}} aria-invalid="true"{{end}}{{if .DescribedBy}} aria-describedby="{{.DescribedBy}}"{{end}} autocomplete="off" autocapitalize="off" spellcheck="false">{{end}}
{{if .Error}}<p class="error" id="{{.ID}}-error">{{.Error}}</p>{{end}}
{{end}}</div>
{{end}}<div class="actions"><button type="submit" id="install">Install {{.App}}</button></div>
</form>
`)

// field is one setting on the form.
type field struct {
	Key, ID, Label string
	Hint           bool // any of Description, Pattern, Default, Secret
	Description    string
	Pattern        string
	Default        string
	Required       bool
	Secret         bool
	PEM            bool   // a certificate or private key: a textarea, never filled back in
	Fixed          bool   // read_only: shown, not editable
	Value          string // what to show in the input; never a secret
	Placeholder    string
	Error          string
	DescribedBy    string
}

type formError struct{ Target, Text string }

// form renders the form for defs. values are what was submitted (nil on
// first view); problem is the error of the submission, if any.
func (h *Handler) form(c echo.Context, status int, token string, a app.App, l Link, defs []settings.Definition, values map[string]string, problem *errs.Error) error {
	byField := map[string][]string{}
	var problems []formError
	if problem != nil {
		if len(problem.Fields) == 0 {
			problems = append(problems, formError{Text: sentence(problem.Message)})
		}
		for _, fe := range problem.Fields {
			if key, ok := strings.CutPrefix(fe.Field, "values."); ok {
				byField[key] = append(byField[key], fe.Message)
				continue
			}
			problems = append(problems, formError{Text: sentence(fe.Field + " " + fe.Message)})
		}
	}
	var fields []field
	for _, d := range defs {
		if !d.Prompted() {
			continue // hidden or managed: never shown to organizations
		}
		f := field{Key: d.Key, ID: "f-" + d.Key, Label: d.Label, Required: d.Required && !d.HasDefault(), Secret: d.Secret,
			PEM: d.Type == settings.Certificate || d.Type == settings.PrivateKey}
		if f.Label == "" {
			f.Label = d.Key
		}
		if d.Fixed() {
			f.Fixed = true
			if d.DefaultValue != nil {
				f.Value = *d.DefaultValue
			}
			fields = append(fields, f)
			continue
		}
		if d.Description != "" {
			f.Description = sentence(d.Description)
		}
		if d.Pattern != nil {
			f.Pattern = *d.Pattern
		}
		if d.DefaultValue != nil {
			f.Default, f.Placeholder = *d.DefaultValue, *d.DefaultValue
		}
		if !d.Secret {
			f.Value = values[d.Key]
		}
		var described []string
		if f.Hint = f.Description != "" || f.Pattern != "" || f.Default != "" || f.Secret; f.Hint {
			described = append(described, f.ID+"-hint")
		}
		if msgs := byField[d.Key]; len(msgs) > 0 {
			f.Error = sentence(f.Label + " " + strings.Join(msgs, "; "))
			described = append(described, f.ID+"-error")
			problems = append(problems, formError{Target: f.ID, Text: f.Error})
			delete(byField, d.Key)
		}
		f.DescribedBy = strings.Join(described, " ")
		fields = append(fields, f)
	}
	for key, msgs := range byField { // an error about a key not on the form
		problems = append(problems, formError{Text: sentence(key + " " + strings.Join(msgs, "; "))})
	}
	nonce := h.formNonce(c, token, l.ExpiresAt)
	title := "Install " + a.Name
	if len(problems) > 0 {
		title = "Error: " + title // what a screen reader says first
	}
	return webpage.Render(c, formTemplate, webpage.Page{
		Status:  status,
		Title:   title,
		Heading: a.Name,
		Logo:    a.LogoURL,
		Form:    true,
		Body: map[string]any{
			"App":    a.Name,
			"Org":    l.OrganizationID,
			"Action": Path + token,
			"CSRF":   formToken(token, nonce),
			"Fields": fields,
			"Errors": problems,
		},
	})
}

var doneTemplate = webpage.Parse("installed", `
<h1>{{.App}} is installed</h1>
<p class="status ok">{{.App}} is now installed for your organization <strong>{{.Org}}</strong>.</p>
<dl>
<dt>Organization</dt><dd>{{.Org}}</dd>
<dt>Installation</dt><dd><code id="installation">{{.ID}}</code></dd>
</dl>
{{if .Settings}}<h2>Settings</h2>
<dl>{{range .Settings}}<dt>{{.Label}}</dt><dd>{{.Shown}}</dd>{{end}}</dl>{{end}}
<h2>Next step</h2>
{{if .Connect}}<p>Connect your account, so that {{.App}} can work for you.</p>
<div class="actions">{{range .Connect}}<a class="button" href="{{.URL}}">{{.Label}}</a>{{end}}</div>
{{else if .NeedsConnect}}<p>Each person in your organization now connects their own account to {{.App}}; {{.App}} will ask them when it needs to.</p>
{{else}}<p>Nothing else to do. You can close this window.</p>{{end}}
`)

type shownSetting struct{ Label, Shown string }

type connectButton struct{ URL, Label string }

// done shows the installation, its settings (secrets only as "saved") and
// the next step: for apps with authorization-code configs, connecting an
// account (a button when the link named the person's user id).
func (h *Handler) done(c echo.Context, a app.App, l Link, inst settings.Installation) error {
	ctx := c.Request().Context()
	vs, err := h.settings.OrganizationValues(ctx, inst)
	if err != nil {
		return h.problem(c, a, err)
	}
	var shown []shownSetting
	for _, v := range vs {
		label := v.Definition.Label
		if label == "" {
			label = v.Definition.Key
		}
		s := shownSetting{Label: label}
		switch {
		case v.Definition.Secret && v.Set:
			s.Shown = "Saved (encrypted, not shown)"
		case v.Set:
			s.Shown = v.Value
		case v.FromDefault:
			s.Shown = v.Value + " (default)"
		default:
			s.Shown = "Not set"
		}
		shown = append(shown, s)
	}
	cfgs, err := h.configs.List(ctx, a.ID)
	if err != nil {
		return h.problem(c, a, err)
	}
	var codeConfigs []oauthconfig.Config
	for _, cfg := range cfgs {
		if cfg.GrantType == oauthconfig.AuthorizationCode {
			codeConfigs = append(codeConfigs, cfg)
		}
	}
	var buttons []connectButton
	if l.UserID != "" {
		for _, cfg := range codeConfigs {
			u, _, err := h.connect.ConnectLink(ctx, inst.ID, cfg.ID, l.UserID)
			if err != nil {
				// Installed all the same: the page says so, without the button.
				h.log.Warn("making a connect link after installing", "installation_id", inst.ID, "error", errs.MessageOf(err))
				continue
			}
			label := "Connect your account"
			if len(codeConfigs) > 1 {
				label = "Connect your " + cfg.Name + " account"
			}
			buttons = append(buttons, connectButton{URL: u, Label: label})
		}
	}
	return webpage.Render(c, doneTemplate, webpage.Page{
		Title:   a.Name + " is installed",
		Heading: a.Name,
		Logo:    a.LogoURL,
		Body: map[string]any{
			"App":          a.Name,
			"Org":          inst.OrganizationID,
			"ID":           inst.ID,
			"Settings":     shown,
			"Connect":      buttons,
			"NeedsConnect": len(codeConfigs) > 0,
		},
	})
}

var problemTemplate = webpage.Parse("install-problem", `
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
<p class="ref">Reference: <code>{{.Reference}}</code></p>
`)

// problem shows why the page cannot go on, with the error's status. An
// unexpected failure is logged and shown as a generic message.
func (h *Handler) problem(c echo.Context, a app.App, err error) error {
	var e *errs.Error
	title, msg, status := "Cannot install", "", http.StatusInternalServerError
	if errors.As(err, &e) && e.Code != errs.Internal && e.Code != errs.Unavailable {
		msg, status = sentence(e.Message), httpapi.Status(e.Code)
		if e.Code == errs.Gone {
			title = "This link cannot be used"
		}
	} else {
		h.log.Error("install page failed", "request_id", httpapi.RequestID(c), "error", err.Error())
		msg = "Something went wrong on our side. Try again in a moment."
	}
	return webpage.Render(c, problemTemplate, webpage.Page{
		Status: status, Title: title, Heading: a.Name, Logo: a.LogoURL,
		Body: map[string]any{"Title": title, "Message": msg, "Reference": httpapi.RequestID(c)},
	})
}

// sentence makes an API message fragment read as a sentence.
func sentence(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "”") {
		s += "."
	}
	return s
}
