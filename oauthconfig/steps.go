package oauthconfig

import (
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strings"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/template"
	"github.com/latchkey/latchkey/settings"
)

// Step is a request sent after the token request, for providers whose
// connection takes more than one exchange: Instagram and Facebook trade
// the code's short-lived token for a long-lived one; Bullhorn logs in to
// its REST API with the access token and answers a session token and a
// per-tenant URL. Its templates see the settings, the fresh tokens under
// their settings' names and what the steps before it stored.
//
// Mappings store values of the step's JSON answer in settings; the token
// paths, when set, replace the tokens the token request gave. Steps run
// after each code exchange, and after every token request of a grant
// without an end user; with OnRefresh, after each refresh too (Bullhorn's
// session ends with the access token it was made from).
type Step struct {
	Name        string            `json:"name"`
	Method      string            `json:"method"`
	URL         string            `json:"url"`
	Headers     map[string]string `json:"headers"`
	Body        string            `json:"body"`
	ContentType string            `json:"content_type"`
	Mappings    []Mapping         `json:"mappings"`
	// AccessTokenPath, RefreshTokenPath and ExpiresInPath, when set, take
	// the connection's tokens from the step's answer instead; a step with
	// AccessTokenPath fails when its answer has no access token there.
	AccessTokenPath  string `json:"access_token_path"`
	RefreshTokenPath string `json:"refresh_token_path"`
	ExpiresInPath    string `json:"expires_in_path"`
	OnRefresh        bool   `json:"on_refresh"`
}

// MaxSteps bounds a config's steps: each is a round trip before a
// connection is made.
const MaxSteps = 5

// IdentityStepName is the name the identity request runs under as a step.
const IdentityStepName = "identity"

// ReplacesTokens reports whether the step's answer gives new tokens.
func (s Step) ReplacesTokens() bool {
	return s.AccessTokenPath != "" || s.RefreshTokenPath != "" || s.ExpiresInPath != ""
}

// BodyContext is how the step's body template is escaped: JSON for a JSON
// media type, form encoding otherwise.
func (s Step) BodyContext() template.Context {
	if isJSONMediaType(s.ContentType) {
		return template.JSON
	}
	return template.Form
}

func isJSONMediaType(ct string) bool {
	mt, _, _ := mime.ParseMediaType(ct)
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// IdentityStep is the identity request (identity_url) as the step it is:
// the last one after a code exchange, its mappings always required.
func (c *Config) IdentityStep() (Step, bool) {
	if c.IdentityURL == "" {
		return Step{}, false
	}
	ms := make([]Mapping, len(c.IdentityMappings))
	for i, m := range c.IdentityMappings {
		m.Required = true
		ms[i] = m
	}
	return Step{Name: IdentityStepName, Method: c.IdentityMethod, URL: c.IdentityURL,
		Headers: c.IdentityHeaders, Mappings: ms}, true
}

// ConnectSteps are the steps run after a code exchange: the config's,
// then the identity request, which so sees the tokens the steps made.
func (c *Config) ConnectSteps() []Step {
	steps := c.Steps
	if id, ok := c.IdentityStep(); ok {
		steps = append(append([]Step(nil), c.Steps...), id)
	}
	return steps
}

// RenewSteps are the steps run after a renewal: after a refresh, those
// marked on_refresh; after a new token request (a grant without an end
// user), all of the config's steps, as after a code exchange. The identity
// request is not among them: it checks who connected, once.
func (c *Config) RenewSteps(refreshed bool) []Step {
	if !refreshed {
		return c.Steps
	}
	var out []Step
	for _, s := range c.Steps {
		if s.OnRefresh {
			out = append(out, s)
		}
	}
	return out
}

var stepName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// checkSteps checks the config's steps as Validate does its other fields.
func (c *Config) checkSteps(fs *errs.Fields, known func(string) bool, levels map[string]settings.Level, fixed, urlTyped, valueTyped map[string]bool) {
	if len(c.Steps) > MaxSteps {
		fs.Add("steps", "at most %d steps", MaxSteps)
		return
	}
	seen := map[string]bool{}
	for i, s := range c.Steps {
		field := fmt.Sprintf("steps[%d]", i)
		switch {
		case !stepName.MatchString(s.Name):
			fs.Add(field+".name", "must start with a lowercase letter and hold only lowercase letters, digits and underscores, 1 to 40 of them")
		case s.Name == IdentityStepName:
			fs.Add(field+".name", "%q is the identity request's (identity_url); choose another name", s.Name)
		case seen[s.Name]:
			fs.Add(field+".name", "another step is named %q", s.Name)
		}
		seen[s.Name] = true
		if s.Method != http.MethodGet && s.Method != http.MethodPost {
			fs.Add(field+".method", `must be "GET" or "POST"`)
		}
		if s.URL == "" {
			fs.Add(field+".url", "is required")
		}
		checkTemplate(fs, field+".url", s.URL, template.URL, known)
		checkBase(fs, field+".url", s.URL, urlTyped)
		checkHeaders(fs, field+".headers.", s.Headers, known)
		if s.ContentType != "" {
			mt, _, err := mime.ParseMediaType(s.ContentType)
			if len(s.ContentType) > 200 || err != nil || !strings.Contains(mt, "/") || strings.ContainsAny(s.ContentType, "\r\n") {
				fs.Add(field+".content_type", "must be a media type such as application/json")
			} else if s.Body == "" {
				fs.Add(field+".content_type", "is for a body; this step has none")
			}
		}
		if s.Body != "" {
			if s.Method == http.MethodGet {
				fs.Add(field+".body", "a GET request has no body; use POST, or put the parameters in the URL")
			}
			checkTemplate(fs, field+".body", s.Body, s.BodyContext(), known)
			if s.BodyContext() == template.JSON {
				checkValues(fs, field+".body", s.Body, valueTyped)
			}
		}
		if len(s.Mappings) > 50 {
			fs.Add(field+".mappings", "at most 50 mappings")
		}
		for j, m := range s.Mappings {
			mf := fmt.Sprintf("%s.mappings[%d]", field, j)
			checkIdentityPath(fs, mf+".path", m.Path, known)
			checkTokenSetting(fs, mf+".setting", m.Setting, levels, fixed, c.TokenLevel, true)
			if m.Setting != "" && (m.Setting == c.AccessTokenSetting || m.Setting == c.RefreshTokenSetting) {
				fs.Add(mf+".setting", "setting %q receives a token; use the step's access_token_path or refresh_token_path", m.Setting)
			}
		}
		for name, path := range map[string]string{"access_token_path": s.AccessTokenPath,
			"refresh_token_path": s.RefreshTokenPath, "expires_in_path": s.ExpiresInPath} {
			if path != "" {
				checkPath(fs, field+"."+name, path)
			}
		}
		if s.RefreshTokenPath != "" && c.RefreshTokenSetting == "" {
			fs.Add(field+".refresh_token_path", "the config has no refresh_token_setting to store a refresh token in")
		}
	}
}

// stepDefaults fills what a step may leave out.
func stepDefaults(steps []Step) {
	for i := range steps {
		s := &steps[i]
		if s.Method == "" {
			s.Method = http.MethodGet
		}
		if s.Headers == nil {
			s.Headers = map[string]string{}
		}
		if s.Mappings == nil {
			s.Mappings = []Mapping{}
		}
		if s.Body != "" && s.ContentType == "" {
			s.ContentType = "application/x-www-form-urlencoded"
		}
	}
}
