package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/oauthconfig"
)

// config returns the app's config named by the :config parameter.
func (h *Handler) config(c echo.Context) (app.App, oauthconfig.Config, error) {
	a, err := h.app(c)
	if err != nil {
		return app.App{}, oauthconfig.Config{}, err
	}
	id, err := httpapi.Param(c, "config")
	if err != nil {
		return app.App{}, oauthconfig.Config{}, err
	}
	cfg, err := h.Configs.Find(c.Request().Context(), a.ID, id)
	return a, cfg, err
}

var configsTemplate = parse("console-configs", `
{{template "notice" .}}
<h1>OAuth configs of {{.App.Name}}</h1>
<p>A config says how to get tokens from one provider: the authorization link, the token requests, and where the tokens go. Register this redirect URI at the provider: <code>{{.D.RedirectURI}}</code></p>
<p class="actions"><a class="button" id="new-config" href="/console/apps/{{.App.ID}}/configs/new">New OAuth config</a></p>
{{if .D.Configs}}<table>
<thead><tr><th scope="col">Name</th><th scope="col">Grant</th><th scope="col">Tokens kept per</th><th scope="col">Request logging</th><th scope="col">Id</th></tr></thead>
<tbody>{{range .D.Configs}}<tr><td><a href="/console/apps/{{$.App.ID}}/configs/{{.ID}}">{{.Name}}</a></td><td>{{.GrantType}}</td><td>{{if eq .TokenLevel "organization"}}installation{{else}}end user{{end}}</td><td>{{if .LogRequests}}on{{else}}off{{end}}</td><td><code>{{.ID}}</code></td></tr>
{{end}}</tbody>
</table>{{else}}<p>The app has no OAuth configs yet.</p>{{end}}
`)

func (h *Handler) listConfigs(c echo.Context) error {
	a, err := h.app(c)
	if err != nil {
		return err
	}
	cfgs, err := h.Configs.List(c.Request().Context(), a.ID)
	if err != nil {
		return err
	}
	return h.render(c, configsTemplate, http.StatusOK, "OAuth configs of "+a.Name, view{App: &a, Section: "configs", D: map[string]any{
		"Configs": cfgs, "RedirectURI": h.Links.RedirectURI(),
	}})
}

// configField is one field of the config form, named as the API names it.
type configField struct {
	name, label, kind, hint string
	options                 []string
	rows                    int
}

