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
