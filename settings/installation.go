package settings

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/latchkey/latchkey/internal/cache"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/errs"
)

// Installation is an app installed by one organization of the platform.
type Installation struct {
	ID             string
	AppID          string
	OrganizationID string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// organizationValue and userValue are stored rows; Value is sealed when
// Encrypted is true.
type organizationValue struct {
	InstallationID string `gorm:"primaryKey"`
	Key            string `gorm:"primaryKey"`
	Value          string
	Encrypted      bool
	UpdatedAt      time.Time
}

func (organizationValue) TableName() string { return "organization_values" }

type userValue struct {
	InstallationID string `gorm:"primaryKey"`
	UserID         string `gorm:"primaryKey"`
	Key            string `gorm:"primaryKey"`
	Value          string
	Encrypted      bool
	UpdatedAt      time.Time
}

func (userValue) TableName() string { return "user_values" }

func valueModel(l Level) any {
	if l == User {
		return &userValue{}
	}
	return &organizationValue{}
}

// aad names the row a sealed value belongs to, so it opens nowhere else.
// Keys and installation ids hold no ':', and the user id comes last, so two
// different rows never share a name.
func aad(l Level, installationID, userID, key string) string {
	if l == User {
		return "user:" + installationID + ":" + key + ":" + userID
	}
	return "organization:" + installationID + ":" + key
}

// Value is one setting as API callers see it. Value is empty for secret
// settings: they are write-only.
type Value struct {
	Definition  Definition
	Value       string
	Set         bool // a value is stored
	FromDefault bool // no value is stored; Value is the definition's default
}

// CheckID returns an error naming field if id cannot be an organization or
// user id: those are the platform's own opaque ids.
func CheckID(field, id string) *errs.FieldError {
	if id == "" || len(id) > 255 || !utf8.ValidString(id) || strings.ContainsFunc(id, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return &errs.FieldError{Field: field, Message: "must be 1-255 bytes of text without control characters"}
	}
	return nil
}

// Install installs an app for an organization with its organization-level
// values. Missing required values, unknown keys and values that fail their
// pattern are one errs.Invalid error naming each; nothing is stored then.
// A second installation by the same organization is errs.Conflict.
func (s *Store) Install(ctx context.Context, appID, organizationID string, values map[string]string) (Installation, error) {
	if fe := CheckID("organization_id", organizationID); fe != nil {
		return Installation{}, &errs.Error{Code: errs.Invalid, Message: "the request has invalid fields", Fields: []errs.FieldError{*fe}}
	}
	inst := Installation{ID: database.NewID(), AppID: appID, OrganizationID: organizationID, CreatedAt: s.now()}
	inst.UpdatedAt = inst.CreatedAt
	changes := make(map[string]*string, len(values))
	for k, v := range values {
		changes[k] = &v
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		defs, err := s.with(tx).Definitions(ctx, appID, "")
		if err != nil {
			return err
		}
		if err := checkChanges(defs, Organization, true, changes); err != nil {
			return err
		}
		if err := s.with(tx).checkPairs(ctx, inst, defs, changes); err != nil {
			return err
		}
		if err := tx.Create(&inst).Error; err != nil {
			return err
		}
		return s.with(tx).write(inst, "", defs, Organization, changes)
	})
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return Installation{}, errs.New(errs.Conflict, "organization %q has already installed this app", organizationID)
	}
	return inst, errs.From(err, "installing app")
}

// Installation returns an installation by id, whatever its account: callers
// check the app belongs to the caller.
func (s *Store) Installation(ctx context.Context, id string) (Installation, error) {
	return s.insts.Load(id, func() (Installation, error) {
		var inst Installation
		err := s.db.WithContext(ctx).Where("id = ?", id).Take(&inst).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return Installation{}, errs.NotFoundf("installation %q not found", id)
		}
		return inst, errs.From(err, "reading installation")
	})
}

// InstallationFilter selects installations; empty fields match all.
type InstallationFilter struct {
	AppIDs         []string // required: the caller's apps
	OrganizationID string
	After          string // installations whose ids come after this one: the next page
	Limit          int    // 0: all
}

// Installations returns the installations of f.AppIDs, oldest first (ids
// are UUIDv7, so id order is creation order and After pages by it).
func (s *Store) Installations(ctx context.Context, f InstallationFilter) ([]Installation, error) {
	if len(f.AppIDs) == 0 {
		return nil, nil
	}
	q := s.db.WithContext(ctx).Where("app_id IN ?", f.AppIDs)
	if f.OrganizationID != "" {
		q = q.Where("organization_id = ?", f.OrganizationID)
	}
	if f.After != "" {
		q = q.Where("id > ?", f.After)
	}
	if f.Limit > 0 {
		q = q.Limit(f.Limit)
	}
	var out []Installation
	err := q.Order("id").Find(&out).Error
	return out, errs.From(err, "listing installations")
}

