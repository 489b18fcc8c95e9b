// Package openapitest checks HTTP requests and responses against an OpenAPI
// 3.1 document, so that tests can hold a server and its published document
// to each other. It is test support: nothing outside tests imports it.
//
// It knows the parts of OpenAPI that Latchkey's document uses and refuses to
// load a document that needs more (cookie parameters, parameter styles other
// than the defaults, encoding objects...), so that nothing in the document
// goes unchecked without saying so. Schemas are JSON Schema 2020-12 (OpenAPI
// 3.1 §4.8.24); format is an annotation, as the specification has it, not
// an assertion.
package openapitest

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Spec is a loaded OpenAPI document. It is safe for concurrent use.
type Spec struct {
	bases   []string // the servers' base paths, without a trailing slash
	routes  []*route // sorted by path
	schemes map[string]securityScheme
	schemas map[string]*jsonschema.Schema // components/schemas, by name
}

// Route is an operation of the document: a method and a path template.
type Route struct {
	Method string // upper case
	Path   string // as in the document, e.g. /v1/apps/{app}
}

type route struct {
	path string
	segs []string // the path's segments after its leading slash
	ops  map[string]*operation
}

type operation struct {
	params    []*parameter
	security  [][]string // alternatives; in each, schemes that must all be met
	body      *requestBody
	responses map[string]*response // by status code, "4XX" or "default"
}

type parameter struct {
	name, in      string
	required      bool
	allowReserved bool
	schema        *jsonschema.Schema
}

type requestBody struct {
	required bool
	content  []mediaType
}

type mediaType struct {
	name   string             // a media type or range, lower case
	schema *jsonschema.Schema // nil: any body goes
}

type response struct {
	headers []header
	content []mediaType
}

type header struct {
	name     string
	required bool
	schema   *jsonschema.Schema
}

type securityScheme struct {
	typ    string // http or apiKey
	scheme string // of http: bearer, basic...
	in     string // of apiKey: header, query or cookie
	name   string // of apiKey
}

