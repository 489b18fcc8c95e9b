// Package template fills request templates: URLs, query strings, form and
// JSON bodies and header values in which app developers write <<name>>
// placeholders.
//
// Values come from end users, providers and organizations and may be
// hostile, so every template is parsed for one Context and each value is
// escaped, or refused, for the exact place it lands. Rendering is one pass:
// a value that itself contains <<name>> is emitted as text, never expanded.
//
// A placeholder is "<<" name ">>", where name matches [a-z][a-z0-9_]* and
// is at most 64 bytes long. "<<" always opens a placeholder; there is no
// way to write it literally. A placeholder ends at the first ">>" after
// its "<<".
//
// # Functions
//
// A placeholder may instead call one of a fixed set of functions, as in
// this Authorization header built by hand (RFC 6749 §2.3.1):
//
//	Basic <<base64(urlencode(client_id) ":" urlencode(client_secret))>>
//
// Inside "<<" and ">>" a call is, with spaces only where shown:
//
//	call     = function "(" spaces [ arg { " " spaces arg } spaces ] ")"
//	function = "base64" | "base64url" | "urlencode" | "unix_time" | "unix_time_ms" | "first"
//	arg      = name | literal | call
//	literal  = '"' byte { byte } '"'
//	spaces   = { " " }
//
// A literal's bytes may not be '"', '\', '<', '>' or control bytes, and
// there are no escapes: without '<' and '>' a literal cannot end its tag,
// and without escapes it means what it shows. It may not be empty. A call
// may be an argument of another call, but no deeper: base64(urlencode(x))
// is allowed, base64(base64(base64(x))) is not.
//
// A function's arguments are concatenated, and it returns:
//
//	base64(arg ...)     their standard base64 (RFC 4648 §4), padded
//	base64url(arg ...)  their URL-safe base64 (RFC 4648 §5), unpadded
//	urlencode(arg ...)  their url.QueryEscape, the form encoding of
//	                    RFC 6749 Appendix B
//	unix_time()         the time in seconds since 1970-01-01 UTC
//	unix_time_ms()      the time in milliseconds since 1970-01-01 UTC
//	first(arg ...)      the first argument that is not empty, e.g.
//	                    first(region_url "https://app.intercom.com"):
//	                    the setting when it has a value, else the literal
//
// base64, base64url, urlencode and first take at least one argument, the
// clock functions none. first does not concatenate: a variable without a
// value (or a call that needs one) is skipped, and only when every argument
// is empty does it fail, as a missing variable. All clock
// calls in one rendering see the same instant (see Template.WithClock).
// Functions see nothing else: no environment, no other variables.
//
// A call's result is escaped for the Context, and checked, exactly like a
// variable's value: a call in a URL's host must give only letters, digits,
// '.' and '-', so base64 there fails on '+', '/' or '='. Because URL,
// Query and Form templates percent-encode every value already, urlencode
// may not be the outer call of a placeholder there: it would encode
// twice. Nor may a URL template be a single call, which could never give
// an absolute URL. Call arguments count as uses of their variables for
// Template.Vars and Template.Check; an argument variable that is absent
// or empty fails the rendering as a placeholder's would, so no call ever
// renders as nothing. Template.RenderMasked masks a call that has a secret
// variable among its arguments.
//
// # Literals and other platforms' placeholders
//
// A placeholder may also be a string literal alone, <<"text">>, with the
// same rules as a literal argument; it renders as its text, escaped for
// the Context like a value. It is how to write, as is, text that Check
// would otherwise refuse: other integration platforms write placeholders
// as {{client_id}}, and a template pasted from one of them would be sent
// with the braces in it, so Check refuses "{{" ... "}}" in a template's
// literal text with a hint to write <<client_id>>; <<"{{">>client_id}}
// sends the braces. Parse does not refuse them, so templates stored
// before the rule still render as they did.
//
// Values may be secrets, so no error returned by this package ever contains
// one. Errors about the template itself are *Error, with a byte offset in
// the source; errors about values are *MissingError and *ValueError.
package template

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasttemplate"
)

// Context says where a rendered template lands, and so how its values
// are escaped. The zero Context is invalid, so a caller that forgets to
// choose one gets an error from Parse instead of unescaped output.
type Context int

const (
	// URL is a whole http or https URL. The template either starts with a
	// literal "http://" or "https://", or is a single <<name>> placeholder
	// whose value must itself be an absolute http or https URL (it is
	// emitted as is). Values in the authority (host, port) may contain only ASCII
	// letters, digits, '.' and '-', so they cannot change which host is
	// reached. Values in the path are escaped with url.PathEscape and may
	// not consist only of dots ("." and ".." would climb the path). Values
	// in the query (after the first literal '?') are escaped with
	// url.QueryEscape, and in the fragment (after the first literal '#')
	// with url.PathEscape, which decodes back exactly there.
	URL Context = iota + 1
	// Query is a query string or a component of one; values are escaped
	// with url.QueryEscape.
	Query
	// Form is an application/x-www-form-urlencoded body; values are
	// escaped with url.QueryEscape.
	Form
	// JSON is a JSON document. Every placeholder must sit inside a string
	// literal, and its value is escaped as string content exactly as
	// json.Marshal does with HTML escaping off (invalid UTF-8 becomes
	// U+FFFD).
	JSON
	// Header is an HTTP header value. Values are emitted as is, but a value
	// containing a control byte other than tab (CR, LF, NUL...) is refused,
	// so it cannot add headers or split the request.
	Header
	// Text is plain text with no escaping, for previews shown to people.
	Text
)

