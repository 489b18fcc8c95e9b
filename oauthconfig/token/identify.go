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

// Identify sends the config's identity request with values (the settings
// and the fresh tokens) and returns the mapped values of its answer,
// setting -> value. Errors are *errs.Error: Invalid when the request cannot
// be rendered, Timeout, or Upstream naming what the answer lacked.
func (tc *Client) Identify(ctx context.Context, cfg *oauthconfig.Config, vars Vars, meta LogMeta) (map[string]string, error) {
	meta.Kind = "identity"
	render := func(field, src string, ctx template.Context) (string, error) {
		return RenderField("config field "+field, field, src, ctx, vars, false)
	}
	u, err := render("identity_url", cfg.IdentityURL, template.URL)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, cfg.IdentityMethod, u, nil)
	if err != nil {
		return nil, errs.New(errs.Invalid, "identity_url is not a valid URL")
	}
	req.Header.Set("Accept", "application/json")
	for name, src := range cfg.IdentityHeaders {
		v, err := render("identity_headers."+name, src, template.Header)
		if errors.Is(err, template.ErrOmitted) {
			continue
		}
		if err != nil {
			return nil, err
		}
		req.Header.Set(name, v)
	}
	hc, err := WithCertificate(tc.http, cfg, vars.Values)
	if err != nil {
		tc.observe(cfg, meta.Kind, err)
		return nil, err
	}
	start := tc.now()
	r := newRedactor(vars, Token{}, req.Header)
	status, header, body, out, err := tc.identify(hc, cfg, req, r, vars)
	tc.observe(cfg, meta.Kind, err)
	for setting, v := range out {
		if vars.IsSecret(setting) {
			r.Add(v) // mapped into a secret setting: not for the log
		}
	}
	err = redactError(err, r)
	if tc.log != nil && cfg.LogRequests {
		e := &Entry{ConfigID: cfg.ID, InstallationID: meta.InstallationID, UserID: meta.UserID, Kind: meta.Kind,
			Method: req.Method, URL: r.String(u), RequestHeader: r.Header(req.Header), Status: status,
			ResponseHeader: r.Header(header), ResponseBody: r.Body(body), Duration: tc.now().Sub(start)}
		if err != nil {
			e.Error = err.Error()
		}
		tc.log.Record(context.WithoutCancel(ctx), e)
	}
	return out, err
}

func (tc *Client) identify(hc *outbound.Client, cfg *oauthconfig.Config, req *http.Request, r *redact.Redactor, vars Vars) (int, http.Header, []byte, map[string]string, error) {
	resp, err := hc.Do(req)
	if err != nil {
		var blocked *outbound.BlockedError
		switch {
		case cfg.ClientCertSetting != "" && outbound.CertificateRefused(err):
			return 0, nil, nil, nil, certificateRefused(cfg, "the identity URL", err)
		case errors.As(err, &blocked):
			return 0, nil, nil, nil, errs.New(errs.Upstream, "the identity URL is refused: %s", blocked.Error())
		case outbound.IsTimeout(err):
			return 0, nil, nil, nil, errs.New(errs.Timeout, "the identity request did not answer in time")
		}
		// The URL is left out: it may carry a value from a setting.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, nil, nil, errs.New(errs.Upstream, "the identity request failed: %v", err)
	}
	body, err := hc.ReadAll(resp)
	if err != nil {
		return resp.StatusCode, resp.Header, nil, nil, errs.Wrap(errs.Upstream, err, "the identity response cannot be read")
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, resp.Header, body, nil, errs.New(errs.Upstream, "the identity request was answered %d%s", resp.StatusCode, excerpt(r, body))
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	doc, err := decodeAny(mt, body)
	if err != nil {
		return resp.StatusCode, resp.Header, body, nil, errs.New(errs.Upstream, "the identity response is not JSON: %v", err)
	}
	out := make(map[string]string, len(cfg.IdentityMappings))
	for i, m := range cfg.IdentityMappings {
		path, err := pathFor(m.Path, vars)
		if err != nil {
			return resp.StatusCode, resp.Header, body, nil, errs.New(errs.Invalid, "identity_mappings[%d].path: %v", i, err)
		}
		v, ok, err := LookupString(path, doc)
		if err != nil || !ok {
			return resp.StatusCode, resp.Header, body, nil, errs.New(errs.Upstream, "identity_mappings[%d]: the identity response has no value at %s", i, m.Path)
		}
		out[m.Setting] = v
	}
	return resp.StatusCode, resp.Header, body, out, nil
}

// pathFor renders a mapping's JSONPath that names settings, as in
// $[?(@.url == "<<site_url>>")].id, which picks the entry of a list that
// belongs to the installation. Each value is escaped for the string
// literal it sits in, so it can only ever be compared, never change the
// path.
func pathFor(path string, vars Vars) (string, error) {
	if !strings.Contains(path, "<<") {
		return path, nil
	}
	t, err := template.Cached(path, template.Text)
	if err != nil {
		return "", err
	}
	quoted := make(map[string]string, len(t.Vars()))
	for _, name := range t.Vars() {
		if v := vars.Values[name]; v != "" {
			q := strconv.Quote(v)
			quoted[name] = q[1 : len(q)-1]
		}
	}
	out, err := t.Render(quoted)
	if err != nil {
		var missing *template.MissingError
		if errors.As(err, &missing) {
			return "", fmt.Errorf("<<%s>> has no value for this installation and user", missing.Name)
		}
		return "", err
	}
	return out, nil
}

// excerpt is the start of a provider's answer for an error message, with
// secrets removed: enough to tell "token revoked" from "wrong URL".
func excerpt(r *redact.Redactor, body []byte) string {
	s := strings.Join(strings.Fields(r.Body(body)), " ")
	if s == "" {
		return ""
	}
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return ": " + s
}
