package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/cache"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/secret"
)

// keyPrefix starts every API key, so leaked keys are easy to recognise
// (secret scanners look for such prefixes).
const keyPrefix = "lk_"

// Store keeps accounts, API keys and apps.
type Store struct {
	db  *gorm.DB
	now func() time.Time

	// Caches of what every call reads (see UseCache); nil: none. Values
	// from them are shared and must not be modified.
	bus      *cache.Bus
	keys     *cache.Cache[APIKey] // by key hash
	apps     *cache.Cache[App]    // by account and ref, and by id
	apis     *cache.Cache[API]    // by app and ref
	lastUsed sync.Map             // key id -> time.Time this process last recorded
}

// UseCache makes s keep API keys, apps and APIs in memory, invalidated
// through bus on every write.
func (s *Store) UseCache(bus *cache.Bus) {
	s.bus = bus
	s.keys = cache.New[APIKey](bus, "api_key")
	s.apps = cache.New[App](bus, "app")
	s.apis = cache.New[API](bus, "api")
}

// CachedApp returns the account's app ref when it is in memory, as Find
// would, without reading the database.
func (s *Store) CachedApp(accountID, ref string) (App, bool) {
	return s.apps.Get(accountID + cache.Sep + ref)
}

// CachedAPI returns the app's API ref when it is in memory, as FindAPI
// would, without reading the database.
func (s *Store) CachedAPI(appID, ref string) (API, bool) {
	return s.apis.Get(appID + cache.Sep + ref)
}

// Marked is the state of the store's caches before a caller read apps and
// APIs with a query of its own (see Mark).
type Marked struct {
	apps cache.Mark[App]
	apis cache.Mark[API]
}

// Mark is for a caller that reads apps and APIs together with other rows
// when its cached copies miss: taken before that query, it keeps what the
// query read (KeepApp, KeepAPI) unless a change came in between.
func (s *Store) Mark() Marked { return Marked{s.apps.Mark(), s.apis.Mark()} }

// KeepApp keeps a as what Find(accountID, ref) answers.
func (m Marked) KeepApp(accountID, ref string, a App) { m.apps.Keep(accountID+cache.Sep+ref, a) }

// KeepAPI keeps a as what FindAPI(appID, ref) answers.
func (m Marked) KeepAPI(appID, ref string, a API) { m.apis.Keep(appID+cache.Sep+ref, a) }

// NewStore returns a Store over db.
func NewStore(db *gorm.DB) *Store {
	return &Store{db: db, now: func() time.Time { return time.Now().UTC() }}
}

// EnsureAccount returns the account with that name, creating it if needed.
func (s *Store) EnsureAccount(ctx context.Context, name string) (Account, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return Account{}, errs.New(errs.Invalid, "account name must be 1 to 200 characters")
	}
	var a Account
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Where("name = ?", name).Take(&a).Error
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return err
		}
		a = Account{ID: database.NewID(), Name: name, CreatedAt: s.now()}
		return tx.Create(&a).Error
	})
	if err != nil {
		return Account{}, errs.Wrap(errs.Internal, err, "creating account")
	}
	return a, nil
}

// CreateKey makes a new API key for an account. The key itself is returned
// once and never stored.
func (s *Store) CreateKey(ctx context.Context, accountID, name string) (string, APIKey, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", APIKey{}, err
	}
	key := keyPrefix + base64.RawURLEncoding.EncodeToString(raw)
	k := APIKey{
		ID:        database.NewID(),
		AccountID: accountID,
		Name:      name,
		Prefix:    key[:len(keyPrefix)+6],
		Hash:      secret.Hash(key),
		CreatedAt: s.now(),
	}
	if err := s.db.WithContext(ctx).Create(&k).Error; err != nil {
		return "", APIKey{}, errs.Wrap(errs.Internal, err, "creating API key")
	}
	return key, k, nil
}

// Authenticate returns the API key that key is, or an errs.Unauthorized error.
func (s *Store) Authenticate(ctx context.Context, key string) (APIKey, error) {
	if !strings.HasPrefix(key, keyPrefix) || len(key) > 100 {
		return APIKey{}, errs.New(errs.Unauthorized, "unknown API key")
	}
	hash := secret.Hash(key)
	k, err := s.keys.Load(hash, func() (APIKey, error) {
		var k APIKey
		err := s.db.WithContext(ctx).Where("hash = ?", hash).Take(&k).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return APIKey{}, errs.New(errs.Unauthorized, "unknown API key")
		}
		if err != nil {
			return APIKey{}, errs.Wrap(errs.Unavailable, err, "cannot check the API key now")
		}
		if k.LastUsedAt != nil {
			s.lastUsed.LoadOrStore(k.ID, *k.LastUsedAt)
		}
		return k, nil
	})
	if err != nil {
		return APIKey{}, err
	}
	// Record use at most once a minute per process: a write per request
	// would cost more than it tells.
	now := s.now()
	if last, ok := s.lastUsed.Load(k.ID); !ok || now.Sub(last.(time.Time)) > time.Minute {
		s.lastUsed.Store(k.ID, now)
		s.db.WithContext(ctx).Model(&APIKey{}).Where("id = ?", k.ID).Update("last_used_at", now)
	}
	return k, nil
}

// Keys returns the account's API keys, oldest first.
func (s *Store) Keys(ctx context.Context, accountID string) ([]APIKey, error) {
	var out []APIKey
	err := s.db.WithContext(ctx).Where("account_id = ?", accountID).Order("created_at, id").Find(&out).Error
	return out, errs.From(err, "listing API keys")
}

