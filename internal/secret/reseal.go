package secret

// CurrentPrefix is how every value sealed with the current key begins
// ("v1:<current key id>:"). A store finds the values that still need
// re-sealing by comparing this prefix exactly (not with LIKE: '_' is a
// LIKE wildcard and may appear in key ids).
func (c *Cipher) CurrentPrefix() string { return Prefix(c.current) }

// Prefix is how every value sealed with the key id begins ("v1:<id>:").
func Prefix(id string) string { return version + ":" + id + ":" }

// IsCurrent reports whether sealed was sealed with the current key. It does
// not check that the value opens.
func (c *Cipher) IsCurrent(sealed string) bool {
	kid, ok := KeyID(sealed)
	return ok && kid == c.current
}

// Reseal opens a value sealed for the row named by aad with whichever key
// of the ring sealed it, and seals it again with the current key for the
// same row. It returns ErrOpen if no key in the ring opens it (tampered,
// moved from another row, or sealed with a key no longer configured), and
// the error of Seal if the random source fails. The plaintext never leaves
// this function.
func (c *Cipher) Reseal(sealed, aad string) (string, error) {
	plain, err := c.Open(sealed, aad)
	if err != nil {
		return "", err
	}
	return c.Seal(plain, aad)
}
