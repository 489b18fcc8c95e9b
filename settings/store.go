package settings

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/cache"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/secret"
)

// Store keeps definitions, installations and values. Values of secret
// definitions are sealed with cipher before they reach the database.
type Store struct {
	db     *gorm.DB
	cipher *secret.Cipher
	now    func() time.Time

	// Caches of what every call reads (see UseCache); nil: none, as in a
	// Store made by WithTx, whose reads must see its transaction. Values
	// from them are shared and must not be modified.
	bus   *cache.Bus
	defs  *cache.Cache[[]Definition]      // by app
	fixed *cache.Cache[map[string]string] // developers' values by app, decrypted
	insts *cache.Cache[Installation]      // by id
	vals  *cache.Cache[map[string]string] // decrypted values by installation, or installation and user

	// users reads the values of users whose calls missed the cache
	// together, in one query (see read); nil in a Store made by WithTx.
	users *database.Batch[[]row]

	pairs KeyPairs     // see UseKeyPairs; nil: none checked
	refs  []References // see UseReferences
}

// UseCache makes s keep definitions, installations and values (decrypted,
// for at most the bus's TTL) in memory, invalidated through bus on every
// write.
func (s *Store) UseCache(bus *cache.Bus) {
	s.bus = bus
	s.defs = cache.New[[]Definition](bus, "definitions")
	s.fixed = cache.New[map[string]string](bus, "definitions")
	s.insts = cache.New[Installation](bus, "installation")
	s.vals = cache.New[map[string]string](bus, "values")
}

// NewStore returns a Store over db that seals secret values with c.
func NewStore(db *gorm.DB, c *secret.Cipher) *Store {
	s := &Store{db: db, cipher: c, now: func() time.Time { return time.Now().UTC() }}
	s.users = database.NewBatch(func(ctx context.Context, installationID string, users []string) (map[string][]row, error) {
		return readUserValues(ctx, db, installationID, users)
	})
	return s
}

// WithTx returns a Store that works inside the transaction tx, so a caller
// can store values together with its own rows.
func (s *Store) WithTx(tx *gorm.DB) *Store { return s.with(tx) }

func (s *Store) with(tx *gorm.DB) *Store {
	return &Store{db: tx, cipher: s.cipher, now: s.now, bus: s.bus, pairs: s.pairs, refs: s.refs}
}

// Definitions returns an app's definitions in prompt order; level "" means
// both levels.
func (s *Store) Definitions(ctx context.Context, appID string, level Level) ([]Definition, error) {
	all, err := s.defs.Load(appID, func() ([]Definition, error) {
		var defs []Definition
		err := s.db.WithContext(ctx).Where("app_id = ?", appID).Order("position, created_at, id").Find(&defs).Error
		return defs, errs.From(err, "listing settings")
	})
	if err != nil {
		return nil, err
	}
	if level == "" {
		return append([]Definition(nil), all...), nil // the cached slice is shared
	}
	var defs []Definition
	for _, d := range all {
		if d.Level == level {
			defs = append(defs, d)
		}
	}
	return defs, nil
}

// Definition returns the app's definition with that key.
func (s *Store) Definition(ctx context.Context, appID, key string) (Definition, error) {
	var d Definition
	err := s.db.WithContext(ctx).Where("app_id = ? AND key = ?", appID, key).Take(&d).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Definition{}, errs.NotFoundf("setting %q not found", key)
	}
	return d, errs.From(err, "reading setting")
}

// CreateDefinition validates and stores d at the end of the app's prompt
// order unless d.Position is set. A key the app already has is errs.Conflict.
// An empty Visibility is Editable. The default of a hidden secret setting is
// sealed into d.FixedSecret, and d.DefaultValue is nil on return.
func (s *Store) CreateDefinition(ctx context.Context, d *Definition) error {
	if d.Visibility == "" {
		d.Visibility = Editable
	}
	if d.Type == "" {
		d.Type = String
	}
	if err := d.validateNew(); err != nil {
		return err
	}
	if err := s.sealFixed(d); err != nil {
		return errs.From(err, "creating setting")
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if d.Position == 0 {
			var max *int
			if err := tx.Model(&Definition{}).Where("app_id = ?", d.AppID).Select("MAX(position)").Scan(&max).Error; err != nil {
				return err
			}
			d.Position = 1
			if max != nil {
				d.Position = *max + 1
			}
		}
		d.ID = database.NewID()
		d.CreatedAt = s.now()
		d.UpdatedAt = d.CreatedAt
		if err := tx.Create(d).Error; err != nil {
			return err
		}
		return s.bus.Changed(tx, "definitions", d.AppID)
	})
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return &errs.Error{Code: errs.Conflict, Message: "the app already has this setting",
			Fields: []errs.FieldError{{Field: "key", Message: "is taken: " + d.Key}}}
	}
	return errs.From(err, "creating setting")
}

// DefinitionUpdate is a partial change to a definition; nil fields stay.
// An empty Default or Pattern removes it.
type DefinitionUpdate struct {
	Label       *string
	Description *string
	Secret      *bool
	Required    *bool
	Default     *string
	Pattern     *string
	Position    *int
	Visibility  *Visibility
	Type        *Type
	// DeleteValues lets a change to read_only or hidden delete the values
	// stored for the setting, which are no longer used.
	DeleteValues bool
}

