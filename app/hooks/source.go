// Package hooks receives providers' webhooks for an app: each webhook
// source is one public URL, /hooks/{id}, where a provider (Slack, GitHub,
// Stripe, Zoom, ...) sends events. Latchkey checks each request's
// signature on the raw body, answers the provider's handshakes, finds the
// installation (and end user) the event belongs to by the value of a
// setting, drops repeats, and hands the event to the app's own webhooks as
// "provider.event" through the outbox.
package hooks

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/jpath"
	"github.com/latchkey/latchkey/internal/template"
	"github.com/latchkey/latchkey/settings"
)

// Source is one public URL where a provider sends an app's events, and how
// to take them in. It names settings and headers, never holds a secret:
// the signing secret is a setting's value, sealed with the others.
type Source struct {
	ID           string // 256 random bits, base64url: the URL is /hooks/{ID}
	AppID        string
	Name         string
	Verification Verification `gorm:"serializer:json"`
	Handshake    Handshake
	Routing      Routing `gorm:"serializer:json"`
	// EventType and EventID say where the provider's event type and event
	// id are; either may be empty. A repeat of an event id is dropped.
	EventType Locator `gorm:"serializer:json"`
	EventID   Locator `gorm:"serializer:json"`
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TableName tells GORM where sources live.
func (Source) TableName() string { return "webhook_sources" }

// Method is how a request proves it comes from the provider.
type Method string

const (
	// HMACSHA256 and HMACSHA1: the signature is the HMAC of a base string
	// (a template over the raw body, the timestamp and the URL), keyed
	// with the secret (RFC 2104).
	HMACSHA256 Method = "hmac_sha256"
	HMACSHA1   Method = "hmac_sha1"
	// Token: the request carries the secret itself, a fixed verification
	// token, in a header or at a JSONPath in the body.
	Token Method = "token"
)

// Format is how the signature header is written.
type Format string

const (
	// Plain: the header is Prefix followed by the encoded signature.
	Plain Format = "plain"
	// Stripe: "t=<unix seconds>,v1=<hex>[,v1=<hex>...]", as Stripe's
	// Stripe-Signature (and Latchkey's own Latchkey-Signature) is written.
	// The timestamp is t; any v1 may match (secrets being rolled).
	Stripe Format = "stripe"
)

// Verification says how a request is checked.
type Verification struct {
	Method Method `json:"method"`
	// SecretSetting is the app's setting holding the secret: a hidden
	// secret setting (one value for the app, checked before anything in
	// the body is read) or an organization-level secret setting (one per
	// installation, found by routing first).
	SecretSetting   string `json:"secret_setting"`
	SignatureHeader string `json:"signature_header,omitempty"`
	SignaturePrefix string `json:"signature_prefix,omitempty"`
	SignatureFormat Format `json:"signature_format,omitempty"`
	Encoding        string `json:"encoding,omitempty"` // "hex" or "base64"
	// BaseString is what is signed, over <<body>> (the raw body),
	// <<timestamp>> and <<url>> (this source's public URL).
	BaseString      string `json:"base_string,omitempty"`
	TimestampHeader string `json:"timestamp_header,omitempty"`
	// ToleranceSeconds bounds how far a request's timestamp may be from
	// the clock, against replays.
	ToleranceSeconds int    `json:"tolerance_seconds,omitempty"`
	TokenHeader      string `json:"token_header,omitempty"`
	TokenPath        string `json:"token_path,omitempty"`
}

// Handshake is a provider's way of checking a URL before it sends events.
type Handshake string

const (
	NoHandshake Handshake = ""
	// Slack sends {"type": "url_verification", "challenge": ...}, signed
	// like any event, and wants the challenge back.
	Slack Handshake = "slack"
	// Zoom sends {"event": "endpoint.url_validation", "payload":
	// {"plainToken": ...}}, signed, and wants the plain token and its hex
	// HMAC-SHA256 with the secret token.
	Zoom Handshake = "zoom"
	// Graph (Microsoft Graph subscriptions) sends ?validationToken=...,
	// unsigned, and wants it back as text/plain within 10 seconds.
	Graph Handshake = "graph"
)

// Locator is where a value is in a request: a JSONPath into the body or a
// header, exactly one of them (both empty: nowhere).
type Locator struct {
	Path   string `json:"path,omitempty"`
	Header string `json:"header,omitempty"`
}

// IsZero reports whether l points nowhere.
func (l Locator) IsZero() bool { return l.Path == "" && l.Header == "" }

// Route finds an installation, or a user, by the value of a setting.
type Route struct {
	Locator
	Setting string `json:"setting"`
}

// Routing says whose event it is: the installation whose
// organization-level setting equals the value at Organization, and, when
// User is set, the installation's user whose user-level setting equals
// the value there.
type Routing struct {
	Organization Route  `json:"organization"`
	User         *Route `json:"user,omitempty"`
}

// DefaultTolerance is how far from the clock a signed timestamp may be,
// when the source does not say: Slack's and Stripe's advice.
const DefaultTolerance = 5 * time.Minute

// tolerance returns the source's replay tolerance.
func (v *Verification) tolerance() time.Duration {
	if v.ToleranceSeconds > 0 {
		return time.Duration(v.ToleranceSeconds) * time.Second
	}
	return DefaultTolerance
}

// applyDefaults fills in what a developer may leave out.
func (s *Source) applyDefaults() {
	v := &s.Verification
	if v.Method == HMACSHA256 || v.Method == HMACSHA1 {
		if v.SignatureFormat == "" {
			v.SignatureFormat = Plain
		}
		if v.Encoding == "" {
			v.Encoding = "hex"
		}
		if v.BaseString == "" {
			v.BaseString = "<<body>>"
			if v.SignatureFormat == Stripe {
				v.BaseString = "<<timestamp>>.<<body>>"
			}
		}
	}
	if v.ToleranceSeconds == 0 && (v.TimestampHeader != "" || v.SignatureFormat == Stripe) {
		v.ToleranceSeconds = int(DefaultTolerance / time.Second)
	}
}

// baseVars are the variables a base string may use.
var baseVars = map[string]bool{"body": true, "timestamp": true, "url": true}

// Validate checks the source against the app's setting definitions and
// returns an errs.Invalid error naming each bad field.
func (s *Source) Validate(defs []settings.Definition) error {
	var fs errs.Fields
	byKey := make(map[string]settings.Definition, len(defs))
	for _, d := range defs {
		byKey[d.Key] = d
	}
	name := strings.TrimSpace(s.Name)
	if name == "" || utf8.RuneCountInString(s.Name) > 200 || !utf8.ValidString(s.Name) || strings.ContainsRune(s.Name, 0) {
		fs.Add("name", "must be 1 to 200 characters of text")
	}
	s.Verification.check(&fs, byKey)
	switch s.Handshake {
	case NoHandshake, Slack, Zoom, Graph:
	default:
		fs.Add("handshake", `must be "slack", "zoom", "graph" or empty`)
	}
	checkRoute(&fs, "routing.organization", s.Routing.Organization, byKey, settings.Organization)
	if s.Routing.User != nil {
		checkRoute(&fs, "routing.user", *s.Routing.User, byKey, settings.User)
	}
	checkLocator(&fs, "event_type", s.EventType, false)
	checkLocator(&fs, "event_id", s.EventID, false)
	return fs.Err()
}

func (v *Verification) check(fs *errs.Fields, byKey map[string]settings.Definition) {
	const f = "verification."
	switch d, ok := byKey[v.SecretSetting]; {
	case v.SecretSetting == "":
		fs.Add(f+"secret_setting", "is required: the app's secret setting that holds the signing secret or token")
	case !ok:
		fs.Add(f+"secret_setting", "the app has no setting %q", v.SecretSetting)
	case !d.Secret:
		fs.Add(f+"secret_setting", "must be a secret setting: it holds a signing secret")
	case !d.Fixed() && d.Level != settings.Organization:
		fs.Add(f+"secret_setting", "must be hidden (one value for the app) or organization-level (one per installation)")
	}
	if v.TimestampHeader != "" && !app.IsHeaderName(v.TimestampHeader) {
		fs.Add(f+"timestamp_header", "is not a valid header name")
	}
	if v.ToleranceSeconds < 0 || v.ToleranceSeconds > 86400 {
		fs.Add(f+"tolerance_seconds", "must be 1 to 86400, or 0 for the default of 300")
	}
	if len(v.SignaturePrefix) > 50 || strings.ContainsFunc(v.SignaturePrefix, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
		fs.Add(f+"signature_prefix", "must be at most 50 printable ASCII characters")
	}
	switch v.Method {
	case HMACSHA256, HMACSHA1:
		if !app.IsHeaderName(v.SignatureHeader) {
			fs.Add(f+"signature_header", "is required: the header that carries the signature")
		}
		switch v.SignatureFormat {
		case Plain:
		case Stripe:
			if v.TimestampHeader != "" {
				fs.Add(f+"timestamp_header", "must be empty with signature_format stripe, whose t= is the timestamp")
			}
			if v.SignaturePrefix != "" {
				fs.Add(f+"signature_prefix", "must be empty with signature_format stripe")
			}
		default:
			fs.Add(f+"signature_format", `must be "plain" or "stripe"`)
		}
		if v.Encoding != "hex" && v.Encoding != "base64" {
			fs.Add(f+"encoding", `must be "hex" or "base64"`)
		}
		if v.TokenHeader != "" || v.TokenPath != "" {
			fs.Add(f+"token_header", "only with method token")
		}
		checkBaseString(fs, v)
	case Token:
		switch {
		case v.TokenPath != "" && v.TokenHeader != "":
			fs.Add(f+"token_path", "give token_path or token_header, not both")
		case v.TokenPath != "":
			if _, err := jpath.Compile(v.TokenPath); err != nil {
				fs.Add(f+"token_path", "%v", err)
			}
		case v.TokenHeader != "":
			if !app.IsHeaderName(v.TokenHeader) {
				fs.Add(f+"token_header", "is not a valid header name")
			}
		default:
			fs.Add(f+"token_header", "is required with method token: the header (or token_path, the JSONPath in the body) that carries the token")
		}
		if v.SignatureHeader != "" || v.BaseString != "" || v.SignatureFormat != "" || v.Encoding != "" {
			fs.Add(f+"signature_header", "signature_header, signature_format, encoding and base_string are for the hmac methods, not token")
		}
		if v.SignaturePrefix != "" && v.TokenHeader == "" {
			fs.Add(f+"signature_prefix", "with method token, only for a token in a header (e.g. \"Bearer \")")
		}
	default:
		fs.Add(f+"method", `must be "hmac_sha256", "hmac_sha1" or "token"`)
	}
}

func checkBaseString(fs *errs.Fields, v *Verification) {
	const field = "verification.base_string"
	if len(v.BaseString) > 1000 {
		fs.Add(field, "must be at most 1000 bytes")
		return
	}
	t, err := template.Parse(v.BaseString, template.Text)
	if err == nil {
		err = t.Check(func(name string) bool { return baseVars[name] })
	}
	if te, ok := err.(*template.Error); ok {
		fs.AddAt(field, te.Pos, "%s; the variables are <<body>>, <<timestamp>> and <<url>>", te.Msg)
		return
	} else if err != nil {
		fs.Add(field, "%v", err)
		return
	}
	uses := map[string]bool{}
	for _, n := range t.Vars() {
		uses[n] = true
	}
	if !uses["body"] {
		fs.Add(field, "must contain <<body>>: a signature that does not cover the body proves nothing about it")
	}
	if uses["timestamp"] && v.TimestampHeader == "" && v.SignatureFormat != Stripe {
		fs.Add(field, "uses <<timestamp>>, so timestamp_header is required")
	}
}

// checkRoute checks that r points somewhere and names a setting of level
// that routing can match: editable (a fixed value is every installation's)
// and not secret (sealed values cannot be looked up without opening them
// all).
func checkRoute(fs *errs.Fields, field string, r Route, byKey map[string]settings.Definition, level settings.Level) {
	checkLocator(fs, field, r.Locator, true)
	switch d, ok := byKey[r.Setting]; {
	case r.Setting == "":
		fs.Add(field+".setting", "is required: the %s-level setting whose value identifies the %s", level, whose(level))
	case !ok:
		fs.Add(field+".setting", "the app has no setting %q", r.Setting)
	case d.Level != level:
		fs.Add(field+".setting", "must be a %s-level setting", level)
	case d.Secret:
		fs.Add(field+".setting", "must not be secret: secret values are sealed and cannot be looked up")
	case d.Fixed():
		fs.Add(field+".setting", "must be editable: a fixed value is the same for every %s", whose(level))
	}
}

func whose(l settings.Level) string {
	if l == settings.User {
		return "user"
	}
	return "installation"
}

func checkLocator(fs *errs.Fields, field string, l Locator, required bool) {
	switch {
	case l.Path != "" && l.Header != "":
		fs.Add(field, "give path or header, not both")
	case l.Path != "":
		if _, err := jpath.Compile(l.Path); err != nil {
			fs.Add(field+".path", "%v", err)
		}
	case l.Header != "":
		if !app.IsHeaderName(l.Header) {
			fs.Add(field+".header", "is not a valid header name")
		}
	case required:
		fs.Add(field, "is required: a path (a JSONPath into the body) or a header")
	}
}

// lookup evaluates path on doc: the first value there, as text. ok is
// false when nothing is there, or only an object or array.
func lookup(path string, doc any) (string, bool) {
	eval, err := jpath.Compile(path)
	if err != nil || doc == nil {
		return "", false
	}
	v, err := eval(context.Background(), doc)
	if err != nil {
		return "", false // PaesslerAG/jsonpath reports a missing key as an error
	}
	if list, isList := v.([]any); isList {
		if len(list) == 0 {
			return "", false
		}
		v = list[0]
	}
	switch v := v.(type) {
	case string:
		return v, v != ""
	case fmt.Stringer: // json.Number: HubSpot's portalId 62515, as written
		return v.String(), true
	case bool:
		return fmt.Sprint(v), true
	}
	return "", false
}
