package oauthconfig

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/settings"
)

// Connection states.
const (
	Connected               = "connected"
	ReauthorizationRequired = "reauthorization_required"
	NotConnected            = "not_connected" // tokens were never obtained; the last try failed
)

// Connection is the state of one user's tokens for one config of an
// installation (UserID "" for a config with organization-level tokens).
// The tokens themselves are settings, encrypted.
type Connection struct {
	InstallationID string `gorm:"primaryKey"`
	UserID         string `gorm:"primaryKey"`
	ConfigID       string `gorm:"primaryKey"`
	Status         string
	ExpiresAt      *time.Time // when the access token expires; nil: unknown
	IssuedAt       *time.Time // when the access token was obtained
	ConnectedAt    time.Time
	RefreshedAt    *time.Time
	LastError      string // the last failed renewal, safe to show
	LastErrorAt    *time.Time
	UpdatedAt      time.Time
}

// Owner is whose tokens a config keeps: userID, or "" when its tokens
// belong to the whole installation.
func (c *Config) Owner(userID string) string {
	if c.TokenLevel == settings.Organization {
		return ""
	}
	return userID
}

// TableName tells GORM where connections live.
func (Connection) TableName() string { return "connections" }

// EventQueue queues webhook events in the transaction of the change they
// report; app.Webhooks is one.
type EventQueue interface {
	Enqueue(tx *gorm.DB, appID, event string, data any) error
}

var _ EventQueue = (*app.Webhooks)(nil)

// Connections stores tokens in user settings together with their state.
type Connections struct {
	db       *gorm.DB
	settings *settings.Store
	now      func() time.Time

	// Events, if set, gets connection.* events for the app's webhooks.
	Events EventQueue
}

// eventData is the data of connection.* webhook events.
type eventData struct {
	InstallationID string     `json:"installation_id"`
	OrganizationID string     `json:"organization_id"`
	UserID         string     `json:"user_id"` // "" for organization-level tokens
	ConfigID       string     `json:"config_id"`
	Status         string     `json:"status"`
	ExpiresAt      *time.Time `json:"expires_at,omitempty"`
	Error          string     `json:"error,omitempty"`
}

func (cs *Connections) emit(tx *gorm.DB, inst settings.Installation, event string, c Connection) error {
	if cs.Events == nil {
		return nil
	}
	return cs.Events.Enqueue(tx, inst.AppID, event, eventData{
		InstallationID: inst.ID, OrganizationID: inst.OrganizationID, UserID: c.UserID, ConfigID: c.ConfigID,
		Status: c.Status, ExpiresAt: c.ExpiresAt, Error: c.LastError,
	})
}

// NewConnections returns a Connections over db and the settings store.
func NewConnections(db *gorm.DB, s *settings.Store) *Connections {
	return &Connections{db: db, settings: s, now: func() time.Time { return time.Now().UTC() }}
}

// WithTx returns a Connections that works inside tx.
func (cs *Connections) WithTx(tx *gorm.DB) *Connections {
	return &Connections{db: tx, settings: cs.settings.WithTx(tx), now: cs.now, Events: cs.Events}
}

// Save stores a new connection's tokens; see store.
func (cs *Connections) Save(ctx context.Context, inst settings.Installation, userID string, cfg *Config, tok Token) error {
	return cs.store(ctx, inst, cfg.Owner(userID), cfg, tok, false)
}

// SaveRefreshed stores renewed tokens of a connection; see store.
func (cs *Connections) SaveRefreshed(ctx context.Context, inst settings.Installation, userID string, cfg *Config, tok Token) error {
	return cs.store(ctx, inst, cfg.Owner(userID), cfg, tok, true)
}

