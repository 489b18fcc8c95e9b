package settings

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/errs"
)

// Reference is a field of an OAuth config or an API that uses a setting,
// as the config's or API's own validation sees it.
type Reference struct {
	Kind  string // "OAuth config", "API" or "webhook source"
	Name  string // the config's or API's name
	Field string // as their validation names it: token_body, headers.Authorization
	// Problem is what their validation says of the field once the
	// definitions have changed.
	Problem string
}

// References finds the uses of an app's settings; oauthconfig.Store is
// one (configs and APIs live above settings, which cannot import them).
// Broken returns the fields of the app's configs and APIs that validate
// with the definitions before and would not with after. It reads through
// tx, the transaction that changes the definitions (see KeyPairs).
type References interface {
	Broken(ctx context.Context, tx *gorm.DB, appID string, before, after []Definition) ([]Reference, error)
}

// UseReferences makes s refuse to delete or change a definition in a way
// that breaks what r knows of (OAuth configs and APIs, webhook sources),
// which would otherwise fail later, at every call, sign-in or event, with
// a confusing error. Each call adds r to those asked.
func (s *Store) UseReferences(r References) { s.refs = append(s.refs, r) }

// checkReferences refuses (errs.Conflict) to change the app's definitions
// from before to after, for the setting key, when that breaks a config or
// API; the message names each of them and its fields, so the developer
// knows what to change first. With deleting, the fields are enough: the
// setting would be gone. s works in the changing transaction.
func (s *Store) checkReferences(ctx context.Context, appID, key string, before, after []Definition, deleting bool) error {
	var refs []Reference
	for _, r := range s.refs {
		broken, err := r.Broken(ctx, s.db, appID, before, after)
		if err != nil {
			return err
		}
		refs = append(refs, broken...)
	}
	if len(refs) == 0 {
		return nil
	}
	// One entry per config or API, in the order found, with its fields.
	var users []string
	fields := map[string][]string{}
	for _, r := range refs {
		user := fmt.Sprintf("%s %q", r.Kind, r.Name)
		if _, ok := fields[user]; !ok {
			users = append(users, user)
		}
		f := r.Field
		if !deleting {
			f += ": " + r.Problem
		}
		if !slices.Contains(fields[user], f) {
			fields[user] = append(fields[user], f)
		}
	}
	sep := "; " // between problems, which may hold commas
	if deleting {
		sep = ", "
	}
	parts := make([]string, len(users))
	for i, u := range users {
		parts[i] = u + " (" + strings.Join(fields[u], sep) + ")"
	}
	list := parts[0]
	if n := len(parts); n > 1 {
		list = strings.Join(parts[:n-1], ", ") + " and " + parts[n-1]
	}
	if deleting {
		return errs.New(errs.Conflict, "setting %q is used by %s; change them first", key, list)
	}
	return errs.New(errs.Conflict, "setting %q is used by %s, which this change would break; change them first", key, list)
}