// DeleteInstallation uninstalls: the installation and every organization and
// user value stored for it are deleted.
func (s *Store) DeleteInstallation(ctx context.Context, id string) error {
	// Values go by ON DELETE CASCADE.
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Delete(&Installation{}, "id = ?", id).Error; err != nil {
			return err
		}
		if err := s.bus.Changed(tx, "values", ""); err != nil {
			return err
		}
		return s.bus.Changed(tx, "installation", id)
	})
	return errs.From(err, "deleting installation")
}

// OrganizationValues returns the installation's organization-level settings
// in prompt order, secret and managed values masked, hidden settings left
// out.
func (s *Store) OrganizationValues(ctx context.Context, inst Installation) ([]Value, error) {
	return s.values(ctx, inst, "", Organization)
}

// UserValues returns a user's user-level settings in prompt order, secrets
// masked, hidden settings left out.
func (s *Store) UserValues(ctx context.Context, inst Installation, userID string) ([]Value, error) {
	return s.values(ctx, inst, userID, User)
}

func (s *Store) values(ctx context.Context, inst Installation, userID string, level Level) ([]Value, error) {
	defs, err := s.Definitions(ctx, inst.AppID, level)
	if err != nil {
		return nil, err
	}
	rows, err := s.rows(ctx, inst.ID, userID, level)
	if err != nil {
		return nil, err
	}
	stored := make(map[string]row, len(rows))
	for _, r := range rows {
		stored[r.Key] = r
	}
	out := make([]Value, 0, len(defs))
	for _, d := range defs {
		v := Value{Definition: d}
		if d.Fixed() {
			// Never shown when hidden; the developer's default when
			// read_only, whatever is stored.
			if d.visibility() == ReadOnly && d.DefaultValue != nil {
				v.Value, v.FromDefault = *d.DefaultValue, true
				out = append(out, v)
			}
			continue
		}
		if row, ok := stored[d.Key]; ok {
			v.Set = true
			if !d.Secret && !row.Encrypted && !d.Managed() {
				v.Value = row.Value
			}
		} else if d.DefaultValue != nil {
			v.Value, v.FromDefault = *d.DefaultValue, true
		}
		out = append(out, v)
	}
	return out, nil
}

type row struct {
	Key       string
	Value     string
	Encrypted bool
}

// rows reads the values stored for an installation (or one of its users),
// as stored: open decrypts them.
func (s *Store) rows(ctx context.Context, installationID, userID string, level Level) ([]row, error) {
	var rows []row
	q := s.db.WithContext(ctx).Model(valueModel(level)).Select("key, value, encrypted").Where("installation_id = ?", installationID)
	if level == User {
		q = q.Where("user_id = ?", userID)
	}
	if err := q.Scan(&rows).Error; err != nil {
		return nil, errs.From(err, "reading values")
	}
	return rows, nil
}

// SetOrganizationValues changes organization-level values; a nil value
// removes the stored one. It checks every change first and stores all or none.
func (s *Store) SetOrganizationValues(ctx context.Context, inst Installation, changes map[string]*string) error {
	return s.set(ctx, inst, "", Organization, changes)
}

// SetUserValues changes a user's user-level values; a nil value removes the
// stored one. It checks every change first and stores all or none.
func (s *Store) SetUserValues(ctx context.Context, inst Installation, userID string, changes map[string]*string) error {
	if fe := CheckID("user_id", userID); fe != nil {
		return &errs.Error{Code: errs.Invalid, Message: "the request has invalid fields", Fields: []errs.FieldError{*fe}}
	}
	return s.set(ctx, inst, userID, User, changes)
}

func (s *Store) set(ctx context.Context, inst Installation, userID string, level Level, changes map[string]*string) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		defs, err := s.with(tx).Definitions(ctx, inst.AppID, "")
		if err != nil {
			return err
		}
		if err := checkChanges(defs, level, false, changes); err != nil {
			return err
		}
		if level == Organization {
			if err := s.with(tx).checkPairs(ctx, inst, defs, changes); err != nil {
				return err
			}
		}
		if err := s.with(tx).write(inst, userID, defs, level, changes); err != nil {
			return err
		}
		return s.touch(tx, inst, userID)
	})
	return errs.From(err, "storing values")
}

