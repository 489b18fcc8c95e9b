package token

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/template"
	"github.com/latchkey/latchkey/oauthconfig"
	"github.com/latchkey/latchkey/settings"
)

// ExplainedVariable is one variable of an explanation: where its value
// comes from (organization, user, default, flow or missing) and, unless
// it is secret, the value.
type ExplainedVariable struct {
	Name   string `json:"name"`
	Source string `json:"source"` // organization, user, default, flow or missing
	Secret bool   `json:"secret"`
	Value  string `json:"value,omitempty"`
}

// Explanation is what a config's link and token requests would be for one
// installation and user, secrets masked.
type Explanation struct {
	Variables      []ExplainedVariable
	LinkURL        string   // "" when it cannot be rendered (see Problems)
	TokenRequest   *Request // nil when it cannot be rendered
	RefreshRequest *Request // nil when it cannot be rendered
	Steps          []ExplainedStep
	// ClientCertificate is the client certificate the requests present
	// (RFC 8705); nil when the config names none.
	ClientCertificate *CertificateInfo
	Problems          []string // why a part cannot be rendered, safe to show
}

// ExplainedStep is a step (or the identity request) as it would be sent
// after a code exchange: tokens and what earlier steps store show as
// placeholders where nothing is stored yet.
type ExplainedStep struct {
	Name      string
	OnRefresh bool
	Request   *Request // nil when it cannot be rendered
}

// Explain renders cfg's link and token and refresh requests with an
// installation's and user's settings (resolved) as a developer checks
// them: secrets masked, each variable with its source. Flow values that
// exist only during a real flow (the state, the code) show as
// placeholders. What cannot be rendered is a problem, not an error.
func Explain(cfg *oauthconfig.Config, defs []settings.Definition, resolved settings.Resolved, redirectURI string) Explanation {
	flow := map[string]string{
		"state": "STATE", "code_challenge": "CODE_CHALLENGE", "auth_code": "AUTH_CODE",
		"code_verifier": "CODE_VERIFIER", "refresh_token": "REFRESH_TOKEN",
	}
	// What the redirect back brings (callback_mappings) exists only during
	// a real sign-in, too, and what steps store only after one: each shows
	// as a placeholder fit for its setting's type.
	types := map[string]settings.Type{}
	for _, d := range defs {
		types[d.Key] = d.Type
	}
	placeholder := func(key string) string {
		name := strings.ToUpper(strings.ReplaceAll(key, "_", "-"))
		switch types[key] {
		case settings.URL:
			return "https://" + name
		case settings.Host:
			return name
		}
		return strings.ToUpper(key)
	}
	for _, m := range cfg.CallbackMappings {
		if resolved.Values[m.Setting] == "" {
			flow[m.Setting] = placeholder(m.Setting)
		}
	}
	vars := FlowValues(cfg, resolved.Values, resolved.Secret, redirectURI, flow)
	out := Explanation{Variables: explainVariables(cfg, defs, resolved, vars), Problems: []string{}}
	if cfg.GrantType == oauthconfig.AuthorizationCode { // the only grant with a link
		if link, err := BuildLink(cfg, vars, true); err != nil {
			out.Problems = append(out.Problems, err.Error())
		} else {
			out.LinkURL = link
		}
	}
	cert, problem := explainCertificate(cfg, vars.Values, time.Now())
	out.ClientCertificate = cert
	if problem != "" {
		out.Problems = append(out.Problems, problem)
	}
	for _, refresh := range []bool{false, true} {
		if refresh && !cfg.UsesRefresh() {
			continue // a refresh request that is never sent has nothing to explain
		}
		r, err := BuildRequest(cfg, vars, refresh, true)
		switch {
		case err != nil:
			out.Problems = append(out.Problems, err.Error())
		case refresh:
			out.RefreshRequest = &r
		default:
			out.TokenRequest = &r
		}
	}
	// The steps, and the identity request last, as after a code
	// exchange: each sees what the steps before it store.
	svars := stepVars(cfg, vars)
	for _, s := range cfg.ConnectSteps() {
		st := ExplainedStep{Name: s.Name, OnRefresh: s.OnRefresh}
		if r, err := BuildStepRequest(s, svars, true); err != nil {
			out.Problems = append(out.Problems, err.Error())
		} else {
			st.Request = &r
		}
		out.Steps = append(out.Steps, st)
		for _, m := range s.Mappings {
			if svars.Values[m.Setting] == "" {
				svars.Values[m.Setting] = placeholder(m.Setting) // what this step will store
			}
		}
	}
	return out
}

