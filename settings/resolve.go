package settings

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/cache"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/errs"
)

// Resolved holds the values a template may use for one installation and
// user, decrypted, with defaults filled in.
type Resolved struct {
	Values map[string]string
	Secret map[string]bool

	defs []Definition // what the values were resolved with; shared, read-only
}

// Definitions returns the app's definitions the values were resolved
// with, shared: not to be changed.
func (r Resolved) Definitions() []Definition { return r.defs }

// OrganizationKeys returns the organization-level settings with a value.
// They are worked out when asked for (on a renewal), not on every call.
func (r Resolved) OrganizationKeys() []string {
	var keys []string
	for _, d := range r.defs {
		if _, ok := r.Values[d.Key]; ok && d.Level == Organization {
			keys = append(keys, d.Key)
		}
	}
	sort.Strings(keys)
	return keys
}

// OrganizationDigest is a hash of the organization-level values: it
// changes when an organization changes its settings (or the app developer
// a default), which is when a configuration error may be fixed.
func (r Resolved) OrganizationDigest() string {
	h := sha256.New()
	for _, k := range r.OrganizationKeys() {
		fmt.Fprintf(h, "%d:%s=%d:%s;", len(k), k, len(r.Values[k]), r.Values[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Resolve reads and decrypts the installation's organization values and, if
// Resolve reads and decrypts the installation's organization values and, if
// userID is set, the user's values. Read_only and hidden settings always
// have the developer's value (a hidden secret one decrypted), whatever is
// stored. What is not in memory is read with one query (see read). A value
// that does not decrypt (moved from another row, or sealed with a key no
// longer configured) is an errs.Internal error naming the setting, never
// its content.
func (s *Store) Resolve(ctx context.Context, inst Installation, userID string) (Resolved, error) {
	return s.resolve(ctx, inst, userID, inputs{haveUsr: userID == ""})
}

// Reread is Resolve with the values of one level read from the database,
// whatever the caches hold: the user's, or the organization's. A renewal
// re-reads the level its tokens are stored at so, under its lease, since
// another replica may have renewed them a moment ago; the definitions and
// the other level come from the caches, as for any call.
func (s *Store) Reread(ctx context.Context, inst Installation, userID string, level Level) (Resolved, error) {
	return s.resolve(ctx, inst, userID, inputs{haveUsr: userID == "", reread: level})
}

func (s *Store) resolve(ctx context.Context, inst Installation, userID string, in inputs) (Resolved, error) {
	if !s.cached(inst, userID, &in) {
		if err := s.read(ctx, inst, userID, &in); err != nil {
			return Resolved{}, err
		}
	}
	defs := in.defs
	r := Resolved{Values: make(map[string]string, len(defs)), Secret: make(map[string]bool, len(defs))}
	for _, d := range defs {
		r.Secret[d.Key] = d.Secret
		if d.Fixed() {
			if v, ok := in.fixed[d.Key]; ok {
				r.Values[d.Key] = v
			}
			continue
		}
		stored, ok := in.org[d.Key]
		if d.Level == User {
			stored, ok = in.usr[d.Key]
		}
		switch {
		case ok:
			r.Values[d.Key] = stored
		case d.DefaultValue != nil:
			r.Values[d.Key] = *d.DefaultValue
		}
	}
	r.defs = defs
	return r, nil
}

// inputs are what Resolve works from, each from the caches when it is
// there (have), else read: the app's definitions (shared, read-only), the
// developer's fixed values and the organization's and user's values,
// decrypted.
type inputs struct {
	defs                                  []Definition
	fixed, org, usr                       map[string]string
	haveDefs, haveFixed, haveOrg, haveUsr bool
	reread                                Level // values not taken from the caches (see Reread)
}

// cached fills in what in lacks from the caches, and reports whether it
// has everything then.
func (s *Store) cached(inst Installation, userID string, in *inputs) bool {
	if !in.haveDefs {
		in.defs, in.haveDefs = s.defs.Get(inst.AppID)
	}
	if !in.haveFixed {
		in.fixed, in.haveFixed = s.fixed.Get(inst.AppID)
	}
	if !in.haveOrg && in.reread != Organization {
		in.org, in.haveOrg = s.vals.Get(inst.ID)
	}
	if !in.haveUsr && in.reread != User {
		in.usr, in.haveUsr = s.vals.Get(inst.ID + cache.Sep + userID)
	}
	return in.haveDefs && in.haveFixed && in.haveOrg && in.haveUsr
}

// The parts of read's query, one per kind of row, NULL-padded to the same
// columns: kind, value, encrypted, then a definition's columns, of which a
// value's row has only the key. The definitions come first, so that the
// result's columns have their types (PostgreSQL types the NULLs of the
// later parts by them; SQLite's driver reads the declared types of the
// first part's columns, and so parses the times).
var (
	definitionsPart = "SELECT 'd' AS kind, CAST(NULL AS TEXT) AS value, CAST(NULL AS BOOLEAN) AS encrypted, " +
		strings.Join(definitionColumns, ", ") + " FROM setting_definitions WHERE app_id = ?"
	organizationPart = "SELECT 'o', value, encrypted, " + padded("key") + " FROM organization_values WHERE installation_id = ?"
	userPart         = "SELECT 'u', value, encrypted, " + padded("key") + " FROM user_values WHERE installation_id = ? AND user_id = ?"
)

// padded lists the definition's columns as NULL, except keep.
func padded(keep string) string {
	cols := make([]string, len(definitionColumns))
	for i, c := range definitionColumns {
		cols[i] = "NULL"
		if c == keep {
			cols[i] = c
		}
	}
	return strings.Join(cols, ", ")
}

// read fills in what Resolve did not find in memory with one query, a
// UNION ALL of the parts it lacks (the definitions; the organization's
// values; the user's), where it used to take one query each, and keeps
// what it read in the caches, as Load would have. The fixed values come
// from the definitions, without a query. A call's read first waits for a
// place in the calls' share of the pool, if ctx carries one (see
// database.Share); calls that missed together find there what the first
// of them read.
func (s *Store) read(ctx context.Context, inst Installation, userID string, in *inputs) error {
	onlyUser := func() bool {
		return s.users != nil && userID != "" && in.haveDefs && in.haveFixed && in.haveOrg && !in.haveUsr
	}
	if onlyUser() {
		return s.readUser(ctx, inst, userID, in)
	}
	release, err := database.Take(ctx)
	if err != nil {
		return err
	}
	if s.cached(inst, userID, in) {
		release()
		return nil
	}
	if onlyUser() { // another call read the rest meanwhile
		release() // the batch waits for a place of its own
		return s.readUser(ctx, inst, userID, in)
	}
	defer release()
	defsMark, fixedMark, valsMark := s.defs.Mark(), s.fixed.Mark(), s.vals.Mark()
	var parts []string
	var args []any
	if !in.haveDefs {
		parts, args = append(parts, definitionsPart), append(args, inst.AppID)
	}
	if !in.haveOrg {
		parts, args = append(parts, organizationPart), append(args, inst.ID)
	}
	if !in.haveUsr {
		parts, args = append(parts, userPart), append(args, inst.ID, userID)
	}
	var org, usr []row
	if len(parts) > 0 {
		q := strings.Join(parts, " UNION ALL ")
		if !in.haveDefs {
			q += " ORDER BY position, created_at, id" // prompt order, as Definitions reads them
		}
		var (
			kind string
			r    row
			d    Definition
		)
		dest := append([]any{&kind, database.Null(&r.Value), database.Null(&r.Encrypted)}, definitionDest(&d)...)
		err := database.Query(ctx, s.db, func(rows *sql.Rows) error {
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			switch kind {
			case "d":
				in.defs = append(in.defs, d)
			case "o":
				r.Key = d.Key
				org = append(org, r)
			case "u":
				r.Key = d.Key
				usr = append(usr, r)
			}
			return nil
		}, q, args...)
		if err != nil {
			return errs.From(err, "reading settings")
		}
	}
	if !in.haveDefs {
		defsMark.Keep(inst.AppID, in.defs)
	}
	if !in.haveFixed {
		var err error
		if in.fixed, err = s.fixedValues(in.defs); err != nil {
			return err
		}
		fixedMark.Keep(inst.AppID, in.fixed)
	}
	if !in.haveOrg {
		var err error
		if in.org, err = s.open(org, Organization, inst.ID, ""); err != nil {
			return err
		}
		valsMark.Keep(inst.ID, in.org)
	}
	if !in.haveUsr {
		var err error
		if in.usr, err = s.open(usr, User, inst.ID, userID); err != nil {
			return err
		}
		valsMark.Keep(inst.ID+cache.Sep+userID, in.usr)
	}
	return nil
}

// readUser is read when only the user's values are missing, as for every
// user's first call once the app's and installation's are in memory: the
// users whose calls miss together are read in one query (database.Batch),
// in the calls' share of the pool.
func (s *Store) readUser(ctx context.Context, inst Installation, userID string, in *inputs) error {
	valsMark := s.vals.Mark()
	rows, _, err := s.users.Get(ctx, inst.ID, userID)
	if err != nil {
		return errs.From(err, "reading settings")
	}
	if in.usr, err = s.open(rows, User, inst.ID, userID); err != nil {
		return err
	}
	valsMark.Keep(inst.ID+cache.Sep+userID, in.usr)
	return nil
}

// readUserValues reads the values of an installation's users, as stored,
// by user.
func readUserValues(ctx context.Context, db *gorm.DB, installationID string, users []string) (map[string][]row, error) {
	out := make(map[string][]row, len(users))
	var (
		userID string
		r      row
	)
	err := database.Query(ctx, db, func(rows *sql.Rows) error {
		if err := rows.Scan(&userID, &r.Key, &r.Value, &r.Encrypted); err != nil {
			return err
		}
		out[userID] = append(out[userID], r)
		return nil
	}, "SELECT user_id, key, value, encrypted FROM user_values WHERE installation_id = ? AND user_id IN ?", installationID, users)
	return out, err
}

// open decrypts the stored values of an installation (or one of its users)
// by key. A value that does not decrypt (moved from another row, or
// sealed with a key no longer configured) is an errs.Internal error naming
// the setting, never its content.
func (s *Store) open(rows []row, level Level, installationID, userID string) (map[string]string, error) {
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		if !r.Encrypted {
			out[r.Key] = r.Value
			continue
		}
		v, err := s.cipher.Open(r.Value, aad(level, installationID, userID, r.Key))
		if err != nil {
			return nil, errs.Wrap(errs.Internal, err, "stored value of setting %q cannot be decrypted", r.Key)
		}
		out[r.Key] = v
	}
	return out, nil
}