var contextNames = [...]string{URL: "URL", Query: "Query", Form: "Form", JSON: "JSON", Header: "Header", Text: "Text"}

// String returns the name of c, such as "JSON".
func (c Context) String() string {
	if c > 0 && int(c) < len(contextNames) {
		return contextNames[c]
	}
	return "Context(" + strconv.Itoa(int(c)) + ")"
}

// maxName is the longest variable name allowed, in bytes.
const maxName = 64

// mask replaces secret values in RenderMasked. It needs no escaping in any
// context: '*' is a sub-delimiter in URLs and plain text elsewhere.
const mask = "****"

// Error reports a problem with a template's source.
type Error struct {
	Pos int    // byte offset in the source, 0-based
	Msg string // what is wrong; never contains a value
}

// Error returns the message prefixed with its position, as in
// `at byte 12: unknown variable "foo"`.
func (e *Error) Error() string {
	return "at byte " + strconv.Itoa(e.Pos) + ": " + e.Msg
}

// MissingError reports a variable with no value, or an empty one: an
// empty value is refused rather than silently rendered as nothing.
type MissingError struct {
	Name string
}

// Error returns a message naming the variable, as in
// `no value for variable "code"`.
func (e *MissingError) Error() string {
	return "no value for variable " + strconv.Quote(e.Name)
}

// ValueError reports a value that is not allowed where its placeholder
// sits, such as a line break in a header. It names the variable, or the
// function whose result was refused, but never holds the value.
type ValueError struct {
	Pos    int    // byte offset of the placeholder in the source
	Name   string // the variable, or for a call the function and "()", as in "base64()"
	Reason string // why the value was refused
}

// Error returns the position, the variable or function and the reason;
// never the value.
func (e *ValueError) Error() string {
	what := "value for variable " + strconv.Quote(e.Name)
	if strings.HasSuffix(e.Name, "()") {
		what = "result of " + e.Name
	}
	return "at byte " + strconv.Itoa(e.Pos) + ": bad " + what + ": " + e.Reason
}

// Reasons given in ValueError. They are fixed strings so that no value
// can leak into a message.
const (
	reasonControl   = "contains a control character"
	reasonHost      = "only ASCII letters, digits, '.' and '-' are allowed in a URL authority"
	reasonHostPort  = "not a host name or IP address with an optional port"
	reasonDots      = "a URL path value may not be or contain a \".\" or \"..\" segment"
	reasonURL       = "not an absolute http or https URL"
	reasonJSONValue = "not a JSON number or boolean"
	reasonBase      = "not a base URL: an absolute http or https URL without user information, query, fragment or dot segments"
)

// kind says how one placeholder's value is checked and escaped. A URL
// template mixes kinds, so it is chosen per placeholder.
type kind uint8

const (
	kindText      kind = iota // as is
	kindHeader                // as is, no control bytes
	kindQuery                 // url.QueryEscape
	kindPath                  // url.PathEscape, not only dots
	kindHost                  // [A-Za-z0-9.-] only
	kindHostPort              // a host as kindHost, or an IP address, with an optional :port
	kindURL                   // whole absolute http(s) URL, as is
	kindBase                  // a base URL that a path follows, as is, trailing "/" dropped
	kindFrag                  // url.PathEscape
	kindJSON                  // JSON string content
	kindJSONValue             // a JSON number or boolean, outside a string, as is
)

// A placeholder is one occurrence of <<name>> or <<call>> in the source.
type placeholder struct {
	name string // the variable, or "" for a call or a literal
	// optional, for <<name?>>: without a value the whole template is
	// left out (ErrOmitted), as a header or query parameter is.
	optional bool
	call     *call
	lit      string // a literal placeholder's text, never empty
	refs     []ref  // the variables it uses, in source order; a window on Template.refs
	pos      int    // offset of "<<"
	end      int    // offset just past ">>"
	kind     kind
}

// label names p in messages about the template, as in "<<code>>" or
// "<<base64(...)>>".
func (p *placeholder) label() string {
	if p.call != nil {
		return "<<" + p.call.fn.String() + "(...)>>"
	}
	if p.lit != "" {
		return `<<"` + p.lit + `">>`
	}
	return "<<" + p.name + ">>"
}

