package secret

import (
	"errors"
	"strings"
	"testing"
)

func TestReseal(t *testing.T) {
	old := mustCipher(t, key("k1", 1))
	sealed, err := old.Seal("value", "row-a")
	if err != nil {
		t.Fatal(err)
	}
	ring := mustCipher(t, key("k2", 2), key("k1", 1))
	if ring.IsCurrent(sealed) || !old.IsCurrent(sealed) {
		t.Fatalf("IsCurrent(%q): ring %v, old %v; want false, true", sealed, ring.IsCurrent(sealed), old.IsCurrent(sealed))
	}
	resealed, err := ring.Reseal(sealed, "row-a")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resealed, ring.CurrentPrefix()) || ring.CurrentPrefix() != "v1:k2:" || !ring.IsCurrent(resealed) {
		t.Fatalf("Reseal = %q, want prefix v1:k2: (CurrentPrefix %q)", resealed, ring.CurrentPrefix())
	}
	// The new value opens with the new key alone, for the same row only.
	onlyNew := mustCipher(t, key("k2", 2))
	if got, err := onlyNew.Open(resealed, "row-a"); err != nil || got != "value" {
		t.Fatalf("Open resealed = %q, %v; want value", got, err)
	}
	if _, err := onlyNew.Open(resealed, "row-b"); !errors.Is(err, ErrOpen) {
		t.Fatalf("resealed value opened for another row: err = %v", err)
	}
	// A value bound to another row, or sealed with a key not in the ring,
	// is not resealed.
	if _, err := ring.Reseal(sealed, "row-b"); !errors.Is(err, ErrOpen) {
		t.Errorf("Reseal for another row: err = %v, want ErrOpen", err)
	}
	stray, _ := mustCipher(t, key("k3", 3)).Seal("value", "row-a")
	if _, err := ring.Reseal(stray, "row-a"); !errors.Is(err, ErrOpen) {
		t.Errorf("Reseal of a k3 value: err = %v, want ErrOpen", err)
	}
	if mustCipher(t, key("k", 1)).IsCurrent("v1:k_:x") || ring.IsCurrent("plain") {
		t.Error("IsCurrent accepted a value of another key or no key")
	}
}
