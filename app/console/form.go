package console

import (
	"errors"
	"fmt"
	"html/template"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/webpage"
)

// parse returns a console page template: the layout, the navigation, the
// shared parts (inputs, error summaries, pagers) and body.
func parse(name, body string) *template.Template {
	t := webpage.Parse(name, body)
	template.Must(t.New("nav").Parse(navTemplate))
	template.Must(t.New("parts").Parse(partsTemplate))
	return t
}

// navTemplate is the navigation of a signed-in page: the account's apps,
// the current app's sections, and signing out.
const navTemplate = `{{if .CSRF}}<nav aria-label="Console">
<ul>
<li><a href="/console/apps"{{if eq .Section "apps"}} aria-current="page"{{end}}>Apps</a></li>
{{with .App}}<li><a href="/console/apps/{{.ID}}"{{if eq $.Section "app"}} aria-current="page"{{end}}>{{.Name}}</a></li>
<li><a href="/console/apps/{{.ID}}/settings"{{if eq $.Section "settings"}} aria-current="page"{{end}}>Settings</a></li>
<li><a href="/console/apps/{{.ID}}/configs"{{if eq $.Section "configs"}} aria-current="page"{{end}}>OAuth configs</a></li>
<li><a href="/console/apps/{{.ID}}/apis"{{if eq $.Section "apis"}} aria-current="page"{{end}}>APIs</a></li>
<li><a href="/console/apps/{{.ID}}/installations"{{if eq $.Section "installations"}} aria-current="page"{{end}}>Installations</a></li>
<li><a href="/console/apps/{{.ID}}/logs"{{if eq $.Section "logs"}} aria-current="page"{{end}}>Request log</a></li>
<li><a href="/console/apps/{{.ID}}/deliveries"{{if eq $.Section "deliveries"}} aria-current="page"{{end}}>Webhook deliveries</a></li>
{{end}}</ul>
<form method="post" action="/console/sign-out"><input type="hidden" name="_csrf" value="{{.CSRF}}"><button type="submit" id="sign-out" class="button secondary">Sign out {{.Key}}…</button></form>
</nav>
{{end}}`

// partsTemplate defines what the pages share: "notice" (what the last
// action did), "summary" (a form's errors, each linked to its field),
// "input" (a labelled field with its hint and error, tied to it by
// aria-describedby) and "pager".
const partsTemplate = `
{{define "notice"}}{{with .Notice}}<p class="notice" role="status">{{.}}</p>{{end}}{{end}}
{{define "summary"}}{{with .Summary}}<div class="summary" role="alert" aria-labelledby="{{$.ID}}-summary">
<h2 id="{{$.ID}}-summary">{{if eq (len .) 1}}There is a problem{{else}}There are {{len .}} problems{{end}}</h2>
<ul>{{range .}}<li>{{if .Target}}<a href="#{{.Target}}">{{.Text}}</a>{{else}}{{.Text}}{{end}}</li>{{end}}</ul>
</div>{{end}}{{end}}
{{define "input"}}<div class="field">
{{if eq .Type "checkbox"}}<label class="check" for="{{.ID}}"><input type="checkbox" id="{{.ID}}" name="{{.Name}}" value="true"{{if .Checked}} checked{{end}}{{if .Described}} aria-describedby="{{.Described}}"{{end}}{{if .Disabled}} disabled{{end}}>{{.Label}}</label>
{{else}}<label for="{{.ID}}">{{.Label}}{{if .Required}} <span class="req">(required)</span>{{end}}</label>
{{end}}{{if .Hint}}<span class="hint" id="{{.ID}}-hint">{{.Hint}}</span>
{{end}}{{if eq .Type "textarea"}}<textarea id="{{.ID}}" name="{{.Name}}" rows="{{.Rows}}" spellcheck="false"{{if .Error}} aria-invalid="true"{{end}}{{if .Described}} aria-describedby="{{.Described}}"{{end}}{{if .Disabled}} disabled{{end}}>{{.Value}}</textarea>
{{else if eq .Type "select"}}<select id="{{.ID}}" name="{{.Name}}"{{if .Error}} aria-invalid="true"{{end}}{{if .Described}} aria-describedby="{{.Described}}"{{end}}{{if .Disabled}} disabled{{end}}>{{range .Options}}<option value="{{.Value}}"{{if .Selected}} selected{{end}}>{{.Label}}</option>{{end}}</select>
{{else if ne .Type "checkbox"}}<input id="{{.ID}}" name="{{.Name}}" type="{{.Type}}"{{if ne .Type "password"}} value="{{.Value}}"{{end}}{{if .Placeholder}} placeholder="{{.Placeholder}}"{{end}}{{if .Required}} aria-required="true"{{end}}{{if .Error}} aria-invalid="true"{{end}}{{if .Described}} aria-describedby="{{.Described}}"{{end}}{{if .Disabled}} disabled{{end}} autocomplete="off" autocapitalize="off" spellcheck="false">
{{end}}{{if .Error}}<p class="error" id="{{.ID}}-error">{{.Error}}{{with .At}} At position {{.Pos}}: <code>{{.Before}}<mark>{{.Mark}}</mark>{{.After}}</code>{{end}}</p>
{{end}}</div>
{{end}}
{{define "pager"}}{{if or .Next .First}}<p class="actions">{{with .First}}<a class="button secondary" href="{{.}}">First page</a>{{end}}{{with .Next}}<a class="button secondary" href="{{.}}" rel="next">Next page</a>{{end}}</p>{{end}}{{end}}
`