// Template is a parsed template. It is safe for concurrent use.
type Template struct {
	src      string
	ft       *fasttemplate.Template
	phs      []placeholder    // in source order, as fasttemplate visits them
	refs     []ref            // every use of a variable, in source order
	vars     []string         // distinct names, in order of first appearance
	usesTime bool             // some call reads the clock
	now      func() time.Time // the clock; nil for time.Now
}

// Parse parses src as a template whose output lands in ctx.
//
// It returns an *Error for an unclosed "<<", an empty or malformed
// variable name, a malformed call (see Functions in the package
// documentation), and a template that does not fit ctx: a JSON template
// that is not valid JSON once every placeholder is replaced by a plain
// string character, or that has a placeholder outside a string literal;
// a URL template that is not a single placeholder and not an absolute
// http or https URL, or that is a single call; a header template with a
// control byte; a '%' not followed by two hex digits in a URL, query or
// form template; urlencode as the outer call in a URL, query or form
// template.
func Parse(src string, ctx Context) (*Template, error) {
	if ctx <= 0 || int(ctx) >= len(contextNames) {
		return nil, &Error{Pos: 0, Msg: "invalid context " + ctx.String()}
	}
	phs, refs, err := scan(src)
	if err != nil {
		return nil, err
	}
	t := &Template{src: src, phs: phs, refs: refs}
	seen := make(map[string]bool, len(refs))
	for _, r := range refs {
		if !seen[r.name] {
			seen[r.name] = true
			t.vars = append(t.vars, r.name)
		}
	}
	for _, p := range phs {
		if p.call != nil && p.call.usesTime() {
			t.usesTime = true
		}
	}

	switch ctx {
	case URL:
		err = checkURL(src, phs)
	case Query, Form:
		err = checkPercent(src, phs)
		setKind(phs, kindQuery)
	case JSON:
		setKind(phs, kindJSON)
		err = checkJSON(src, phs) // marks bare values kindJSONValue
	case Header:
		err = checkHeader(src, phs)
		setKind(phs, kindHeader)
	case Text:
		setKind(phs, kindText)
	}
	if err != nil {
		return nil, err
	}
	if err := checkURLEncode(phs, ctx); err != nil {
		return nil, err
	}
	for _, p := range phs {
		if p.optional && ctx != Header && ctx != Query {
			return nil, &Error{Pos: p.pos, Msg: "<<" + p.name + "?>> is optional, which only header and query parameter templates can be: they are left out when it has no value"}
		}
	}

	// scan has already found every tag closed, so this cannot fail; the
	// check is for a future fasttemplate that disagrees with scan.
	t.ft, err = fasttemplate.NewTemplate(src, "<<", ">>")
	if err != nil {
		return nil, &Error{Pos: 0, Msg: "cannot parse template"}
	}
	return t, nil
}

// scan finds the placeholders in src the way fasttemplate does (the next
// "<<", then the next ">>" after it), so that the i-th placeholder here is
// the i-th tag fasttemplate passes to its TagFunc. It also returns the
// variables they use, in source order.
func scan(src string) ([]placeholder, []ref, error) {
	var phs []placeholder
	p := callParser{src: src}
	for off := 0; ; {
		i := strings.Index(src[off:], "<<")
		if i < 0 {
			break
		}
		start := off + i
		j := strings.Index(src[start+2:], ">>")
		if j < 0 {
			return nil, nil, &Error{Pos: start, Msg: `unclosed "<<"`}
		}
		tag := src[start+2 : start+2+j]
		off = start + 2 + j + 2
		ph := placeholder{pos: start, end: off}
		// A literal starts with '"'; otherwise a '(' can only be part of
		// a call: names have none.
		if strings.HasPrefix(tag, `"`) {
			p.i, p.end = start+2, start+2+j
			a, err := p.literal()
			if err != nil {
				return nil, nil, err
			}
			if p.i < p.end {
				return nil, nil, &Error{Pos: p.i, Msg: "unexpected " + quoteByte(src[p.i]) + " after a string literal"}
			}
			ph.lit = a.lit
		} else if strings.IndexByte(tag, '(') < 0 {
			name, optional := strings.CutSuffix(tag, "?")
			if err := checkName(name); err != "" {
				return nil, nil, &Error{Pos: start, Msg: err}
			}
			ph.name, ph.optional = name, optional
			p.refs = append(p.refs, ref{name: name, pos: start})
		} else {
			p.i, p.end = start+2, start+2+j
			c, err := p.call(0)
			if err != nil {
				return nil, nil, err
			}
			if p.i < p.end {
				return nil, nil, &Error{Pos: p.i, Msg: "unexpected " + quoteByte(src[p.i]) + " after a call"}
			}
			ph.call = c
		}
		phs = append(phs, ph)
	}
	// Now that p.refs has stopped growing, give each placeholder the
	// window of refs that lie within it.
	refs, k := p.refs, 0
	for i := range phs {
		j := k
		for j < len(refs) && refs[j].pos < phs[i].end {
			j++
		}
		phs[i].refs = refs[k:j:j]
		k = j
	}
	return phs, refs, nil
}

