// Package keycheck makes sure a server's encryption keys are the keys the
// database's secrets were sealed with, before it seals or opens anything.
//
// Without it a key with the right id and other bytes (a typo in a Secret,
// the key of another environment) is found only per request: the server
// starts, answers its readiness probe, fails every secret with a 500, and
// seals new values that no server with the real key can ever open.
//
// Each key id gets a check value in the key_checks table: a constant
// sealed with that key, written by the first process that runs with it and
// never changed. Verify writes the missing ones and opens them all;
// VerifyStored only opens; Check also looks for stored values sealed with a
// key id that the ring does not have.
package keycheck

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/rotation"
	"github.com/latchkey/latchkey/internal/secret"
)

// WrongKeyError is returned when a key of the ring does not open the check
// value stored for its id: its bytes are not those of the key that the
// database knows by that id.
type WrongKeyError struct {
	KeyID string
}

func (e *WrongKeyError) Error() string {
	return fmt.Sprintf("key %s does not open the check value stored for %s: wrong key bytes? "+
		"The database's secrets were sealed with another key of that id: configure that key, or give a new key a new id",
		e.KeyID, e.KeyID)
}

// StrayKeyError is returned when stored values are sealed with key ids that
// the ring does not have, so that they cannot be opened.
type StrayKeyError struct {
	Strays []rotation.Stray
}

func (e *StrayKeyError) Error() string {
	var found []string
	for _, s := range e.Strays {
		found = append(found, fmt.Sprintf("key %s (in %s, e.g. %s)", s.KeyID, s.Column, s.Row))
	}
	return fmt.Sprintf("stored secrets are sealed with %s, which LATCHKEY_ENCRYPTION_KEYS does not have: "+
		"add it back (LATCHKEY_SEALING_KEY keeps it from sealing anything new), run 'latchkey reencrypt', and only then remove it",
		strings.Join(found, ", "))
}

// checkPlaintext is what every check value holds. It need not be secret:
// AES-GCM does not weaken with known plaintext.
const checkPlaintext = "latchkey key check"

// checkAAD binds a check value to its key id, so one key's check value
// copied to another id does not open.
func checkAAD(id string) string { return "key-check:" + id }

// Verify makes sure every key of c has a check value, and that each key
// opens its own. A key without one gets one, sealed with it: the first
// process to run with a key decides which bytes its id names, for good.
//
// It is safe for several servers starting at once with a new key: a value
// is inserted only if none is there, then read back, so all of them verify
// the one that was stored first, and a server whose key has other bytes
// fails.
//
// now stamps the rows it writes; nil means time.Now. It returns a
// *WrongKeyError for the first key that does not open its check value, or
// the database's error. Errors never contain key material or values.
func Verify(ctx context.Context, db *gorm.DB, c *secret.Cipher, now func() time.Time) error {
	if now == nil {
		now = time.Now
	}
	ids := c.KeyIDs()
	stored, err := read(ctx, db, ids)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, ok := stored[id]; ok {
			continue
		}
		sealed, err := c.SealWith(id, checkPlaintext, checkAAD(id))
		if err != nil {
			return fmt.Errorf("keycheck: %w", err)
		}
		if err := db.WithContext(ctx).Exec("INSERT INTO key_checks (key_id, sealed, created_at) VALUES (?, ?, ?) ON CONFLICT (key_id) DO NOTHING",
			id, sealed, now().UTC()).Error; err != nil {
			return fmt.Errorf("keycheck: storing the check value of key %s: %w", id, err)
		}
	}
	if len(stored) < len(ids) {
		// Another process may have stored some first: verify what is there.
		if stored, err = read(ctx, db, ids); err != nil {
			return err
		}
	}
	missing, err := open(c, stored)
	if err == nil && len(missing) > 0 {
		err = fmt.Errorf("keycheck: the check value of key %s is not stored", missing[0])
	}
	return err
}

// VerifyStored is Verify without writing: for readiness probes and dry
// runs. It returns the ids of c's keys that have no check value yet, and
// the same errors as Verify.
func VerifyStored(ctx context.Context, db *gorm.DB, c *secret.Cipher) (unchecked []string, err error) {
	stored, err := read(ctx, db, c.KeyIDs())
	if err != nil {
		return nil, err
	}
	return open(c, stored)
}

// open opens the stored check value of each key of c, and returns the ids
// that have none.
func open(c *secret.Cipher, stored map[string]string) (missing []string, err error) {
	for _, id := range c.KeyIDs() {
		v, ok := stored[id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		// The id in the value must be the row's: Open picks its key by it.
		kid, _ := secret.KeyID(v)
		if pt, err := c.Open(v, checkAAD(id)); kid != id || err != nil || pt != checkPlaintext {
			return missing, &WrongKeyError{KeyID: id}
		}
	}
	return missing, nil
}

// read returns the stored check values of the key ids, by id.
func read(ctx context.Context, db *gorm.DB, ids []string) (map[string]string, error) {
	var rows []struct {
		KeyID  string
		Sealed string
	}
	if err := db.WithContext(ctx).Raw("SELECT key_id, sealed FROM key_checks WHERE key_id IN ?", ids).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("keycheck: reading check values: %w", err)
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.KeyID] = r.Sealed
	}
	return out, nil
}

// Check is what a process does before it uses c: Verify, then make sure
// no value of columns is sealed with a key that c does not have, which it
// could not open. The second part reads every row of columns once.
//
// It returns the error of Verify, a *StrayKeyError naming every such key id
// and a row where each was found, or the database's error.
func Check(ctx context.Context, db *gorm.DB, c *secret.Cipher, now func() time.Time, columns ...rotation.Column) error {
	if err := Verify(ctx, db, c, now); err != nil {
		return err
	}
	strays, err := rotation.StrayKeys(ctx, db, c.KeyIDs(), columns...)
	if err != nil {
		return fmt.Errorf("keycheck: %w", err)
	}
	if len(strays) > 0 {
		return &StrayKeyError{Strays: strays}
	}
	return nil
}