// input is one labelled form field.
type input struct {
	Name, ID, Label string
	Type            string // text, password, textarea, select or checkbox
	Value           string // never shown for passwords
	Secret          bool   // never filled back in: a textarea for a PEM key
	Placeholder     string
	Hint            string
	Options         []option
	Checked         bool
	Required        bool
	Disabled        bool
	Rows            int
	Error           string
	At              *snippet // where in the field's template the error is
	Described       string   // ids of the hint and error, for aria-describedby
}

type option struct {
	Value, Label string
	Selected     bool
}

// options makes a select's options from values (each its own label),
// selecting selected. A selected value not among them is offered too: a
// browser would otherwise submit the first option, and saving the form
// would silently change the field.
func options(selected string, values ...string) []option {
	out := make([]option, 0, len(values)+1)
	found := false
	for _, v := range values {
		out = append(out, option{Value: v, Label: v, Selected: v == selected})
		found = found || v == selected
	}
	if !found && selected != "" {
		out = append(out, option{Value: selected, Label: selected, Selected: true})
	}
	return out
}

// snippet shows where in a template an error is.
type snippet struct {
	Pos                 int
	Before, Mark, After string
}

// formError is one line of a form's error summary.
type formError struct{ Target, Text string }

// form is a form's fields and the errors of its last submission, each
// shown under its field and in a summary at the top. Errors come from the
// stores' validation (errs.Error.Fields), named as the API names fields,
// so the form's field names are the API's.
type form struct {
	ID     string
	Inputs []*input

	submitted url.Values
	byField   map[string][]errs.FieldError // by the form field they belong to
	order     []string                     // fields in the order of the errors
	general   []string                     // errors of no field
	// source returns the text an error position points into, for a
	// field name as the API gives it ("link_url", "headers.X-Key").
	source func(field string) string
}

// newForm returns the form of a submission (values; nil for a first view)
// that failed with problem (nil for none). An *errs.Error's fields are
// shown under the fields; another error's message above the form.
func newForm(problem error, values url.Values) *form {
	f := &form{ID: "f", submitted: values, byField: map[string][]errs.FieldError{}}
	var e *errs.Error
	switch {
	case problem == nil:
	case errors.As(problem, &e) && len(e.Fields) > 0:
		for _, fe := range e.Fields {
			name := fieldOf(fe.Field)
			if _, seen := f.byField[name]; !seen {
				f.order = append(f.order, name)
			}
			f.byField[name] = append(f.byField[name], fe)
		}
	default:
		f.general = append(f.general, sentence(errs.MessageOf(problem)))
	}
	return f
}

// fieldOf returns the form field an API field belongs to: "values.key" is
// the setting's own field; "headers.X-Key" and "mappings[0].path" belong to
// the field that holds them all.
func fieldOf(apiField string) string {
	if k, ok := strings.CutPrefix(apiField, "values."); ok {
		return k
	}
	if i := strings.IndexAny(apiField, ".["); i > 0 {
		return apiField[:i]
	}
	return apiField
}

// add adds a field, filled with the submitted value if there was a
// submission, with its errors; it returns it for the caller to adjust.
func (f *form) add(in input) *input {
	if in.ID == "" {
		in.ID = f.ID + "-" + strings.ReplaceAll(in.Name, "_", "-")
	}
	if in.Type == "" {
		in.Type = "text"
	}
	if in.Type == "textarea" && in.Rows == 0 {
		in.Rows = 3
	}
	if f.submitted != nil && !in.Secret {
		switch in.Type {
		case "password":
		case "checkbox":
			in.Checked = f.submitted.Get(in.Name) == "true"
		case "select":
			v := f.submitted.Get(in.Name)
			for i := range in.Options {
				in.Options[i].Selected = in.Options[i].Value == v
			}
		default:
			in.Value = f.submitted.Get(in.Name)
		}
	}
	var described []string
	if in.Hint != "" {
		described = append(described, in.ID+"-hint")
	}
	if fes := f.byField[in.Name]; len(fes) > 0 {
		var msgs []string
		for _, fe := range fes {
			msgs = append(msgs, f.message(in.Label, fe))
			if fe.Pos != nil && in.At == nil && f.source != nil {
				in.At = at(f.source(fe.Field), *fe.Pos)
			}
		}
		in.Error = strings.Join(msgs, " ")
		described = append(described, in.ID+"-error")
	}
	in.Described = strings.Join(described, " ")
	f.Inputs = append(f.Inputs, &in)
	return &in
}

