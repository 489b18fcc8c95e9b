package main

import (
	"bytes"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/latchkey/latchkey/internal/oauthtest"
)

// formValues reads the form that posts to action from a page as a browser
// would submit it: text inputs, checked checkboxes, the selected option of each select
// (else its first), and textareas.
func formValues(t *testing.T, page []byte, action string) url.Values {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	attr := func(n *html.Node, name string) (string, bool) {
		for _, a := range n.Attr {
			if a.Key == name {
				return a.Val, true
			}
		}
		return "", false
	}
	var form *html.Node
	var find func(*html.Node)
	find = func(n *html.Node) {
		if v, _ := attr(n, "action"); n.Type == html.ElementNode && n.Data == "form" && v == action {
			form = n
		}
		for c := n.FirstChild; c != nil && form == nil; c = c.NextSibling {
			find(c)
		}
	}
	find(doc)
	if form == nil {
		t.Fatalf("no form posting to %q on the page", action)
	}
	out := url.Values{}
	text := func(n *html.Node) string {
		var b strings.Builder
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.TextNode {
				b.WriteString(c.Data)
			}
		}
		return b.String()
	}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		name, named := attr(n, "name")
		if _, disabled := attr(n, "disabled"); n.Type == html.ElementNode && named && !disabled {
			switch n.Data {
			case "input":
				typ, _ := attr(n, "type")
				v, _ := attr(n, "value")
				if _, checked := attr(n, "checked"); typ != "checkbox" || checked {
					out.Add(name, v)
				}
			case "textarea":
				out.Add(name, strings.TrimPrefix(text(n), "\n"))
			case "select":
				var first, chosen *html.Node
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					if c.Type == html.ElementNode && c.Data == "option" {
						if first == nil {
							first = c
						}
						if _, sel := attr(c, "selected"); sel {
							chosen = c
						}
					}
				}
				if chosen == nil {
					chosen = first
				}
				if chosen != nil {
					v, _ := attr(chosen, "value")
					out.Add(name, v)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(form)
	return out
}

// TestConsoleConfigFormKeepsEveryField: saving a config's console form
// unchanged changes nothing, whatever the config uses (a JWT grant and
// client authentication, a query token request, callback mappings,
// steps): the form shows every field the REST API has.
func TestConsoleConfigFormKeepsEveryField(t *testing.T) {
	e := newEnv(t)
	tokens := oauthtest.NewFaultProvider(t)
	f := newFlowApp(t, e, map[string]any{"link_url": tokens.URL() + "/authorize", "token_url": tokens.URL() + "/token"})
	for _, d := range []map[string]any{{"key": "signing_key", "secret": true}, {"key": "realm_id", "level": "user"},
		{"key": "client_cert", "type": "certificate", "secret": true}, {"key": "client_key", "type": "private_key", "secret": true}} {
		e.must(201, "POST", "/v1/apps/acme/settings", e.key, d)
	}
	path := "/v1/apps/acme/oauth-configs/" + f.configID
	e.must(200, "PATCH", path, e.key, map[string]any{
		"client_auth": "private_key_jwt", "assertion_key_setting": "signing_key", "assertion_alg": "PS256",
		"assertion_claims": map[string]string{"sub": "<<client_id>>"}, "token_params": "query",
		"client_cert_setting": "client_cert", "client_key_setting": "client_key",
		"callback_mappings": []map[string]string{{"param": "realmId", "setting": "realm_id"}},
		"steps": []map[string]any{{"name": "long_lived", "url": tokens.URL() + "/long?t=<<access_token>>",
			"access_token_path": "$.access_token", "on_refresh": true,
			"mappings": []map[string]any{{"path": "$.user", "setting": "provider_user"}}}},
	})
	before := e.must(200, "GET", path, e.key, nil)
	appID := e.must(200, "GET", "/v1/apps/acme", e.key, nil)["id"].(string)
	b := newConsoleClient(e)
	b.signIn(e.key)
	configPage := "/console/apps/" + appID + "/configs/" + f.configID
	form := formValues(t, b.must(b.get(configPage), 200, "").body, configPage)
	b.must(b.post(configPage, form), 303, "")
	after := e.must(200, "GET", path, e.key, nil)
	delete(before, "updated_at")
	delete(after, "updated_at")
	if !reflect.DeepEqual(before, after) {
		for k := range before {
			if !reflect.DeepEqual(before[k], after[k]) {
				t.Errorf("saving the console form unchanged changed %s: %v -> %v", k, before[k], after[k])
			}
		}
	}
}
