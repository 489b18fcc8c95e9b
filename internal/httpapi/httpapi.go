// Package httpapi is the HTTP plumbing every feature package shares: the Echo
// instance with its middleware, strict JSON binding, and the one place where
// an errs.Code becomes an HTTP status and an application/problem+json body
// (RFC 9457).
package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/metrics"
)

// MaxBodyBytes is the largest request body Bind reads.
const MaxBodyBytes = 1 << 20

// RetryAfter is the Retry-After header of 503 answers (RFC 9110 §10.2.3),
// in seconds.
const RetryAfter = "5"

// ProblemContentType is the media type of error responses (RFC 9457 §3).
const ProblemContentType = "application/problem+json"

// Problem is the body of every error response.
type Problem struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Detail    string            `json:"detail"`
	Code      errs.Code         `json:"code"`
	Errors    []errs.FieldError `json:"errors,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	// AuthorizeURL comes with reauthorization_required: where the end
	// user connects the account again.
	AuthorizeURL string `json:"authorize_url,omitempty"`
}

var statusOf = map[errs.Code]int{
	errs.Invalid:            http.StatusUnprocessableEntity,
	errs.BadRequest:         http.StatusBadRequest,
	errs.TooLarge:           http.StatusRequestEntityTooLarge,
	errs.TooMany:            http.StatusTooManyRequests,
	errs.Unauthorized:       http.StatusUnauthorized,
	errs.Forbidden:          http.StatusForbidden,
	errs.NotFound:           http.StatusNotFound,
	errs.Conflict:           http.StatusConflict,
	errs.Reauthorize:        http.StatusConflict,
	errs.ConfigurationError: http.StatusConflict,
	errs.NotAllowed:         http.StatusMethodNotAllowed,
	errs.Gone:               http.StatusGone,
	errs.Upstream:           http.StatusBadGateway,
	errs.Timeout:            http.StatusGatewayTimeout,
	errs.Unavailable:        http.StatusServiceUnavailable,
	errs.Internal:           http.StatusInternalServerError,
}

// Status returns the HTTP status for an error code.
func Status(code errs.Code) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// New returns an Echo instance with Latchkey's error handler, request ids,
// request logging, metrics (m may be nil) and panic recovery.
func New(log *slog.Logger, m *metrics.Metrics) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler(log)
	e.JSONSerializer = jsonSerializer{}
	e.Use(requestID)
	e.Use(measure(m))
	e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus:    true,
		LogLatency:   true,
		LogMethod:    true,
		LogRoutePath: true,
		HandleError:  true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			// The route pattern, not the URI: paths carry user ids and
			// queries may carry codes and states.
			log.LogAttrs(c.Request().Context(), slog.LevelInfo, "request",
				slog.String("method", v.Method),
				slog.String("route", v.RoutePath),
				slog.Int("status", v.Status),
				slog.Duration("latency", v.Latency),
				slog.String("request_id", RequestID(c)),
			)
			return nil
		},
	}))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableStackAll: true}))
	return e
}

// measure records each request in m by route pattern (never the path,
// which carries ids). Requests that match no route count as "unmatched",
// so probing random paths cannot grow the label set.
func measure(m *metrics.Metrics) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			status := c.Response().Status
			if err != nil && !c.Response().Committed {
				status = ProblemFor(err).Status // what the error handler will answer
			}
			route := c.Path()
			if route == "" || isEchoNotFound(err) {
				route = "unmatched"
			}
			m.Request(route, c.Request().Method, status, time.Since(start))
			return err
		}
	}
}

func isEchoNotFound(err error) bool {
	var he *echo.HTTPError
	return errors.As(err, &he) && he.Code == http.StatusNotFound
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// requestID keeps a caller's X-Request-Id when it is a plain token, and
// otherwise makes one, so logs cannot be forged through the header.
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !requestIDPattern.MatchString(id) {
			b := make([]byte, 12)
			rand.Read(b)
			id = hex.EncodeToString(b)
		}
		c.Set("request_id", id)
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

// RequestID returns the id of the request being served.
func RequestID(c echo.Context) string {
	id, _ := c.Get("request_id").(string)
	return id
}

func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		p := ProblemFor(err)
		p.RequestID = RequestID(c)
		if p.Status >= 500 {
			log.LogAttrs(c.Request().Context(), slog.LevelError, "request failed",
				slog.String("request_id", p.RequestID),
				slog.String("route", c.Path()),
				slog.String("error", err.Error()),
			)
		}
		if p.Status == http.StatusServiceUnavailable {
			// The database is down or restarting: the pool reconnects on
			// the next request, so a client may try again soon.
			c.Response().Header().Set("Retry-After", RetryAfter)
		}
		c.Response().Header().Set(echo.HeaderContentType, ProblemContentType)
		c.Response().WriteHeader(p.Status)
		if c.Request().Method != http.MethodHead {
			enc := json.NewEncoder(c.Response())
			enc.SetEscapeHTML(false)
			enc.Encode(p)
		}
	}
}

// jsonSerializer is Echo's default without HTML escaping: answers are read
// by programs and by developers writing <<var>> templates and URLs with &,
// who should see them as written, not as \u003c\u003cvar\u003e\u003e.
// Nothing here is embedded in HTML, and every answer is application/json.
type jsonSerializer struct{}

func (jsonSerializer) Serialize(c echo.Context, v any, indent string) error {
	enc := json.NewEncoder(c.Response())
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	return enc.Encode(v)
}

func (jsonSerializer) Deserialize(c echo.Context, v any) error {
	return echo.DefaultJSONSerializer{}.Deserialize(c, v)
}

// ProblemFor converts any error into the problem document sent to the caller.
// Only the messages of *errs.Error values are shown; other errors become a
// generic internal error.
func ProblemFor(err error) Problem {
	var he *echo.HTTPError
	if errors.As(err, &he) && !errors.As(err, new(*errs.Error)) {
		// Errors raised by Echo itself: unknown route, wrong method.
		msg := http.StatusText(he.Code)
		switch he.Code {
		case http.StatusNotFound:
			msg = "no such route"
		case http.StatusMethodNotAllowed:
			msg = "method not allowed on this route"
		case http.StatusRequestEntityTooLarge:
			msg = fmt.Sprintf("request body is larger than %d bytes", MaxBodyBytes)
		}
		return problem(he.Code, codeForStatus(he.Code), msg, nil)
	}
	var e *errs.Error
	if !errors.As(err, &e) {
		return problem(http.StatusInternalServerError, errs.Internal, "internal error", nil)
	}
	msg := e.Message
	if e.Code == errs.Internal && msg == "" {
		msg = "internal error"
	}
	p := problem(Status(e.Code), e.Code, msg, e.Fields)
	p.AuthorizeURL = e.AuthorizeURL
	return p
}

func problem(status int, code errs.Code, detail string, fields []errs.FieldError) Problem {
	return Problem{
		Type:   "about:blank",
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Code:   code,
		Errors: fields,
	}
}

func codeForStatus(status int) errs.Code {
	if status == http.StatusConflict {
		return errs.Conflict // not Reauthorize, which shares the status
	}
	for code, s := range statusOf {
		if s == status {
			return code
		}
	}
	if status >= 500 {
		return errs.Internal
	}
	return errs.BadRequest
}

// Bind decodes the JSON request body into dst strictly: the body must be
// JSON, at most MaxBodyBytes, one value, with no unknown fields and the right
// types. It returns an errs.BadRequest, errs.TooLarge or errs.Invalid error
// naming what is wrong; it never echoes a value from the body.
func Bind(c echo.Context, dst any) error {
	req := c.Request()
	if mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType)); err != nil || mt != echo.MIMEApplicationJSON {
		return errs.New(errs.BadRequest, "Content-Type must be application/json")
	}
	body := http.MaxBytesReader(c.Response(), req.Body, MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return decodeError(err)
		}
		return errs.New(errs.BadRequest, "request body must hold a single JSON value")
	}
	return nil
}

func decodeError(err error) error {
	var (
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
		tooLarge *http.MaxBytesError
	)
	switch {
	case errors.As(err, &tooLarge):
		return errs.New(errs.TooLarge, "request body is larger than %d bytes", tooLarge.Limit)
	case errors.As(err, &syntax):
		return errs.New(errs.BadRequest, "request body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.Is(err, io.EOF):
		return errs.New(errs.BadRequest, "request body is empty; want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errs.New(errs.BadRequest, "request body is not valid JSON (it ends too early)")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return errs.New(errs.BadRequest, "request body must be a JSON object")
		}
		var fs errs.Fields
		fs.Add(field, "must be %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value)
		return fs.Err()
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		var fs errs.Fields
		fs.Add(name, "unknown field")
		return fs.Err()
	}
	return errs.New(errs.BadRequest, "request body cannot be read")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int32", "int64", "uint", "uint32", "uint64", "float64", "float32":
		return "a number"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	}
	return "of another type"
}

// Param returns a path parameter, unescaped, or an error if it is not valid
// UTF-8 text of at most 255 bytes.
func Param(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if u, err := url.PathUnescape(v); err == nil {
		v = u
	}
	if v == "" || len(v) > 255 || strings.ContainsAny(v, "\x00\r\n") {
		return "", errs.New(errs.BadRequest, "path parameter %s is empty, too long or has control characters", name)
	}
	return v, nil
}
