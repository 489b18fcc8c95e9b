package settings

import (
	"context"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/errs"
)

// lookupPrefix is how many characters of a value the lookup indexes hold
// (migration 00012): PostgreSQL refuses btree entries over about 2.7 kB,
// and values may be 64 KiB.
const lookupPrefix = 200

// prefix returns the first lookupPrefix characters of v, as SQL's
// substr(v, 1, 200) counts them in both dialects (characters of UTF-8 text).
func prefix(v string) string {
	n := 0
	for i := range v {
		if n == lookupPrefix {
			return v[:i]
		}
		n++
	}
	return v
}

// InstallationsByValue returns the installations of app appID whose
// organization-level value of key is exactly value, at most limit of them.
// Only values stored in the clear match: a secret setting's values are
// sealed, and finding one would mean opening every row. The query uses the
// index organization_values_lookup, so it reads only matching rows.
func (s *Store) InstallationsByValue(ctx context.Context, appID, key, value string, limit int) ([]Installation, error) {
	if value == "" || !utf8.ValidString(value) || len(value) > MaxValueBytes {
		return nil, nil
	}
	var out []Installation
	err := s.db.WithContext(ctx).
		Where("app_id = ? AND id IN (?)", appID, s.db.Session(&gorm.Session{NewDB: true}).Model(&organizationValue{}).
			Select("installation_id").
			Where("key = ? AND substr(value, 1, 200) = ? AND value = ? AND NOT encrypted", key, prefix(value), value)).
		Order("created_at, id").Limit(limit).Find(&out).Error
	return out, errs.From(err, "finding installations by value")
}

// UsersByValue returns the users of installation installationID whose
// user-level value of key is exactly value, at most limit of them. As for
// InstallationsByValue, only values stored in the clear match, through the
// index user_values_lookup.
func (s *Store) UsersByValue(ctx context.Context, installationID, key, value string, limit int) ([]string, error) {
	if value == "" || !utf8.ValidString(value) || len(value) > MaxValueBytes {
		return nil, nil
	}
	var out []string
	err := s.db.WithContext(ctx).Model(&userValue{}).
		Where("installation_id = ? AND key = ? AND substr(value, 1, 200) = ? AND value = ? AND NOT encrypted",
			installationID, key, prefix(value), value).
		Order("user_id").Limit(limit).Pluck("user_id", &out).Error
	return out, errs.From(err, "finding users by value")
}

// FixedValue returns the developer's value of the app's read_only or hidden
// setting key, decrypted when it is secret: the one value every
// installation has. ok is false when the setting is not fixed or has no
// value. An unknown key is errs.NotFound; a value that does not decrypt is
// errs.Internal naming the setting, never its content.
func (s *Store) FixedValue(ctx context.Context, appID, key string) (v string, ok bool, err error) {
	d, err := s.Definition(ctx, appID, key)
	if err != nil {
		return "", false, err
	}
	if !d.Fixed() {
		return "", false, nil
	}
	return s.fixedValue(d)
}

// OrganizationValue returns the installation's value of the
// organization-level (or fixed) setting key, decrypted, as Resolve would
// give it: a fixed setting's developer value, else the stored value, else
// the default. Only that one value is opened. ok is false when there is
// none. An unknown key is errs.NotFound.
func (s *Store) OrganizationValue(ctx context.Context, inst Installation, key string) (v string, ok bool, err error) {
	d, err := s.Definition(ctx, inst.AppID, key)
	if err != nil {
		return "", false, err
	}
	if d.Fixed() {
		return s.fixedValue(d)
	}
	if d.Level != Organization {
		return "", false, nil
	}
	var rows []row
	err = s.db.WithContext(ctx).Model(&organizationValue{}).Select("key, value, encrypted").
		Where("installation_id = ? AND key = ?", inst.ID, key).Scan(&rows).Error
	if err != nil {
		return "", false, errs.From(err, "reading value")
	}
	switch {
	case len(rows) == 1 && rows[0].Encrypted:
		v, err := s.cipher.Open(rows[0].Value, aad(Organization, inst.ID, "", key))
		if err != nil {
			return "", false, errs.Wrap(errs.Internal, err, "stored value of setting %q cannot be decrypted", key)
		}
		return v, true, nil
	case len(rows) == 1:
		return rows[0].Value, true, nil
	case d.DefaultValue != nil:
		return *d.DefaultValue, true, nil
	}
	return "", false, nil
}
