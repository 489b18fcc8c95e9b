package token

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/outbound"
	"github.com/latchkey/latchkey/internal/redact"
	"github.com/latchkey/latchkey/internal/template"
	"github.com/latchkey/latchkey/oauthconfig"
)

// Stepped is what a config's steps gave: the values their mappings
// extracted (setting -> value) and, when a step replaced them, the tokens.
type Stepped struct {
	Values   map[string]string
	Token    Token // the tokens the steps end with: the token request's, or a step's
	Replaced bool  // a step gave new tokens
	// Problems are what the steps' answers got wrong besides what fails a
	// step (a malformed expires_in), safe to show; the tokens are stored
	// anyway, as a token request's are.
	Problems []string
}

// StepError is a step that failed; Step is its name (IdentityStepName for
// the identity request).
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

// RunSteps sends steps in order after a token request that gave tok.
// vars are the settings with tok in place; each step sees what the steps
// before it stored, and a step's new tokens replace tok for the next.
// It returns what the steps gave up to the one that failed, so that a
// token a step obtained is stored even when a later step fails; the error
// is then a *StepError wrapping an *errs.Error (Invalid when a request
// cannot be rendered, Timeout, or Upstream naming what the answer lacked).
func (tc *Client) RunSteps(ctx context.Context, cfg *oauthconfig.Config, steps []oauthconfig.Step, vars Vars, tok Token, meta LogMeta) (Stepped, error) {
	out := Stepped{Values: map[string]string{}, Token: tok}
	values := make(map[string]string, len(vars.Values)+4)
	for k, v := range vars.Values {
		values[k] = v
	}
	vars.Values = values
	for _, s := range steps {
		got, next, err := tc.step(ctx, cfg, s, vars, out.Token, meta)
		if err != nil {
			return out, &StepError{Step: s.Name, Err: err}
		}
		for k, v := range got {
			out.Values[k] = v
			values[k] = v
		}
		if s.ReplacesTokens() {
			out.Problems = append(out.Problems, next.Problems...)
			next.Problems = nil
			out.Token, out.Replaced = next, true
			values[cfg.AccessTokenSetting] = next.AccessToken
			if cfg.RefreshTokenSetting != "" && next.RefreshToken != "" {
				values[cfg.RefreshTokenSetting] = next.RefreshToken
			}
		}
	}
	return out, nil
}

// Identify sends the config's identity request with values (the settings
// and the fresh tokens) and returns the mapped values of its answer,
// setting -> value. Errors are *errs.Error: Invalid when the request cannot
// be rendered, Timeout, or Upstream naming what the answer lacked.
func (tc *Client) Identify(ctx context.Context, cfg *oauthconfig.Config, vars Vars, meta LogMeta) (map[string]string, error) {
	s, ok := cfg.IdentityStep()
	if !ok {
		return nil, errs.New(errs.Invalid, "OAuth config %q has no identity request (identity_url)", cfg.Name)
	}
	got, _, err := tc.step(ctx, cfg, s, vars, Token{}, meta)
	return got, err
}

// step sends one step and reads its answer: the mapped values and, for a
// step with token paths, tok with what the answer replaced.
func (tc *Client) step(ctx context.Context, cfg *oauthconfig.Config, s oauthconfig.Step, vars Vars, tok Token, meta LogMeta) (map[string]string, Token, error) {
	n := namesOf(s)
	meta.Kind = "step"
	if s.Name == oauthconfig.IdentityStepName {
		meta.Kind = "identity"
	}
	r0, err := BuildStepRequest(s, vars, false)
	if err != nil {
		return nil, tok, err
	}
	req, err := http.NewRequestWithContext(ctx, r0.Method, r0.URL, strings.NewReader(r0.Body))
	if err != nil {
		return nil, tok, errs.New(errs.Invalid, "%surl is not a valid URL", n.field)
	}
	req.Header = r0.Header
	hc, err := WithCertificate(tc.http, cfg, vars.Values)
	if err != nil {
		tc.observe(cfg, meta.Kind, err)
		return nil, tok, err
	}
	start := tc.now()
	r := newRedactor(vars, tok, req.Header)
	status, header, respBody, out, next, err := tc.sendStep(hc, cfg, s, n, req, r, vars, tok)
	tc.observe(cfg, meta.Kind, err)
	for setting, v := range out {
		if vars.IsSecret(setting) {
			r.Add(v) // mapped into a secret setting: not for the log
		}
	}
	r.Add(next.AccessToken)
	r.Add(next.RefreshToken)
	err = redactError(err, r)
	if tc.log != nil && cfg.LogRequests {
		e := &Entry{ConfigID: cfg.ID, InstallationID: meta.InstallationID, UserID: meta.UserID, Kind: meta.Kind,
			Method: r0.Method, URL: r.String(r0.URL), RequestHeader: r.Header(req.Header), RequestBody: r.String(r0.Body),
			Status: status, ResponseHeader: r.Header(header), ResponseBody: r.Body(respBody), Duration: tc.now().Sub(start)}
		if err != nil {
			e.Error = err.Error()
		}
		tc.log.Record(context.WithoutCancel(ctx), e)
	}
	return out, next, err
}

