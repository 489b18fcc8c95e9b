// Package redact removes secrets from text that comes from outside. A
// provider's answer is untrusted text that may echo what it was sent ("got
// client_secret=..."), so every error description, body and header from a
// provider passes a Redactor, built with the secrets of that request,
// before it is stored, logged, returned, rendered or sent on.
package redact

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// Mark replaces each secret.
const Mark = "[REDACTED]"

// MinLen is the shortest value redacted: replacing every "ab" in a text
// would hide the text, not a secret. Secrets are longer in practice.
const MinLen = 4

// Redactor replaces known secret values, in every form they take on the
// wire, with Mark. The zero value redacts nothing but credential-looking
// keys in bodies. It is not safe for concurrent Add.
type Redactor struct {
	forms  []string
	sorted bool
}

// New returns a Redactor for secrets.
func New(secrets ...string) *Redactor {
	r := &Redactor{}
	r.Add(secrets...)
	return r
}

// Add adds secrets: each value as is, URL query- and path-escaped (forms
// and URLs), JSON-escaped (with and without HTML escaping), and in the four
// base64 alphabets (Basic headers, JWTs, providers that encode what they
// echo). Values shorter than MinLen are ignored.
func (r *Redactor) Add(secrets ...string) {
	for _, v := range secrets {
		if len(v) < MinLen {
			continue
		}
		r.forms = append(r.forms, v, url.QueryEscape(v), url.PathEscape(v),
			strings.ReplaceAll(url.QueryEscape(v), "+", "%20"),
			base64.StdEncoding.EncodeToString([]byte(v)),
			base64.RawStdEncoding.EncodeToString([]byte(v)),
			base64.URLEncoding.EncodeToString([]byte(v)),
			base64.RawURLEncoding.EncodeToString([]byte(v)))
		if j, err := json.Marshal(v); err == nil {
			r.forms = append(r.forms, string(j[1:len(j)-1]))
		}
		r.forms = append(r.forms, jsonNoHTML(v))
	}
	r.sorted = false
}

func jsonNoHTML(v string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	s := strings.TrimSuffix(b.String(), "\n")
	return s[1 : len(s)-1]
}

// String returns s with every secret replaced.
func (r *Redactor) String(s string) string {
	if r == nil || len(r.forms) == 0 || s == "" {
		return s
	}
	if !r.sorted {
		// Longest first, so a secret that contains another goes whole.
		sort.Slice(r.forms, func(i, j int) bool { return len(r.forms[i]) > len(r.forms[j]) })
		r.forms = dedupe(r.forms)
		r.sorted = true
	}
	for _, v := range r.forms {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, Mark)
		}
	}
	return s
}

func dedupe(sorted []string) []string {
	out := sorted[:0]
	for i, v := range sorted {
		if v == "" || (i > 0 && v == sorted[i-1]) {
			continue
		}
		out = append(out, v)
	}
	return out
}

var sensitiveHeader = regexp.MustCompile(`(?i)^(authorization|cookie|set-cookie|proxy-authorization|x-api-key|api-key)$|token|secret|password`)

// SensitiveHeader reports a header whose value is a credential, whatever
// it holds.
func SensitiveHeader(name string) bool { return sensitiveHeader.MatchString(name) }

// Header returns h as name -> value with credential headers replaced whole
// and secrets removed from the rest.
func (r *Redactor) Header(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, vs := range h {
		v := strings.Join(vs, ", ")
		if SensitiveHeader(k) {
			v = Mark
		}
		out[k] = r.String(v)
	}
	return out
}

var sensitiveKey = regexp.MustCompile(`(?i)token|secret|password|code|assertion|key|verifier`)

// keyOK lists keys that match sensitiveKey but hold no credential and are
// what a developer needs to read a failure.
func keyOK(k string) bool {
	switch strings.ToLower(k) {
	case "error", "error_description", "error_uri", "token_type", "error_code":
		return true
	}
	return false
}

// looseSecret finds "key": "value" and key=value pairs with a credential-
// looking key in text that does not parse: a broken JSON token answer
// still holds a token.
var looseSecret = regexp.MustCompile(`(?i)("?[a-z0-9_.-]*(?:token|secret|password|assertion|verifier|code|key)[a-z0-9_.-]*"?\s*[:=]\s*"?)([^"&,;\s}{]+)`)

// Body redacts a response body for storing or showing: known secrets
// everywhere, and the values of credential-looking keys in JSON objects
// and forms (an id_token nobody extracted is still a credential). Text
// that is neither has such pairs removed by pattern.
func (r *Redactor) Body(b []byte) string {
	var doc any
	if json.Unmarshal(b, &doc) == nil {
		if redactKeys(doc) {
			var out strings.Builder
			enc := json.NewEncoder(&out)
			enc.SetEscapeHTML(false)
			if enc.Encode(doc) == nil {
				return r.String(strings.TrimSuffix(out.String(), "\n"))
			}
		}
		return r.String(string(b))
	}
	s := string(b)
	if vals, err := url.ParseQuery(s); err == nil && len(vals) > 0 && !strings.ContainsAny(s, "<{ \n") {
		for k := range vals {
			if sensitiveKey.MatchString(k) && !keyOK(k) {
				vals.Set(k, Mark)
			}
		}
		return r.String(vals.Encode())
	}
	s = looseSecret.ReplaceAllStringFunc(s, func(m string) string {
		sub := looseSecret.FindStringSubmatch(m)
		key := strings.Trim(strings.TrimRight(strings.TrimSpace(strings.TrimRight(sub[1], `"`)), ":="), `" `)
		if keyOK(key) {
			return m
		}
		return sub[1] + Mark
	})
	return r.String(s)
}

// redactKeys replaces the string values of credential-looking keys in
// objects anywhere in doc, and reports whether doc is an object or array.
func redactKeys(doc any) bool {
	switch d := doc.(type) {
	case map[string]any:
		for k, v := range d {
			if s, ok := v.(string); ok {
				if sensitiveKey.MatchString(k) && !keyOK(k) && s != "" {
					d[k] = Mark
				}
				continue
			}
			redactKeys(v)
		}
		return true
	case []any:
		for _, v := range d {
			redactKeys(v)
		}
		return true
	}
	return false
}
