package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strings"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/template"
	"github.com/latchkey/latchkey/oauthconfig"
)

// FlowValues adds the flow's own variables to an installation's and user's
// resolved settings: the redirect URI (the config's own, else Latchkey's
// callback URL redirectURI) and the scopes, and whatever the caller passes
// (state, code_challenge, auth_code, code_verifier...).
func FlowValues(cfg *oauthconfig.Config, settingValues map[string]string, secret map[string]bool, redirectURI string, flow map[string]string) Vars {
	v := Vars{Values: make(map[string]string, len(settingValues)+len(flow)+2), Secret: secret}
	for k, val := range settingValues {
		v.Values[k] = val
	}
	v.Values["redirect_uri"] = redirectURI
	if cfg.RedirectURI != "" {
		v.Values["redirect_uri"] = cfg.RedirectURI
	}
	if len(cfg.Scopes) > 0 {
		v.Values["scope"] = strings.Join(cfg.Scopes, cfg.ScopeSeparator)
	}
	for k, val := range flow {
		v.Values[k] = val
	}
	return v
}

// BuildLink renders the config's authorization link (RFC 6749 §4.1.1). The
// state and, with PKCE, the S256 challenge (RFC 7636 §4.3) are appended when
// the template does not place them itself, so they are never forgotten.
// With mask set, secret values show as ****.
func BuildLink(cfg *oauthconfig.Config, vars Vars, mask bool) (string, error) {
	t, err := template.Parse(cfg.LinkURL, template.URL)
	if err != nil {
		return "", errs.New(errs.Invalid, "config field link_url does not parse: %v", err)
	}
	var link string
	if mask {
		link, err = t.RenderMasked(vars.Values, vars.IsSecret)
	} else {
		link, err = t.Render(vars.Values)
	}
	if err != nil {
		return "", renderError("link_url", err)
	}
	u, err := url.Parse(link)
	if err != nil {
		return "", errs.New(errs.Invalid, "link_url does not render to a valid URL")
	}
	uses := map[string]bool{}
	for _, name := range t.Vars() {
		uses[name] = true
	}
	q := u.Query()
	changed := false
	if !uses["state"] && vars.Values["state"] != "" {
		q.Set("state", vars.Values["state"])
		changed = true
	}
	if cfg.PKCE == "S256" && !uses["code_challenge"] && vars.Values["code_challenge"] != "" {
		q.Set("code_challenge", vars.Values["code_challenge"])
		q.Set("code_challenge_method", "S256")
		changed = true
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// NewVerifier returns a PKCE code verifier: 32 random bytes, base64url, as
// RFC 7636 §4.1 recommends (and golang.org/x/oauth2 does).
func NewVerifier() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Challenge returns the S256 challenge of a verifier (RFC 7636 §4.2).
func Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
