package secret

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func mustCipher(t *testing.T, keys ...Key) *Cipher {
	t.Helper()
	c, err := New(keys)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func key(id string, b byte) Key { return Key{ID: id, Secret: bytes.Repeat([]byte{b}, KeySize)} }

func TestSealOpen(t *testing.T) {
	c := mustCipher(t, key("k1", 1))
	sealed, err := c.Seal("s3cr3t-value", "org:inst1:client_secret")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "s3cr3t") {
		t.Fatalf("sealed value contains the plaintext: %q", sealed)
	}
	if !strings.HasPrefix(sealed, "v1:k1:") {
		t.Fatalf("sealed = %q, want prefix v1:k1:", sealed)
	}
	got, err := c.Open(sealed, "org:inst1:client_secret")
	if err != nil || got != "s3cr3t-value" {
		t.Fatalf("Open = %q, %v; want s3cr3t-value", got, err)
	}
	again, _ := c.Seal("s3cr3t-value", "org:inst1:client_secret")
	if again == sealed {
		t.Fatal("two seals of one value are equal: nonce reused")
	}
}

func TestOpenRefuses(t *testing.T) {
	c := mustCipher(t, key("k1", 1))
	sealed, _ := c.Seal("value", "org:inst1:client_secret")
	tampered := []byte(sealed)
	tampered[len(tampered)-3] ^= 1
	other := mustCipher(t, key("k2", 2))
	sameIDOtherKey := mustCipher(t, key("k1", 9))
	tests := []struct {
		name   string
		c      *Cipher
		sealed string
		aad    string
	}{
		{"another row", c, sealed, "org:inst2:client_secret"},
		{"another setting", c, sealed, "org:inst1:client_id"},
		{"tampered", c, string(tampered), "org:inst1:client_secret"},
		{"unknown key id", other, sealed, "org:inst1:client_secret"},
		{"wrong key", sameIDOtherKey, sealed, "org:inst1:client_secret"},
		{"not sealed", c, "plain", "org:inst1:client_secret"},
		{"truncated", c, "v1:k1:AAAA", "org:inst1:client_secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.c.Open(tt.sealed, tt.aad); !errors.Is(err, ErrOpen) {
				t.Fatalf("Open err = %v, want ErrOpen", err)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	old := mustCipher(t, key("old", 1))
	sealed, _ := old.Seal("value", "aad")
	ring := mustCipher(t, key("new", 2), key("old", 1))
	if got, err := ring.Open(sealed, "aad"); err != nil || got != "value" {
		t.Fatalf("Open with ring = %q, %v", got, err)
	}
	resealed, _ := ring.Seal("value", "aad")
	if kid, _ := KeyID(resealed); kid != "new" {
		t.Fatalf("new values sealed with %q, want new", kid)
	}
}

// TestSealingKey: a key can be in the ring, opening values, while another
// key seals; which one seals is chosen by id, whatever the order.
func TestSealingKey(t *testing.T) {
	ring := mustCipher(t, key("k1", 1), key("k2", 2))
	if _, err := ring.WithSealingKey("k3"); err == nil || !strings.Contains(err.Error(), `"k3"`) {
		t.Fatalf("WithSealingKey(k3) err = %v, want an error naming k3", err)
	}
	k2, err := ring.WithSealingKey("k2")
	if err != nil {
		t.Fatal(err)
	}
	byK2, _ := k2.Seal("value", "aad")
	byK1, _ := ring.Seal("value", "aad")
	if kid, _ := KeyID(byK2); kid != "k2" || k2.CurrentKeyID() != "k2" || !k2.IsCurrent(byK2) || k2.IsCurrent(byK1) {
		t.Fatalf("sealed with %q, want k2", kid)
	}
	if kid, _ := KeyID(byK1); kid != "k1" || ring.CurrentKeyID() != "k1" {
		t.Fatalf("the original cipher seals with %q now, want k1 still", kid)
	}
	for _, c := range []*Cipher{ring, k2} {
		for _, v := range []string{byK1, byK2} {
			if got, err := c.Open(v, "aad"); err != nil || got != "value" {
				t.Errorf("Open = %q, %v", got, err)
			}
		}
	}
	if got := strings.Join(k2.KeyIDs(), ","); got != "k1,k2" {
		t.Errorf("KeyIDs = %s, want k1,k2", got)
	}
	byK1Explicitly, err := k2.SealWith("k1", "value", "aad")
	if kid, _ := KeyID(byK1Explicitly); err != nil || kid != "k1" {
		t.Errorf("SealWith(k1) sealed with %q, %v", kid, err)
	}
	if _, err := k2.SealWith("k3", "value", "aad"); err == nil {
		t.Error("SealWith sealed with a key not in the ring")
	}
}

func TestParseKeys(t *testing.T) {
	keys, err := ParseKeys("a:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=, b:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].ID != "a" || keys[1].ID != "b" || keys[1].Secret[0] != 2 {
		t.Fatalf("ParseKeys = %+v", keys)
	}
	for _, bad := range []string{"", "nocolon", "a:!!!"} {
		if _, err := ParseKeys(bad); err == nil {
			t.Errorf("ParseKeys(%q) succeeded", bad)
		}
	}
	if _, err := New([]Key{{ID: "short", Secret: []byte("x")}}); err == nil {
		t.Error("New accepted a short key")
	}
	if _, err := New([]Key{key("a", 1), key("a", 2)}); err == nil {
		t.Error("New accepted a repeated id")
	}
	if _, err := New([]Key{key("bad id", 1)}); err == nil {
		t.Error("New accepted a bad id")
	}
}

func BenchmarkSealOpen(b *testing.B) {
	c, _ := New([]Key{key("k1", 1)})
	for b.Loop() {
		s, _ := c.Seal("a-typical-access-token-of-some-length-0123456789", "user:inst:user:access_token")
		if _, err := c.Open(s, "user:inst:user:access_token"); err != nil {
			b.Fatal(err)
		}
	}
}
