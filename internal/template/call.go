package template

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// A function is one of the fixed set that a placeholder may call.
type function uint8

const (
	fnBase64     function = iota // standard base64 of the arguments
	fnBase64URL                  // URL-safe base64, unpadded
	fnURLEncode                  // url.QueryEscape of the arguments
	fnUnixTime                   // seconds since 1970, no arguments
	fnUnixTimeMS                 // milliseconds since 1970, no arguments
	fnFirst                      // the first argument that is not empty
)

// funcNames is in the order of the package documentation, which errors
// that list the known functions follow.
var funcNames = [...]string{
	fnBase64:     "base64",
	fnBase64URL:  "base64url",
	fnURLEncode:  "urlencode",
	fnUnixTime:   "unix_time",
	fnUnixTimeMS: "unix_time_ms",
	fnFirst:      "first",
}

func (f function) String() string { return funcNames[f] }

func lookupFunc(name string) (function, bool) {
	for f, n := range funcNames {
		if n == name {
			return function(f), true
		}
	}
	return 0, false
}

// takesArgs reports whether f transforms its arguments, and so needs at
// least one; the clock functions take none.
func (f function) takesArgs() bool { return f != fnUnixTime && f != fnUnixTimeMS }

// A call is a function call in a placeholder, or in an argument.
type call struct {
	fn   function
	pos  int // offset of the function name in the source
	args []arg
}

// An arg is one argument of a call: exactly one of name, lit and call is
// set.
type arg struct {
	pos  int    // offset in the source
	name string // a variable
	lit  string // a string literal's content, never empty
	call *call  // a nested call, whose own arguments are not calls
}

// A ref is one use of a variable, as a placeholder or an argument.
type ref struct {
	name string
	pos  int // the placeholder's "<<", or the argument
}

// callParser parses the call in src[i:end], the inside of one tag.
type callParser struct {
	src    string
	i, end int
	refs   []ref // variables, in source order
}

func (p *callParser) errorf(pos int, msg string) error {
	return &Error{Pos: pos, Msg: msg}
}

// call parses name "(" args ")". depth is 0 for a placeholder's call and
// 1 for a call in an argument, which may not hold another: a chain of
// base64 calls grows its output by 4/3 at each level, so unbounded nesting
// would let a short template render gigabytes.
func (p *callParser) call(depth int) (*call, error) {
	pos := p.i
	for p.i < p.end && isIdent(p.src[p.i]) {
		p.i++
	}
	name := p.src[pos:p.i]
	if name == "" {
		return nil, p.errorf(pos, "unexpected "+quoteByte(p.src[pos])+", want a function name")
	}
	fn, ok := lookupFunc(name)
	if !ok {
		return nil, p.errorf(pos, "unknown function "+strconv.Quote(name)+"; known functions are "+strings.Join(funcNames[:], ", "))
	}
	if p.i == p.end || p.src[p.i] != '(' {
		return nil, p.errorf(p.i, `want "(" after function name `+name)
	}
	open := p.i
	p.i++
	c := &call{fn: fn, pos: pos}
	p.spaces()
	for {
		if p.i == p.end {
			return nil, p.errorf(open, `unclosed "("`)
		}
		if p.src[p.i] == ')' {
			p.i++
			break
		}
		if !fn.takesArgs() {
			return nil, p.errorf(p.i, name+" takes no arguments")
		}
		a, err := p.arg(depth)
		if err != nil {
			return nil, err
		}
		c.args = append(c.args, a)
		if p.i < p.end && p.src[p.i] != ' ' && p.src[p.i] != ')' {
			return nil, p.errorf(p.i, "unexpected "+quoteByte(p.src[p.i])+" after an argument; separate arguments with spaces")
		}
		p.spaces()
	}
	if fn.takesArgs() && len(c.args) == 0 {
		return nil, p.errorf(p.i-1, name+" takes at least one argument")
	}
	return c, nil
}

// arg parses a variable name, a string literal or, at depth 0, a call.
func (p *callParser) arg(depth int) (arg, error) {
	pos := p.i
	if p.src[pos] == '"' {
		return p.literal()
	}
	for p.i < p.end && isIdent(p.src[p.i]) {
		p.i++
	}
	name := p.src[pos:p.i]
	if name == "" {
		return arg{}, p.errorf(pos, "unexpected "+quoteByte(p.src[pos])+", want a variable, a string literal or a call")
	}
	if p.i < p.end && p.src[p.i] == '(' {
		if depth > 0 {
			return arg{}, p.errorf(pos, "calls may be nested only one deep")
		}
		p.i = pos
		c, err := p.call(depth + 1)
		return arg{pos: pos, call: c}, err
	}
	if msg := checkName(name); msg != "" {
		return arg{}, p.errorf(pos, msg)
	}
	p.refs = append(p.refs, ref{name: name, pos: pos})
	return arg{pos: pos, name: name}, nil
}