// message words a field error as a sentence about the field labelled
// label: "Token URL is required.", "Headers X-Key: is not a valid
// header name.".
func (f *form) message(label string, fe errs.FieldError) string {
	name := fieldOf(fe.Field)
	sub := strings.TrimPrefix(strings.TrimPrefix(fe.Field, "values."), name)
	if sub != "" {
		return sentence(label + " " + describeSub(sub) + ": " + fe.Message)
	}
	for _, verb := range []string{"is ", "must ", "does ", "has ", "needs ", "cannot "} {
		if strings.HasPrefix(fe.Message, verb) {
			return sentence(label + " " + fe.Message)
		}
	}
	return sentence(label + ": " + fe.Message)
}

// describeSub words the part of an API field inside a form field:
// ".X-Key" is "X-Key", "[0].path" is "item 1 path".
func describeSub(sub string) string {
	var b strings.Builder
	for sub != "" {
		switch {
		case sub[0] == '[':
			end := strings.IndexByte(sub, ']')
			if end < 0 {
				b.WriteString(sub)
				return b.String()
			}
			n, err := strconv.Atoi(sub[1:end])
			if err != nil {
				b.WriteString(sub[:end+1])
			} else {
				fmt.Fprintf(&b, "item %d", n+1)
			}
			sub = sub[end+1:]
		case sub[0] == '.':
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			sub = sub[1:]
		default:
			end := strings.IndexAny(sub, ".[")
			if end < 0 {
				end = len(sub)
			}
			b.WriteString(sub[:end])
			sub = sub[end:]
		}
	}
	return b.String()
}

// at returns where pos is in src: a little text on each side and the
// character at pos marked.
func at(src string, pos int) *snippet {
	if pos < 0 || pos > len(src) {
		return nil
	}
	start := max(0, pos-40)
	for start > 0 && !utf8.RuneStart(src[start]) {
		start--
	}
	s := &snippet{Pos: pos, Before: src[start:pos]}
	if start > 0 {
		s.Before = "…" + s.Before
	}
	if pos == len(src) {
		s.Mark = "(end)"
		return s
	}
	_, n := utf8.DecodeRuneInString(src[pos:])
	s.Mark = src[pos : pos+n]
	end := min(len(src), pos+n+40)
	for end < len(src) && !utf8.RuneStart(src[end]) {
		end++
	}
	s.After = src[pos+n : end]
	if end < len(src) {
		s.After += "…"
	}
	return s
}

// Summary lists the form's errors: those of its fields, linked to them,
// in the order the errors came, then those of fields it does not have.
func (f *form) Summary() []formError {
	var out []formError
	for _, g := range f.general {
		out = append(out, formError{Text: g})
	}
	shown := map[string]bool{}
	for _, name := range f.order {
		for _, in := range f.Inputs {
			if in.Name == name && in.Error != "" {
				out = append(out, formError{Target: in.ID, Text: in.Error})
				shown[name] = true
				break
			}
		}
	}
	var rest []string
	for name := range f.byField {
		if !shown[name] {
			rest = append(rest, name)
		}
	}
	sort.Strings(rest)
	for _, name := range rest {
		for _, fe := range f.byField[name] {
			out = append(out, formError{Text: sentence(fe.Field + " " + fe.Message)})
		}
	}
	return out
}

// title is a page title that says first, for screen readers, that the
// form has errors.
func (f *form) title(t string) string {
	if len(f.Summary()) > 0 {
		return "Error: " + t
	}
	return t
}

// formProblem reports whether err is one a form shows (invalid input or
// a clash with stored state) rather than a reason to leave the page.
func formProblem(err error) bool {
	return errs.Is(err, errs.Invalid) || errs.Is(err, errs.Conflict) || errs.Is(err, errs.BadRequest)
}

// sentence makes an API message fragment read as a sentence.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "”") {
		s += "."
	}
	return s
}

// lines splits a textarea into its non-blank lines, trimmed.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// pairs reads "Name: value" lines (headers, query parameters). A line
// without a colon is an error naming field and the line.
func pairs(fs *errs.Fields, field, s string) map[string]string {
	out := map[string]string{}
	for i, l := range lines(s) {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			fs.Add(field, "line %d: write one “Name: value” a line", i+1)
			continue
		}
		out[strings.TrimSpace(name)] = strings.TrimSpace(value)
	}
	return out
}

// showPairs writes m as pairs reads it, sorted by name.
func showPairs(m map[string]string) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "%s: %s\n", k, m[k])
	}
	return b.String()
}

// number reads a whole number field; empty is 0.
func number(fs *errs.Fields, field, s string) int {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		fs.Add(field, "must be a whole number")
	}
	return n
}

// statusOf is the status a page answers err with, as the API would.
func statusOf(err error) int { return httpapi.Status(errs.CodeOf(err)) }

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