// checkURLEncode refuses urlencode as the outer call where values are
// percent-encoded anyway: the result would be encoded twice, which a
// provider would only report as a failed request.
func checkURLEncode(phs []placeholder, ctx Context) error {
	if ctx != URL && ctx != Query && ctx != Form {
		return nil
	}
	for _, p := range phs {
		if p.call != nil && p.call.fn == fnURLEncode {
			return &Error{Pos: p.call.pos, Msg: "urlencode is not allowed in a " + ctx.String() + " template, which already percent-encodes every value"}
		}
	}
	return nil
}

// checkName returns what is wrong with a variable name, or "".
func checkName(name string) string {
	switch {
	case name == "":
		return "empty variable name"
	case len(name) > maxName:
		return "variable name longer than " + strconv.Itoa(maxName) + " bytes"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || i > 0 && ('0' <= c && c <= '9' || c == '_') {
			continue
		}
		return "bad variable name " + strconv.Quote(name) + ": want [a-z][a-z0-9_]*"
	}
	return ""
}

func setKind(phs []placeholder, k kind) {
	for i := range phs {
		phs[i].kind = k
	}
}

// checkPercent reports a literal '%' that does not start a complete
// escape within its own literal text. Otherwise a value could complete it:
// "%4" followed by a value "1..." would decode as "A".
func checkPercent(src string, phs []placeholder) error {
	return eachLiteral(src, phs, func(lit string, at int) error {
		for i := 0; i < len(lit); i++ {
			if lit[i] == '%' && (i+2 >= len(lit) || !ishex(lit[i+1]) || !ishex(lit[i+2])) {
				return &Error{Pos: at + i, Msg: `'%' not followed by two hex digits`}
			}
		}
		return nil
	})
}

// eachLiteral calls f with each run of literal text between placeholders
// and its offset in src, stopping at the first error.
func eachLiteral(src string, phs []placeholder, f func(lit string, at int) error) error {
	at := 0
	for _, p := range phs {
		if err := f(src[at:p.pos], at); err != nil {
			return err
		}
		at = p.end
	}
	return f(src[at:], at)
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func checkHeader(src string, phs []placeholder) error {
	return eachLiteral(src, phs, func(lit string, at int) error {
		if i := indexControl(lit); i >= 0 {
			return &Error{Pos: at + i, Msg: "control character in header template"}
		}
		return nil
	})
}

// indexControl returns the offset of the first control byte in s other
// than tab, or -1. These are the bytes an HTTP header value may not hold.
func indexControl(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return i
		}
	}
	return -1
}

// checkURL sets the kind of each placeholder in a URL template from the
// part of the URL it sits in, and checks that the template is a URL.
func checkURL(src string, phs []placeholder) error {
	if len(phs) == 1 && phs[0].pos == 0 && phs[0].end == len(src) {
		if phs[0].name == "" {
			return &Error{Pos: 0, Msg: "a URL template that is a single placeholder must be a variable, not a call or a literal"}
		}
		phs[0].kind = kindURL
		return nil
	}
	if err := checkPercent(src, phs); err != nil {
		return err
	}
	scheme := 0 // length of the literal "http://" or "https://"
	for _, prefix := range []string{"http://", "https://"} {
		if len(src) >= len(prefix) && strings.EqualFold(src[:len(prefix)], prefix) {
			scheme = len(prefix)
		}
	}
	// A template may also start with a variable holding a base URL (a
	// setting of type url, such as a region's API root) that a path
	// follows: <<base_url>>/oauth/token. The value is checked as a whole
	// URL when rendered; the path after it follows the usual rules.
	base := scheme == 0 && len(phs) > 0 && phs[0].pos == 0 && isBase(&phs[0]) &&
		phs[0].end < len(src) && src[phs[0].end] == '/'
	if scheme == 0 && !base {
		return &Error{Pos: 0, Msg: "URL template must start with http:// or https://, or with a url setting and a path (<<base_url>>/oauth/token), or be a single placeholder"}
	}

	// The structure comes from the literal text alone: escaped values
	// cannot add '/', '?' or '#', and authority values cannot add anything.
	// So the authority ends at the first literal '/', '?' or '#', the path
	// at the first '?' or '#', and the query at the first '#'.
	authEnd, pathEnd, queryEnd := len(src), len(src), len(src)
	if base {
		authEnd = phs[0].end
	}
	eachLiteral(src, phs, func(lit string, at int) error {
		for i := 0; i < len(lit); i++ {
			off := at + i
			if off < scheme {
				continue
			}
			switch lit[i] {
			case '/':
				authEnd = min(authEnd, off)
			case '?':
				authEnd = min(authEnd, off)
				pathEnd = min(pathEnd, off)
			case '#':
				authEnd = min(authEnd, off)
				pathEnd = min(pathEnd, off)
				queryEnd = min(queryEnd, off)
			}
		}
		return nil
	})
	// A path literal must be written as it goes on the wire. A byte that
	// needs escaping (a space, say) makes net/url drop the raw path and
	// escape the decoded one again, which turns a value's %2F back into
	// a real '/': a value "../x" would then climb the path.
	if err := eachLiteral(src, phs, func(lit string, at int) error {
		for i := 0; i < len(lit); i++ {
			if off := at + i; off >= authEnd && off < pathEnd && !pathLiteralByte(lit[i]) {
				return &Error{Pos: off, Msg: "URL path has " + strconv.Quote(lit[i:i+1]) + ", which must be percent-encoded"}
			}
		}
		return nil
	}); err != nil {
		return err
	}
	for i := range phs {
		switch p := &phs[i]; {
		case base && i == 0:
			p.kind = kindBase
		case p.pos < authEnd && p.end == authEnd && !base:
			p.kind = kindHostPort // the authority's end: a host setting may carry a port
		case p.pos < authEnd:
			p.kind = kindHost
		case p.pos < pathEnd:
			p.kind = kindPath
		case p.pos < queryEnd:
			p.kind = kindQuery
		default:
			p.kind = kindFrag
		}
	}

	// Check the literal text by parsing the URL with "1" for every value,
	// a value that is valid in every part, ports included.
	var b strings.Builder
	eachLiteral(src, phs, func(lit string, at int) error {
		b.WriteString(lit)
		if at+len(lit) < len(src) {
			b.WriteString("1")
		}
		return nil
	})
	probe := b.String()
	if base {
		probe = "https://base.example" + probe[1:] // the "1" that stood for the base
	}
	u, err := url.Parse(probe)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &Error{Pos: 0, Msg: "invalid URL: " + err.Error()}
	}
	if u.Host == "" {
		return &Error{Pos: 0, Msg: "URL template has no host"}
	}
	return nil
}