// touch records that values of inst (a user's, when userID is set) have
// changed: the installation's updated_at, and the caches of every replica.
func (s *Store) touch(tx *gorm.DB, inst Installation, userID string) error {
	if err := tx.Model(&Installation{}).Where("id = ?", inst.ID).Update("updated_at", s.now()).Error; err != nil {
		return err
	}
	return s.bus.ChangedAll(tx, valuesChange(inst, userID), cache.Change{Topic: "installation", Key: inst.ID})
}

// valuesChange is the cache change of inst's values (a user's, when
// userID is set).
func valuesChange(inst Installation, userID string) cache.Change {
	key := inst.ID
	if userID != "" {
		key += cache.Sep + userID
	}
	return cache.Change{Topic: "values", Key: key}
}

// Check reports whether value fits the app's setting key (its pattern and
// type) without storing it, for a value from outside that is used before
// it is stored. The errs.Invalid error names the setting, never the value.
func (s *Store) Check(ctx context.Context, appID, key, value string) error {
	defs, err := s.Definitions(ctx, appID, "")
	if err != nil {
		return err
	}
	for _, d := range defs {
		if d.Key == key {
			if msg := d.checkValue(value); msg != "" {
				return errs.New(errs.Invalid, "the value for setting %q %s", key, msg)
			}
			return nil
		}
	}
	return errs.New(errs.Invalid, "the app has no setting %q", key)
}

// FromProvider is a write of values a provider sent: tokens and mapped
// values (see SetFromProvider).
type FromProvider struct {
	Changes map[string]*string // setting -> value; nil or "" removes it
	// Always lists the keys stored even when they do not fit their
	// definition's pattern: tokens the provider has issued.
	Always map[string]bool
	// Definitions are the app's definitions as the caller has just read
	// them (Resolved.Definitions), under the lock it writes under; nil:
	// they are read here. A renewal has them in hand, and reading them
	// again in the write's transaction is no fresher (read committed).
	Definitions []Definition
	// Also are the caller's own cache changes, announced with the
	// values' in one statement.
	Also []cache.Change
}

// SetFromProvider stores values a provider sent for userID ("" for the
// installation's organization-level values). A provider's answer is not an
// installer's input, and tokens it has issued must never be dropped: the
// keys in w.Always are stored even when they do not fit their definition's
// pattern; any other value that does not fit is left out. Each such
// mismatch is returned as a problem naming the key, never the value. It
// stores all or nothing only for database errors. Unlike an installer's
// change, it does not move the installation's updated_at: a renewal is not
// an edit.
func (s *Store) SetFromProvider(ctx context.Context, inst Installation, userID string, w FromProvider) (Written, error) {
	level := User
	if userID == "" {
		level = Organization
	}
	changes, always := w.Changes, w.Always
	var problems []string
	var fit map[string]*string
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		defs := w.Definitions
		if defs == nil {
			var err error
			if defs, err = s.with(tx).Definitions(ctx, inst.AppID, ""); err != nil {
				return err
			}
		}
		byKey := make(map[string]*Definition, len(defs))
		for i := range defs {
			byKey[defs[i].Key] = &defs[i]
		}
		keys := make([]string, 0, len(changes))
		for k := range changes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fit = make(map[string]*string, len(changes))
		for _, k := range keys {
			d, ok := byKey[k]
			var msg string
			switch {
			case !ok:
				msg = "the app has no such setting"
			case d.Fixed():
				msg = fmt.Sprintf("is fixed by the app developer (%s)", d.visibility())
			case d.Level != level:
				msg = fmt.Sprintf("is a %s-level setting, not %s-level", d.Level, level)
			case changes[k] != nil && *changes[k] != "":
				msg = d.checkValue(*changes[k])
			}
			if msg != "" && (always[k] && ok && !d.Fixed() && d.Level == level) {
				problems = append(problems, fmt.Sprintf("setting %q: the provider's value %s; stored anyway", k, msg))
				msg = ""
			}
			if msg != "" {
				problems = append(problems, fmt.Sprintf("setting %q: the provider's value %s; not stored", k, msg))
				continue
			}
			fit[k] = changes[k]
		}
		if err := s.with(tx).write(inst, userID, defs, level, fit); err != nil {
			return err
		}
		return s.bus.ChangedAll(tx, append(w.Also, valuesChange(inst, userID))...)
	})
	if err != nil {
		return Written{}, errs.From(err, "storing values")
	}
	return Written{Values: fit, Problems: problems}, nil
}