// literal parses a string literal. It has no escapes: its content may not
// hold '"' or '\', nor '<' or '>', so that a tag's end is always the first
// ">>" as fasttemplate finds it, nor control bytes, which could only be a
// mistake. It may not be empty, so that no placeholder renders as nothing,
// as with variables.
func (p *callParser) literal() (arg, error) {
	open := p.i
	for p.i++; p.i < p.end; p.i++ {
		switch c := p.src[p.i]; {
		case c == '"':
			if p.i == open+1 {
				return arg{}, p.errorf(open, "empty string literal")
			}
			p.i++
			return arg{pos: open, lit: p.src[open+1 : p.i-1]}, nil
		case c == '\\' || c == '<' || c == '>' || c < ' ' || c == 0x7f:
			return arg{}, p.errorf(p.i, "string literal may not contain "+quoteByte(c))
		}
	}
	return arg{}, p.errorf(open, "unterminated string literal")
}

func (p *callParser) spaces() {
	for p.i < p.end && p.src[p.i] == ' ' {
		p.i++
	}
}

// isIdent reports whether c may be part of a name. It admits more than
// names allow, so that "Foo(" is reported as an unknown function and
// "A1" as a bad variable name rather than as a stray byte.
func isIdent(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}

// quoteByte quotes c for an error message; the source is not secret.
func quoteByte(c byte) string {
	return strconv.Quote(string([]byte{c}))
}

// usesTime reports whether c reads the clock.
func (c *call) usesTime() bool {
	if !c.fn.takesArgs() {
		return true
	}
	for _, a := range c.args {
		if a.call != nil && a.call.usesTime() {
			return true
		}
	}
	return false
}

// first appends the value of c's first argument that is not empty: a
// variable without a value, or a call that needs one, is skipped, which is
// the point of first (a region's URL, else the default). With none, it is
// a MissingError for the first variable named.
func (c *call) first(b []byte, vars map[string]string, now time.Time) ([]byte, error) {
	var missing error
	for _, a := range c.args {
		start := len(b)
		switch {
		case a.call != nil:
			var err error
			b, err = a.call.eval(b, vars, now)
			if err != nil {
				var m *MissingError
				if !errors.As(err, &m) {
					return b[:start], err
				}
				if missing == nil {
					missing = err
				}
				b = b[:start]
			}
		case a.name != "":
			b = append(b, vars[a.name]...)
			if len(b) == start && missing == nil {
				missing = &MissingError{Name: a.name}
			}
		default:
			b = append(b, a.lit...)
		}
		if len(b) > start {
			return b, nil
		}
	}
	if missing == nil {
		missing = &MissingError{Name: "first"}
	}
	return b, missing
}

// eval appends the result of c to b. The arguments are concatenated at
// the end of b, then replaced by their encoding, so that a render needs
// one scratch buffer however many calls it makes.
func (c *call) eval(b []byte, vars map[string]string, now time.Time) ([]byte, error) {
	switch c.fn {
	case fnUnixTime:
		return strconv.AppendInt(b, now.Unix(), 10), nil
	case fnUnixTimeMS:
		return strconv.AppendInt(b, now.UnixMilli(), 10), nil
	case fnFirst:
		return c.first(b, vars, now)
	}
	start := len(b)
	for _, a := range c.args {
		switch {
		case a.call != nil:
			var err error
			if b, err = a.call.eval(b, vars, now); err != nil {
				return b, err
			}
		case a.name != "":
			v := vars[a.name]
			if v == "" {
				return b, &MissingError{Name: a.name}
			}
			b = append(b, v...)
		default:
			b = append(b, a.lit...)
		}
	}
	// Appending the encoding after the input never overwrites the input:
	// either it fits after it, or append copies b and in keeps the old
	// array.
	in, mid := b[start:], len(b)
	switch c.fn {
	case fnBase64:
		b = base64.StdEncoding.AppendEncode(b, in)
	case fnBase64URL:
		b = base64.RawURLEncoding.AppendEncode(b, in)
	case fnURLEncode:
		for _, x := range in {
			if e := queryEscapes[x]; e != "" {
				b = append(b, e...)
			} else {
				b = append(b, x)
			}
		}
	}
	n := copy(b[start:], b[mid:])
	return b[:start+n], nil
}
