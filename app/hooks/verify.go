package hooks

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"hash"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/template"
)

// request is an inbound webhook request as verification and routing see
// it. The body is parsed only when something asks for the document.
type request struct {
	header http.Header
	body   []byte
	url    string // the source's public URL

	parsed bool
	doc    any
	docErr error
}

// document returns the body parsed: a JSON value (numbers as json.Number,
// so ids keep their digits), or for an application/x-www-form-urlencoded
// body an object of its fields (the first value of each), where a field
// holding a JSON object, such as Slack's interactive "payload", is that
// object.
func (r *request) document() (any, error) {
	if r.parsed {
		return r.doc, r.docErr
	}
	r.parsed = true
	mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type"))
	if mt == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(r.body))
		if err != nil {
			r.docErr = errs.New(errs.BadRequest, "the body is not a valid form")
			return nil, r.docErr
		}
		m := make(map[string]any, len(form))
		for k, vs := range form {
			m[k] = vs[0]
			if v := strings.TrimSpace(vs[0]); strings.HasPrefix(v, "{") {
				if obj, err := decodeJSON([]byte(v)); err == nil {
					m[k] = obj
				}
			}
		}
		r.doc = m
		return r.doc, nil
	}
	r.doc, r.docErr = decodeJSON(r.body)
	if r.docErr != nil {
		r.docErr = errs.New(errs.BadRequest, "the body is not JSON or a form, so the source's JSONPaths cannot be read")
	}
	return r.doc, r.docErr
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errs.New(errs.BadRequest, "more than one JSON value")
	}
	return v, nil
}

// find returns the value l points at: a header, or the text at a JSONPath
// in the body. ok is false when there is none.
func (r *request) find(l Locator) (string, bool) {
	if l.Header != "" {
		v := r.header.Get(l.Header)
		return v, v != ""
	}
	doc, err := r.document()
	if err != nil {
		return "", false
	}
	return lookup(l.Path, doc)
}

// unverified is the error for a request that fails verification: 401,
// with a reason that helps a developer set the source up and gives an
// attacker nothing (never a computed signature, never the secret).
func unverified(format string, args ...any) error {
	return errs.New(errs.Unauthorized, "the request cannot be verified: "+format, args...)
}

// verify checks that r was sent by the holder of secret, on the raw body
// as received: nothing in the body is read before, except for method
// Token with token_path, whose token is in the body. It returns an
// errs.Unauthorized error saying what failed.
func (v *Verification) verify(secret string, r *request, now time.Time) error {
	if secret == "" {
		return unverified("the source's secret setting has no value")
	}
	var timestamp string
	if v.TimestampHeader != "" {
		if timestamp = r.header.Get(v.TimestampHeader); timestamp == "" {
			return unverified("no %s header", v.TimestampHeader)
		}
	}
	switch v.Method {
	case Token:
		got, ok := "", false
		if v.TokenHeader != "" {
			got, ok = strings.CutPrefix(r.header.Get(v.TokenHeader), v.SignaturePrefix)
		} else {
			got, ok = r.find(Locator{Path: v.TokenPath})
		}
		if !ok || got == "" {
			return unverified("no verification token")
		}
		// Hashing first makes the comparison constant-time in the
		// lengths too: hmac.Equal returns early on a length mismatch.
		a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(secret))
		if !hmac.Equal(a[:], b[:]) {
			return unverified("the verification token does not match")
		}
	case HMACSHA256, HMACSHA1:
		header := r.header.Get(v.SignatureHeader)
		if header == "" {
			return unverified("no %s header", v.SignatureHeader)
		}
		var candidates []string
		if v.SignatureFormat == Stripe {
			timestamp, candidates = parseStripe(header)
			if timestamp == "" || len(candidates) == 0 {
				return unverified("%s is not t=<unix seconds>,v1=<signature>", v.SignatureHeader)
			}
		} else {
			sig, ok := strings.CutPrefix(header, v.SignaturePrefix)
			if !ok {
				return unverified("%s does not start with %q", v.SignatureHeader, v.SignaturePrefix)
			}
			candidates = []string{sig}
		}
		base, err := v.base(r, timestamp)
		if err != nil {
			return err
		}
		want := mac(v.Method, secret, base)
		ok := false
		for _, c := range candidates {
			got, err := decode(v.Encoding, c)
			// hmac.Equal is constant-time (RFC 2104 §8 leaves timing to
			// the implementation; a plain == leaks the prefix that matches).
			if err == nil && hmac.Equal(got, want) {
				ok = true
			}
		}
		if !ok {
			return unverified("the signature does not match")
		}
	default:
		return unverified("the source's method %q is unknown", v.Method)
	}
	// After the signature, which covers the timestamp: an attacker learns
	// nothing from this message that the signature check did not refuse.
	if timestamp != "" {
		t, ok := parseTimestamp(timestamp)
		if !ok {
			return unverified("the timestamp is not a number of seconds since 1970")
		}
		if d := now.Sub(t); d > v.tolerance() || -d > v.tolerance() {
			return unverified("the timestamp is more than %d seconds from the server's clock (a replay, or a clock that is off)", int(v.tolerance()/time.Second))
		}
	}
	return nil
}

