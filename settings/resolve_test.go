package settings

import "testing"

// TestResolvedWith: the settings after a write are those read with what
// was written, as Resolve would read them back: a removed value falls
// back to its default, or is gone; what was read is not changed.
func TestResolvedWith(t *testing.T) {
	def := "us"
	r := Resolved{
		Values: map[string]string{"access_token": "old", "region": "eu", "plan": "pro"},
		Secret: map[string]bool{"access_token": true},
		defs:   []Definition{{Key: "access_token"}, {Key: "region", DefaultValue: &def}, {Key: "plan"}},
	}
	fresh, empty := "new", ""
	got := r.With(Written{Values: map[string]*string{"access_token": &fresh, "region": nil, "plan": &empty}})
	want := map[string]string{"access_token": "new", "region": "us"}
	if len(got.Values) != len(want) || got.Values["access_token"] != "new" || got.Values["region"] != "us" {
		t.Errorf("With: %v, want %v", got.Values, want)
	}
	if !got.Secret["access_token"] || len(got.Definitions()) != 3 {
		t.Errorf("With lost what else was read: secret %v, %d definitions", got.Secret, len(got.Definitions()))
	}
	if r.Values["access_token"] != "old" || r.Values["plan"] != "pro" {
		t.Errorf("With changed what was read: %v", r.Values)
	}
}