// stepVars are vars with placeholders for the tokens where none are stored.
func stepVars(cfg *oauthconfig.Config, vars Vars) Vars {
	values := make(map[string]string, len(vars.Values)+2)
	for k, v := range vars.Values {
		values[k] = v
	}
	for _, k := range []string{cfg.AccessTokenSetting, cfg.RefreshTokenSetting} {
		if k != "" && values[k] == "" {
			values[k] = strings.ToUpper(k)
		}
	}
	vars.Values = values
	return vars
}

func explainVariables(cfg *oauthconfig.Config, defs []settings.Definition, resolved settings.Resolved, vars Vars) []ExplainedVariable {
	used := map[string]bool{}
	srcs := []string{cfg.LinkURL, cfg.TokenURL, cfg.Body(false)}
	if cfg.UsesRefresh() {
		srcs = append(srcs, cfg.RefreshEndpoint(), cfg.Body(true))
	}
	for _, v := range cfg.Headers {
		srcs = append(srcs, v)
	}
	for _, st := range cfg.ConnectSteps() {
		srcs = append(srcs, st.URL, st.Body)
		for _, v := range st.Headers {
			srcs = append(srcs, v)
		}
	}
	for _, src := range srcs {
		if t, err := template.Parse(src, template.Text); err == nil {
			for _, n := range t.Vars() {
				used[n] = true
			}
		}
	}
	if cfg.ClientAuth == oauthconfig.AuthBasic {
		used["client_id"], used["client_secret"] = true, true
	}
	if cfg.ClientCertSetting != "" {
		used[cfg.ClientCertSetting], used[cfg.ClientKeySetting] = true, true
	}
	byKey := map[string]settings.Definition{}
	for _, d := range defs {
		byKey[d.Key] = d
	}
	var out []ExplainedVariable
	for name := range used {
		v := ExplainedVariable{Name: name, Source: "missing", Secret: vars.IsSecret(name)}
		if d, ok := byKey[name]; ok {
			if _, has := resolved.Values[name]; !has && vars.Values[name] != "" {
				v.Source = "flow" // from the redirect back
			} else if has {
				v.Source = string(d.Level)
				if d.DefaultValue != nil && resolved.Values[name] == *d.DefaultValue {
					v.Source = "default"
				}
			}
		} else if _, has := vars.Values[name]; has {
			v.Source = "flow"
		}
		if !v.Secret && v.Source != "missing" {
			v.Value = vars.Values[name]
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Extraction is what a config's paths find in a sample token response:
// the tokens masked, the lifetime, the mapped values, and the problems a
// real answer like it would be reported with.
type Extraction struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    int64
	Extra        map[string]string // setting -> value
	Problems     []string
}

// TryExtraction applies cfg's paths to body, a sample token response as
// JSON or form text, as a real answer would be read. It returns an
// errs.Invalid naming the field "response" when body cannot be read or
// has no access token.
func TryExtraction(cfg *oauthconfig.Config, body []byte) (Extraction, error) {
	doc, err := decodeBody("application/json", body)
	if err != nil {
		if formDoc, ferr := decodeBody("application/x-www-form-urlencoded", body); ferr == nil {
			doc, err = formDoc, nil
		}
	}
	if err != nil {
		return Extraction{}, errs.Fields{{Field: "response", Message: err.Error()}}.Err()
	}
	tok, err := Extract(cfg, doc, false)
	if err != nil {
		return Extraction{}, errs.Fields{{Field: "response", Message: err.Error()}}.Err()
	}
	problems := append([]string{}, tok.Problems...)
	for i, m := range cfg.Mappings {
		if _, ok := tok.Extra[m.Setting]; !ok && !m.Required {
			problems = append(problems, fmt.Sprintf("mappings[%d]: the response has no value at %s; the stored value would be kept", i, m.Path))
		}
	}
	return Extraction{AccessToken: Mask(tok.AccessToken), RefreshToken: Mask(tok.RefreshToken),
		ExpiresIn: tok.ExpiresIn, Extra: tok.Extra, Problems: problems}, nil
}

// Mask shows enough of a token to recognise it and no more.
func Mask(s string) string {
	switch {
	case s == "":
		return ""
	case len(s) <= 8:
		return "****"
	}
	return s[:4] + "****" + " (" + itoa(len(s)) + " characters)"
}

func itoa(n int) string { return strconv.Itoa(n) }