// configGroups are the config form's fieldsets: every field of every
// grant type, in the order a developer fills them in.
var configGroups = []struct {
	legend string
	fields []configField
}{
	{"The grant", []configField{
		{name: "name", label: "Name", hint: "Unique in the app, such as the provider's name."},
		{name: "grant_type", label: "Grant type", kind: "select", options: []string{"authorization_code", "client_credentials", "password", "refresh_token", "jwt_bearer"},
			hint: "authorization_code asks the end user at the provider; the others get tokens without one."},
		{name: "scopes", label: "Scopes", hint: "Separated by spaces; <<scope>> joins them with the separator."},
		{name: "scope_separator", label: "Scope separator", hint: "Empty: a space."},
		{name: "pkce", label: "PKCE", kind: "select", options: []string{"S256", "off"}, hint: "off for codes pasted from a provider's console."},
		{name: "logo_url", label: "Logo URL", hint: "Shown on the connect page instead of the app's logo."},
	}},
	{"The authorization link (authorization_code)", []configField{
		{name: "link_url", label: "Link URL", kind: "textarea", hint: "A template, e.g. https://provider.example/authorize?client_id=<<client_id>>&redirect_uri=<<redirect_uri>>&response_type=code&scope=<<scope>>. state and the PKCE challenge are added when it does not place them."},
		{name: "auth_code_path", label: "Authorization code path", hint: "Where the callback's query holds the code. Empty: $.code."},
	}},
	{"Token requests", []configField{
		{name: "token_url", label: "Token URL", hint: "A template."},
		{name: "refresh_url", label: "Refresh URL", hint: "Empty: the token URL."},
		{name: "body_format", label: "Body format", kind: "select", options: []string{"form", "json"}},
		{name: "client_auth", label: "Client authentication", kind: "select", options: []string{"body", "basic", "private_key_jwt", "client_secret_jwt", "tls_client_auth", "self_signed_tls_client_auth"},
			hint: "basic sends the organization settings client_id and client_secret in an Authorization header; the _jwt ones a signed assertion (RFC 7523)."},
		{name: "token_method", label: "Token request method", kind: "select", options: []string{"POST", "GET"}},
		{name: "refresh_method", label: "Refresh request method", kind: "select", options: []string{"", "POST", "GET"}, hint: "Empty: as the token request."},
		{name: "token_params", label: "Token request parameters", kind: "select", options: []string{"body", "query"}, hint: "query: in the URL, with no body."},
		{name: "content_type", label: "Content type", hint: "Empty: by the body format."},
		{name: "assertion_key_setting", label: "Assertion key setting", hint: "The secret setting with the PEM private key that signs assertions (private_key_jwt, jwt_bearer)."},
		{name: "assertion_alg", label: "Assertion algorithm", kind: "select", options: []string{"", "RS256", "PS256", "ES256"}, hint: "Empty: by the key."},
		{name: "assertion_claims", label: "Assertion claims", kind: "textarea", hint: "One “claim: template” a line, over the defaults."},
		{name: "client_cert_setting", label: "Client certificate setting", hint: "The certificate setting presented in TLS (RFC 8705), with any client authentication."},
		{name: "client_key_setting", label: "Client key setting", hint: "The private_key setting of that certificate."},
		{name: "token_body", label: "Token request body", kind: "textarea", hint: "Empty: RFC 6749's body for the grant, written again when saved."},
		{name: "refresh_body", label: "Refresh request body", kind: "textarea", hint: "Empty: RFC 6749's refresh body."},
		{name: "headers", label: "Headers", kind: "textarea", hint: "One “Name: value” a line; values are templates."},
	}},
	{"Reading the token response", []configField{
		{name: "access_token_path", label: "Access token path", hint: "A JSONPath. Empty: $.access_token."},
		{name: "refresh_token_path", label: "Refresh token path", hint: "Empty: $.refresh_token."},
		{name: "expires_in_path", label: "Expires-in path", hint: "Empty: $.expires_in."},
		{name: "access_token_setting", label: "Access token setting", hint: "The setting that receives the access token: user-level, or organization-level for tokens of the installation."},
		{name: "refresh_token_setting", label: "Refresh token setting"},
		{name: "mappings", label: "Mappings", kind: "textarea", hint: "One “$.path -> setting” a line, with “ required” after it when the first answer must have it."},
	}},
	{"Renewal", []configField{
		{name: "default_expires_in", label: "Default lifetime (seconds)", hint: "For answers without expires_in. Empty: 3600."},
		{name: "refresh_margin_seconds", label: "Refresh margin (seconds)", hint: "How long before expiry a token is renewed. 0: the smaller of 5 minutes and 10% of its lifetime."},
		{name: "expired_statuses", label: "Statuses that mean “token expired”", hint: "Separated by commas. Empty: 401."},
		{name: "expired_body_path", label: "Expired body path", hint: "A JSONPath in an API's answer that means the token expired."},
		{name: "expired_body_value", label: "Expired body value", hint: "The value at that path; empty: any value."},
		{name: "grant_gone_errors", label: "Errors that end the grant", hint: "OAuth error codes besides invalid_grant, separated by spaces."},
		{name: "grant_gone_body_path", label: "Grant-gone body path"},
		{name: "grant_gone_body_value", label: "Grant-gone body value"},
		{name: "keepalive_seconds", label: "Keep-alive (seconds)", hint: "Refresh connections idle this long. 0: off; else at least 300."},
	}},
	{"The identity request", []configField{
		{name: "identity_url", label: "Identity URL", hint: "Requested after each code exchange with the new token, and by “Check now”."},
		{name: "identity_method", label: "Identity method", kind: "select", options: []string{"GET", "POST"}},
		{name: "identity_headers", label: "Identity headers", kind: "textarea", hint: "One “Name: value” a line, e.g. Authorization: Bearer <<access_token>>."},
		{name: "identity_mappings", label: "Identity mappings", kind: "textarea", hint: "One “$.path -> setting” a line."},
	}},
	{"After the exchange", []configField{
		{name: "callback_mappings", label: "Callback mappings", kind: "textarea", hint: "Query parameters of the redirect back to store: one “param -> setting” a line."},
		{name: "steps", label: "Steps (JSON)", kind: "textarea", hint: `Requests run after the token request, as in the REST API: [{"name": "long_lived", "url": "...", "access_token_path": "$.access_token"}].`},
	}},
	{"Logging", []configField{
		{name: "log_requests", label: "Log token requests and answers, secrets redacted", kind: "checkbox"},
	}},
}