// isBase reports whether p can be a URL's base: a variable, or first()
// of variables and literal base URLs (<<first(region_url
// "https://api.intercom.io")>>), whose result is checked as a base URL
// when rendered.
func isBase(p *placeholder) bool {
	if p.optional {
		return false
	}
	if p.name != "" {
		return true
	}
	if p.call == nil || p.call.fn != fnFirst {
		return false
	}
	for _, a := range p.call.args {
		if a.call != nil || a.lit != "" && kindBase.check(a.lit) != "" {
			return false
		}
	}
	return true
}

// pathLiteralByte reports whether c may stand unescaped in a URL path:
// RFC 3986 pchar, '/' and '%' (whose escapes checkPercent has checked).
func pathLiteralByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@/%", c) >= 0
}

// checkJSON checks that src is valid JSON once each placeholder is
// replaced by "x", and that each placeholder lies inside a string literal.
func checkJSON(src string, phs []placeholder) error {
	// Track string literals through the literal text. This is enough to
	// place each placeholder even in invalid JSON, and it runs first so
	// that {"a": <<b>>} gets a clear message rather than a syntax error.
	inString, escaped := false, false
	at := 0
	for k := range phs {
		p := &phs[k]
		for i := at; i < p.pos; i++ {
			switch c := src[i]; {
			case escaped:
				escaped = false
			case c == '\\' && inString:
				escaped = true
			case c == '"':
				inString = !inString
			}
		}
		if !inString && p.name == "" {
			return &Error{Pos: p.pos, Msg: "placeholder " + p.label() + " is not inside a JSON string"}
		}
		if !inString {
			// A variable alone as a JSON value: a number or boolean
			// setting (callers check its type), written as is.
			p.kind = kindJSONValue
		}
		escaped = false // the value stands for plain characters; a '\' before it fails below
		at = p.end
	}

	// "x" is valid string content anywhere except after a backslash or
	// inside \uXXXX, where the JSON check below rightly fails.
	var b strings.Builder
	b.Grow(len(src))
	k := 0
	eachLiteral(src, phs, func(lit string, at int) error {
		b.WriteString(lit)
		if at+len(lit) < len(src) {
			if phs[k].kind == kindJSONValue {
				b.WriteString("0")
			} else {
				b.WriteString("x")
			}
			k++
		}
		return nil
	})
	sub := b.String()
	var raw json.RawMessage
	err := json.Unmarshal([]byte(sub), &raw)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return &Error{Pos: 0, Msg: "invalid JSON"}
	}
	// Offset counts the bytes read, including the bad one, except at the
	// end of the input, where there is no bad byte.
	off := int(se.Offset)
	if off > 0 && off <= len(sub) && !strings.Contains(se.Error(), "unexpected end") {
		off--
	}
	pos := srcOffset(src, phs, off)
	for i := range phs {
		if p := &phs[i]; p.pos == pos {
			if p.kind == kindJSONValue {
				return &Error{Pos: pos, Msg: "placeholder " + p.label() + " is not inside a JSON string: outside one it can only be a whole value, from a number or boolean setting"}
			}
			// The error names the stand-in "x"; name the placeholder
			// instead. Inside a string, only an escape sequence such as
			// "\<<a>>" or "\u00<<a>>" makes it invalid.
			return &Error{Pos: pos, Msg: "invalid JSON: placeholder " + p.label() + " is inside an escape sequence"}
		}
	}
	return &Error{Pos: pos, Msg: "invalid JSON: " + se.Error()}
}