// Written is what SetFromProvider did: the values it stored (nil or "":
// removed), and what it left out or stored anyway, as problems.
type Written struct {
	Values   map[string]*string
	Problems []string
}

// With returns r with the values w stored, as Resolve would read them
// back: a removed value falls back to its default. r is not changed.
func (r Resolved) With(w Written) Resolved {
	out := Resolved{Values: make(map[string]string, len(r.Values)+len(w.Values)), Secret: r.Secret, defs: r.defs}
	for k, v := range r.Values {
		out.Values[k] = v
	}
	for k, v := range w.Values {
		if v != nil && *v != "" {
			out.Values[k] = *v
			continue
		}
		delete(out.Values, k)
		for _, d := range r.defs {
			if d.Key == k && d.DefaultValue != nil {
				out.Values[k] = *d.DefaultValue
			}
		}
	}
	return out
}

// checkChanges validates changes against the definitions of level. When
// installing, every required setting must be given; later, a required
// setting may not be removed. Messages name keys, never values.
func checkChanges(defs []Definition, level Level, installing bool, changes map[string]*string) error {
	byKey := make(map[string]*Definition, len(defs))
	for i := range defs {
		byKey[defs[i].Key] = &defs[i]
	}
	var fs errs.Fields
	keys := make([]string, 0, len(changes))
	for k := range changes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field := "values." + k
		d, ok := byKey[k]
		switch {
		case !ok:
			fs.Add(field, "the app has no setting with this key")
		case d.Fixed():
			fs.Add(field, "is fixed by the app developer (%s); it cannot be set", d.visibility())
		case d.Managed():
			fs.Add(field, "is managed by Latchkey, which stores what the provider sends; it cannot be set or removed")
		case d.Level != level:
			fs.Add(field, "is a %s-level setting, not %s-level", d.Level, level)
		case changes[k] == nil || *changes[k] == "":
			if d.Required && !d.HasDefault() && level == Organization {
				fs.Add(field, "is required")
			}
		default:
			if msg := d.checkValue(*changes[k]); msg != "" {
				fs.Add(field, "%s", msg)
			}
		}
	}
	if installing {
		for _, d := range defs {
			if d.Level != Organization || !d.Required || d.HasDefault() {
				continue
			}
			if _, given := changes[d.Key]; !given {
				fs.Add("values."+d.Key, "is required")
			}
		}
	}
	return fs.Err()
}

// write stores checked changes, sealing values of secret definitions.
func (s *Store) write(inst Installation, userID string, defs []Definition, level Level, changes map[string]*string) error {
	secretKey := make(map[string]bool, len(defs))
	for _, d := range defs {
		secretKey[d.Key] = d.Secret
	}
	now := s.now()
	// The stored values go in one statement (an access and a refresh
	// token, say), the removed ones each in its own.
	var orgRows []organizationValue
	var userRows []userValue
	for key, v := range changes {
		if v == nil || *v == "" {
			q := s.db.Where("installation_id = ? AND key = ?", inst.ID, key)
			if level == User {
				q = q.Where("user_id = ?", userID)
			}
			if err := q.Delete(valueModel(level)).Error; err != nil {
				return err
			}
			continue
		}
		value, encrypted := *v, secretKey[key]
		if encrypted {
			var err error
			if value, err = s.cipher.Seal(value, aad(level, inst.ID, userID, key)); err != nil {
				return err
			}
		}
		if level == User {
			userRows = append(userRows, userValue{InstallationID: inst.ID, UserID: userID, Key: key, Value: value, Encrypted: encrypted, UpdatedAt: now})
		} else {
			orgRows = append(orgRows, organizationValue{InstallationID: inst.ID, Key: key, Value: value, Encrypted: encrypted, UpdatedAt: now})
		}
	}
	var err error
	switch {
	case len(userRows) > 0:
		err = s.db.Clauses(clause.OnConflict{UpdateAll: true}).Create(&userRows).Error
	case len(orgRows) > 0:
		err = s.db.Clauses(clause.OnConflict{UpdateAll: true}).Create(&orgRows).Error
	}
	return err
}

// fixedValues returns the developers' values of defs' read_only and hidden
// settings, decrypted.
func (s *Store) fixedValues(defs []Definition) (map[string]string, error) {
	out := make(map[string]string)
	for _, d := range defs {
		if !d.Fixed() {
			continue
		}
		v, ok, err := s.fixedValue(d)
		if err != nil {
			return nil, err
		}
		if ok {
			out[d.Key] = v
		}
	}
	return out, nil
}
