package openapitest

import (
	"bytes"
	"encoding/json"
	"math"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// CheckRequest checks r, whose body is body, against the operation of the
// document that its method and path match: its path, query and header
// parameters, its credentials (by their presence and scheme, as the
// operation's security requirements name them), and its body, which must be
// declared, of a declared content type and valid against its schema. It
// returns nil or an *Error; for a route not in the document, the error
// matches ErrUnknownRoute.
func (s *Spec) CheckRequest(r *http.Request, body []byte) error {
	e := &Error{Method: r.Method, Path: r.URL.Path}
	op, path := s.find(r, e)
	if op == nil {
		return e
	}
	checkParams(e, op, path, r)
	s.checkSecurity(e, op, r)
	checkRequestBody(e, op, r.Header.Get("Content-Type"), body)
	return e.orNil()
}

// CheckSchema checks body, a JSON document, against the schema name of
// the document's components: for what the document describes but no
// request or response carries, such as the events Latchkey posts to an
// app's webhooks. It returns nil or an *Error (with Method "schema" and
// Path name); a name that is not a component schema is an error too.
func (s *Spec) CheckSchema(name string, body []byte) error {
	e := &Error{Method: "schema", Path: name}
	sch := s.schemas[name]
	if sch == nil {
		e.add("schema", "no schema %q in components/schemas", name)
		return e
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		e.add("body", "not JSON: %v", err)
		return e
	}
	e.validate("body", sch, v)
	return e.orNil()
}

// CheckResponse checks resp, the answer to r, whose body is body: its status
// must be declared (as itself, as 4XX or by default), its declared headers
// valid (and present if required), its body of a declared content type and
// valid against its schema, or empty if none is declared. It returns nil or
// an *Error; for a route not in the document, the error matches
// ErrUnknownRoute.
func (s *Spec) CheckResponse(r *http.Request, resp *http.Response, body []byte) error {
	e := &Error{Method: r.Method, Path: r.URL.Path}
	op, _ := s.find(r, e)
	if op == nil {
		return e
	}
	code := strconv.Itoa(resp.StatusCode)
	d := op.responses[code]
	if d == nil {
		d = op.responses[code[:1]+"XX"]
	}
	if d == nil {
		d = op.responses["DEFAULT"]
	}
	if d == nil {
		e.add("status", "%s is not declared", code)
		return e
	}
	for _, h := range d.headers {
		part := "response header " + strconv.Quote(h.name)
		vals := resp.Header.Values(h.name)
		if len(vals) == 0 && h.required {
			e.add(part, "missing; it is required")
		}
		for _, v := range vals {
			checkText(e, part, v, h.schema)
		}
	}
	if r.Method == http.MethodHead {
		return e.orNil() // HEAD's answer has no body (RFC 9110 §9.3.2)
	}
	if len(d.content) == 0 {
		if len(body) > 0 {
			e.add("response body", "%d bytes, but the response declares no content", len(body))
		}
		return e.orNil()
	}
	checkBody(e, "response body", d.content, resp.Header.Get("Content-Type"), body)
	return e.orNil()
}

// find returns the operation that r's method and path match and the path's
// segments, or adds the problem and returns nil. A path matches a template
// of as many segments whose literal segments are the same; where several
// match, one with r's method wins, then one with more literal segments
// (OpenAPI 3.1 §4.8.8.2: concrete paths before templated ones).
func (s *Spec) find(r *http.Request, e *Error) (*operation, map[string]string) {
	p := r.URL.EscapedPath()
	for _, b := range s.bases {
		if rest, ok := strings.CutPrefix(p, b); ok && (rest == "" || rest[0] == '/') {
			p = rest
			break
		}
	}
	if p == "" {
		p = "/"
	}
	segs := strings.Split(p, "/")[1:]
	var best *route
	bestScore, bestHas := -1, false
	for _, rt := range s.routes {
		score, ok := rt.match(segs)
		if !ok {
			continue
		}
		has := rt.op(r.Method) != nil
		if has && !bestHas || has == bestHas && score > bestScore {
			best, bestScore, bestHas = rt, score, has
		}
	}
	if best == nil {
		e.add("route", "no path of the document matches")
		return nil, nil
	}
	if !bestHas {
		e.add("route", "%s has no %s operation", best.path, r.Method)
		return nil, nil
	}
	params := map[string]string{}
	for i, seg := range best.segs {
		if name, ok := paramName(seg); ok {
			params[name] = segs[i]
		}
	}
	return best.op(r.Method), params
}

// match reports whether rt's template matches a path's segments, and how
// many of its segments are literal.
func (rt *route) match(segs []string) (int, bool) {
	if len(segs) != len(rt.segs) {
		return 0, false
	}
	literal := 0
	for i, t := range rt.segs {
		if _, ok := paramName(t); ok {
			continue
		}
		if segs[i] != t {
			return 0, false
		}
		literal++
	}
	return literal, true
}

func (rt *route) op(method string) *operation {
	if op := rt.ops[method]; op != nil {
		return op
	}
	if method == http.MethodHead {
		return rt.ops[http.MethodGet] // HEAD is GET without the body (RFC 9110 §9.3.2)
	}
	return nil
}

// reserved are the characters that a query parameter's value must
// percent-encode unless it allows them (allowReserved, OpenAPI 3.1
// §4.8.12.1; RFC 3986 §2.2). '+' is read as a space, as in forms.
var reserved = regexp.MustCompile(`[:/?#\[\]@!$&'()*+,;=]`)

func checkParams(e *Error, op *operation, path map[string]string, r *http.Request) {
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		e.add("query", "%v", err)
	}
	raw := rawQuery(r.URL.RawQuery)
	for _, p := range op.params {
		part := p.in + " parameter " + strconv.Quote(p.name)
		switch p.in {
		case "path":
			v, err := url.PathUnescape(path[p.name])
			switch {
			case err != nil:
				e.add(part, "%v", err)
			case v == "":
				// As the path does not match without it, it is required
				// (OpenAPI 3.1 §4.8.12.2), and an empty segment is not one.
				e.add(part, "empty")
			default:
				checkText(e, part, v, p.schema)
			}
		case "query":
			vals, ok := query[p.name]
			if !ok {
				if p.required {
					e.add(part, "missing; it is required")
				}
				continue
			}
			if !p.allowReserved {
				for _, v := range raw[p.name] {
					if reserved.MatchString(strings.ReplaceAll(v, "+", " ")) {
						e.add(part, "%q has reserved characters that must be percent-encoded", v)
					}
				}
			}
			if slices.Contains(typesOf(p.schema), "array") {
				items := itemsOf(p.schema)
				a := make([]any, len(vals))
				for i, v := range vals {
					a[i] = readings(v, items)[0]
				}
				e.validate(part, p.schema, a)
				continue
			}
			for _, v := range vals {
				checkText(e, part, v, p.schema)
			}
		case "header":
			vals := r.Header.Values(p.name)
			if len(vals) == 0 && p.required {
				e.add(part, "missing; it is required")
			}
			for _, v := range vals {
				checkText(e, part, v, p.schema)
			}
		}
	}
}