// configValues writes cfg as the form shows it.
func configValues(cfg *oauthconfig.Config) url.Values {
	ints := func(ns []int) string {
		s := make([]string, len(ns))
		for i, n := range ns {
			s[i] = strconv.Itoa(n)
		}
		return strings.Join(s, ", ")
	}
	v := url.Values{}
	for k, s := range map[string]string{
		"name": cfg.Name, "grant_type": string(cfg.GrantType), "scopes": strings.Join(cfg.Scopes, " "),
		"scope_separator": cfg.ScopeSeparator, "pkce": cfg.PKCE, "logo_url": cfg.LogoURL,
		"link_url": cfg.LinkURL, "auth_code_path": cfg.AuthCodePath, "token_url": cfg.TokenURL,
		"refresh_url": cfg.RefreshURL, "body_format": string(cfg.BodyFormat), "client_auth": string(cfg.ClientAuth),
		"token_body": cfg.TokenBody, "refresh_body": cfg.RefreshBody, "headers": showPairs(cfg.Headers),
		"access_token_path": cfg.AccessTokenPath, "refresh_token_path": cfg.RefreshTokenPath,
		"expires_in_path": cfg.ExpiresInPath, "access_token_setting": cfg.AccessTokenSetting,
		"refresh_token_setting": cfg.RefreshTokenSetting, "mappings": showMappings(cfg.Mappings),
		"default_expires_in": strconv.Itoa(cfg.DefaultExpiresIn), "refresh_margin_seconds": strconv.Itoa(cfg.RefreshMargin),
		"expired_statuses": ints(cfg.ExpiredStatuses), "expired_body_path": cfg.ExpiredBodyPath,
		"expired_body_value": cfg.ExpiredBodyValue, "grant_gone_errors": strings.Join(cfg.GrantGoneErrors, " "),
		"grant_gone_body_path": cfg.GrantGoneBodyPath, "grant_gone_body_value": cfg.GrantGoneBodyValue,
		"keepalive_seconds": strconv.Itoa(cfg.KeepAlive), "identity_url": cfg.IdentityURL,
		"identity_method": cfg.IdentityMethod, "identity_headers": showPairs(cfg.IdentityHeaders),
		"identity_mappings": showMappings(cfg.IdentityMappings),
		"token_method":      cfg.TokenMethod, "token_params": cfg.TokenParams, "content_type": cfg.ContentType,
		"refresh_method":        cfg.RefreshMethod,
		"assertion_key_setting": cfg.AssertionKeySetting, "assertion_alg": cfg.AssertionAlg,
		"assertion_claims": showPairs(cfg.AssertionClaims), "callback_mappings": showCallbackMappings(cfg.CallbackMappings),
		"steps":               showSteps(cfg.Steps),
		"client_cert_setting": cfg.ClientCertSetting, "client_key_setting": cfg.ClientKeySetting,
	} {
		v.Set(k, s)
	}
	if cfg.LogRequests {
		v.Set("log_requests", "true")
	}
	return v
}

