// Package errs is Latchkey's one error vocabulary. Stores and services
// return *Error values; the HTTP layer maps each Code to a status in one
// place (internal/httpapi) and answers application/problem+json (RFC 9457).
//
// Messages are shown to callers, so they must never contain a secret or
// a setting's value. Internal causes go in Err, which is logged, never shown.
package errs

import (
	"errors"
	"fmt"
	"strings"
)

// Code classifies an error. Each code maps to one HTTP status.
type Code string

const (
	Invalid      Code = "invalid"                  // 422: the request is well-formed but its content is wrong
	BadRequest   Code = "bad_request"              // 400: the request cannot be read (bad JSON, wrong types)
	TooLarge     Code = "too_large"                // 413: the request body is over the limit
	TooMany      Code = "too_many_requests"        // 429: over a rate limit; try again after Retry-After
	Unauthorized Code = "unauthorized"             // 401: no or unknown API key
	Forbidden    Code = "forbidden"                // 403
	NotFound     Code = "not_found"                // 404: missing, or owned by another account
	Conflict     Code = "conflict"                 // 409: the change clashes with stored state
	Reauthorize  Code = "reauthorization_required" // 409: the user must connect the account again
	// ConfigurationError, 409: the provider refused the installation's
	// client credentials; its organization must fix its settings.
	ConfigurationError Code = "configuration_error"
	NotAllowed         Code = "method_not_allowed" // 405: the API does not allow this method
	Gone               Code = "gone"               // 410: expired or already used (links, states)
	Upstream           Code = "upstream"           // 502: a provider answered wrongly
	Timeout            Code = "timeout"            // 504: a provider did not answer in time
	Unavailable        Code = "unavailable"        // 503: a dependency (the database) is down
	Internal           Code = "internal"           // 500: a bug or an unexpected failure
)

// FieldError names one bad input field. Field is a dotted path into the
// request ("values.client_id", "link_url"); Pos is a byte offset inside the
// field's text when the problem is at a known place, or -1.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
	Pos     *int   `json:"position,omitempty"`
}

// Error is the error type every package returns to its callers.
type Error struct {
	Code    Code
	Message string       // safe to show
	Fields  []FieldError // for Invalid: every bad field
	Err     error        // internal cause: logged, never shown

	// AuthorizeURL, for Reauthorize, is a fresh link where the end user
	// can connect again.
	AuthorizeURL string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "; %s: %s", f.Field, f.Message)
	}
	if e.Err != nil && !shown(e.Err) {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Shown is implemented by causes that carry facts for callers (found with
// errors.As) whose text the Message already gives, such as a provider's
// refusal: Error leaves them out rather than say it twice.
type Shown interface {
	error
	ShownInMessage()
}

func shown(err error) bool {
	_, ok := err.(Shown)
	return ok
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an Error with code and a formatted message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an Error whose message is shown and whose cause err is only
// logged. When err is, or wraps, an Unavailable error, Wrap returns that
// instead (see unavailable).
func Wrap(code Code, err error, format string, args ...any) *Error {
	if u := unavailable(err); u != nil {
		return u
	}
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// unavailable returns the Unavailable error in err's chain, or nil. An
// outage stays Unavailable however a caller wraps it: it is what tells a
// client to try again later (503) rather than report a bug (500).
// internal/database makes such errors from the driver's.
func unavailable(err error) *Error {
	for e := (*Error)(nil); errors.As(err, &e); err = e.Err {
		if e.Code == Unavailable {
			return e
		}
	}
	return nil
}

// NotFoundf is shorthand for a NotFound error naming what was not found.
func NotFoundf(format string, args ...any) *Error {
	return New(NotFound, format, args...)
}

// Fields collects field errors while validating a request.
type Fields []FieldError

// Add records that field is wrong.
func (fs *Fields) Add(field, format string, args ...any) {
	*fs = append(*fs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// AddAt records that field is wrong at byte offset pos of its text.
func (fs *Fields) AddAt(field string, pos int, format string, args ...any) {
	p := pos
	*fs = append(*fs, FieldError{Field: field, Message: fmt.Sprintf(format, args...), Pos: &p})
}

// Err returns nil when no field was added, or an Invalid error listing them all.
func (fs Fields) Err() error {
	if len(fs) == 0 {
		return nil
	}
	return &Error{Code: Invalid, Message: "the request has invalid fields", Fields: fs}
}

// CodeOf returns the code of err, Internal for errors that are not *Error,
// and "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// MessageOf returns the part of err that is safe to show: the Message of
// an *Error, "internal error" for anything else.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// Is reports whether err is an *Error with the given code.
func Is(err error, code Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// From returns err unchanged when it is nil or already an *Error, and
// otherwise wraps it as an Internal error whose message says what failed.
// Stores use it so a driver error never reaches a caller as is.
func From(err error, what string) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Code: Internal, Message: what + " failed", Err: err}
}

// Added returns the field errors of after that before does not have (the
// same field with the same message). Given one validation run before a
// change and one after it, they are what the change breaks; errors that
// were there already, under rules newer than the thing validated, are
// not the change's doing. Either error may be nil.
func Added(before, after error) []FieldError {
	fields := func(err error) []FieldError {
		var e *Error
		if errors.As(err, &e) {
			return e.Fields
		}
		return nil
	}
	had := make(map[[2]string]bool)
	for _, f := range fields(before) {
		had[[2]string{f.Field, f.Message}] = true
	}
	var out []FieldError
	for _, f := range fields(after) {
		if !had[[2]string{f.Field, f.Message}] {
			out = append(out, f)
		}
	}
	return out
}