// srcOffset maps an offset in src with each placeholder replaced by one
// byte back to an offset in src. An offset inside a replacement maps to
// the start of its placeholder.
func srcOffset(src string, phs []placeholder, off int) int {
	shift := 0 // src offset minus substituted offset
	for _, p := range phs {
		subPos := p.pos - shift
		if off < subPos {
			break
		}
		if off == subPos {
			return p.pos
		}
		shift += p.end - p.pos - 1
	}
	return min(off+shift, len(src))
}

// String returns the source of t.
func (t *Template) String() string { return t.src }

// Vars returns the distinct variable names in t, placeholders and call
// arguments alike, in order of first appearance.
func (t *Template) Vars() []string {
	return append([]string(nil), t.vars...)
}

// Check reports the first use of a variable, in source order, that known
// does not accept, as an *Error at its offset: that of the placeholder's
// "<<" for <<name>>, and that of the argument for a call's argument.
//
// It also reports another platform's placeholder in the literal text, such
// as {{client_id}} (see the package documentation), as an *Error at its
// "{{" with a hint to write <<client_id>>.
func (t *Template) Check(known func(name string) bool) error {
	for _, r := range t.refs {
		if !known(r.name) {
			return &Error{Pos: r.pos, Msg: "unknown variable " + strconv.Quote(r.name)}
		}
	}
	return eachLiteral(t.src, t.phs, foreign)
}

// maxForeign bounds the text between "{{" and "}}" that counts as another
// platform's placeholder; longer runs are not one.
const maxForeign = 100

// foreign reports "{{" ... "}}" in the literal text lit, which starts at
// offset at of the source: the placeholder syntax of other integration
// platforms (Postman, Zapier, n8n, Pipedream, Paragon, Mustache), which
// Latchkey would send as is. A run with a brace or a line break inside,
// or a long one, is not one.
func foreign(lit string, at int) error {
	for off := 0; ; {
		i := strings.Index(lit[off:], "{{")
		if i < 0 {
			return nil
		}
		open := off + i
		for open+2 < len(lit) && lit[open+2] == '{' { // "{{{x}}}" starts at its last "{{"
			open++
		}
		j := strings.Index(lit[open+2:], "}}")
		if j < 0 {
			return nil
		}
		inner := lit[open+2 : open+2+j]
		off = open + 2
		name := strings.TrimSpace(inner)
		if name == "" || len(inner) > maxForeign || strings.ContainsAny(inner, "{}\r\n") {
			continue
		}
		hint := "<<name>>"
		if checkName(name) == "" {
			hint = "<<" + name + ">>"
		}
		return &Error{Pos: at + open, Msg: strconv.Quote("{{"+inner+"}}") + " is another platform's placeholder syntax: " +
			"Latchkey placeholders are written " + hint + `; to send "{{" as it is, write <<"{{">>`}
	}
}

// WithClock returns a copy of t whose unix_time and unix_time_ms calls read
// now instead of time.Now, so that a caller can inject time. The copy
// shares t's parsed form. A nil now means time.Now.
func (t *Template) WithClock(now func() time.Time) *Template {
	c := *t
	c.now = now
	return &c
}

// Render fills t with vars, escaping each value and each call's result
// for where it lands.
//
// It returns a *MissingError for a variable that is absent from vars or
// empty, and a *ValueError for a value or result not allowed where it
// sits (see Context), for the first such placeholder in source order.
// Neither holds the value.
func (t *Template) Render(vars map[string]string) (string, error) {
	return t.execute(vars, nil)
}

// RenderMasked is like Render but writes "****" for each variable for
// which secret returns true, and for each call with such a variable among
// its arguments, to show a request without its secrets. Each secret value
// is still checked, so RenderMasked fails exactly when Render would. A nil
// secret masks nothing.
func (t *Template) RenderMasked(vars map[string]string, secret func(name string) bool) (string, error) {
	return t.execute(vars, secret)
}