// applyConfigForm sets every field of cfg from the form, as a PATCH that
// names every field would; fs gets what cannot be read (a number that is
// not one, a line without its separator).
func applyConfigForm(cfg *oauthconfig.Config, f url.Values, fs *errs.Fields) {
	cfg.Name = f.Get("name")
	cfg.GrantType = oauthconfig.GrantType(f.Get("grant_type"))
	cfg.Scopes = strings.Fields(f.Get("scopes"))
	cfg.ScopeSeparator = f.Get("scope_separator")
	cfg.PKCE = f.Get("pkce")
	cfg.LogoURL = strings.TrimSpace(f.Get("logo_url"))
	cfg.LinkURL = strings.TrimSpace(f.Get("link_url"))
	cfg.AuthCodePath = strings.TrimSpace(f.Get("auth_code_path"))
	cfg.TokenURL = strings.TrimSpace(f.Get("token_url"))
	cfg.RefreshURL = strings.TrimSpace(f.Get("refresh_url"))
	cfg.BodyFormat = oauthconfig.BodyFormat(f.Get("body_format"))
	cfg.ClientAuth = oauthconfig.ClientAuth(f.Get("client_auth"))
	cfg.TokenBody = strings.TrimSpace(f.Get("token_body"))
	cfg.RefreshBody = strings.TrimSpace(f.Get("refresh_body"))
	cfg.Headers = pairs(fs, "headers", f.Get("headers"))
	cfg.AccessTokenPath = strings.TrimSpace(f.Get("access_token_path"))
	cfg.RefreshTokenPath = strings.TrimSpace(f.Get("refresh_token_path"))
	cfg.ExpiresInPath = strings.TrimSpace(f.Get("expires_in_path"))
	cfg.AccessTokenSetting = strings.TrimSpace(f.Get("access_token_setting"))
	cfg.RefreshTokenSetting = strings.TrimSpace(f.Get("refresh_token_setting"))
	cfg.Mappings = readMappings(fs, "mappings", f.Get("mappings"))
	cfg.DefaultExpiresIn = number(fs, "default_expires_in", f.Get("default_expires_in"))
	cfg.RefreshMargin = number(fs, "refresh_margin_seconds", f.Get("refresh_margin_seconds"))
	cfg.ExpiredStatuses = nil
	for _, s := range strings.FieldsFunc(f.Get("expired_statuses"), func(r rune) bool { return r == ',' || r == ' ' }) {
		cfg.ExpiredStatuses = append(cfg.ExpiredStatuses, number(fs, "expired_statuses", s))
	}
	cfg.ExpiredBodyPath = strings.TrimSpace(f.Get("expired_body_path"))
	cfg.ExpiredBodyValue = f.Get("expired_body_value")
	cfg.GrantGoneErrors = strings.Fields(f.Get("grant_gone_errors"))
	cfg.GrantGoneBodyPath = strings.TrimSpace(f.Get("grant_gone_body_path"))
	cfg.GrantGoneBodyValue = f.Get("grant_gone_body_value")
	cfg.KeepAlive = number(fs, "keepalive_seconds", f.Get("keepalive_seconds"))
	cfg.IdentityURL = strings.TrimSpace(f.Get("identity_url"))
	cfg.IdentityMethod = f.Get("identity_method")
	cfg.IdentityHeaders = pairs(fs, "identity_headers", f.Get("identity_headers"))
	cfg.IdentityMappings = readMappings(fs, "identity_mappings", f.Get("identity_mappings"))
	cfg.TokenMethod = f.Get("token_method")
	cfg.RefreshMethod = f.Get("refresh_method")
	cfg.TokenParams = f.Get("token_params")
	cfg.ContentType = strings.TrimSpace(f.Get("content_type"))
	cfg.AssertionKeySetting = strings.TrimSpace(f.Get("assertion_key_setting"))
	cfg.AssertionAlg = f.Get("assertion_alg")
	cfg.AssertionClaims = pairs(fs, "assertion_claims", f.Get("assertion_claims"))
	cfg.CallbackMappings = readCallbackMappings(fs, "callback_mappings", f.Get("callback_mappings"))
	cfg.Steps = readSteps(fs, "steps", f.Get("steps"))
	cfg.ClientCertSetting = strings.TrimSpace(f.Get("client_cert_setting"))
	cfg.ClientKeySetting = strings.TrimSpace(f.Get("client_key_setting"))
	cfg.LogRequests = f.Get("log_requests") == "true"
}

// readCallbackMappings reads "param -> setting" lines.
func readCallbackMappings(fs *errs.Fields, field, s string) []oauthconfig.CallbackMapping {
	out := []oauthconfig.CallbackMapping{}
	for i, l := range lines(s) {
		param, setting, ok := strings.Cut(l, "->")
		if !ok || strings.TrimSpace(setting) == "" {
			fs.Add(field, "line %d: write “param -> setting”", i+1)
			continue
		}
		out = append(out, oauthconfig.CallbackMapping{Param: strings.TrimSpace(param), Setting: strings.TrimSpace(setting)})
	}
	return out
}

func showCallbackMappings(ms []oauthconfig.CallbackMapping) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "%s -> %s\n", m.Param, m.Setting)
	}
	return b.String()
}

// readSteps reads the steps as the REST API takes them, a JSON list;
// empty is none.
func readSteps(fs *errs.Fields, field, s string) []oauthconfig.Step {
	out := []oauthconfig.Step{}
	if strings.TrimSpace(s) == "" {
		return out
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		fs.Add(field, "must be a JSON list of steps: %v", err)
	}
	return out
}

func showSteps(steps []oauthconfig.Step) string {
	if len(steps) == 0 {
		return ""
	}
	b, _ := json.MarshalIndent(steps, "", "  ")
	return string(b)
}