// UpdateDefinition applies u. Turning secret on or off while values are
// stored is errs.Conflict: stored values would be in the wrong form. A new
// pattern or required flag applies to values written from then on; stored
// values are kept as they are.
//
// Making an editable setting read_only or hidden while values are stored is
// errs.Conflict unless u.DeleteValues, in which case they are deleted in the
// same transaction (they would never be used again). A new default of a
// read_only or hidden setting is its value everywhere at once. The sealed
// value of a hidden secret setting is never turned into a shown default:
// making such a setting non-secret or read_only needs a new default in u,
// and making it editable drops it (an editable secret has no default).
//
// A change that an OAuth config's or an API's validation would refuse
// (say, a url setting that starts a token_url made a string, or a token
// setting made hidden) is errs.Conflict naming them (see UseReferences). A
// new developer value of a certificate or private key paired with another
// fixed one is checked against it (see checkFixedPairs): errs.Invalid
// naming default.
func (s *Store) UpdateDefinition(ctx context.Context, appID, key string, u DefinitionUpdate) (Definition, error) {
	var d Definition
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if d, err = s.with(tx).Definition(ctx, appID, key); err != nil {
			return err
		}
		wasFixed := d.Fixed()
		if u.Visibility != nil && !d.Fixed() && (*u.Visibility == ReadOnly || *u.Visibility == Hidden) {
			if err := s.with(tx).dropValues(d, *u.Visibility, u.DeleteValues); err != nil {
				return err
			}
		}
		if u.Type != nil && *u.Type == "" {
			str := String
			u.Type = &str
		}
		if u.Type != nil && *u.Type != d.typ() {
			n, err := s.with(tx).countValues(d)
			if err != nil {
				return err
			}
			if n > 0 {
				return &errs.Error{Code: errs.Conflict, Message: fmt.Sprintf("setting %q has %d stored value(s); its type cannot change while values are stored, since they were checked against the old one", key, n),
					Fields: []errs.FieldError{{Field: "type", Message: "cannot change while values are stored"}}}
			}
		}
		if u.Secret != nil && *u.Secret != d.Secret {
			n, err := s.with(tx).countValues(d)
			if err != nil {
				return err
			}
			if n > 0 {
				return errs.New(errs.Conflict, "setting %q has %d stored value(s); secret cannot change while values are stored", key, n)
			}
		}
		set(&d.Label, u.Label)
		set(&d.Description, u.Description)
		set(&d.Secret, u.Secret)
		set(&d.Required, u.Required)
		set(&d.Position, u.Position)
		set(&d.Visibility, u.Visibility)
		set(&d.Type, u.Type)
		if u.Default != nil {
			d.DefaultValue = nilIfEmpty(*u.Default)
			d.FixedSecret = nil // replaced by the new value, sealed below
		}
		if !d.sealsFixed() {
			d.FixedSecret = nil
		}
		if u.Pattern != nil {
			d.Pattern = nilIfEmpty(*u.Pattern)
		}
		if err := d.Validate(); err != nil {
			return err
		}
		before, err := s.with(tx).Definitions(ctx, appID, "")
		if err != nil {
			return err
		}
		after := slices.Clone(before)
		for i := range after {
			if after[i].ID == d.ID {
				after[i] = d
			}
		}
		if err := s.with(tx).checkReferences(ctx, appID, key, before, after, false); err != nil {
			return err
		}
		if u.Default != nil || !wasFixed {
			// A new developer value of a certificate or key: checked
			// against the other half now, not at every handshake.
			if err := s.with(tx).checkFixedPairs(ctx, after, d); err != nil {
				return err
			}
		}
		if err := s.sealFixed(&d); err != nil {
			return err
		}
		d.UpdatedAt = s.now()
		if err := tx.Save(&d).Error; err != nil {
			return err
		}
		if err := s.bus.Changed(tx, "values", ""); err != nil { // values may have gone with it
			return err
		}
		return s.bus.Changed(tx, "definitions", appID)
	})
	return d, errs.From(err, "updating setting")
}

// DeleteDefinition removes a definition. If an OAuth config or an API of
// the app uses it (see UseReferences), it refuses (errs.Conflict, naming
// them), whatever deleteValues says. If values are stored for it, it
// refuses (errs.Conflict) unless deleteValues is true, in which case the
// values go in the same transaction.
func (s *Store) DeleteDefinition(ctx context.Context, appID, key string, deleteValues bool) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		d, err := s.with(tx).Definition(ctx, appID, key)
		if err != nil {
			return err
		}
		before, err := s.with(tx).Definitions(ctx, appID, "")
		if err != nil {
			return err
		}
		after := slices.DeleteFunc(slices.Clone(before), func(x Definition) bool { return x.ID == d.ID })
		if err := s.with(tx).checkReferences(ctx, appID, key, before, after, true); err != nil {
			return err
		}
		n, err := s.with(tx).countValues(d)
		if err != nil {
			return err
		}
		if n > 0 && !deleteValues {
			return errs.New(errs.Conflict, "setting %q has %d stored value(s); delete with ?delete_values=true to delete them too", key, n)
		}
		if n > 0 {
			if err := tx.Where("key = ? AND installation_id IN (?)", key, installationsOf(tx, appID)).
				Delete(valueModel(d.Level)).Error; err != nil {
				return err
			}
		}
		if err := tx.Delete(&Definition{}, "id = ?", d.ID).Error; err != nil {
			return err
		}
		if err := s.bus.Changed(tx, "values", ""); err != nil {
			return err
		}
		return s.bus.Changed(tx, "definitions", appID)
	})
	return errs.From(err, "deleting setting")
}

func (s *Store) countValues(d Definition) (int64, error) {
	var n int64
	err := s.db.Model(valueModel(d.Level)).
		Where("key = ? AND installation_id IN (?)", d.Key, installationsOf(s.db, d.AppID)).
		Count(&n).Error
	return n, err
}

func installationsOf(db *gorm.DB, appID string) *gorm.DB {
	return db.Session(&gorm.Session{NewDB: true}).Model(&Installation{}).Select("id").Where("app_id = ?", appID)
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