// rawQuery returns a query's values as sent, still percent-encoded.
func rawQuery(q string) map[string][]string {
	out := map[string][]string{}
	for _, kv := range strings.Split(q, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if k, err := url.QueryUnescape(k); err == nil {
			out[k] = append(out[k], v)
		}
	}
	return out
}

func (s *Spec) checkSecurity(e *Error, op *operation, r *http.Request) {
	if len(op.security) == 0 {
		return
	}
	var why []string
	for _, alt := range op.security { // any one of them will do
		met := true
		for _, name := range alt { // all of them
			if reason := s.schemes[name].unmet(r); reason != "" {
				met = false
				why = append(why, name+": "+reason)
			}
		}
		if met {
			return
		}
	}
	e.add("security", "%s", strings.Join(why, "; "))
}

// unmet says why r does not carry credentials of the scheme, or returns "".
// That the credentials are good is the server's to say.
func (sc securityScheme) unmet(r *http.Request) string {
	switch sc.typ {
	case "http":
		a := r.Header.Get("Authorization")
		if a == "" {
			return "no Authorization header"
		}
		scheme, cred, _ := strings.Cut(a, " ")
		if !strings.EqualFold(scheme, sc.scheme) || strings.TrimSpace(cred) == "" {
			return "Authorization is not " + sc.scheme // RFC 9110 §11.1: schemes are case-insensitive
		}
	case "apiKey":
		switch sc.in {
		case "header":
			if r.Header.Get(sc.name) == "" {
				return "no " + sc.name + " header"
			}
		case "query":
			if r.URL.Query().Get(sc.name) == "" {
				return "no " + sc.name + " query parameter"
			}
		case "cookie":
			if _, err := r.Cookie(sc.name); err != nil {
				return "no " + sc.name + " cookie"
			}
		}
	}
	return ""
}

func checkRequestBody(e *Error, op *operation, ctype string, body []byte) {
	const part = "request body"
	switch {
	case op.body == nil:
		if len(body) > 0 {
			e.add(part, "%d bytes, but the operation declares no request body", len(body))
		}
	case len(body) == 0:
		if op.body.required {
			e.add(part, "missing; it is required")
		}
	case ctype == "":
		e.add(part, "sent without a Content-Type")
	default:
		checkBody(e, part, op.body.content, ctype, body)
	}
}

