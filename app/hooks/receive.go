package hooks

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/redact"
	"github.com/latchkey/latchkey/settings"
)

// Path is where sources receive events; the source's id follows.
const Path = "/hooks/"

// MaxBodyBytes bounds a provider's request body. Event bodies are a few
// kilobytes; a larger one is refused (413) before anything else is done.
const MaxBodyBytes = 1 << 20

// idLength is the length of every source id: 32 random bytes, base64url
// without padding (secret.NewToken).
const idLength = 43

// maxEcho bounds what a handshake echoes back.
const maxEcho = 4096

// Outcomes counted by Handler.Observe.
const (
	outcomeAccepted   = "accepted"
	outcomeDuplicate  = "duplicate"
	outcomeHandshake  = "handshake"
	outcomeUnverified = "unverified"
	outcomeUnroutable = "unroutable"
	outcomeAmbiguous  = "ambiguous"
	outcomeBadRequest = "bad_request"
	outcomeTooLarge   = "too_large"
	outcomeUnknown    = "unknown_source"
	outcomeLimited    = "rate_limited"
	outcomeError      = "error"
)

// refusal is a request the endpoint turns away, with the outcome it counts as.
type refusal struct {
	outcome string
	err     error
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

func refuse(outcome string, err error) error { return &refusal{outcome: outcome, err: err} }

// receive takes in one request to /hooks/{id}: a source over its rate
// limit is turned away first (429); the body is read whole (bounded) and
// verified as received, before anything in it is read; then a handshake
// is answered, or the event is routed, redacted and queued. Bad input is
// always a 4xx: 401 unverifiable, 404 unknown source or no installation
// matches, 413 too large, 400 a body that cannot be read. Only a failure of
// Latchkey itself (the database) is a 5xx, which providers retry, as they
// retry a 429.
func (h *Handler) receive(c echo.Context) error {
	outcome, err := h.take(c)
	var rf *refusal
	if errors.As(err, &rf) {
		outcome, err = rf.outcome, rf.err
		if outcome == outcomeUnverified {
			// RFC 9110 §11.6.1: a 401 names how to authenticate.
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Signature realm="latchkey-hooks"`)
		}
	} else if err != nil {
		outcome = outcomeError
	}
	if h.Observe != nil {
		h.Observe(outcome)
	}
	return err
}

func (h *Handler) take(c echo.Context) (string, error) {
	ctx := c.Request().Context()
	id := c.Param("source")
	if len(id) != idLength {
		// Not an id Latchkey makes: no need to ask the database.
		return "", refuse(outcomeUnknown, errs.NotFoundf("no such webhook source"))
	}
	// Over the limit, a source is turned away before the database is
	// asked or the body read. A source this process has no bucket for
	// yet gets one once the database says it exists.
	wait, known := h.limit.take(id, false)
	if wait > 0 {
		return "", tooMany(c, wait)
	}
	src, err := h.store.FindByID(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return "", refuse(outcomeUnknown, err)
	} else if err != nil {
		return "", err
	}
	if !known {
		if wait, _ := h.limit.take(src.ID, true); wait > 0 {
			return "", tooMany(c, wait)
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return "", refuse(outcomeTooLarge, errs.New(errs.TooLarge, "the body is larger than %d bytes", MaxBodyBytes))
		}
		return "", refuse(outcomeBadRequest, errs.New(errs.BadRequest, "the body cannot be read"))
	}
	if src.Handshake == Graph {
		// Microsoft Graph checks a subscription's URL with an unsigned
		// POST ?validationToken=..., and wants the token back as
		// text/plain within 10 seconds. Unsigned, it is echoed to the
		// caller only, so it tells the caller nothing it did not send.
		if tok := c.QueryParam("validationToken"); tok != "" {
			if len(tok) > maxEcho || strings.ContainsFunc(tok, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				return "", refuse(outcomeBadRequest, errs.New(errs.BadRequest, "validationToken is too long or has control characters"))
			}
			c.Response().Header().Set("X-Content-Type-Options", "nosniff")
			c.Response().Header().Set("Cache-Control", "no-store")
			return outcomeHandshake, c.String(http.StatusOK, tok)
		}
	}
	r := &request{header: c.Request().Header, body: body, url: h.publicURL + Path + src.ID}

	def, err := h.settings.Definition(ctx, src.AppID, src.Verification.SecretSetting)
	if errs.Is(err, errs.NotFound) {
		h.log.Warn("webhook source names a setting that no longer exists", "app_id", src.AppID, "source", src.Name)
		return "", refuse(outcomeUnverified, unverified("the source's secret setting no longer exists"))
	} else if err != nil {
		return "", err
	}
	var (
		inst   *settings.Installation
		secret string
	)
	if def.Fixed() {
		// One secret for the app: verify before reading anything.
		if secret, _, err = h.settings.FixedValue(ctx, src.AppID, def.Key); err != nil {
			return "", err
		}
	} else {
		// One secret per installation: which one is known only after
		// routing. An event that matches no installation cannot be
		// verified, and says so (401) without telling an unsigned
		// request whether the value it sent belongs to an installation.
		i, err := h.route(ctx, src, r)
		var rf *refusal
		if errors.As(err, &rf) {
			return "", refuse(outcomeUnverified, unverified("no installation's secret applies to this event"))
		} else if err != nil {
			return "", err
		}
		inst = &i
		if secret, _, err = h.settings.OrganizationValue(ctx, i, def.Key); err != nil {
			return "", err
		}
	}
	if err := src.Verification.verify(secret, r, h.now()); err != nil {
		h.log.Info("webhook refused", "app_id", src.AppID, "source", src.Name, "reason", errs.MessageOf(err))
		return "", refuse(outcomeUnverified, err)
	}

	if answered, err := h.handshake(c, src, r, secret); answered || err != nil {
		return outcomeHandshake, err
	}
	if inst == nil {
		i, err := h.route(ctx, src, r)
		if err != nil {
			return "", err
		}
		inst = &i
	}
	data := EventData{SourceID: src.ID, InstallationID: inst.ID, OrganizationID: inst.OrganizationID}
	if data.UserID, err = h.routeUser(ctx, src, r, *inst); err != nil {
		return "", err
	}
	red, err := h.redactor(ctx, secret, *inst, data.UserID)
	if err != nil {
		return "", err
	}
	// Everything of the provider's that is stored and sent on passes the
	// redactor, the event id too: it is the key of the repeat check's row.
	eventType, _ := h.field(r, src.EventType)
	eventID, _ := h.field(r, src.EventID)
	contentType := r.header.Get("Content-Type")
	sent := red.String(string(r.body))
	data.EventType, data.EventID, data.ContentType = red.String(eventType), red.String(eventID), red.String(contentType)
	data.Redacted = sent != string(r.body) || data.EventType != eventType || data.EventID != eventID || data.ContentType != contentType
	data.Body, data.BodyEncoding = bodyText([]byte(sent))
	dup, err := h.store.Accept(ctx, src, data)
	if err != nil {
		return "", err
	}
	if dup {
		return outcomeDuplicate, c.JSON(http.StatusOK, map[string]string{"status": "duplicate"})
	}
	return outcomeAccepted, c.JSON(http.StatusOK, map[string]string{"status": "accepted"})
}

// tooMany answers a source over its rate limit: 429 with Retry-After in
// whole seconds (RFC 9110 §10.2.3), rounded up so that a provider that
// waits that long finds the bucket holding its request again.
func tooMany(c echo.Context, wait time.Duration) error {
	secs := int((wait + time.Second - 1) / time.Second)
	c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
	return refuse(outcomeLimited, errs.New(errs.TooMany, "the webhook source gets more requests than it takes; try again in %d seconds", secs))
}

// redactor returns the redactor for one event: every secret Latchkey
// knows in its context, which a provider may echo (Graph puts the
// clientState in every notification; an error event may quote what it
// was sent). Those are the source's verification secret, and the secret
// values of the installation the event was routed to (the app's hidden
// secrets, every source's signing secret among them, and the
// organization's secret settings) and of its user, when it has one (the
// user's tokens). A value that cannot be read fails the event (5xx, which
// the provider retries): it is never sent on unredacted.
func (h *Handler) redactor(ctx context.Context, secret string, inst settings.Installation, userID string) (*redact.Redactor, error) {
	res, err := h.settings.Resolve(ctx, inst, userID)
	if err != nil {
		return nil, err
	}
	r := redact.New(secret)
	for k, v := range res.Values {
		if res.Secret[k] {
			r.Add(v)
		}
	}
	return r, nil
}

// field returns the value at l, bounded: event types and ids are short.
func (h *Handler) field(r *request, l Locator) (string, bool) {
	if l.IsZero() {
		return "", false
	}
	v, ok := r.find(l)
	if !ok || len(v) > 1000 {
		return "", false
	}
	return v, true
}

// route finds the one installation of the source's app whose routing
// setting holds the event's value. None is a 404 (outcome unroutable);
// more than one is a 404 too (outcome ambiguous): an event goes to one
// installation or none, never to an organization that merely claims the
// same value.
func (h *Handler) route(ctx context.Context, src Source, r *request) (settings.Installation, error) {
	rt := src.Routing.Organization
	v, ok := r.find(rt.Locator)
	if !ok {
		if _, err := r.document(); err != nil && rt.Path != "" {
			return settings.Installation{}, refuse(outcomeBadRequest, err)
		}
		return settings.Installation{}, refuse(outcomeUnroutable, errs.NotFoundf("the event has no value where the source's routing looks (%s)", where(rt.Locator)))
	}
	insts, err := h.settings.InstallationsByValue(ctx, src.AppID, rt.Setting, v, 2)
	switch {
	case err != nil:
		return settings.Installation{}, err
	case len(insts) == 0:
		return settings.Installation{}, refuse(outcomeUnroutable, errs.NotFoundf("no installation's setting %q matches the event", rt.Setting))
	case len(insts) > 1:
		h.log.Warn("webhook event matches several installations; not delivered", "app_id", src.AppID, "source", src.Name, "setting", rt.Setting)
		return settings.Installation{}, refuse(outcomeAmbiguous, errs.NotFoundf("more than one installation's setting %q matches the event; it is delivered to none", rt.Setting))
	}
	return insts[0], nil
}

// routeUser returns the installation's one user whose routing setting
// holds the event's value, or "": the event then belongs to the
// installation only (many events concern no user, and a value that two
// users share names neither).
func (h *Handler) routeUser(ctx context.Context, src Source, r *request, inst settings.Installation) (string, error) {
	rt := src.Routing.User
	if rt == nil {
		return "", nil
	}
	v, ok := r.find(rt.Locator)
	if !ok {
		return "", nil
	}
	users, err := h.settings.UsersByValue(ctx, inst.ID, rt.Setting, v, 2)
	if err != nil || len(users) != 1 {
		return "", err
	}
	return users[0], nil
}

func where(l Locator) string {
	if l.Header != "" {
		return "header " + l.Header
	}
	return l.Path
}

// handshake answers a provider's URL check, which comes signed like an
// event (Slack, Zoom). answered is false for any other request. What it
// echoes goes back only to the sender that signed it, and is neither
// stored nor logged, so it is not redacted: it holds nothing Latchkey
// adds, and a challenge changed by the redactor would fail the check.
func (h *Handler) handshake(c echo.Context, src Source, r *request, secret string) (answered bool, err error) {
	switch src.Handshake {
	case Slack:
		// https://api.slack.com/events/url_verification
		if typ, _ := r.find(Locator{Path: "$.type"}); typ != "url_verification" {
			return false, nil
		}
		challenge, ok := r.find(Locator{Path: "$.challenge"})
		if !ok || len(challenge) > maxEcho {
			return true, refuse(outcomeBadRequest, errs.New(errs.BadRequest, "the url_verification has no challenge of at most %d bytes", maxEcho))
		}
		return true, c.JSON(http.StatusOK, map[string]string{"challenge": challenge})
	case Zoom:
		// https://developers.zoom.us/docs/api/webhooks/#validate-your-webhook-endpoint
		if ev, _ := r.find(Locator{Path: "$.event"}); ev != "endpoint.url_validation" {
			return false, nil
		}
		plain, ok := r.find(Locator{Path: "$.payload.plainToken"})
		if !ok || len(plain) > maxEcho {
			return true, refuse(outcomeBadRequest, errs.New(errs.BadRequest, "the endpoint.url_validation has no plainToken of at most %d bytes", maxEcho))
		}
		return true, c.JSON(http.StatusOK, map[string]string{"plainToken": plain, "encryptedToken": zoomToken(secret, plain)})
	}
	return false, nil
}
