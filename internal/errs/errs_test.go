package errs

import (
	"errors"
	"fmt"
	"testing"
)

// TestUnavailableSurvivesWrapping: a store that wraps a database outage as
// an internal failure still answers Unavailable, so callers get a 503.
func TestUnavailableSurvivesWrapping(t *testing.T) {
	cause := errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	down := Wrap(Unavailable, cause, "the database is unavailable")
	for name, err := range map[string]error{
		"Wrap":            Wrap(Internal, down, "reading app"),
		"Wrap of wrapped": Wrap(Internal, fmt.Errorf("taking the lock: %w", down), "renewing"),
		"From":            From(fmt.Errorf("taking the lock: %w", down), "renewing"),
	} {
		if CodeOf(err) != Unavailable || !errors.Is(err, cause) {
			t.Errorf("%s: code %s (%v), want unavailable wrapping the cause", name, CodeOf(err), err)
		}
	}
	if got := CodeOf(Wrap(Internal, cause, "reading app")); got != Internal {
		t.Errorf("a plain error wrapped as internal is %s", got)
	}
}

// TestAdded: what a change breaks is what validation refuses after it and
// did not before; a field refused before for the same reason is not the
// change's doing, one refused for another reason is.
func TestAdded(t *testing.T) {
	before := Fields{{Field: "token_url", Message: "unknown variable \"a\""}, {Field: "name", Message: "is required"}}.Err()
	after := Fields{
		{Field: "name", Message: "is required"},
		{Field: "token_url", Message: "unknown variable \"a\""},
		{Field: "token_url", Message: "starts with <<b>>, which must be a setting of type url"},
		{Field: "headers.X-Key", Message: "unknown variable \"b\""},
	}.Err()
	got := Added(before, after)
	if len(got) != 2 || got[0].Field != "token_url" || got[0].Message != "starts with <<b>>, which must be a setting of type url" || got[1].Field != "headers.X-Key" {
		t.Errorf("Added = %v", got)
	}
	if got := Added(nil, before); len(got) != 2 {
		t.Errorf("Added(nil, before) = %v, want both fields", got)
	}
	if got := Added(before, nil); got != nil {
		t.Errorf("Added(before, nil) = %v, want none", got)
	}
}