// checkBody checks a body against the content declared for it.
func checkBody(e *Error, part string, content []mediaType, ctype string, body []byte) {
	mt := ""
	if ctype != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ctype); err != nil {
			e.add(part, "Content-Type %q: %v", ctype, err)
			return
		}
	}
	decl := pick(content, mt)
	if decl == nil {
		var names []string
		for _, c := range content {
			names = append(names, c.name)
		}
		if ctype == "" {
			e.add(part, "no Content-Type; declared: %s", strings.Join(names, ", "))
		} else {
			e.add(part, "Content-Type %s is not declared; declared: %s", mt, strings.Join(names, ", "))
		}
		return
	}
	if decl.schema == nil {
		return
	}
	var v any
	switch kindOf(mt) {
	case jsonBody:
		if len(body) == 0 {
			e.add(part, "empty, but declared as %s", decl.name)
			return
		}
		var err error
		if v, err = jsonschema.UnmarshalJSON(bytes.NewReader(body)); err != nil {
			e.add(part, "not JSON: %v", err)
			return
		}
	case formBody:
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			e.add(part, "not a form: %v", err)
			return
		}
		v = form(vals, decl.schema)
	case textBody:
		v = string(body)
	default:
		e.add(part, "a %s body cannot be checked against a schema", mt)
		return
	}
	e.validate(part, decl.schema, v)
}

// pick returns the declared media type that most closely matches mt
// (OpenAPI 3.1 §4.8.14: "the most specific key is applicable"), or nil.
func pick(content []mediaType, mt string) *mediaType {
	typ, sub, _ := strings.Cut(mt, "/")
	suffix := ""
	if i := strings.LastIndexByte(sub, '+'); i >= 0 {
		suffix = sub[i:] // application/problem+json is also application/*+json
	}
	var best *mediaType
	bestRank := 0
	for i, c := range content {
		rank := 0
		switch c.name {
		case mt:
			rank = 5
		case typ + "/*" + suffix:
			rank = 4
		case typ + "/*":
			rank = 3
		case "*/" + sub:
			rank = 2
		case "*/*":
			rank = 1
		}
		if rank > bestRank {
			best, bestRank = &content[i], rank
		}
	}
	return best
}

type bodyKind int

const (
	otherBody bodyKind = iota
	jsonBody
	formBody
	textBody
)

// kindOf says how a body of a media type (or range) is read for its schema.
func kindOf(mt string) bodyKind {
	typ, sub, _ := strings.Cut(mt, "/")
	switch {
	case sub == "json" || strings.HasSuffix(sub, "+json"):
		return jsonBody // RFC 6839 §3.1
	case mt == "application/x-www-form-urlencoded":
		return formBody
	case typ == "text":
		return textBody
	}
	return otherBody
}

// form returns a form body as the object its schema describes: a field is
// a string (or the number or boolean its schema asks for), and a field sent
// more than once, or whose schema is an array, is an array.
func form(vals url.Values, sch *jsonschema.Schema) map[string]any {
	obj := map[string]any{}
	for k, vs := range vals {
		ps := propertyOf(sch, k)
		if len(vs) == 1 && !slices.Contains(typesOf(ps), "array") {
			obj[k] = readings(vs[0], ps)[0]
			continue
		}
		items := itemsOf(ps)
		a := make([]any, len(vs))
		for i, v := range vs {
			a[i] = readings(v, items)[0]
		}
		obj[k] = a
	}
	return obj
}

// checkText checks text (a parameter's or a header's value) against sch;
// text that can be read as several types (5: a number, or a string) is good
// if any reading is.
func checkText(e *Error, part, text string, sch *jsonschema.Schema) {
	var first error
	for i, v := range readings(text, sch) {
		err := sch.Validate(v)
		if err == nil {
			return
		}
		if i == 0 {
			first = err
		}
	}
	e.schemaErr(part, first)
}

// readings returns the JSON values that text may stand for under sch, in
// the order of its types; text itself when none applies.
func readings(text string, sch *jsonschema.Schema) []any {
	var out []any
	for _, t := range typesOf(sch) {
		switch t {
		case "string":
			out = append(out, text)
		case "integer":
			if i, err := strconv.ParseInt(text, 10, 64); err == nil {
				out = append(out, json.Number(strconv.FormatInt(i, 10)))
			}
		case "number":
			if f, err := strconv.ParseFloat(text, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				out = append(out, json.Number(strconv.FormatFloat(f, 'g', -1, 64)))
			}
		case "boolean":
			if text == "true" || text == "false" {
				out = append(out, text == "true")
			}
		}
	}
	if len(out) == 0 {
		out = append(out, text)
	}
	return out
}

// typesOf returns the types that sch, or the schema it refers to, names.
func typesOf(sch *jsonschema.Schema) []string {
	for ; sch != nil; sch = sch.Ref {
		if sch.Types != nil && !sch.Types.IsEmpty() {
			return sch.Types.ToStrings()
		}
	}
	return nil
}

// itemsOf returns the schema of an array's items, or nil.
func itemsOf(sch *jsonschema.Schema) *jsonschema.Schema {
	for ; sch != nil; sch = sch.Ref {
		if sch.Items2020 != nil {
			return sch.Items2020
		}
	}
	return nil
}

// propertyOf returns the schema of an object's property, or nil.
func propertyOf(sch *jsonschema.Schema, name string) *jsonschema.Schema {
	for ; sch != nil; sch = sch.Ref {
		if p, ok := sch.Properties[name]; ok {
			return p
		}
		if ap, ok := sch.AdditionalProperties.(*jsonschema.Schema); ok {
			return ap
		}
	}
	return nil
}