// base renders the base string over the raw body.
func (v *Verification) base(r *request, timestamp string) ([]byte, error) {
	if v.BaseString == "<<body>>" {
		return r.body, nil // GitHub, Shopify: the raw body alone, not copied
	}
	t, err := template.Parse(v.BaseString, template.Text)
	if err != nil {
		return nil, unverified("the source's base string does not parse")
	}
	s, err := t.Render(map[string]string{"body": string(r.body), "timestamp": timestamp, "url": r.url})
	if err != nil {
		return nil, unverified("the base string cannot be made: %v", err)
	}
	return []byte(s), nil
}

// mac returns the HMAC of msg keyed with secret (RFC 2104).
func mac(m Method, secret string, msg []byte) []byte {
	h := sha256.New
	if m == HMACSHA1 {
		h = func() hash.Hash { return sha1.New() }
	}
	w := hmac.New(h, []byte(secret))
	w.Write(msg)
	return w.Sum(nil)
}

// decode decodes a signature as the provider wrote it.
func decode(encoding, s string) ([]byte, error) {
	if encoding == "base64" {
		return base64.StdEncoding.DecodeString(s)
	}
	return hex.DecodeString(s)
}

// parseStripe reads "t=<unix seconds>,v1=<hex>[,v1=<hex>...]" and returns
// t and every v1; other schemes (Stripe's test-mode v0) are ignored, as
// Stripe advises.
func parseStripe(h string) (t string, v1 []string) {
	for _, part := range strings.Split(h, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch {
		case k == "t":
			t = v
		case k == "v1" && len(v1) < 10:
			v1 = append(v1, v)
		}
	}
	return t, v1
}

// parseTimestamp reads seconds since 1970, or milliseconds for a number
// too large to be seconds (some providers send those).
func parseTimestamp(s string) (time.Time, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	if n > 1e12 {
		return time.UnixMilli(n), true
	}
	return time.Unix(n, 0), true
}

// zoomToken answers Zoom's endpoint.url_validation: the hex HMAC-SHA256 of
// the plain token, keyed with the secret token.
func zoomToken(secret, plain string) string {
	return hex.EncodeToString(mac(HMACSHA256, secret, []byte(plain)))
}

// bodyText returns the body as it goes into an event: as is when it is
// UTF-8 text, else base64. Redaction happens before, on the bytes as
// received, whatever their encoding: a secret written as text inside a
// body that is not UTF-8 (a Latin-1 form, a protobuf string) is replaced
// there too, and the event says so; one inside compressed or encrypted
// bytes cannot be recognised and goes on as received.
func bodyText(b []byte) (text, encoding string) {
	if utf8.Valid(b) {
		return string(b), "text"
	}
	return base64.StdEncoding.EncodeToString(b), "base64"
}
