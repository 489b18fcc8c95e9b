package main

import (
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/app/console"
)

var echoParam = regexp.MustCompile(`:([a-z_]+)`)

// specPath writes an Echo route path as openapi.yaml does: ":name" becomes
// "{name}", and a trailing "/*", which matches the rest of the path
// (slashes included), becomes "/{path}".
func specPath(echoPath string) string {
	p := echoParam.ReplaceAllString(echoPath, "{$1}")
	if rest, ok := strings.CutSuffix(p, "/*"); ok {
		p = rest + "/{path}"
	}
	return p
}

// TestSpecListsEveryRoute keeps openapi.yaml and the router in step: every
// route the server registers is in the spec, and the spec has no other.
func TestSpecListsEveryRoute(t *testing.T) {
	e := newEnv(t)
	served := map[string]bool{}
	for _, r := range e.echo.Routes() {
		// Echo's own "route not found" handlers (one per group, at "" and
		// "/*") are not routes of the API.
		if r.Method == echo.RouteNotFound {
			continue
		}
		// The developer console's pages are for a developer's browser,
		// signed in by a cookie, not part of the API that platforms
		// program against (unlike the hosted pages, which they link to);
		// console_test.go and the browser test cover them.
		if r.Path == console.Path || strings.HasPrefix(r.Path, console.Path+"/") {
			continue
		}
		if strings.Contains(r.Path, "*") && !strings.HasSuffix(r.Path, "/*") {
			t.Errorf("%s %s: a wildcard openapi.yaml cannot describe", r.Method, r.Path)
			continue
		}
		served[r.Method+" "+specPath(r.Path)] = true
	}
	specified := map[string]bool{}
	for _, r := range loadSpec(t).Routes() {
		specified[r.Method+" "+r.Path] = true
	}
	for _, r := range sorted(served) {
		if !specified[r] {
			t.Errorf("%s is served but not in openapi.yaml", r)
		}
	}
	for _, r := range sorted(specified) {
		if !served[r] {
			t.Errorf("%s is in openapi.yaml but not served", r)
		}
	}
}

