package main

import (
	"strings"
	"testing"
)

// TestForeignPlaceholdersRefused: templates written in another platform's
// syntax ({{client_id}}) are refused when an OAuth config or an API is
// saved, with a hint, the field and the position; braces written as a
// literal placeholder are sent as they are.
func TestForeignPlaceholdersRefused(t *testing.T) {
	e := newEnv(t)
	setupApp(e)
	config := map[string]any{
		"name":                 "p",
		"link_url":             "https://provider.example/authorize?client_id=<<client_id>>",
		"token_url":            "https://provider.example/token",
		"access_token_setting": "access_token",
		"token_body":           "grant_type=authorization_code&code=<<auth_code>>&client_id={{client_id}}",
	}
	p := e.must(422, "POST", "/v1/apps/acme/oauth-configs", e.key, config)
	wantFields(t, p, "token_body")
	fe := p["errors"].([]any)[0].(map[string]any)
	if fe["position"] != float64(59) || !strings.Contains(fe["message"].(string), "Latchkey placeholders are written <<client_id>>") {
		t.Errorf("error = %v", fe)
	}
	config["token_body"] = `grant_type=authorization_code&code=<<auth_code>>&note=<<"{{">>literal}}`
	e.must(201, "POST", "/v1/apps/acme/oauth-configs", e.key, config)

	api := map[string]any{"name": "crm", "base_url": "https://api.example/v1", "headers": map[string]string{"Authorization": "Bearer {{ access_token }}"}}
	p = e.must(422, "POST", "/v1/apps/acme/apis", e.key, api)
	wantFields(t, p, "headers.Authorization")
	if msg := p["errors"].([]any)[0].(map[string]any)["message"].(string); !strings.Contains(msg, "<<access_token>>") {
		t.Errorf("message = %q", msg)
	}
	api["headers"] = map[string]string{"Authorization": "Bearer <<access_token>>"}
	e.must(201, "POST", "/v1/apps/acme/apis", e.key, api)
}
