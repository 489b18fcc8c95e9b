// Package settings holds what an app asks for and what it is given: setting
// definitions (organization- or user-level), installations of an app by an
// organization, and the values stored for each installation and end user.
package settings

import (
	"math"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey/internal/clientcert"
	"github.com/latchkey/latchkey/internal/errs"
)

// Level says who fills a setting in.
type Level string

const (
	// Organization settings are asked for when an organization installs
	// the app (client_id, client_secret, a tenant subdomain...).
	Organization Level = "organization"
	// User settings are kept per end user (access_token, refresh_token...).
	User Level = "user"
)

// Type says what a setting's values are, checked whenever one is stored.
type Type string

const (
	String  Type = "string"  // any text (the default)
	URL     Type = "url"     // an absolute http(s) URL without query, fragment or userinfo
	Host    Type = "host"    // a host name or IP address, with an optional port
	Number  Type = "number"  // a JSON number, for JSON bodies that want one
	Boolean Type = "boolean" // true or false
	// Certificate and PrivateKey hold PEM text for mutual TLS (RFC
	// 8705): a client certificate chain, leaf first, valid now, and its
	// private key. Both must be secret, so that neither text is ever
	// shown; an OAuth config pairs them (see KeyPairs).
	Certificate Type = "certificate"
	PrivateKey  Type = "private_key"
)

// typ is d's type, String for definitions stored before types.
func (d *Definition) typ() Type {
	if d.Type == "" {
		return String
	}
	return d.Type
}

// checkType returns why v is not a value of type t, or "". It never
// quotes v, which may be a secret.
func checkType(t Type, v string) string {
	switch t {
	case URL:
		u, err := url.Parse(v)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			return "must be an absolute http or https URL"
		case u.User != nil:
			return "must be a URL without user information"
		case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(v, "#"):
			return "must be a URL without a query or fragment"
		case checkHost(u.Host) != "":
			return "must be a URL whose host " + checkHost(u.Host)[len("must be "):]
		}
	case Host:
		return checkHost(v)
	case Number:
		if f, err := strconv.ParseFloat(v, 64); err != nil || math.IsInf(f, 0) || math.IsNaN(f) || strings.ContainsAny(v, "xXpP_") || strings.HasPrefix(v, "+") || strings.HasPrefix(v, ".") {
			return "must be a number"
		}
	case Boolean:
		if v != "true" && v != "false" {
			return "must be true or false"
		}
	case Certificate:
		if _, err := clientcert.ParseChain(v, time.Now()); err != nil {
			return err.Error()
		}
	case PrivateKey:
		if _, err := clientcert.ParseKey(v); err != nil {
			return err.Error()
		}
	}
	return ""
}

var hostLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// checkHost accepts a DNS name (letters, digits, hyphens, dots) or an IP
// address (IPv6 in brackets when a port follows), with an optional port.
func checkHost(v string) string {
	host, port := v, ""
	if h, p, err := net.SplitHostPort(v); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		host = v[1 : len(v)-1]
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "must be a host name or IP address with a valid port number"
		}
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return ""
	}
	if host == "" || len(host) > 253 {
		return "must be a host name or IP address, with an optional port"
	}
	for _, label := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		if !hostLabel.MatchString(label) {
			return "must be a host name or IP address, with an optional port"
		}
	}
	return ""
}

// MaxValueBytes bounds one stored value; provider tokens (JWTs with many
// claims) can run to several kilobytes.
const MaxValueBytes = 64 << 10

var keyPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// FlowKeys are the template variables an OAuth flow fills in itself (the
// callback URL, the scopes, state, PKCE and the code), over any setting of
// the same name. A setting by one of these names would be accepted and then
// silently ignored in every template, so new settings cannot take them.
// refresh_token is not among them: it is the usual name of the setting that
// holds the refresh token, whose value the flow passes on as it is.
var FlowKeys = []string{"state", "auth_code", "redirect_uri", "code_verifier", "code_challenge", "scope", "assertion", "client_assertion"}

