package openapitest

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// ErrUnknownRoute matches (errors.Is) the error for a request whose method
// and path are not an operation of the document.
var ErrUnknownRoute = errors.New("route not in the document")

// Error says how a request or response differs from the document.
type Error struct {
	Method, Path string // the request's
	Problems     []Problem
}

// Problem is one way in which a request or response differs.
type Problem struct {
	// Part is what was checked: "route", `path parameter "app"`,
	// "security", "request body", "status", `response header "X"`,
	// "response body"...
	Part string
	// Pointer locates the bad value within Part, as a JSON pointer
	// (RFC 6901): "" for the whole, "/errors/0/field" for a field of a
	// JSON body.
	Pointer string
	// Reason says what is wrong.
	Reason string
	// Rule, for a value that fails a schema, is the keyword that it
	// fails, as a JSON pointer into the document.
	Rule string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s:", e.Method, e.Path)
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Is reports whether e is for a route that is not in the document.
func (e *Error) Is(target error) bool {
	return target == ErrUnknownRoute && len(e.Problems) == 1 && e.Problems[0].Part == "route"
}

func (p Problem) String() string {
	s := p.Part
	if p.Pointer != "" {
		s += " " + p.Pointer
	}
	s += ": " + p.Reason
	if p.Rule != "" {
		s += " (" + p.Rule + ")"
	}
	return s
}

func (e *Error) add(part, format string, args ...any) {
	e.Problems = append(e.Problems, Problem{Part: part, Reason: fmt.Sprintf(format, args...)})
}

// orNil returns e if it has problems, and otherwise nil.
func (e *Error) orNil() error {
	if len(e.Problems) == 0 {
		return nil
	}
	return e
}

// validate adds a problem for each way that v fails sch.
func (e *Error) validate(part string, sch *jsonschema.Schema, v any) {
	e.schemaErr(part, sch.Validate(v))
}

var printer = message.NewPrinter(language.English)

func (e *Error) schemaErr(part string, err error) {
	if err == nil {
		return
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		e.add(part, "%v", err)
		return
	}
	// The leaves say what is wrong; the errors above them only say
	// which schema (or which branch of an anyOf) they were found in.
	var found []Problem
	var leaves func(*jsonschema.ValidationError)
	leaves = func(ve *jsonschema.ValidationError) {
		if len(ve.Causes) > 0 {
			for _, c := range ve.Causes {
				leaves(c)
			}
			return
		}
		reason := ve.ErrorKind.LocalizedString(printer)
		if _, ok := ve.ErrorKind.(*kind.FalseSchema); ok {
			reason = "not allowed" // by unevaluatedProperties: false, say
		}
		found = append(found, Problem{
			Part:    part,
			Pointer: pointer(ve.InstanceLocation),
			Reason:  reason,
			Rule:    rule(ve),
		})
	}
	leaves(ve)
	// The validator finds them in no fixed order.
	slices.SortFunc(found, func(a, b Problem) int {
		return cmp.Or(strings.Compare(a.Pointer, b.Pointer), strings.Compare(a.Rule, b.Rule), strings.Compare(a.Reason, b.Reason))
	})
	e.Problems = append(e.Problems, found...)
}

func pointer(toks []string) string {
	var b strings.Builder
	for _, t := range toks {
		b.WriteString("/" + escapeToken(t))
	}
	return b.String()
}

// rule returns where in the document the keyword that ve failed is.
func rule(ve *jsonschema.ValidationError) string {
	loc, ok := strings.CutPrefix(ve.SchemaURL, docURL+"#")
	if !ok {
		return ""
	}
	if dec, err := url.PathUnescape(loc); err == nil {
		loc = dec
	}
	for _, k := range ve.ErrorKind.KeywordPath() {
		loc += "/" + escapeToken(k)
	}
	return "#" + loc
}