func sorted(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestSpecBounds keeps the bounds that openapi.yaml states for request
// fields in step with the server's: a value at each bound is taken by the
// server (and env.call checks that the spec takes it too), and a value just
// past it is refused by both.
func TestSpecBounds(t *testing.T) {
	e := newEnv(t)
	f := newFlowApp(t, e, map[string]any{"link_url": "https://provider.example/authorize", "token_url": "https://provider.example/token"})
	other := e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": "Other", "slug": "other"})["id"].(string)
	e.must(201, "POST", "/v1/apps/acme/apis", e.key, map[string]any{"name": "crm", "base_url": "https://api.example/v1"})
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "spare"})
	// unused is deleted below; spare stays, used by the API.
	e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "unused"})

	var (
		appPath    = "/v1/apps/" + other
		configPath = "/v1/apps/acme/oauth-configs/" + f.configID
		apiPath    = "/v1/apps/acme/apis/crm"
		linkPath   = "/v1/installations/" + f.instID + "/authorize-links"
		uuidShaped = "01234567-89ab-cdef-0123-456789abcdef"
		longURL    = func(n int) string {
			return "https://provider.example/" + strings.Repeat("a", n-len("https://provider.example/"))
		}
	)
	tests := []struct {
		name         string
		method, path string
		ok, bad      any
		status       int // the server's answer to bad; 0 when there is no bad value
	}{
		{"app name NUL", "PATCH", appPath, map[string]any{"name": "ab"}, map[string]any{"name": "a\x00b"}, 422},
		{"app description NUL", "PATCH", appPath, map[string]any{"description": "ab"}, map[string]any{"description": "a\x00b"}, 422},
		{"app slug like an id", "PATCH", appPath, map[string]any{"slug": "other-2"}, map[string]any{"slug": uuidShaped}, 422},
		{"organization_id control character", "POST", "/v1/installations",
			map[string]any{"app_id": other, "organization_id": "org-2"}, map[string]any{"app_id": other, "organization_id": "org\x013"}, 422},
		{"link config_id empty", "POST", linkPath,
			map[string]any{"config_id": f.configID, "user_id": "user-1"}, map[string]any{"config_id": "", "user_id": "user-1"}, 422},
		{"link user_id control character", "POST", linkPath,
			map[string]any{"config_id": f.configID, "user_id": "user-1"}, map[string]any{"config_id": f.configID, "user_id": "user\x7f1"}, 422},
		{"config name blank", "PATCH", configPath, map[string]any{"name": "provider"}, map[string]any{"name": "  "}, 422},
		{"config header name", "PATCH", configPath,
			map[string]any{"headers": map[string]string{"X-Ok!": "1"}}, map[string]any{"headers": map[string]string{"X Bad": "1"}}, 422},
		{"config header value length", "PATCH", configPath,
			map[string]any{"headers": map[string]string{"X-Long": strings.Repeat("a", 16384)}},
			map[string]any{"headers": map[string]string{"X-Long": strings.Repeat("a", 16385)}}, 422},
		{"config JSONPath", "PATCH", configPath, map[string]any{"auth_code_path": ""}, map[string]any{"auth_code_path": "code"}, 422},
		{"mapping JSONPath", "PATCH", configPath,
			map[string]any{"mappings": []map[string]string{{"path": "$.id", "setting": "provider_user"}}},
			map[string]any{"mappings": []map[string]string{{"path": "id", "setting": "provider_user"}}}, 422},
		{"mapping setting empty", "PATCH", configPath,
			map[string]any{"mappings": []map[string]string{}}, map[string]any{"mappings": []map[string]string{{"path": "$.id", "setting": ""}}}, 422},
		{"scope with a space", "PATCH", configPath, map[string]any{"scopes": []string{"a:b"}}, map[string]any{"scopes": []string{"a b"}}, 422},
		{"default_expires_in", "PATCH", configPath, map[string]any{"default_expires_in": 60}, map[string]any{"default_expires_in": 59}, 422},
		{"default_expires_in default", "PATCH", configPath, map[string]any{"default_expires_in": 0}, map[string]any{"default_expires_in": -1}, 422},
		{"keepalive_seconds", "PATCH", configPath, map[string]any{"keepalive_seconds": 300}, map[string]any{"keepalive_seconds": 299}, 422},
		{"keepalive_seconds off", "PATCH", configPath, map[string]any{"keepalive_seconds": 0}, map[string]any{"keepalive_seconds": 31622401}, 422},
		{"expired_body_path", "PATCH", configPath, map[string]any{"expired_body_path": "$.error"}, map[string]any{"expired_body_path": "error"}, 422},
		{"expired_body_value", "PATCH", configPath,
			map[string]any{"expired_body_path": "$.error", "expired_body_value": strings.Repeat("x", 200)},
			map[string]any{"expired_body_path": "$.error", "expired_body_value": strings.Repeat("x", 201)}, 422},
		{"identity_url length", "PATCH", configPath, map[string]any{"identity_url": longURL(16384)}, map[string]any{"identity_url": longURL(16385)}, 422},
		{"identity_method", "PATCH", configPath, map[string]any{"identity_method": ""}, map[string]any{"identity_method": "get"}, 422},
		{"identity header name", "PATCH", configPath,
			map[string]any{"identity_headers": map[string]string{"X-Ok": "1"}}, map[string]any{"identity_headers": map[string]string{"": "1"}}, 422},
		{"identity_mappings count", "PATCH", configPath,
			map[string]any{"identity_mappings": mappings(50)}, map[string]any{"identity_mappings": mappings(51)}, 422},
		{"API base_url query", "PATCH", apiPath, map[string]any{"base_url": "https://api.example/v2"}, map[string]any{"base_url": "https://api.example/v2?a=1"}, 422},
		{"API base_url empty", "PATCH", apiPath, map[string]any{"base_url": "https://api.example/v2"}, map[string]any{"base_url": ""}, 422},
		{"API header name", "PATCH", apiPath,
			map[string]any{"headers": map[string]string{"X-Key": "<<spare>>"}}, map[string]any{"headers": map[string]string{"X:Key": "<<spare>>"}}, 422},
		{"API description NUL", "PATCH", apiPath, map[string]any{"description": "ab"}, map[string]any{"description": "a\x00b"}, 422},
		{"webhook url length", "POST", "/v1/apps/acme/webhooks", map[string]any{"url": longURL(2048)}, map[string]any{"url": longURL(2049)}, 422},
		{"delete_values", "DELETE", "/v1/apps/acme/settings/unused?delete_values=", nil, nil, 0},
	}
	for _, tt := range tests {
		if r := e.call(tt.method, tt.path, e.key, tt.ok); r.status >= 300 {
			t.Errorf("%s: the server refuses the value at the bound: %d %s", tt.name, r.status, r.body)
		}
		if tt.status == 0 {
			continue
		}
		if r := e.call(tt.method, tt.path, e.key, tt.bad); r.status != tt.status {
			t.Errorf("%s: the server answers %d past the bound, want %d: %s", tt.name, r.status, tt.status, r.body)
		}
		if e.specAccepts(tt.method, tt.path, e.key, tt.bad) {
			t.Errorf("%s: openapi.yaml accepts the value past the bound, which the server refuses", tt.name)
		}
	}
	// An explain request without installation_id is a 404, as for an
	// unknown one: the spec does not mark it required (env.call checks).
	e.must(404, "POST", configPath+"/explain", e.key, map[string]any{})
}

// mappings returns n identity mappings into the setting provider_user.
func mappings(n int) []map[string]string {
	out := make([]map[string]string, n)
	for i := range out {
		out[i] = map[string]string{"path": "$.id", "setting": "provider_user"}
	}
	return out
}