// checkKeyFree adds to fs why d's key cannot be given to a new setting.
// It is not part of Validate: settings made before the rule keep working.
func (d *Definition) checkKeyFree(fs *errs.Fields) {
	for _, k := range FlowKeys {
		if d.Key == k {
			fs.Add("key", "%q is a flow variable that Latchkey fills in itself (<<%s>>), so a setting by that name would never be used; choose another key", k, k)
		}
	}
}

// Definition describes one setting of an app.
type Definition struct {
	ID           string
	AppID        string
	Key          string
	Level        Level
	Label        string
	Description  string
	Secret       bool
	Required     bool
	DefaultValue *string
	Pattern      *string
	Position     int
	Visibility   Visibility
	Type         Type // "" is String
	CreatedAt    time.Time
	UpdatedAt    time.Time

	// FixedSecret is the sealed developer value of a hidden secret
	// setting (see Visibility); DefaultValue is nil then. Never shown.
	FixedSecret *string
}

// TableName tells GORM where definitions live.
func (Definition) TableName() string { return "setting_definitions" }

// Validate checks the definition and returns an errs.Invalid error naming
// every bad field.
func (d *Definition) Validate() error {
	var fs errs.Fields
	d.check(&fs)
	return fs.Err()
}

// validateNew is Validate for a setting being created: its key must also
// be free (see FlowKeys).
func (d *Definition) validateNew() error {
	var fs errs.Fields
	d.checkKeyFree(&fs)
	d.check(&fs)
	return fs.Err()
}

func (d *Definition) check(fs *errs.Fields) {
	switch {
	case d.Key == "":
		fs.Add("key", "is required")
	case len(d.Key) > 64 || !keyPattern.MatchString(d.Key):
		fs.Add("key", "must match [a-z][a-z0-9_]* and be at most 64 characters")
	}
	if d.Level != Organization && d.Level != User {
		fs.Add("level", `must be "organization" or "user"`)
	}
	checkText(fs, "label", d.Label, 200)
	checkText(fs, "description", d.Description, 2000)
	var re *regexp.Regexp
	if d.Pattern != nil {
		var err error
		if re, err = compilePattern(*d.Pattern); err != nil {
			fs.Add("pattern", "is not a valid regular expression: %v", err)
		}
	}
	d.checkVisibility(fs)
	switch d.Type {
	case "", String, URL, Host, Number, Boolean:
	case Certificate, PrivateKey:
		if !d.Secret {
			fs.Add("secret", "must be true for a setting of type %s: its PEM text is never shown", d.Type)
		}
	default:
		fs.Add("type", `must be "string", "url", "host", "number", "boolean", "certificate" or "private_key"`)
	}
	if d.DefaultValue != nil {
		switch {
		case d.Secret && !d.sealsFixed():
			// Reported by checkVisibility: defaults are shown in the
			// install prompt; a secret one would leak.
		case len(*d.DefaultValue) > MaxValueBytes || !utf8.ValidString(*d.DefaultValue):
			fs.Add("default", "must be valid UTF-8 of at most %d bytes", MaxValueBytes)
		case re != nil && !re.MatchString(*d.DefaultValue):
			fs.Add("default", "does not match the pattern")
		case checkType(d.Type, *d.DefaultValue) != "":
			fs.Add("default", "%s", checkType(d.Type, *d.DefaultValue))
		}
	}
}

// compilePattern compiles a developer's pattern so that it must match the
// whole value, not a part of it.
func compilePattern(p string) (*regexp.Regexp, error) {
	if len(p) > 1000 {
		return nil, errs.New(errs.Invalid, "longer than 1000 bytes")
	}
	if _, err := regexp.Compile(p); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + p + `)$`)
}

// checkValue returns why v cannot be stored for d, or "". The message never
// contains v: it may be a secret.
func (d *Definition) checkValue(v string) string {
	if len(v) > MaxValueBytes {
		return "is longer than 65536 bytes"
	}
	if !utf8.ValidString(v) {
		return "must be valid UTF-8"
	}
	if d.Pattern != nil {
		re, err := compilePattern(*d.Pattern)
		if err != nil || !re.MatchString(v) {
			return "does not match the pattern " + *d.Pattern
		}
	}
	return checkType(d.Type, v)
}

func checkText(fs *errs.Fields, field, s string, max int) {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		fs.Add(field, "must be valid UTF-8 of at most %d characters", max)
	}
}
