package settings

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/clientcert"
	"github.com/latchkey/latchkey/internal/errs"
)

// KeyPair names two organization-level settings whose values must agree:
// a client certificate chain and its private key (RFC 8705), as an OAuth
// config pairs them.
type KeyPair struct {
	Certificate string
	Key         string
}

// KeyPairs finds the pairs of an app's settings; oauthconfig.Store is
// one. It reads through tx, the transaction that stores the values: with
// SQLite's one connection, a read outside it would wait for it forever.
type KeyPairs interface {
	KeyPairs(ctx context.Context, tx *gorm.DB, appID string) ([]KeyPair, error)
}

// UseKeyPairs makes s check, whenever organization values are stored,
// that a certificate and the private key paired with it belong together,
// so that a mismatch is a 422 naming the setting when it is entered, not
// a failed handshake later.
func (s *Store) UseKeyPairs(p KeyPairs) { s.pairs = p }

// checkPairs checks each pair that changes touch: the new text of one half
// against the new or stored text of the other. A pair with a half that has
// no value yet is left alone: the other half may come in a later request.
// Changes have passed checkChanges, so each text on its own is fine. s
// works in the transaction that stores them.
func (s *Store) checkPairs(ctx context.Context, inst Installation, defs []Definition, changes map[string]*string) error {
	if s.pairs == nil {
		return nil
	}
	pairs, err := s.pairs.KeyPairs(ctx, s.db, inst.AppID)
	if err != nil {
		return err
	}
	var stored, fixed map[string]string
	value := func(key string) (string, error) {
		if v, ok := changes[key]; ok {
			if v == nil {
				return "", nil
			}
			return *v, nil
		}
		if stored == nil {
			var err error
			rows, err := s.rows(ctx, inst.ID, "", Organization)
			if err != nil {
				return "", err
			}
			if stored, err = s.open(rows, Organization, inst.ID, ""); err != nil {
				return "", err
			}
			if fixed, err = s.fixedValues(defs); err != nil {
				return "", err
			}
		}
		if v, ok := fixed[key]; ok {
			return v, nil
		}
		if v, ok := stored[key]; ok {
			return v, nil
		}
		for _, d := range defs {
			if d.Key == key && d.DefaultValue != nil {
				return *d.DefaultValue, nil
			}
		}
		return "", nil
	}
	var fs errs.Fields
	for _, p := range pairs {
		_, certChanged := changes[p.Certificate]
		_, keyChanged := changes[p.Key]
		if !certChanged && !keyChanged {
			continue
		}
		chain, err := value(p.Certificate)
		if err != nil {
			return err
		}
		key, err := value(p.Key)
		if err != nil {
			return err
		}
		if chain == "" || key == "" {
			continue
		}
		if _, err := clientcert.Pair(chain, key, s.now()); err != nil {
			field := "values." + p.Key
			if !keyChanged {
				field = "values." + p.Certificate
			}
			fs.Add(field, "%s", pairMessage(p, err, certChanged && keyChanged))
		}
	}
	return fs.Err()
}

func pairMessage(p KeyPair, err error, both bool) string {
	msg := fmt.Sprintf("%v: setting %q holds the certificate and %q its private key", err, p.Certificate, p.Key)
	if !both {
		msg += "; to replace both, send them in one request"
	}
	return msg
}
