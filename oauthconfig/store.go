package oauthconfig

import (
	"context"
	"errors"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/cache"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/settings"
)

// Store keeps OAuth configs.
type Store struct {
	db  *gorm.DB
	now func() time.Time

	bus     *cache.Bus
	configs *cache.Cache[Config] // by id; shared values, not to be modified

	pairs PairChecker // see UsePairChecker; nil: none checked
}

// PairChecker checks a client certificate and key that the app developer
// fixed (see settings.Store.CheckFixedPair); settings.Store is one.
type PairChecker interface {
	CheckFixedPair(defs []settings.Definition, p settings.KeyPair) (setting, problem string, err error)
}

var _ PairChecker = (*settings.Store)(nil)

// UsePairChecker makes s check, when a config is saved, a client
// certificate and key whose values the developer fixed: they are the same
// for every installation, so they can be checked once, now.
func (s *Store) UsePairChecker(p PairChecker) { s.pairs = p }

// checkFixedPair returns an errs.Invalid naming client_cert_setting or
// client_key_setting, whichever holds the fault, when both are fixed by
// the developer and are not a usable pair (see PairChecker).
func (s *Store) checkFixedPair(c *Config, defs []settings.Definition) error {
	if s.pairs == nil || c.ClientCertSetting == "" || c.ClientKeySetting == "" {
		return nil
	}
	setting, problem, err := s.pairs.CheckFixedPair(defs, settings.KeyPair{Certificate: c.ClientCertSetting, Key: c.ClientKeySetting, Config: c.Name})
	if err != nil || problem == "" {
		return err
	}
	field := "client_key_setting"
	if setting == c.ClientCertSetting {
		field = "client_cert_setting"
	}
	return errs.Fields{{Field: field, Message: problem}}.Err()
}

// UseCache makes s keep configs in memory, invalidated through bus on
// every write.
func (s *Store) UseCache(bus *cache.Bus) {
	s.bus = bus
	s.configs = cache.New[Config](bus, "config")
}

// NewStore returns a Store over db.
func NewStore(db *gorm.DB) *Store {
	return &Store{db: db, now: func() time.Time { return time.Now().UTC() }}
}

// Create fills defaults, validates c against the app's setting definitions
// (and a client certificate and key the developer fixed, see
// UsePairChecker) and stores it. A name the app already uses is
// errs.Conflict.
func (s *Store) Create(ctx context.Context, c *Config, defs []settings.Definition) error {
	c.ApplyDefaults()
	if err := c.Validate(defs); err != nil {
		return err
	}
	if err := s.checkFixedPair(c, defs); err != nil {
		return err
	}
	c.ID = database.NewID()
	c.CreatedAt = s.now()
	c.UpdatedAt = c.CreatedAt
	err := s.db.WithContext(ctx).Create(c).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return nameTaken(c.Name)
	}
	return errs.From(err, "creating OAuth config")
}

func nameTaken(name string) error {
	return &errs.Error{Code: errs.Conflict, Message: "the app already has an OAuth config with this name",
		Fields: []errs.FieldError{{Field: "name", Message: "is taken: " + name}}}
}

// Update validates and stores a changed config, as Create does; fields
// left empty get their defaults again.
func (s *Store) Update(ctx context.Context, c *Config, defs []settings.Definition) error {
	c.ApplyDefaults()
	if err := c.Validate(defs); err != nil {
		return err
	}
	if err := s.checkFixedPair(c, defs); err != nil {
		return err
	}
	c.UpdatedAt = s.now()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Save(c).Error; err != nil {
			return err
		}
		return s.bus.Changed(tx, "config", c.ID)
	})
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return nameTaken(c.Name)
	}
	return errs.From(err, "updating OAuth config")
}

// Find returns the app's config with that id.
func (s *Store) Find(ctx context.Context, appID, id string) (Config, error) {
	c, err := s.FindByID(ctx, id)
	if err == nil && c.AppID != appID {
		return Config{}, errs.NotFoundf("OAuth config %q not found", id)
	}
	return c, err
}

// FindByID returns a config by id, whatever its app; for flows that start
// from a stored state rather than an API key.
func (s *Store) FindByID(ctx context.Context, id string) (Config, error) {
	return s.configs.Load(id, func() (Config, error) {
		var c Config
		err := s.db.WithContext(ctx).Where("id = ?", id).Take(&c).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return Config{}, errs.NotFoundf("OAuth config %q not found", id)
		}
		return c, errs.From(err, "reading OAuth config")
	})
}

// List returns the app's configs, oldest first.
func (s *Store) List(ctx context.Context, appID string) ([]Config, error) {
	var out []Config
	err := s.db.WithContext(ctx).Where("app_id = ?", appID).Order("created_at, id").Find(&out).Error
	return out, errs.From(err, "listing OAuth configs")
}

// KeyPairs returns the client certificate and key settings that the app's
// configs pair, read through tx (see settings.KeyPairs).
func (s *Store) KeyPairs(ctx context.Context, tx *gorm.DB, appID string) ([]settings.KeyPair, error) {
	var rows []struct{ Name, ClientCertSetting, ClientKeySetting string }
	err := tx.WithContext(ctx).Model(&Config{}).Select("name, client_cert_setting, client_key_setting").
		Where("app_id = ? AND client_cert_setting <> ''", appID).Scan(&rows).Error
	if err != nil {
		return nil, errs.From(err, "reading OAuth configs")
	}
	out := make([]settings.KeyPair, 0, len(rows))
	for _, r := range rows {
		out = append(out, settings.KeyPair{Certificate: r.ClientCertSetting, Key: r.ClientKeySetting, Config: r.Name})
	}
	return out, nil
}

var _ settings.KeyPairs = (*Store)(nil)

// Delete removes a config. Users' tokens stay in their settings; only the
// connection state and log entries of the config go with it.
func (s *Store) Delete(ctx context.Context, appID, id string) error {
	var names []string
	if err := s.db.WithContext(ctx).Model(&app.API{}).Where("config_id = ?", id).Order("name").Pluck("name", &names).Error; err != nil {
		return errs.From(err, "deleting OAuth config")
	}
	if len(names) > 0 {
		return errs.New(errs.Conflict, "OAuth config %q is used by API(s) %s; change or delete them first", id, strings.Join(names, ", "))
	}
	var found bool
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Where("app_id = ? AND id = ?", appID, id).Delete(&Config{})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		found = true
		if err := s.bus.Changed(tx, "connection", ""); err != nil { // gone with it
			return err
		}
		return s.bus.Changed(tx, "config", id)
	})
	if err != nil {
		return errs.From(err, "deleting OAuth config")
	}
	if !found {
		return errs.NotFoundf("OAuth config %q not found", id)
	}
	return nil
}