// readMappings reads "$.path -> setting [required]" lines.
func readMappings(fs *errs.Fields, field, s string) []oauthconfig.Mapping {
	out := []oauthconfig.Mapping{}
	for i, l := range lines(s) {
		at := strings.LastIndex(l, "->")
		var rest []string
		if at >= 0 {
			rest = strings.Fields(l[at+2:])
		}
		if at < 0 || len(rest) == 0 || len(rest) > 2 || (len(rest) == 2 && rest[1] != "required") {
			fs.Add(field, "line %d: write “$.path -> setting”, with “ required” after it if it must be there", i+1)
			continue
		}
		out = append(out, oauthconfig.Mapping{Path: strings.TrimSpace(l[:at]), Setting: rest[0], Required: len(rest) == 2})
	}
	return out
}

func showMappings(ms []oauthconfig.Mapping) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "%s -> %s", m.Path, m.Setting)
		if m.Required {
			b.WriteString(" required")
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// templateText is the text an error position of field points into.
func templateText(cfg *oauthconfig.Config, field string) string {
	if name, ok := strings.CutPrefix(field, "headers."); ok {
		return cfg.Headers[name]
	}
	if name, ok := strings.CutPrefix(field, "identity_headers."); ok {
		return cfg.IdentityHeaders[name]
	}
	switch field {
	case "link_url":
		return cfg.LinkURL
	case "token_url":
		return cfg.TokenURL
	case "refresh_url":
		return cfg.RefreshURL
	case "token_body":
		return cfg.TokenBody
	case "refresh_body":
		return cfg.RefreshBody
	case "identity_url":
		return cfg.IdentityURL
	}
	return ""
}

type fieldGroup struct {
	Legend string
	Inputs []*input
}

// configForm is the form of every config field with values, and the
// errors of problem, positioned in cfg's templates.
func configForm(cfg *oauthconfig.Config, values url.Values, problem error) (*form, []fieldGroup) {
	f := newForm(problem, values)
	f.ID = "config"
	f.source = func(field string) string { return templateText(cfg, field) }
	shown := values
	if shown == nil {
		shown = configValues(cfg)
	}
	var groups []fieldGroup
	for _, g := range configGroups {
		fg := fieldGroup{Legend: g.legend}
		for _, cf := range g.fields {
			in := input{Name: cf.name, Label: cf.label, Type: cf.kind, Hint: cf.hint, Value: shown.Get(cf.name)}
			switch cf.kind {
			case "select":
				in.Options = options(shown.Get(cf.name), cf.options...)
			case "checkbox":
				in.Checked = shown.Get(cf.name) == "true"
			case "textarea":
				in.Rows = 3
			}
			fg.Inputs = append(fg.Inputs, f.add(in))
		}
		groups = append(groups, fg)
	}
	return f, groups
}

var configTemplate = parse("console-config", `
{{template "notice" .}}
<p class="crumbs"><a href="/console/apps/{{.App.ID}}/configs">OAuth configs of {{.App.Name}}</a></p>
{{if .D.Config.ID}}<h1>OAuth config {{.D.Config.Name}}</h1>
<dl>
<dt>Id</dt><dd><code id="config-id">{{.D.Config.ID}}</code></dd>
<dt>Grant</dt><dd>{{.D.Config.GrantType}}</dd>
<dt>Redirect URI</dt><dd><code>{{.D.RedirectURI}}</code> (register it at the provider)</dd>
<dt>Request logging</dt><dd>{{if .D.Config.LogRequests}}on{{else}}off{{end}}</dd>
</dl>
<div class="actions">
<a class="button" id="check-config" href="/console/apps/{{.App.ID}}/configs/{{.D.Config.ID}}/check">Explain and test</a>
<a class="button secondary" href="/console/apps/{{.App.ID}}/logs?config={{.D.Config.ID}}">Its request log</a>
<form method="post" action="/console/apps/{{.App.ID}}/configs/{{.D.Config.ID}}/logging">
<input type="hidden" name="_csrf" value="{{.CSRF}}">
<input type="hidden" name="log_requests" value="{{if .D.Config.LogRequests}}false{{else}}true{{end}}">
<button type="submit" id="toggle-logging" class="button secondary">{{if .D.Config.LogRequests}}Turn logging off{{else}}Enable logging{{end}}</button>
</form>
</div>
<h2 id="edit-title">Edit the config</h2>{{else}}<h1 id="edit-title">New OAuth config</h1>{{end}}
{{template "summary" .D.Form}}
<form method="post" action="{{.D.Action}}" aria-labelledby="edit-title" novalidate>
<input type="hidden" name="_csrf" value="{{.CSRF}}">
{{range .D.Groups}}<fieldset><legend>{{.Legend}}</legend>
{{range .Inputs}}{{template "input" .}}{{end}}</fieldset>
{{end}}<div class="actions"><button type="submit" id="save-config">{{if .D.Config.ID}}Save{{else}}Create config{{end}}</button></div>
</form>
`)

func (h *Handler) showConfigForm(c echo.Context, status int, a app.App, cfg oauthconfig.Config, values url.Values, problem error) error {
	f, groups := configForm(&cfg, values, problem)
	title, action := "New OAuth config", Path+"/apps/"+a.ID+"/configs"
	if cfg.ID != "" {
		title, action = "OAuth config "+cfg.Name, action+"/"+cfg.ID
	}
	return h.render(c, configTemplate, status, f.title(title), view{App: &a, Section: "configs", D: map[string]any{
		"Config": cfg, "Form": f, "Groups": groups, "Action": action, "RedirectURI": h.Links.RedirectURI(),
	}})
}

func (h *Handler) newConfig(c echo.Context) error {
	a, err := h.app(c)
	if err != nil {
		return err
	}
	blank := oauthconfig.Config{GrantType: oauthconfig.AuthorizationCode, BodyFormat: oauthconfig.Form,
		ClientAuth: oauthconfig.AuthBody, PKCE: "S256", IdentityMethod: http.MethodGet}
	v := configValues(&blank)
	for _, k := range []string{"default_expires_in", "refresh_margin_seconds", "keepalive_seconds"} {
		v.Set(k, "")
	}
	return h.showConfigForm(c, http.StatusOK, a, oauthconfig.Config{}, v, nil)
}

func (h *Handler) showConfig(c echo.Context) error {
	a, cfg, err := h.config(c)
	if err != nil {
		return err
	}
	return h.showConfigForm(c, http.StatusOK, a, cfg, nil, nil)
}

// createConfig creates a config as POST /v1/apps/{app}/oauth-configs does:
// validated against the app's settings, each bad field named.
func (h *Handler) createConfig(c echo.Context) error {
	a, err := h.app(c)
	if err != nil {
		return err
	}
	form, err := readForm(c)
	if err != nil {
		return err
	}
	cfg := oauthconfig.Config{AppID: a.ID}
	if err := h.saveConfig(c, a, &cfg, form, true); err != nil {
		if formProblem(err) {
			return h.showConfigForm(c, statusOf(err), a, cfg, form, err)
		}
		return err
	}
	return redirect(c, Path+"/apps/"+a.ID+"/configs/"+cfg.ID, "created")
}

// updateConfig changes a config as a PATCH naming every field does.
func (h *Handler) updateConfig(c echo.Context) error {
	a, cfg, err := h.config(c)
	if err != nil {
		return err
	}
	form, err := readForm(c)
	if err != nil {
		return err
	}
	if err := h.saveConfig(c, a, &cfg, form, false); err != nil {
		if formProblem(err) {
			return h.showConfigForm(c, statusOf(err), a, cfg, form, err)
		}
		return err
	}
	return redirect(c, Path+"/apps/"+a.ID+"/configs/"+cfg.ID, "saved")
}

func (h *Handler) saveConfig(c echo.Context, a app.App, cfg *oauthconfig.Config, form url.Values, create bool) error {
	var fs errs.Fields
	applyConfigForm(cfg, form, &fs)
	if err := fs.Err(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	defs, err := h.Settings.Definitions(ctx, a.ID, "")
	if err != nil {
		return err
	}
	if create {
		return h.Configs.Create(ctx, cfg, defs)
	}
	return h.Configs.Update(ctx, cfg, defs)
}

// setLogging turns the config's request log on or off: "enable logging".
func (h *Handler) setLogging(c echo.Context) error {
	a, cfg, err := h.config(c)
	if err != nil {
		return err
	}
	form, err := readForm(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	defs, err := h.Settings.Definitions(ctx, a.ID, "")
	if err != nil {
		return err
	}
	cfg.LogRequests = form.Get("log_requests") == "true"
	if err := h.Configs.Update(ctx, &cfg, defs); err != nil {
		return err
	}
	return redirect(c, Path+"/apps/"+a.ID+"/configs/"+cfg.ID, "saved")
}