// BuildStepRequest renders a step's request for vars; with mask set,
// secret values show as ****, for explaining it to a developer.
func BuildStepRequest(s oauthconfig.Step, vars Vars, mask bool) (Request, error) {
	field := namesOf(s).field
	render := func(name, src string, ctx template.Context) (string, error) {
		return RenderField("config field "+field+name, field+name, src, ctx, vars, mask)
	}
	req := Request{Method: s.Method, Header: http.Header{}}
	var err error
	if req.URL, err = render("url", s.URL, template.URL); err != nil {
		return Request{}, err
	}
	if s.Body != "" {
		if req.Body, err = render("body", s.Body, s.BodyContext()); err != nil {
			return Request{}, err
		}
		req.Header.Set("Content-Type", s.ContentType)
	}
	req.Header.Set("Accept", "application/json")
	if err := renderHeaders(req.Header, s.Headers, render); err != nil {
		return Request{}, err
	}
	return req, nil
}

func namesOf(s oauthconfig.Step) stepNames {
	if s.Name == oauthconfig.IdentityStepName {
		return stepNames{what: "the identity request", answer: "the identity response", field: "identity_"}
	}
	return stepNames{what: fmt.Sprintf("step %q", s.Name), answer: fmt.Sprintf("the answer to step %q", s.Name),
		field: fmt.Sprintf("steps[%s].", s.Name)}
}

// stepNames are how messages name a step, its answer and its fields.
type stepNames struct{ what, answer, field string }

// sendStep sends a step's request through hc, the outbound client with
// cfg's client certificate, if any, and reads its answer.
func (tc *Client) sendStep(hc *outbound.Client, cfg *oauthconfig.Config, s oauthconfig.Step, n stepNames, req *http.Request, r *redact.Redactor, vars Vars, tok Token) (int, http.Header, []byte, map[string]string, Token, error) {
	resp, err := hc.Do(req)
	if err != nil {
		var blocked *outbound.BlockedError
		switch {
		case cfg.ClientCertSetting != "" && outbound.CertificateRefused(err):
			return 0, nil, nil, nil, tok, certificateRefused(cfg, "the server of "+n.what, err)
		case errors.As(err, &blocked):
			return 0, nil, nil, nil, tok, errs.New(errs.Upstream, "the %surl is refused: %s", n.field, blocked.Error())
		case outbound.IsTimeout(err):
			return 0, nil, nil, nil, tok, errs.New(errs.Timeout, "%s did not answer in time", n.what)
		}
		// The URL is left out: it may carry a value from a setting.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, nil, nil, tok, errs.New(errs.Upstream, "%s failed: %v", n.what, err)
	}
	body, err := hc.ReadAll(resp)
	if err != nil {
		return resp.StatusCode, resp.Header, nil, nil, tok, errs.Wrap(errs.Upstream, err, "%s cannot be read", n.answer)
	}
	fail := func(format string, args ...any) (int, http.Header, []byte, map[string]string, Token, error) {
		return resp.StatusCode, resp.Header, body, nil, tok, errs.New(errs.Upstream, format, args...)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fail("%s was answered %d%s", n.what, resp.StatusCode, excerpt(r, body))
	}
	if len(s.Mappings) == 0 && !s.ReplacesTokens() {
		return resp.StatusCode, resp.Header, body, map[string]string{}, tok, nil // nothing to read: a 2xx is the answer
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	doc, err := decodeAny(mt, body)
	if err != nil {
		return fail("%s is not JSON: %v", n.answer, err)
	}
	out := make(map[string]string, len(s.Mappings))
	for i, m := range s.Mappings {
		path, err := pathFor(m.Path, vars)
		if err != nil {
			return resp.StatusCode, resp.Header, body, nil, tok, errs.New(errs.Invalid, "%smappings[%d].path: %v", n.field, i, err)
		}
		v, ok, err := LookupString(path, doc)
		if err != nil || !ok {
			if m.Required || err != nil {
				return fail("%smappings[%d]: %s has no value at %s", n.field, i, n.answer, m.Path)
			}
			continue // not required: the stored value stays
		}
		out[m.Setting] = v
	}
	next := tok
	next.Problems = nil
	if s.AccessTokenPath != "" {
		v, ok, err := LookupString(s.AccessTokenPath, doc)
		if err != nil || !ok || v == "" {
			return fail("%s has no access token at %s", n.answer, s.AccessTokenPath)
		}
		next.AccessToken = v
		next.ExpiresIn = 0 // a new token's lifetime is its own
	}
	if s.RefreshTokenPath != "" {
		if v, ok, _ := LookupString(s.RefreshTokenPath, doc); ok && v != "" {
			next.RefreshToken = v
		}
	}
	if s.ExpiresInPath != "" {
		if v, ok, _ := lookup(s.ExpiresInPath, doc); ok && v != nil {
			// A token the step obtained is never dropped for its
			// lifetime: a malformed one gets the default, as a token
			// request's does.
			if secs, err := strconv.ParseFloat(fmt.Sprint(v), 64); err != nil || secs < 0 || secs > 1e10 {
				next.Problems = append(next.Problems, fmt.Sprintf("%s: expires_in at %s is not a number of seconds; the default lifetime is assumed", n.answer, s.ExpiresInPath))
			} else {
				next.ExpiresIn = int64(secs)
			}
		}
	}
	return resp.StatusCode, resp.Header, body, out, next, nil
}
