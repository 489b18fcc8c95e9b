// Package secret encrypts setting values at rest with AES-256-GCM.
//
// A sealed value reads "v1:<key id>:<base64url(nonce || ciphertext)>". The key
// id lets keys rotate: new values are sealed with the current (sealing) key,
// and any key still in the ring opens old ones. The caller passes associated data
// naming the row a value belongs to (installation, user, setting key), so a
// ciphertext copied into another row, or another tenant's, fails to open.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// KeySize is the length of an AES-256 key in bytes.
const KeySize = 32

const version = "v1"

// ErrOpen is returned for any value that cannot be opened: tampered,
// moved to another row, or sealed with a key that is not in the ring.
// It carries no detail on purpose.
var ErrOpen = errors.New("secret: value cannot be decrypted")

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Key is one encryption key and its id.
type Key struct {
	ID     string
	Secret []byte
}

// Cipher seals and opens values with a ring of keys.
type Cipher struct {
	current string
	ids     []string // in the order they were given
	aeads   map[string]cipher.AEAD
	rand    io.Reader
}

// New returns a Cipher that seals with keys[0] and opens with any of keys.
// It returns an error if keys is empty, an id is malformed or repeated, or a
// key is not KeySize bytes.
func New(keys []Key) (*Cipher, error) {
	if len(keys) == 0 {
		return nil, errors.New("secret: no encryption key")
	}
	c := &Cipher{current: keys[0].ID, aeads: make(map[string]cipher.AEAD), rand: rand.Reader}
	for _, k := range keys {
		if !keyIDPattern.MatchString(k.ID) {
			return nil, fmt.Errorf("secret: key id %q must be 1-32 letters, digits, '-' or '_'", k.ID)
		}
		if _, dup := c.aeads[k.ID]; dup {
			return nil, fmt.Errorf("secret: key id %q appears twice", k.ID)
		}
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("secret: key %q is %d bytes, want %d", k.ID, len(k.Secret), KeySize)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		c.aeads[k.ID] = aead
		c.ids = append(c.ids, k.ID)
	}
	return c, nil
}

// WithSealingKey returns a Cipher with the same ring that seals with the
// key id instead. A key can so be known to every server (it opens values)
// before any server seals with it: the order a rolling rotation needs. It
// returns an error naming id if the ring has no such key.
func (c *Cipher) WithSealingKey(id string) (*Cipher, error) {
	if _, ok := c.aeads[id]; !ok {
		return nil, fmt.Errorf("secret: sealing key %q is not in the ring (%s)", id, strings.Join(c.ids, ", "))
	}
	cc := *c
	cc.current = id
	return &cc, nil
}

// KeyIDs returns the ids of the ring's keys, in the order they were given.
func (c *Cipher) KeyIDs() []string { return append([]string(nil), c.ids...) }

// ParseKeys reads a key ring written as "id:base64key[,id:base64key...]",
// the first being the current key. Keys are standard or URL base64 of 32 bytes.
// Errors never include key material.
func ParseKeys(spec string) ([]Key, error) {
	var keys []Key
	for i, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		id, b64, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("secret: key %d: want id:base64key", i+1)
		}
		raw, err := decodeBase64(b64)
		if err != nil {
			return nil, fmt.Errorf("secret: key %q: not valid base64", id)
		}
		keys = append(keys, Key{ID: id, Secret: raw})
	}
	return keys, nil
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("bad base64")
}

// CurrentKeyID is the id of the key new values are sealed with.
func (c *Cipher) CurrentKeyID() string { return c.current }

// Seal encrypts plaintext for the row named by aad with the sealing key.
func (c *Cipher) Seal(plaintext, aad string) (string, error) {
	return c.SealWith(c.current, plaintext, aad)
}

// SealWith is Seal with the key id rather than the sealing key: for the
// check values that prove each key of the ring is the one the database
// knows by its id. It returns an error if the ring has no key id, or if the
// random source fails.
func (c *Cipher) SealWith(id, plaintext, aad string) (string, error) {
	aead, ok := c.aeads[id]
	if !ok {
		return "", fmt.Errorf("secret: no key %q in the ring", id)
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := io.ReadFull(c.rand, nonce); err != nil {
		return "", fmt.Errorf("secret: reading random nonce: %w", err)
	}
	out := aead.Seal(nonce, nonce, []byte(plaintext), []byte(aad))
	return version + ":" + id + ":" + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a value sealed for the row named by aad. It returns ErrOpen
// for any value it cannot open.
func (c *Cipher) Open(sealed, aad string) (string, error) {
	kid, ok := KeyID(sealed)
	if !ok {
		return "", ErrOpen
	}
	aead, ok := c.aeads[kid]
	if !ok {
		return "", ErrOpen
	}
	raw, err := base64.RawURLEncoding.DecodeString(sealed[len(version)+len(kid)+2:])
	if err != nil || len(raw) < aead.NonceSize() {
		return "", ErrOpen
	}
	nonce, ct := raw[:aead.NonceSize()], raw[aead.NonceSize():]
	pt, err := aead.Open(nil, nonce, ct, []byte(aad))
	if err != nil {
		return "", ErrOpen
	}
	return string(pt), nil
}

// KeyID returns the id of the key that sealed a value, for rotation.
func KeyID(sealed string) (string, bool) {
	rest, ok := strings.CutPrefix(sealed, version+":")
	if !ok {
		return "", false
	}
	kid, _, ok := strings.Cut(rest, ":")
	return kid, ok && kid != ""
}
