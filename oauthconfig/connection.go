package oauthconfig

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/settings"
)

// Connection states.
const (
	Connected               = "connected"
	ReauthorizationRequired = "reauthorization_required"
)

// Connection is the state of one user's tokens for one config of an
// installation. The tokens themselves are user settings, encrypted.
type Connection struct {
	InstallationID string `gorm:"primaryKey"`
	UserID         string `gorm:"primaryKey"`
	ConfigID       string `gorm:"primaryKey"`
	Status         string
	ExpiresAt      *time.Time // when the access token expires; nil: unknown
	ConnectedAt    time.Time
	RefreshedAt    *time.Time
	UpdatedAt      time.Time
}

// TableName tells GORM where connections live.
func (Connection) TableName() string { return "connections" }

// Connections stores tokens in user settings together with their state.
type Connections struct {
	db       *gorm.DB
	settings *settings.Store
	now      func() time.Time
}

// NewConnections returns a Connections over db and the settings store.
func NewConnections(db *gorm.DB, s *settings.Store) *Connections {
	return &Connections{db: db, settings: s, now: func() time.Time { return time.Now().UTC() }}
}

// Save stores a token response's values in the user's settings named by the
// config, and the connection's state, in one transaction: either all of it
// is stored or none. A response without a refresh token keeps the stored
// one (RFC 6749 §6 lets a server omit it).
func (cs *Connections) Save(ctx context.Context, inst settings.Installation, userID string, cfg *Config, tok Token) error {
	now := cs.now()
	changes := map[string]*string{cfg.AccessTokenSetting: &tok.AccessToken}
	if tok.RefreshToken != "" && cfg.RefreshTokenSetting != "" {
		changes[cfg.RefreshTokenSetting] = &tok.RefreshToken
	}
	for k, v := range tok.Extra {
		changes[k] = &v
	}
	c := Connection{InstallationID: inst.ID, UserID: userID, ConfigID: cfg.ID, Status: Connected, ConnectedAt: now, UpdatedAt: now}
	if tok.ExpiresIn > 0 {
		exp := now.Add(time.Duration(tok.ExpiresIn) * time.Second)
		c.ExpiresAt = &exp
	}
	err := cs.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := cs.settings.WithTx(tx).SetUserValues(ctx, inst, userID, changes); err != nil {
			return err
		}
		return tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "installation_id"}, {Name: "user_id"}, {Name: "config_id"}},
			DoUpdates: clause.AssignmentColumns([]string{"status", "expires_at", "connected_at", "updated_at"}),
		}).Create(&c).Error
	})
	if errs.Is(err, errs.Invalid) {
		// A token that fails a setting's pattern: the provider's answer does
		// not fit the app's settings, which is the provider side's problem.
		return errs.Wrap(errs.Upstream, err, "the provider's tokens do not fit the app's settings: %v", err)
	}
	return errs.From(err, "storing tokens")
}

// Get returns a user's connection for a config.
func (cs *Connections) Get(ctx context.Context, installationID, userID, configID string) (Connection, error) {
	var c Connection
	err := cs.db.WithContext(ctx).Where("installation_id = ? AND user_id = ? AND config_id = ?", installationID, userID, configID).Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Connection{}, errs.NotFoundf("user %q has not connected this config", userID)
	}
	return c, errs.From(err, "reading connection")
}

// List returns an installation's connections, of one user if userID is set.
func (cs *Connections) List(ctx context.Context, installationID, userID string) ([]Connection, error) {
	q := cs.db.WithContext(ctx).Where("installation_id = ?", installationID)
	if userID != "" {
		q = q.Where("user_id = ?", userID)
	}
	var out []Connection
	err := q.Order("user_id, config_id").Find(&out).Error
	return out, errs.From(err, "listing connections")
}