func (t *Template) execute(vars map[string]string, secret func(string) bool) (string, error) {
	if len(t.phs) == 0 {
		return t.src, nil
	}
	rb := bufPool.Get().(*renderBuf)
	defer func() {
		rb.out.Reset()
		if rb.out.Cap() <= maxPooled && cap(rb.scratch) <= maxPooled {
			bufPool.Put(rb)
		}
	}()
	// Every clock call in one rendering sees the same instant.
	var now time.Time
	if t.usesTime {
		if t.now != nil {
			now = t.now()
		} else {
			now = time.Now()
		}
	}
	// fasttemplate calls f once per tag in source order, so a counter
	// finds the placeholder, and with it the escaping for where it sits.
	i := 0
	_, err := t.ft.ExecuteFunc(&rb.out, func(w io.Writer, _ string) (int, error) {
		p := &t.phs[i]
		i++
		var v string
		switch {
		case p.lit != "":
			v = p.lit
		case p.call == nil:
			v = vars[p.name]
			if v == "" && p.optional {
				return 0, ErrOmitted
			}
			if v == "" {
				return 0, &MissingError{Name: p.name}
			}
		default:
			var err error
			rb.scratch, err = p.call.eval(rb.scratch[:0], vars, now)
			if err != nil {
				return 0, err
			}
			// The escapers take strings; converting costs one small
			// allocation per call, not worth a second set of escapers.
			v = string(rb.scratch)
		}
		if reason := p.kind.check(v); reason != "" {
			name := p.name
			if p.call != nil {
				name = p.call.fn.String() + "()"
			}
			return 0, &ValueError{Pos: p.pos, Name: name, Reason: reason}
		}
		if secret != nil {
			for _, r := range p.refs {
				if secret(r.name) {
					return io.WriteString(w, mask)
				}
			}
		}
		return p.kind.write(w, v)
	})
	if err != nil {
		return "", err
	}
	return rb.out.String(), nil
}

// A renderBuf holds the output of one rendering and the scratch space in
// which its calls are evaluated.
type renderBuf struct {
	out     bytes.Buffer
	scratch []byte
}

// bufPool holds render buffers, so that Render allocates little more than
// its result. fasttemplate's ExecuteFuncString pools buffers too, but it
// empties them before handing them back, so its pool's size calibration
// sees only empty buffers and soon discards every real one.
var bufPool = sync.Pool{New: func() any { return new(renderBuf) }}

// maxPooled bounds the buffers kept in bufPool, so that one huge render
// does not pin its memory.
const maxPooled = 64 << 10

// check returns why v may not be rendered as k, or "".
func (k kind) check(v string) string {
	switch k {
	case kindHeader:
		if indexControl(v) >= 0 {
			return reasonControl
		}
	case kindHostPort:
		if !hostPort(v) {
			return reasonHostPort
		}
	case kindHost:
		for i := 0; i < len(v); i++ {
			c := v[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
				return reasonHost
			}
		}
	case kindPath:
		// "/" is escaped, but a server that decodes %2F before it
		// resolves the path would still see "." or ".." segments.
		for _, seg := range strings.FieldsFunc(v, func(r rune) bool { return r == '/' || r == '\\' }) {
			if strings.Trim(seg, ".") == "" {
				return reasonDots
			}
		}
		if strings.Trim(v, "./\\") == "" {
			return reasonDots
		}
	case kindURL:
		u, err := url.Parse(v)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.Opaque != "" {
			return reasonURL
		}
	case kindJSONValue:
		if v != "true" && v != "false" && !jsonNumber(v) {
			return reasonJSONValue
		}
	case kindBase:
		u, err := url.Parse(v)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.Opaque != "" ||
			u.User != nil || u.RawQuery != "" || u.ForceQuery || strings.Contains(v, "#") {
			return reasonBase
		}
		// The path a template adds must stay under the base: no dot
		// segments, no encoded slashes or backslashes in the base itself.
		lower := strings.ToLower(u.EscapedPath())
		for _, seg := range strings.Split(lower, "/") {
			if seg == "." || seg == ".." || strings.Contains(seg, "%2e") || strings.Contains(seg, "%2f") || strings.Contains(seg, "%5c") || strings.Contains(seg, "\\") {
				return reasonBase
			}
		}
	}
	return ""
}

// write writes v to w escaped as k; v has passed k.check.
func (k kind) write(w io.Writer, v string) (int, error) {
	switch k {
	case kindQuery:
		return writeEscaped(w, v, &queryEscapes)
	case kindPath, kindFrag:
		return writeEscaped(w, v, &pathEscapes)
	case kindJSON:
		return writeJSON(w, v)
	}
	if k == kindBase {
		v = strings.TrimRight(v, "/") // the template's path starts with "/"
	}
	return io.WriteString(w, v)
}

// queryEscapes and pathEscapes hold, for each byte, what url.QueryEscape
// and url.PathEscape turn it into, or "" for a byte they keep. Both
// escape byte by byte, so writing through these tables gives their exact
// output without allocating.
var queryEscapes, pathEscapes [256]string

func init() {
	for i := range 256 {
		b := string([]byte{byte(i)})
		if e := url.QueryEscape(b); e != b {
			queryEscapes[i] = e
		}
		if e := url.PathEscape(b); e != b {
			pathEscapes[i] = e
		}
	}
}

// A writer sums what it writes and keeps the first error, to keep the
// escaping loops short.
type writer struct {
	w   io.Writer
	n   int
	err error
}

func (w *writer) write(s string) {
	if w.err == nil && s != "" {
		n, err := io.WriteString(w.w, s)
		w.n += n
		w.err = err
	}
}

