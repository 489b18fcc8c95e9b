package oauthtest

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/ory/fosite"
	"golang.org/x/net/html"
)

// consentTimeout bounds each request Consent makes, so a stuck server
// fails the test instead of hanging it.
const consentTimeout = 10 * time.Second

var consentTemplate = template.Must(template.New("consent").Parse(`<!DOCTYPE html>
<html>
<head><title>Authorize {{.ClientID}}</title></head>
<body>
<h1>Authorize {{.ClientID}}</h1>
<p>{{.ClientID}} asks {{.Subject}} for: {{range .Scopes}}<code>{{.}}</code> {{end}}</p>
<form method="post" action="` + AuthorizePath + `">
{{- range .Fields}}
<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{- end}}
<button type="submit" name="consent" value="allow">Allow</button>
<button type="submit" name="consent" value="deny">Deny</button>
</form>
</body>
</html>
`))

type field struct{ Name, Value string }

// consentPage answers a valid authorization request (RFC 6749 §4.1.1) with
// a page asking the resource owner to allow or deny it; the form carries
// the request's parameters back in hidden inputs. An invalid request gets
// fosite's error: a redirect to the client's redirect_uri with error set
// once the redirect_uri is known to be good, a JSON error otherwise.
func (s *Server) consentPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s.fositeMu.Lock()
	ar, err := s.provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		s.provider.WriteAuthorizeError(ctx, w, ar, err)
	}
	s.fositeMu.Unlock()
	if err != nil {
		return
	}

	var fields []field
	for name, values := range r.Form {
		for _, v := range values {
			fields = append(fields, field{name, v})
		}
	}
	sort.Slice(fields, func(i, j int) bool { return fields[i].Name < fields[j].Name })
	var buf bytes.Buffer
	err = consentTemplate.Execute(&buf, map[string]any{
		"ClientID": ar.GetClient().GetID(),
		"Subject":  s.subject,
		"Scopes":   ar.GetRequestedScopes(),
		"Fields":   fields,
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

// authorize takes the consent form. With consent=allow it grants every
// requested scope to Options.Subject and redirects to the client with a
// code (RFC 6749 §4.1.2); otherwise it redirects with error=access_denied
// (§4.1.2.1). fosite answers both redirects with 303 See Other.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s.fositeMu.Lock()
	defer s.fositeMu.Unlock()
	ar, err := s.provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		s.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	if r.Form.Get("consent") != "allow" {
		s.provider.WriteAuthorizeError(ctx, w, ar, fosite.ErrAccessDenied.WithHint("The resource owner denied the request."))
		return
	}
	for _, scope := range ar.GetRequestedScopes() {
		ar.GrantScope(scope)
	}
	for _, aud := range ar.GetRequestedAudience() {
		ar.GrantAudience(aud)
	}
	session := &fosite.DefaultSession{Subject: s.subject, Username: s.subject}
	resp, err := s.provider.NewAuthorizeResponse(ctx, ar, session)
	if err != nil {
		s.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	s.provider.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// Consent plays the browser and the resource owner for one authorization:
// it GETs authURL, following redirects until it reaches this server (so
// authURL may be an application's link that redirects here), submits the
// consent page with consent=allow or deny, and returns the Location that
// the server redirects to, without following it, so the test decides
// whether and how to call the client's callback.
//
// Once on this server no redirect away is followed: if the server rejects
// the request by redirecting straight back to the client (fosite does so
// for errors such as invalid_scope or invalid_state, once redirect_uri is
// known to be good), Consent returns that Location, with error set in its
// query, and shows no page. Hosts are compared as written, so authURL must
// reach this server as URL() spells it (127.0.0.1, not localhost).
//
// Consent returns an error if a request fails, if the redirects never reach
// this server, if this server answers with neither a redirect nor a consent
// page (a JSON error for an unknown client or redirect_uri, for example;
// the error carries the status and body), or if the consent submission is
// not answered with a redirect. Cookies are not kept between requests.
func (s *Server) Consent(authURL string, allow bool) (*url.URL, error) {
	get := &http.Client{
		Timeout: consentTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return fmt.Errorf("stopped after %d redirects", len(via))
			}
			if via[len(via)-1].URL.Host == s.host && req.URL.Host != s.host {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	resp, err := get.Get(authURL)
	if err != nil {
		return nil, fmt.Errorf("oauthtest: consent: %w", err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("oauthtest: consent: reading %s: %w", resp.Request.URL, err)
	}
	if resp.Request.URL.Host != s.host {
		return nil, fmt.Errorf("oauthtest: consent: %s never reached %s; it ended at %s with %s: %s",
			authURL, s.srv.URL, resp.Request.URL, resp.Status, excerpt(body))
	}
	if isRedirect(resp.StatusCode) {
		return location(resp)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("oauthtest: consent: %s answered %s: %s", resp.Request.URL, resp.Status, excerpt(body))
	}

	action, form, err := parseConsentForm(body)
	if err != nil {
		return nil, fmt.Errorf("oauthtest: consent: %s: %w", resp.Request.URL, err)
	}
	target, err := resp.Request.URL.Parse(action)
	if err != nil {
		return nil, fmt.Errorf("oauthtest: consent: form action %q: %w", action, err)
	}
	if allow {
		form.Set("consent", "allow")
	} else {
		form.Set("consent", "deny")
	}

	post := &http.Client{
		Timeout:       consentTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err = post.PostForm(target.String(), form)
	if err != nil {
		return nil, fmt.Errorf("oauthtest: consent: %w", err)
	}
	body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if !isRedirect(resp.StatusCode) {
		return nil, fmt.Errorf("oauthtest: consent: POST %s answered %s: %s", target, resp.Status, excerpt(body))
	}
	return location(resp)
}

// parseConsentForm finds the first POST form in page and returns its
// action and the name/value pairs of its inputs; buttons are left out.
func parseConsentForm(page []byte) (action string, form url.Values, err error) {
	z := html.NewTokenizer(bytes.NewReader(page))
	inForm := false
	for {
		switch z.Next() {
		case html.ErrorToken:
			if z.Err() == io.EOF {
				if form == nil {
					return "", nil, errors.New("no POST form on the page")
				}
				return action, form, nil
			}
			return "", nil, z.Err()
		case html.EndTagToken:
			if name, _ := z.TagName(); string(name) == "form" && inForm {
				return action, form, nil
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			attrs := map[string]string{}
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				attrs[string(k)] = string(v)
			}
			switch string(name) {
			case "form":
				if !inForm && form == nil && strings.EqualFold(attrs["method"], "post") {
					inForm = true
					action = attrs["action"]
					form = url.Values{}
				}
			case "input":
				if inForm && attrs["name"] != "" {
					form.Add(attrs["name"], attrs["value"])
				}
			}
		}
	}
}

func isRedirect(status int) bool {
	return status >= 300 && status < 400 && status != http.StatusNotModified
}

// location resolves resp's Location against the request it answered.
func location(resp *http.Response) (*url.URL, error) {
	u, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("oauthtest: consent: %s answered %s: %w", resp.Request.URL, resp.Status, err)
	}
	return u, nil
}

// excerpt shortens a response body for an error message.
func excerpt(b []byte) string {
	const max = 512
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