// RevokeKey deletes the account's API key id, in every replica's cache
// too: from then on it authenticates nothing. Another account's key is
// errs.NotFound.
func (s *Store) RevokeKey(ctx context.Context, accountID, id string) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var k APIKey
		err := tx.Where("account_id = ? AND id = ?", accountID, id).Take(&k).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return errs.NotFoundf("API key %q not found", id)
		}
		if err != nil {
			return err
		}
		if err := tx.Delete(&APIKey{}, "id = ?", k.ID).Error; err != nil {
			return err
		}
		return s.bus.Changed(tx, "api_key", k.Hash)
	})
	return errs.From(err, "revoking API key")
}

// Find returns the account's app whose id or slug is ref: ids are unique
// across accounts, slugs within one. Another account's app is not found.
func (s *Store) Find(ctx context.Context, accountID, ref string) (App, error) {
	return s.apps.Load(accountID+cache.Sep+ref, func() (App, error) { return s.find(ctx, accountID, ref) })
}

func (s *Store) find(ctx context.Context, accountID, ref string) (App, error) {
	var a App
	q := s.db.WithContext(ctx).Where("account_id = ?", accountID)
	if isUUID(ref) {
		q = q.Where("id = ?", ref)
	} else {
		q = q.Where("slug = ?", ref)
	}
	err := q.Take(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return App{}, errs.NotFoundf("app %q not found", ref)
	}
	if err != nil {
		return App{}, errs.Wrap(errs.Internal, err, "reading app")
	}
	return a, nil
}

// FindByID returns an app by id, whatever its account; for flows that start
// from an installation rather than an API key.
func (s *Store) FindByID(ctx context.Context, id string) (App, error) {
	return s.apps.Load(id, func() (App, error) { return s.findByID(ctx, id) })
}

func (s *Store) findByID(ctx context.Context, id string) (App, error) {
	var a App
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return App{}, errs.NotFoundf("app %q not found", id)
	}
	if err != nil {
		return App{}, errs.Wrap(errs.Internal, err, "reading app")
	}
	return a, nil
}

// List returns the account's apps, oldest first.
func (s *Store) List(ctx context.Context, accountID string) ([]App, error) {
	var apps []App
	err := s.db.WithContext(ctx).Where("account_id = ?", accountID).Order("created_at, id").Find(&apps).Error
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "listing apps")
	}
	return apps, nil
}

// ListPage returns at most limit of the account's apps whose ids come
// after after ("" for the first page), in id order, which is creation
// order: ids are UUIDv7.
func (s *Store) ListPage(ctx context.Context, accountID, after string, limit int) ([]App, error) {
	q := s.db.WithContext(ctx).Where("account_id = ?", accountID)
	if after != "" {
		q = q.Where("id > ?", after)
	}
	var apps []App
	if err := q.Order("id").Limit(limit).Find(&apps).Error; err != nil {
		return nil, errs.Wrap(errs.Internal, err, "listing apps")
	}
	return apps, nil
}

// Create validates and stores a new app, filling its id and times. A slug
// that another app of the same account has is an errs.Conflict error;
// slugs are unique per account only, so the error never tells of another
// account's apps.
func (s *Store) Create(ctx context.Context, a *App) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if a.ReturnURLs == nil {
		a.ReturnURLs = []string{}
	}
	a.ID = database.NewID()
	a.CreatedAt = s.now()
	a.UpdatedAt = a.CreatedAt
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(a).Error; err != nil {
			return err
		}
		// A slug lookup that missed may have been kept as "not found"
		// by no one (errors are not cached); an id is new. Still, a
		// new app changes what a slug names.
		return s.bus.Changed(tx, "app", "")
	})
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return slugTaken(a.Slug)
	}
	if err != nil {
		return errs.Wrap(errs.Internal, err, "creating app")
	}
	return nil
}

func slugTaken(slug string) error {
	return &errs.Error{Code: errs.Conflict, Message: "slug is taken",
		Fields: []errs.FieldError{{Field: "slug", Message: "another app uses " + slug}}}
}

// Update is a partial change to an app; nil fields stay as they are.
type Update struct {
	Name        *string
	Slug        *string
	Description *string
	LogoURL     *string
	ReturnURLs  *[]string
}

// Update applies u to the account's app ref and returns the result.
func (s *Store) Update(ctx context.Context, accountID, ref string, u Update) (App, error) {
	var a App
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if a, err = NewStore(tx).Find(ctx, accountID, ref); err != nil {
			return err
		}
		set(&a.Name, u.Name)
		set(&a.Slug, u.Slug)
		set(&a.Description, u.Description)
		set(&a.LogoURL, u.LogoURL)
		set(&a.ReturnURLs, u.ReturnURLs)
		if err := a.Validate(); err != nil {
			return err
		}
		a.UpdatedAt = s.now()
		if err := tx.Save(&a).Error; err != nil {
			return err
		}
		return s.bus.Changed(tx, "app", "")
	})
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return App{}, slugTaken(a.Slug)
	}
	if err != nil {
		return App{}, errs.From(err, "updating app")
	}
	return a, nil
}

// Delete removes the account's app ref. An app that is still installed is
// not deleted (errs.Conflict): its installations hold organizations' and
// users' credentials, which must not vanish with a developer's click.
func (s *Store) Delete(ctx context.Context, accountID, ref string) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		a, err := NewStore(tx).Find(ctx, accountID, ref)
		if err != nil {
			return err
		}
		var n int64
		if err := tx.Table("installations").Where("app_id = ?", a.ID).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return errs.New(errs.Conflict, "app %q has %d installation(s); delete them first", a.Slug, n)
		}
		if err := tx.Delete(&App{}, "id = ?", a.ID).Error; err != nil {
			return err
		}
		if err := s.bus.Changed(tx, "api", ""); err != nil {
			return err
		}
		return s.bus.Changed(tx, "app", "")
	})
	return errs.From(err, "deleting app")
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