// store writes a token response's values in the settings named by the
// config (the user's, or the installation's when userID is ""), and the
// connection's state, in one transaction: either all of it is stored or
// none. A response without a refresh token keeps the stored one (RFC 6749
// §6 lets a server omit it); one without expires_in gets the config's
// default lifetime, so the token is renewed rather than trusted forever.
func (cs *Connections) store(ctx context.Context, inst settings.Installation, userID string, cfg *Config, tok Token, refreshed bool) error {
	now := cs.now()
	changes := map[string]*string{cfg.AccessTokenSetting: &tok.AccessToken}
	if tok.RefreshToken != "" && cfg.RefreshTokenSetting != "" {
		changes[cfg.RefreshTokenSetting] = &tok.RefreshToken
	}
	for k, v := range tok.Extra {
		changes[k] = &v
	}
	lifetime := tok.ExpiresIn
	if lifetime <= 0 {
		lifetime = int64(cfg.DefaultExpiresIn)
	}
	exp := now.Add(time.Duration(lifetime) * time.Second)
	c := Connection{InstallationID: inst.ID, UserID: userID, ConfigID: cfg.ID, Status: Connected,
		ExpiresAt: &exp, IssuedAt: &now, ConnectedAt: now, UpdatedAt: now}
	update := []string{"status", "expires_at", "issued_at", "last_error", "last_error_at", "updated_at"}
	if refreshed {
		c.RefreshedAt = &now
		update = append(update, "refreshed_at")
	} else {
		update = append(update, "connected_at")
	}
	err := cs.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		s := cs.settings.WithTx(tx)
		var err error
		if userID == "" {
			err = s.SetOrganizationValues(ctx, inst, changes)
		} else {
			err = s.SetUserValues(ctx, inst, userID, changes)
		}
		if err != nil {
			return err
		}
		err = tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "installation_id"}, {Name: "user_id"}, {Name: "config_id"}},
			DoUpdates: clause.AssignmentColumns(update),
		}).Create(&c).Error
		if err != nil {
			return err
		}
		event := "connection.created"
		if refreshed {
			event = "connection.refreshed"
		}
		return cs.emit(tx, inst, event, c)
	})
	if errs.Is(err, errs.Invalid) {
		// A token that fails a setting's pattern: the provider's answer does
		// not fit the app's settings, which is the provider side's problem.
		return errs.Wrap(errs.Upstream, err, "the provider's tokens do not fit the app's settings: %v", err)
	}
	return errs.From(err, "storing tokens")
}

// SaveValues stores values (setting -> value) at the config's token level
// for userID, such as what an identity check mapped.
func (cs *Connections) SaveValues(ctx context.Context, inst settings.Installation, userID string, cfg *Config, values map[string]string) error {
	changes := make(map[string]*string, len(values))
	for k, v := range values {
		changes[k] = &v
	}
	var err error
	if owner := cfg.Owner(userID); owner == "" {
		err = cs.settings.SetOrganizationValues(ctx, inst, changes)
	} else {
		err = cs.settings.SetUserValues(ctx, inst, owner, changes)
	}
	if errs.Is(err, errs.Invalid) {
		return errs.Wrap(errs.Upstream, err, "the provider's answer does not fit the app's settings: %v", err)
	}
	return errs.From(err, "storing values")
}

// Fail records that renewing a connection's tokens failed, with a reason
// safe to show; with reauthorize set, the connection is marked as needing
// the end user to connect again, and no call uses it until they do.
// The stored tokens are kept either way.
func (cs *Connections) Fail(ctx context.Context, inst settings.Installation, userID string, cfg *Config, reason string, reauthorize bool) error {
	now := cs.now()
	c := Connection{InstallationID: inst.ID, UserID: cfg.Owner(userID), ConfigID: cfg.ID, Status: NotConnected,
		ConnectedAt: now, LastError: clipReason(reason), LastErrorAt: &now, UpdatedAt: now}
	update := []string{"last_error", "last_error_at", "updated_at"}
	if reauthorize {
		c.Status = ReauthorizationRequired
		update = append(update, "status")
	}
	err := cs.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "installation_id"}, {Name: "user_id"}, {Name: "config_id"}},
			DoUpdates: clause.AssignmentColumns(update),
		}).Create(&c).Error
		if err != nil {
			return err
		}
		// The event reports the row as it now is (an existing connection
		// keeps its status on a transient failure).
		if err := tx.Where("installation_id = ? AND user_id = ? AND config_id = ?", c.InstallationID, c.UserID, c.ConfigID).Take(&c).Error; err != nil {
			return err
		}
		event := "connection.refresh_failed"
		if reauthorize {
			event = "connection.reauthorization_required"
		}
		return cs.emit(tx, inst, event, c)
	})
	return errs.From(err, "recording a failed renewal")
}

func clipReason(s string) string {
	if len(s) > 500 {
		return s[:500]
	}
	return s
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
