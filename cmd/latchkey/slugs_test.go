package main

import "testing"

// TestSlugsArePerAccount: a slug names an app within its account. Two
// accounts may use the same slug and each reaches only its own app by it;
// a taken slug is still a 409 within one account, and says nothing of any
// other account's apps.
func TestSlugsArePerAccount(t *testing.T) {
	e := newEnv(t)
	mine := e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": "Alpha", "slug": "alpha"})
	theirs := e.must(201, "POST", "/v1/apps", e.other, map[string]any{"name": "Alpha", "slug": "alpha"})
	e.must(201, "POST", "/v1/apps/alpha/webhooks", e.key, map[string]any{"url": "https://hooks.example.com/acme"})

	for _, c := range []struct {
		who, key    string
		own, other  map[string]any
		wantWebhook int
	}{
		{"acme", e.key, mine, theirs, 1},
		{"globex", e.other, theirs, mine, 0},
	} {
		if got := e.must(200, "GET", "/v1/apps/alpha", c.key, nil); got["id"] != c.own["id"] {
			t.Errorf("%s: GET /v1/apps/alpha = app %v, want its own %v", c.who, got["id"], c.own["id"])
		}
		list := e.must(200, "GET", "/v1/apps", c.key, nil)["apps"].([]any)
		if len(list) != 1 || list[0].(map[string]any)["id"] != c.own["id"] {
			t.Errorf("%s: lists %v, want only its own app", c.who, list)
		}
		// Ids are global, and another account's is not found.
		e.must(404, "GET", "/v1/apps/"+c.other["id"].(string), c.key, nil)
		// Routes under an app resolve the slug in the caller's account.
		if hooks := e.must(200, "GET", "/v1/apps/alpha/webhooks", c.key, nil)["webhooks"].([]any); len(hooks) != c.wantWebhook {
			t.Errorf("%s: app alpha has %d webhooks, want %d", c.who, len(hooks), c.wantWebhook)
		}
	}

	wantFields(t, e.must(409, "POST", "/v1/apps", e.key, map[string]any{"name": "Alpha 2", "slug": "alpha"}), "slug")
	e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": "Beta", "slug": "beta"})
	wantFields(t, e.must(409, "PATCH", "/v1/apps/beta", e.key, map[string]any{"slug": "alpha"}), "slug")
	// Taking a slug that only another account uses is no conflict.
	e.must(201, "POST", "/v1/apps", e.other, map[string]any{"name": "Gamma", "slug": "gamma"})
	e.must(200, "PATCH", "/v1/apps/gamma", e.other, map[string]any{"slug": "beta"})
}
