package settings

import (
	"context"
	"fmt"
	"slices"
	"time"

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
	Config      string // the name of the config that pairs them
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

// CheckFixedPair checks a pair whose two halves are both fixed by the app
// developer (read_only or hidden, see Visibility), among the app's
// definitions defs: one text for every installation, so a certificate
// that does not parse, has expired or is not the key's is refused when the
// developer saves it rather than failing every handshake later. It
// returns the setting at fault (the certificate when it is unusable on its
// own, else the key) and why, never quoting either text; "" when the pair
// is fine, a half is not fixed or has no value. err is a value that does
// not decrypt.
func (s *Store) CheckFixedPair(defs []Definition, p KeyPair) (setting, problem string, err error) {
	var chain, key string
	for _, half := range []struct {
		name string
		text *string
	}{{p.Certificate, &chain}, {p.Key, &key}} {
		i := slices.IndexFunc(defs, func(d Definition) bool { return d.Key == half.name })
		if i < 0 || !defs[i].Fixed() {
			return "", "", nil
		}
		v, ok, err := s.fixedValue(defs[i])
		if err != nil || !ok {
			return "", "", err
		}
		*half.text = v
	}
	setting, problem = pairProblem(p, chain, key, s.now())
	return setting, problem, nil
}

// pairProblem returns which of p's settings is at fault and why, when the
// chain and key do not make a usable pair at now, or "".
func pairProblem(p KeyPair, chain, key string, now time.Time) (setting, problem string) {
	_, err := clientcert.Pair(chain, key, now)
	if err == nil {
		return "", ""
	}
	setting = p.Key
	if _, err := clientcert.ParseChain(chain, now); err != nil {
		setting = p.Certificate
	}
	return setting, fmt.Sprintf("%v: setting %q holds the certificate and %q its private key, both fixed by the app developer", err, p.Certificate, p.Key)
}

// checkFixedPairs checks d, whose developer value is new, against the
// other half of each pair it is in that the developer fixed too (see
// CheckFixedPair); defs are the app's definitions with d as it will be
// stored. A problem is errs.Invalid naming default. s works in the
// transaction that stores d.
func (s *Store) checkFixedPairs(ctx context.Context, defs []Definition, d Definition) error {
	if s.pairs == nil || !d.Fixed() || (d.Type != Certificate && d.Type != PrivateKey) {
		return nil
	}
	pairs, err := s.pairs.KeyPairs(ctx, s.db, d.AppID)
	if err != nil {
		return err
	}
	var fs errs.Fields
	for _, p := range pairs {
		if p.Certificate != d.Key && p.Key != d.Key {
			continue
		}
		_, problem, err := s.CheckFixedPair(defs, p)
		if err != nil {
			return err
		}
		if problem != "" {
			fs.Add("default", "%s, paired by OAuth config %q; to replace both, add two new settings with the new pair and point the config's client_cert_setting and client_key_setting at them", problem, p.Config)
		}
	}
	return fs.Err()
}