// Load reads and parses the document at path; see Parse.
func Load(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Parse parses an OpenAPI 3.1 document, in YAML or JSON. It returns an
// error unless the document is valid against the OpenAPI 3.1 schema, every
// $ref in it resolves, every schema in it compiles, every path template's
// parameters are declared (and no others), and it uses only the parts of
// OpenAPI that this package checks.
func Parse(data []byte) (*Spec, error) {
	doc, err := fromYAML(data)
	if err != nil {
		return nil, err
	}
	root, ok := doc.(map[string]any)
	if !ok {
		return nil, errors.New("not an OpenAPI document: not an object")
	}
	if v, _ := root["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		return nil, fmt.Errorf("openapi is %q: only OpenAPI 3.1 documents are supported", v)
	}
	if err := checkStructure(doc); err != nil {
		return nil, err
	}
	l := &loader{doc: doc, c: newCompiler(), schemas: map[string]*jsonschema.Schema{}}
	if err := l.c.AddResource(docURL, doc); err != nil {
		return nil, err
	}
	s := l.spec(root)
	if len(l.errs) > 0 {
		return nil, errors.New(strings.Join(l.errs, "\n"))
	}
	return s, nil
}

// Routes returns the operations of the document, sorted by path and method.
func (s *Spec) Routes() []Route {
	var out []Route
	for _, r := range s.routes {
		for _, m := range slices.Sorted(maps.Keys(r.ops)) {
			out = append(out, Route{Method: m, Path: r.path})
		}
	}
	return out
}

// docURL names the document for the schema compiler; the document is
// given to it, never fetched.
const docURL = "file:///openapi.json"

//go:embed oas31.json
var oas31 []byte

// oas31URL is the $id of oas31.json: the OpenAPI Initiative's schema for
// OpenAPI 3.1 documents (Apache License 2.0), release 2022-10-07, as
// published at that URL.
const oas31URL = "https://spec.openapis.org/oas/3.1/schema/2022-10-07"

// checkStructure validates doc against the OpenAPI 3.1 schema, which checks
// the document's shape (known fields in each object, the right types) but
// not the schemas in it: the loader compiles those.
func checkStructure(doc any) error {
	meta, err := jsonschema.UnmarshalJSON(bytes.NewReader(oas31))
	if err != nil {
		return err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(oas31URL, meta); err != nil {
		return err
	}
	sch, err := c.Compile(oas31URL)
	if err != nil {
		return err
	}
	e := &Error{}
	e.validate("document", sch, doc)
	if len(e.Problems) == 0 {
		return nil
	}
	var lines []string
	for _, p := range e.Problems {
		lines = append(lines, fmt.Sprintf("#%s: %s", p.Pointer, p.Reason))
	}
	return fmt.Errorf("not a valid OpenAPI 3.1 document:\n%s", strings.Join(lines, "\n"))
}

// newCompiler returns a schema compiler for the document's schemas.
func newCompiler() *jsonschema.Compiler {
	c := jsonschema.NewCompiler()
	// OpenAPI 3.1's default dialect is JSON Schema 2020-12 with OpenAPI's
	// annotations (discriminator, xml, externalDocs, example), which
	// validate nothing and are ignored here like any unknown keyword.
	c.DefaultDraft(jsonschema.Draft2020)
	c.RegisterVocabulary(refused)
	c.AssertVocabs() // so that refused applies to schemas without $vocabulary
	return c
}

// refused fails the compilation of schemas with keywords whose meaning this
// package does not implement, rather than let them pass unchecked.
var refused = &jsonschema.Vocabulary{
	URL: "https://latchkey.invalid/openapitest/refused",
	Compile: func(_ *jsonschema.CompilerContext, obj map[string]any) (jsonschema.SchemaExt, error) {
		if _, ok := obj["nullable"]; ok {
			// OpenAPI 3.0's keyword, which 3.1 dropped: a 3.1 validator
			// ignores it, so the schema would not say what its author meant.
			return nil, errors.New(`nullable is not OpenAPI 3.1: use type: [..., "null"]`)
		}
		for _, k := range []string{"readOnly", "writeOnly"} {
			if _, ok := obj[k]; ok {
				// OpenAPI gives them meaning (a readOnly property is not
				// sent in requests) that this package does not implement.
				return nil, fmt.Errorf("%s is not supported by openapitest", k)
			}
		}
		return nil, nil
	},
}

// loader builds a Spec from a document, collecting every error it finds.
type loader struct {
	doc     any
	c       *jsonschema.Compiler
	schemas map[string]*jsonschema.Schema // by JSON pointer
	errs    []string
}

func (l *loader) fail(ptr, format string, args ...any) {
	l.errs = append(l.errs, where(ptr)+": "+fmt.Sprintf(format, args...))
}

var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func (l *loader) spec(root map[string]any) *Spec {
	s := &Spec{schemes: map[string]securityScheme{}, schemas: map[string]*jsonschema.Schema{}}
	l.refs(l.doc, "")
	if d, ok := root["jsonSchemaDialect"]; ok && d != "https://spec.openapis.org/oas/3.1/dialect/base" {
		l.fail("/jsonSchemaDialect", "only OpenAPI's default dialect is supported")
	}
	if _, ok := root["webhooks"]; ok {
		l.fail("/webhooks", "webhooks are not supported")
	}
	servers, _ := root["servers"].([]any)
	for i, sv := range servers {
		u, _ := sv.(map[string]any)["url"].(string)
		p, err := url.Parse(u)
		if err != nil || strings.ContainsAny(u, "{}") {
			l.fail("/servers/"+strconv.Itoa(i), "url %q: only URLs without variables are supported", u)
			continue
		}
		if b := strings.TrimSuffix(p.Path, "/"); b != "" {
			s.bases = append(s.bases, b)
		}
	}
	comp, _ := root["components"].(map[string]any)
	schemes, _ := comp["securitySchemes"].(map[string]any)
	for _, name := range sortedKeys(schemes) {
		s.schemes[name] = l.securityScheme(schemes[name], "/components/securitySchemes/"+escapeToken(name))
	}
	global := l.security(root["security"], "/security", s.schemes)
	paths, _ := root["paths"].(map[string]any)
	for _, p := range sortedKeys(paths) {
		if strings.HasPrefix(p, "x-") {
			continue
		}
		if r := l.route(p, paths[p], global, s.schemes); r != nil {
			s.routes = append(s.routes, r)
		}
	}
	// Every schema compiles, and every component is one this package can
	// check, whether or not an operation uses it yet.
	for _, name := range sortedKeys(comp["schemas"]) {
		s.schemas[name] = l.schema("/components/schemas/" + escapeToken(name))
	}
	for _, name := range sortedKeys(comp["parameters"]) {
		l.parameter(comp["parameters"].(map[string]any)[name], "/components/parameters/"+escapeToken(name))
	}
	for _, name := range sortedKeys(comp["headers"]) {
		l.header(name, comp["headers"].(map[string]any)[name], "/components/headers/"+escapeToken(name))
	}
	for _, name := range sortedKeys(comp["requestBodies"]) {
		l.requestBody(comp["requestBodies"].(map[string]any)[name], "/components/requestBodies/"+escapeToken(name))
	}
	for _, name := range sortedKeys(comp["responses"]) {
		l.response(comp["responses"].(map[string]any)[name], "/components/responses/"+escapeToken(name))
	}
	for _, k := range []string{"pathItems", "callbacks", "links"} {
		if _, ok := comp[k]; ok {
			l.fail("/components/"+k, "not supported")
		}
	}
	return s
}

func (l *loader) route(path string, v any, global [][]string, schemes map[string]securityScheme) *route {
	item, ptr, ok := l.deref(v, "/paths/"+escapeToken(path))
	if !ok {
		return nil
	}
	r := &route{path: path, segs: strings.Split(path, "/")[1:], ops: map[string]*operation{}}
	inTemplate := map[string]bool{}
	for _, seg := range r.segs {
		if name, ok := paramName(seg); ok {
			inTemplate[name] = true
		} else if strings.ContainsAny(seg, "{}") {
			l.fail(ptr, "only whole path segments can be parameters")
		}
	}
	if _, ok := item["servers"]; ok {
		l.fail(ptr+"/servers", "not supported")
	}
	common := l.parameters(item["parameters"], ptr+"/parameters")
	for _, m := range methods {
		ov, ok := item[m]
		if !ok {
			continue
		}
		optr := ptr + "/" + m
		o, _ := ov.(map[string]any)
		op := &operation{security: global, responses: map[string]*response{}}
		op.params = mergeParams(common, l.parameters(o["parameters"], optr+"/parameters"))
		declared := map[string]bool{}
		for _, p := range op.params {
			if p.in == "path" {
				declared[p.name] = true
				if !inTemplate[p.name] {
					l.fail(optr, "path parameter %q is not in the path", p.name)
				}
			}
		}
		for name := range inTemplate {
			if !declared[name] {
				l.fail(optr, "path parameter %q is not declared", name)
			}
		}
		if sv, ok := o["security"]; ok {
			op.security = l.security(sv, optr+"/security", schemes)
		}
		if bv, ok := o["requestBody"]; ok {
			op.body = l.requestBody(bv, optr+"/requestBody")
		}
		responses, _ := o["responses"].(map[string]any)
		for _, code := range sortedKeys(responses) {
			if strings.HasPrefix(code, "x-") {
				continue
			}
			if resp := l.response(responses[code], optr+"/responses/"+escapeToken(code)); resp != nil {
				op.responses[strings.ToUpper(code)] = resp
			}
		}
		if len(op.responses) == 0 {
			l.fail(optr, "no responses")
		}
		for _, k := range []string{"callbacks", "servers"} {
			if _, ok := o[k]; ok {
				l.fail(optr+"/"+k, "not supported")
			}
		}
		r.ops[strings.ToUpper(m)] = op
	}
	return r
}

// mergeParams adds an operation's parameters to its path's; an operation's
// parameter overrides the path's of the same name and location.
func mergeParams(common, own []*parameter) []*parameter {
	out := slices.Clone(own)
	for _, c := range common {
		if !slices.ContainsFunc(own, func(p *parameter) bool { return p.name == c.name && p.in == c.in }) {
			out = append(out, c)
		}
	}
	return out
}

func (l *loader) parameters(v any, ptr string) []*parameter {
	list, _ := v.([]any)
	var out []*parameter
	for i, pv := range list {
		if p := l.parameter(pv, ptr+"/"+strconv.Itoa(i)); p != nil {
			out = append(out, p)
		}
	}
	return out
}

func (l *loader) parameter(v any, ptr string) *parameter {
	m, ptr, ok := l.deref(v, ptr)
	if !ok {
		return nil
	}
	p := &parameter{}
	p.name, _ = m["name"].(string)
	p.in, _ = m["in"].(string)
	p.required, _ = m["required"].(bool)
	p.allowReserved, _ = m["allowReserved"].(bool)
	style, explode := "simple", false
	switch p.in {
	case "path", "header":
	case "query":
		style, explode = "form", true
	default:
		l.fail(ptr, "parameters in %s are not supported", p.in)
		return nil
	}
	if s, ok := m["style"]; ok && s != style {
		l.fail(ptr+"/style", "only the default style, %s, is supported", style)
	}
	if e, ok := m["explode"]; ok && e != explode {
		l.fail(ptr+"/explode", "only the default, %v, is supported", explode)
	}
	if _, ok := m["content"]; ok {
		l.fail(ptr+"/content", "parameters with content are not supported")
		return nil
	}
	p.schema = l.schema(ptr + "/schema")
	if p.schema == nil {
		return nil
	}
	if types := typesOf(p.schema); slices.Contains(types, "object") || slices.Contains(types, "array") && (p.in != "query" || len(types) > 1) {
		l.fail(ptr+"/schema", "only query parameters can be arrays (and only arrays), and none objects")
	}
	if p.in == "header" {
		switch strings.ToLower(p.name) {
		case "accept", "content-type", "authorization":
			return nil // SHALL be ignored (OpenAPI 3.1 §4.8.12.1)
		}
	}
	return p
}

func (l *loader) requestBody(v any, ptr string) *requestBody {
	m, ptr, ok := l.deref(v, ptr)
	if !ok {
		return nil
	}
	b := &requestBody{content: l.content(m["content"], ptr+"/content")}
	b.required, _ = m["required"].(bool)
	return b
}

func (l *loader) response(v any, ptr string) *response {
	m, ptr, ok := l.deref(v, ptr)
	if !ok {
		return nil
	}
	r := &response{content: l.content(m["content"], ptr+"/content")}
	headers, _ := m["headers"].(map[string]any)
	for _, name := range sortedKeys(headers) {
		// "If a response header is defined with the name Content-Type,
		// it SHALL be ignored" (OpenAPI 3.1 §4.8.17.1).
		if strings.EqualFold(name, "Content-Type") {
			continue
		}
		if h := l.header(name, headers[name], ptr+"/headers/"+escapeToken(name)); h != nil {
			r.headers = append(r.headers, *h)
		}
	}
	return r
}

func (l *loader) header(name string, v any, ptr string) *header {
	m, ptr, ok := l.deref(v, ptr)
	if !ok {
		return nil
	}
	if _, ok := m["content"]; ok {
		l.fail(ptr+"/content", "headers with content are not supported")
		return nil
	}
	if _, ok := m["explode"]; ok {
		l.fail(ptr+"/explode", "not supported")
	}
	h := &header{name: name, schema: l.schema(ptr + "/schema")}
	h.required, _ = m["required"].(bool)
	if h.schema == nil {
		return nil
	}
	if types := typesOf(h.schema); slices.Contains(types, "object") || slices.Contains(types, "array") {
		l.fail(ptr+"/schema", "headers that are arrays or objects are not supported")
	}
	return h
}

func (l *loader) content(v any, ptr string) []mediaType {
	m, _ := v.(map[string]any)
	var out []mediaType
	for _, name := range sortedKeys(m) {
		mptr := ptr + "/" + escapeToken(name)
		mt, _ := m[name].(map[string]any)
		if _, ok := mt["encoding"]; ok {
			l.fail(mptr+"/encoding", "not supported")
		}
		t := mediaType{name: strings.ToLower(name)}
		if _, ok := mt["schema"]; ok {
			if kindOf(t.name) == otherBody {
				l.fail(mptr, "bodies of this type cannot be checked against a schema; only JSON, forms and text can")
			}
			t.schema = l.schema(mptr + "/schema")
		}
		out = append(out, t)
	}
	return out
}

func (l *loader) securityScheme(v any, ptr string) securityScheme {
	m, ptr, ok := l.deref(v, ptr)
	if !ok {
		return securityScheme{}
	}
	s := securityScheme{}
	s.typ, _ = m["type"].(string)
	s.scheme, _ = m["scheme"].(string)
	s.in, _ = m["in"].(string)
	s.name, _ = m["name"].(string)
	if s.typ != "http" && s.typ != "apiKey" {
		l.fail(ptr, "security schemes of type %s are not supported", s.typ)
	}
	return s
}

func (l *loader) security(v any, ptr string, schemes map[string]securityScheme) [][]string {
	list, _ := v.([]any)
	out := [][]string{}
	for i, rv := range list {
		names := sortedKeys(rv)
		for _, n := range names {
			if _, ok := schemes[n]; !ok {
				l.fail(ptr+"/"+strconv.Itoa(i), "no security scheme %q", n)
			}
		}
		out = append(out, names)
	}
	return out
}

// schema compiles the schema at ptr, once.
func (l *loader) schema(ptr string) *jsonschema.Schema {
	if s, ok := l.schemas[ptr]; ok {
		return s
	}
	s, err := l.c.Compile(docURL + "#" + encodePointer(ptr))
	if err != nil {
		l.fail(ptr, "%v", err)
	}
	l.schemas[ptr] = s
	return s
}

// deref follows v's $ref, if it is a Reference Object (OpenAPI 3.1
// §4.8.23), to the object it names; the pointer returned is the object's.
// The summary and description that may stand beside a $ref change no check.
func (l *loader) deref(v any, ptr string) (map[string]any, string, bool) {
	for range 10 {
		m, ok := v.(map[string]any)
		if !ok {
			l.fail(ptr, "not an object")
			return nil, ptr, false
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, ptr, true
		}
		target, tptr, err := l.lookup(ref)
		if err != nil {
			l.fail(ptr, "%v", err)
			return nil, ptr, false
		}
		v, ptr = target, tptr
	}
	l.fail(ptr, "$ref leads to $ref too many times")
	return nil, ptr, false
}

// lookup finds the value that a $ref names; only references within the
// document are supported.
func (l *loader) lookup(ref string) (any, string, error) {
	frag, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, "", fmt.Errorf("$ref %q: only references within the document are supported", ref)
	}
	ptr, err := url.PathUnescape(frag)
	if err != nil || ptr != "" && !strings.HasPrefix(ptr, "/") {
		return nil, "", fmt.Errorf("$ref %q: not a JSON pointer", ref)
	}
	v := l.doc
	if ptr == "" {
		return v, ptr, nil
	}
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = unescapeToken(tok)
		switch n := v.(type) {
		case map[string]any:
			v, ok = n[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			ok = err == nil && i >= 0 && i < len(n)
			if ok {
				v = n[i]
			}
		default:
			ok = false
		}
		if !ok {
			return nil, "", fmt.Errorf("$ref %q: no such value", ref)
		}
	}
	return v, ptr, nil
}

// refs checks that every $ref in the document resolves, including those
// in components that no operation uses.
func (l *loader) refs(v any, ptr string) {
	switch n := v.(type) {
	case map[string]any:
		if ref, ok := n["$ref"].(string); ok {
			if _, _, err := l.lookup(ref); err != nil {
				l.fail(ptr, "%v", err)
			}
		}
		for k, c := range n {
			switch k {
			case "example", "examples", "default", "const", "enum":
				continue // values, not the document's objects
			}
			l.refs(c, ptr+"/"+escapeToken(k))
		}
	case []any:
		for i, c := range n {
			l.refs(c, ptr+"/"+strconv.Itoa(i))
		}
	}
}

// paramName returns the name of a path segment that is a parameter: {name}.
func paramName(seg string) (string, bool) {
	if len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}' && !strings.ContainsAny(seg[1:len(seg)-1], "{}") {
		return seg[1 : len(seg)-1], true
	}
	return "", false
}

// sortedKeys returns the keys of v, if it is an object, sorted.
func sortedKeys(v any) []string {
	m, _ := v.(map[string]any)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// escapeToken escapes a JSON pointer token (RFC 6901 §3).
func escapeToken(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
}

func unescapeToken(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
}

// encodePointer writes a JSON pointer as a URI fragment (RFC 6901 §6).
func encodePointer(ptr string) string {
	toks := strings.Split(ptr, "/")
	for i, t := range toks {
		toks[i] = url.PathEscape(t)
	}
	return strings.Join(toks, "/")
}