func writeEscaped(w io.Writer, v string, table *[256]string) (int, error) {
	out := writer{w: w}
	start := 0
	for i := 0; i < len(v); i++ {
		if e := table[v[i]]; e != "" {
			out.write(v[start:i])
			out.write(e)
			start = i + 1
		}
	}
	out.write(v[start:])
	return out.n, out.err
}

// jsonEscapes holds the escape json.Marshal writes for each ASCII byte,
// or "" for a byte it keeps. With HTML escaping off that is '"', '\' and
// the control bytes.
var jsonEscapes = func() (t [utf8.RuneSelf]string) {
	const hex = "0123456789abcdef"
	for c := range byte(' ') {
		t[c] = `\u00` + string(hex[c>>4]) + string(hex[c&0xf])
	}
	t['\b'], t['\f'], t['\n'], t['\r'], t['\t'] = `\b`, `\f`, `\n`, `\r`, `\t`
	t['"'], t['\\'] = `\"`, `\\`
	return t
}()

// writeJSON writes v as JSON string content, without quotes, byte for
// byte as json.Marshal would with HTML escaping off.
func writeJSON(w io.Writer, v string) (int, error) {
	out := writer{w: w}
	start := 0
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if e := jsonEscapes[c]; e != "" {
				out.write(v[start:i])
				out.write(e)
				start = i + 1
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		var e string
		switch {
		case r == utf8.RuneError && size == 1:
			e = `\ufffd`
		case r == '\u2028':
			// U+2028 and U+2029 are valid in JSON but end lines in
			// JavaScript; json.Marshal escapes them, and so do we.
			e = `\u2028`
		case r == '\u2029':
			e = `\u2029`
		}
		if e != "" {
			out.write(v[start:i])
			out.write(e)
			start = i + size
		}
		i += size
	}
	out.write(v[start:])
	return out.n, out.err
}

// jsonNumber reports whether v is a number as JSON writes it.
func jsonNumber(v string) bool {
	var n json.Number
	return json.Unmarshal([]byte(v), &n) == nil && v != "" && v[0] != '"'
}

// ValueVars returns the variables a JSON template places as bare values
// ("amount": <<amount>>), which callers check are number or boolean
// settings.
func (t *Template) ValueVars() []string {
	var out []string
	for _, p := range t.phs {
		if p.kind == kindJSONValue {
			out = append(out, p.name)
		}
	}
	return out
}

// BaseVars returns the variables a URL template's base is made of
// (<<base_url>>/oauth/token, <<first(region_url "https://...")>>/oauth),
// or none: callers check they are url settings.
func (t *Template) BaseVars() []string {
	if len(t.phs) == 0 || t.phs[0].kind != kindBase {
		return nil
	}
	if p := t.phs[0]; p.call != nil {
		var names []string
		for _, a := range p.call.args {
			if a.name != "" {
				names = append(names, a.name)
			}
		}
		return names
	}
	return []string{t.phs[0].name}
}

// hostPort reports whether v is a URL authority's host and optional port:
// a host name (letters, digits, '.' and '-'), an IPv4 address or a
// bracketed IPv6 address, then ":" and 1 to 5 digits (looker.example.com:19999).
func hostPort(v string) bool {
	host, port := v, ""
	if strings.HasPrefix(v, "[") {
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return false
		}
		if _, err := netip.ParseAddr(v[1:end]); err != nil || !strings.Contains(v[1:end], ":") {
			return false
		}
		host, port = "", v[end+1:]
		if port != "" {
			if port[0] != ':' {
				return false
			}
			port = port[1:]
			if port == "" {
				return false
			}
		}
	} else if i := strings.LastIndexByte(v, ':'); i >= 0 {
		host, port = v[:i], v[i+1:]
		if port == "" {
			return false
		}
	}
	if v == "" || len(port) > 5 {
		return false
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return false
		}
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// ErrOmitted is what rendering a header or query template answers when an
// optional placeholder (<<name?>>) has no value: the header or parameter
// is to be left out, not sent empty (Google Ads' login-customer-id,
// Procore's company header).
var ErrOmitted = errors.New("template: an optional value is missing; leave the field out")

// parsed keeps templates parsed by Cached: configs and APIs are few and
// change rarely, and a call renders the same few templates every time. It
// is bounded, so endless distinct sources cannot grow it without end.
var (
	parsed  sync.Map // cacheKey -> *Template
	nParsed atomic.Int64
)

type cacheKey struct {
	src string
	ctx Context
}

// Cached is Parse for templates rendered again and again: a Template is
// safe for concurrent use, so each source is parsed once and shared.
// Errors are as Parse's, and not kept.
func Cached(src string, ctx Context) (*Template, error) {
	k := cacheKey{src, ctx}
	if t, ok := parsed.Load(k); ok {
		return t.(*Template), nil
	}
	t, err := Parse(src, ctx)
	if err != nil {
		return nil, err
	}
	if nParsed.Load() < 10000 {
		if _, loaded := parsed.LoadOrStore(k, t); !loaded {
			nParsed.Add(1)
		}
	}
	return t, nil
}
