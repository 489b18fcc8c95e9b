// Package connection keeps each user's tokens for a config: the stored
// connections, their renewal (Refresher, with the tokens kept in memory
// when the database refuses them), the keep-alive job, and the Connector
// that completes a connection after a code exchange. Its Handler serves the
// routes that read what a config did: explanations, extraction tests, the
// request log and an installation's connections.
package connection

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/cache"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/oauthconfig"
	"github.com/latchkey/latchkey/oauthconfig/token"
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

	// Refusals counts refreshes refused in a row for a reason no rule
	// classified, at most one a minute (LastRefusalAt); see Refresher.
	Refusals      int
	LastRefusalAt *time.Time
	// EndedBy names the rule that declared the user's grant gone, for a
	// connection that needs reauthorization (EndInvalidGrant...).
	EndedBy string
	// RefreshStartedAt is the intent record of a refresh: set before the
	// request is sent, cleared when its answer has been stored or refused.
	// One found set by a later refresh means an answer may have been lost.
	RefreshStartedAt *time.Time
}

// Rules that end a user's grant (Connection.EndedBy).
const (
	EndInvalidGrant = "invalid_grant"        // RFC 6749 §5.2: the provider said so
	EndGoneError    = "grant_gone_errors"    // an error code the config declares equivalent
	EndGoneBody     = "grant_gone_body_path" // the config's condition on the refusal's body
	EndRefusals     = "repeated_refusals"    // refused 3 times in a row, a minute apart or more
	EndLostToCrash  = "lost_refresh"         // a refresh's answer was lost before it was stored
	EndGrantRefused = "grant_refused"        // a grant without a user (password) was refused
)

// ConfigurationError is the state shown for connections of an installation
// whose client credentials the provider refused.
const ConfigurationError = "configuration_error"

// ConfigError records that the provider refused an installation's client
// credentials for a config (invalid_client, unauthorized_client): no token
// request of that config is sent for the installation until its
// organization settings change (SettingsDigest).
type ConfigError struct {
	InstallationID string `gorm:"primaryKey"`
	ConfigID       string `gorm:"primaryKey"`
	Message        string
	SettingsDigest string
	CreatedAt      time.Time
}

// TableName tells GORM where configuration errors live.
func (ConfigError) TableName() string { return "config_errors" }

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

	bus   *cache.Bus
	conns *cache.Cache[cachedConnection]  // by installation, owner and config; nil in WithTx
	batch *database.Batch[Connection]     // the reads of conns' misses; nil in WithTx
	cerrs *cache.Cache[cachedConfigError] // by installation and config; nil in WithTx
}

// cachedConfigError is an installation's configuration error for a config
// as read, or the fact that there is none.
type cachedConfigError struct {
	e     ConfigError
	found bool
}

// cachedConnection is a connection as read, or the fact that there is none.
type cachedConnection struct {
	c     Connection
	found bool
}

// UseCache makes cs keep connections in memory, invalidated through bus
// on every write.
func (cs *Connections) UseCache(bus *cache.Bus) {
	cs.bus = bus
	cs.conns = cache.New[cachedConnection](bus, "connection")
	cs.cerrs = cache.New[cachedConfigError](bus, "config_error")
}

func configErrorChange(installationID, configID string) cache.Change {
	return cache.Change{Topic: "config_error", Key: installationID + cache.Sep + configID}
}

func connCacheKey(installationID, owner, configID string) string {
	return installationID + cache.Sep + owner + cache.Sep + configID
}

// changed tells every replica that the connection has changed.
func (cs *Connections) changed(tx *gorm.DB, installationID, owner, configID string) error {
	return cs.bus.ChangedAll(tx, cs.change(installationID, owner, configID))
}

// change is the cache change of a connection, for a write that announces
// it with others.
func (cs *Connections) change(installationID, owner, configID string) cache.Change {
	return cache.Change{Topic: "connection", Key: connCacheKey(installationID, owner, configID)}
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
	cs := &Connections{db: db, settings: s, now: func() time.Time { return time.Now().UTC() }}
	cs.batch = database.NewBatch(func(ctx context.Context, group string, owners []string) (map[string]Connection, error) {
		installationID, configID, _ := strings.Cut(group, cache.Sep)
		return readConnections(ctx, db, installationID, configID, owners)
	})
	return cs
}

// WithTx returns a Connections that works inside tx.
func (cs *Connections) WithTx(tx *gorm.DB) *Connections {
	return &Connections{db: tx, settings: cs.settings.WithTx(tx), now: cs.now, Events: cs.Events, bus: cs.bus}
}

// Save stores a new connection's tokens; see store.
func (cs *Connections) Save(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config, tok token.Token) error {
	w, err := cs.store(ctx, inst, cfg.Owner(userID), cfg, tok, exchanged, nil)
	if err == nil && len(w.Problems) > 0 {
		return errs.New(errs.Upstream, "the tokens are stored, but the provider's answer does not fit the config: %s", strings.Join(w.Problems, "; "))
	}
	return err
}

// SaveRefreshed stores renewed tokens of a connection and returns the
// values it stored, with what of the answer did not fit as problems
// (reported on the connection too); see store. before is what the renewal
// read under its lease, or nil.
func (cs *Connections) SaveRefreshed(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config, tok token.Token, before *Before) (settings.Written, error) {
	return cs.store(ctx, inst, cfg.Owner(userID), cfg, tok, refreshed, before)
}

// Before is what a renewal read under its lease before its request, so
// that storing the answer need not read it again: the connection and the
// settings as they were, and whether a configuration error stood.
type Before struct {
	Conn        Connection // Status "": there was none
	Settings    settings.Resolved
	ConfigError bool
	// Release, if set, runs in the storing transaction: the renewal gives
	// its lease back there.
	Release func(tx *gorm.DB) error
}

// SaveStepped stores what a connection's steps gave: the values their
// mappings extracted and, when a step replaced them, the tokens (with
// what does not fit left out and reported, as for a token request).
func (cs *Connections) SaveStepped(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config, res token.Stepped) error {
	if !res.Replaced {
		if len(res.Values) == 0 {
			return nil
		}
		return cs.SaveValues(ctx, inst, userID, cfg, res.Values)
	}
	tok := res.Token
	tok.Extra, tok.Callback, tok.Problems = res.Values, nil, res.Problems
	w, err := cs.store(ctx, inst, cfg.Owner(userID), cfg, tok, stepped, nil)
	if err == nil && len(w.Problems) > 0 {
		return errs.New(errs.Upstream, "a step's answer does not fit the config: %s", strings.Join(w.Problems, "; "))
	}
	return err
}

// StepsDone stores what a connection's steps gave (res) after its tokens
// were stored (what: "the tokens are stored", say), and records on the
// connection a step's failure, or an answer that does not fit the
// settings. It returns that failure, and err if the database failed.
func (cs *Connections) StepsDone(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config, res token.Stepped, stepErr error, what string) (failure, err error) {
	failure = stepErr
	if err := cs.SaveStepped(ctx, inst, userID, cfg, res); err != nil {
		if !errs.Is(err, errs.Upstream) {
			return nil, err
		}
		if failure == nil {
			failure = err
		}
	}
	if failure == nil {
		return nil, nil
	}
	reason := what + ", but " + errs.MessageOf(failure)
	var se *token.StepError
	if errors.As(failure, &se) && se.Step == oauthconfig.IdentityStepName {
		reason = what + ", but the identity request failed: " + errs.MessageOf(failure)
	}
	if err := cs.Fail(ctx, inst, userID, cfg, reason, "", false); err != nil {
		return nil, err
	}
	return failure, nil
}

// storeKind is what a store writes: an exchange's tokens, a refresh's, or
// a step's that replace either.
type storeKind int

const (
	exchanged storeKind = iota
	refreshed
	stepped
)

// store writes a token response's values in the settings named by the
// config (the user's, or the installation's when userID is ""), and the
// connection's state, in one transaction. The tokens are always stored:
// a mapped value that does not fit its setting is left out, and that and
// tok.Problems go in the connection's last_error and are returned. A response
// without a refresh token keeps the stored one (RFC 6749 §6 lets a server
// omit it); one without expires_in gets the config's default lifetime, so
// the token is renewed rather than trusted forever. A connection that had
// failed, or whose installation had a configuration error, is reported
// recovered.
//
// A renewal passes what it read under its lease (before), which spares
// reading it again here; it is as fresh, since nothing else renews the
// connection meanwhile. Then a configuration error is cleared only when
// one stood when read: one that another replica records a moment later,
// for the same credentials that just worked, stands until the
// organization's settings change.
func (cs *Connections) store(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config, tok token.Token, kind storeKind, before *Before) (settings.Written, error) {
	now := cs.now()
	changes := map[string]*string{cfg.AccessTokenSetting: &tok.AccessToken}
	always := map[string]bool{cfg.AccessTokenSetting: true}
	if tok.RefreshToken != "" && cfg.RefreshTokenSetting != "" {
		changes[cfg.RefreshTokenSetting] = &tok.RefreshToken
		always[cfg.RefreshTokenSetting] = true
	}
	for k, v := range tok.Extra {
		if !always[k] {
			changes[k] = &v
		}
	}
	lifetime := tok.ExpiresIn
	if lifetime <= 0 {
		lifetime = int64(cfg.DefaultExpiresIn)
	}
	exp := now.Add(time.Duration(lifetime) * time.Second)
	c := Connection{InstallationID: inst.ID, UserID: userID, ConfigID: cfg.ID, Status: Connected,
		ExpiresAt: &exp, IssuedAt: &now, ConnectedAt: now, UpdatedAt: now}
	update := []string{"status", "expires_at", "issued_at", "last_error", "last_error_at", "updated_at",
		"refusals", "last_refusal_at", "ended_by", "refresh_started_at"}
	switch kind {
	case refreshed:
		c.RefreshedAt = &now
		update = append(update, "refreshed_at")
	case exchanged:
		update = append(update, "connected_at")
	}
	var problems []string
	var written settings.Written // at the owner's level
	err := cs.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// The values are stored in this transaction, which commits or
		// rolls back whole: no savepoint for SetFromProvider's own.
		values := cs.settings.WithTx(tx.Session(&gorm.Session{DisableNestedTransaction: true}))
		var prev Connection
		var defs []settings.Definition
		switch {
		case before != nil:
			prev, defs = before.Conn, before.Settings.Definitions()
		case kind == refreshed: // for connection.recovered
			if err := tx.Where("installation_id = ? AND user_id = ? AND config_id = ?", inst.ID, userID, cfg.ID).Take(&prev).Error; err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
				return err
			}
		}
		// The redirect's values go at their settings' own levels: a
		// user's, or the installation's (QuickBooks' realmId).
		orgChanges := map[string]*string{}
		var orgLevel map[string]bool
		if len(tok.Callback) > 0 {
			defs, err := values.Definitions(ctx, inst.AppID, settings.Organization)
			if err != nil {
				return err
			}
			orgLevel = make(map[string]bool, len(defs))
			for _, d := range defs {
				orgLevel[d.Key] = true
			}
		}
		for k, v := range tok.Callback {
			if orgLevel[k] && userID != "" {
				orgChanges[k] = &v
			} else if !always[k] {
				changes[k] = &v
			}
		}
		// The connection's change is announced with the values'.
		var err error
		written, err = values.SetFromProvider(ctx, inst, userID, settings.FromProvider{
			Changes: changes, Always: always, Definitions: defs, Also: []cache.Change{cs.change(inst.ID, userID, cfg.ID)}})
		if err != nil {
			return err
		}
		problems = append(append([]string(nil), tok.Problems...), written.Problems...)
		if len(orgChanges) > 0 {
			more, err := values.SetFromProvider(ctx, inst, "", settings.FromProvider{Changes: orgChanges, Definitions: defs})
			if err != nil {
				return err
			}
			problems = append(problems, more.Problems...)
		}
		if len(problems) > 0 {
			c.LastError = clipReason("the tokens are stored, but: " + strings.Join(problems, "; "))
			c.LastErrorAt = &now
		}
		err = tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "installation_id"}, {Name: "user_id"}, {Name: "config_id"}},
			DoUpdates: clause.AssignmentColumns(update),
		}).Create(&c).Error
		if err != nil {
			return err
		}
		switch kind {
		case exchanged:
			err = cs.emit(tx, inst, "connection.created", c)
		case refreshed:
			err = cs.emit(tx, inst, "connection.refreshed", c)
		}
		if err != nil {
			return err
		}
		if prev.Status != "" && kind == refreshed && (prev.LastError != "" || prev.Status != Connected) {
			if err := cs.emit(tx, inst, "connection.recovered", c); err != nil {
				return err
			}
		}
		if before != nil && before.Release != nil {
			if err := before.Release(tx); err != nil {
				return err
			}
		}
		if before != nil && !before.ConfigError {
			return nil
		}
		res := tx.Where("installation_id = ? AND config_id = ?", inst.ID, cfg.ID).Delete(&ConfigError{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return nil
		}
		if err := cs.bus.ChangedAll(tx, configErrorChange(inst.ID, cfg.ID)); err != nil {
			return err
		}
		return cs.emit(tx, inst, "connection.configuration_recovered", c)
	})
	if err != nil {
		return settings.Written{}, errs.From(err, "storing tokens")
	}
	written.Problems = problems
	return written, nil
}

// SaveValues stores values (setting -> value) at the config's token level
// for userID, such as what an identity check mapped.
func (cs *Connections) SaveValues(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config, values map[string]string) error {
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
// safe to show. With endedBy set (the rule that decided, EndInvalidGrant...),
// the user's grant is gone: the connection needs the end user to connect
// again, and no call uses it until they do. The stored tokens are kept
// either way. A refusal (answered) clears the intent record; a failure
// without an answer (answered false) keeps it: the provider may have acted.
func (cs *Connections) Fail(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config, reason, endedBy string, answered bool) error {
	now := cs.now()
	c := Connection{InstallationID: inst.ID, UserID: cfg.Owner(userID), ConfigID: cfg.ID, Status: NotConnected,
		ConnectedAt: now, LastError: clipReason(reason), LastErrorAt: &now, UpdatedAt: now}
	update := []string{"last_error", "last_error_at", "updated_at"}
	if endedBy != "" {
		c.Status, c.EndedBy = ReauthorizationRequired, endedBy
		update = append(update, "status", "ended_by")
	}
	if answered {
		update = append(update, "refresh_started_at")
	}
	err := cs.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "installation_id"}, {Name: "user_id"}, {Name: "config_id"}},
			DoUpdates: clause.AssignmentColumns(update),
		}).Create(&c).Error
		if err != nil {
			return err
		}
		if err := cs.changed(tx, c.InstallationID, c.UserID, c.ConfigID); err != nil {
			return err
		}
		// The event reports the row as it now is (an existing connection
		// keeps its status on a transient failure).
		if err := tx.Where("installation_id = ? AND user_id = ? AND config_id = ?", c.InstallationID, c.UserID, c.ConfigID).Take(&c).Error; err != nil {
			return err
		}
		event := "connection.refresh_failed"
		if endedBy != "" {
			event = "connection.reauthorization_required"
		}
		return cs.emit(tx, inst, event, c)
	})
	return errs.From(err, "recording a failed renewal")
}

// Refused records a refresh refused for a reason no rule classified, and
// returns how many such refusals came in a row. A refusal less than a
// minute after the last counted one is not counted again, so that a burst
// of calls cannot end a grant in a second.
func (cs *Connections) Refused(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config, reason string) (int, error) {
	now := cs.now()
	owner := cfg.Owner(userID)
	var n int
	err := cs.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var c Connection
		err := tx.Where("installation_id = ? AND user_id = ? AND config_id = ?", inst.ID, owner, cfg.ID).Take(&c).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			c = Connection{InstallationID: inst.ID, UserID: owner, ConfigID: cfg.ID, Status: NotConnected, ConnectedAt: now}
		} else if err != nil {
			return err
		}
		if c.LastRefusalAt == nil || !now.Before(c.LastRefusalAt.Add(time.Minute)) {
			c.Refusals++
			c.LastRefusalAt = &now
		}
		c.LastError, c.LastErrorAt, c.UpdatedAt, c.RefreshStartedAt = clipReason(reason), &now, now, nil
		n = c.Refusals
		if err := tx.Save(&c).Error; err != nil {
			return err
		}
		if err := cs.changed(tx, c.InstallationID, c.UserID, c.ConfigID); err != nil {
			return err
		}
		return cs.emit(tx, inst, "connection.refresh_failed", c)
	})
	return n, errs.From(err, "recording a refused renewal")
}

// BeginRefresh writes the intent record of a refresh about to be sent, in
// one statement committed at once, so that it survives whatever happens
// next. Only a renewal reads it, from the database under its lease: the
// caches are not told, and calls go on with the cached connection.
func (cs *Connections) BeginRefresh(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config) error {
	err := cs.db.WithContext(ctx).Model(&Connection{}).
		Where("installation_id = ? AND user_id = ? AND config_id = ?", inst.ID, cfg.Owner(userID), cfg.ID).
		UpdateColumn("refresh_started_at", cs.now()).Error
	return errs.From(err, "recording a refresh")
}

// Remove disconnects owner ("" for a config with organization-level
// tokens) from cfg: the connection's state and the access and refresh
// tokens the config stored are deleted, and the app's webhooks get
// connection.removed. A connection that does not exist is errs.NotFound.
// Values mapped from the provider's answers (an account id, say) are kept:
// they describe the account, and the next connection overwrites them.
func (cs *Connections) Remove(ctx context.Context, inst settings.Installation, owner string, cfg *oauthconfig.Config) error {
	err := cs.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var c Connection
		err := tx.Where("installation_id = ? AND user_id = ? AND config_id = ?", inst.ID, owner, cfg.ID).Take(&c).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return errs.NotFoundf("no connection of user %q for this config", owner)
		}
		if err != nil {
			return err
		}
		if err := tx.Delete(&c).Error; err != nil {
			return err
		}
		tokens := map[string]*string{cfg.AccessTokenSetting: nil}
		if cfg.RefreshTokenSetting != "" {
			tokens[cfg.RefreshTokenSetting] = nil
		}
		if _, err := cs.settings.WithTx(tx).SetFromProvider(ctx, inst, owner, settings.FromProvider{
			Changes: tokens, Also: []cache.Change{cs.change(inst.ID, owner, cfg.ID)}}); err != nil {
			return err
		}
		c.Status = NotConnected
		return cs.emit(tx, inst, "connection.removed", c)
	})
	return errs.From(err, "removing a connection")
}

// ConfigError returns the installation's configuration error for cfg, if
// one stands. It is read on every renewal and rarely exists, so it is
// cached with the connections.
func (cs *Connections) ConfigError(ctx context.Context, installationID, configID string) (ConfigError, bool, error) {
	got, err := cs.cerrs.Load(configErrorChange(installationID, configID).Key, func() (cachedConfigError, error) {
		var e ConfigError
		err := cs.db.WithContext(ctx).Where("installation_id = ? AND config_id = ?", installationID, configID).Take(&e).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return cachedConfigError{}, nil
		}
		return cachedConfigError{e: e, found: true}, errs.From(err, "reading a configuration error")
	})
	return got.e, got.found, err
}

// SetConfigError records that the provider refused the installation's
// client credentials for cfg while its organization settings had digest,
// and tells the app's webhooks (once per digest).
func (cs *Connections) SetConfigError(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config, message, digest string) error {
	now := cs.now()
	e := ConfigError{InstallationID: inst.ID, ConfigID: cfg.ID, Message: clipReason(message), SettingsDigest: digest, CreatedAt: now}
	err := cs.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var prev ConfigError
		same := tx.Where("installation_id = ? AND config_id = ?", inst.ID, cfg.ID).Take(&prev).Error == nil && prev.SettingsDigest == digest
		if err := tx.Save(&e).Error; err != nil {
			return err
		}
		if err := cs.bus.ChangedAll(tx, configErrorChange(inst.ID, cfg.ID)); err != nil {
			return err
		}
		if same {
			return nil
		}
		return cs.emit(tx, inst, "connection.configuration_error", Connection{
			InstallationID: inst.ID, UserID: cfg.Owner(userID), ConfigID: cfg.ID, Status: ConfigurationError, LastError: e.Message})
	})
	return errs.From(err, "recording a configuration error")
}

func clipReason(s string) string {
	if len(s) > 500 {
		return s[:500]
	}
	return s
}

// Get returns a user's connection for a config. A cache miss is read
// together with the other calls' that miss at the same moment (see
// database.Batch), in the calls' share of the pool.
func (cs *Connections) Get(ctx context.Context, installationID, userID, configID string) (Connection, error) {
	got, err := cs.conns.Load(connCacheKey(installationID, userID, configID), func() (cachedConnection, error) {
		var got cachedConnection
		var err error
		if cs.batch != nil {
			got.c, got.found, err = cs.batch.Get(ctx, installationID+cache.Sep+configID, userID)
		} else { // in a transaction: read there
			var conns map[string]Connection
			conns, err = readConnections(ctx, cs.db, installationID, configID, []string{userID})
			got.c, got.found = conns[userID]
		}
		return got, errs.From(err, "reading connection")
	})
	if err != nil {
		return Connection{}, err
	}
	if !got.found {
		return Connection{}, errs.NotFoundf("user %q has not connected this config", userID)
	}
	return got.c, nil
}

// readConnections reads the connections of owners (users, or "" for the
// installation's own) to an installation's config, by owner.
func readConnections(ctx context.Context, db *gorm.DB, installationID, configID string, owners []string) (map[string]Connection, error) {
	out := make(map[string]Connection, len(owners))
	err := database.Query(ctx, db, func(rows *sql.Rows) error {
		var c Connection
		if err := rows.Scan(Dest(&c)...); err != nil {
			return err
		}
		out[c.UserID] = c
		return nil
	}, readConnectionsQuery, installationID, configID, owners)
	return out, err
}

var readConnectionsQuery = "SELECT " + strings.Join(Columns, ", ") +
	" FROM connections WHERE installation_id = ? AND config_id = ? AND user_id IN ?"

// List returns an installation's connections, of one user if userID is
// set. Connections of a config whose client credentials the provider
// refused show as ConfigurationError with that refusal as last error.
func (cs *Connections) List(ctx context.Context, installationID, userID string) ([]Connection, error) {
	return cs.Page(ctx, installationID, Page{UserID: userID})
}

// Page selects a page of an installation's connections, which
// are in (user id, config id) order: those of UserID if it is set, after
// the pair AfterUser, AfterConfig if AfterConfig is set (AfterUser is ""
// for an installation's own connection), at most Limit (0 means all).
type Page struct {
	UserID                 string
	AfterUser, AfterConfig string
	Limit                  int
}

// Page returns a page of an installation's connections, shown as List
// shows them.
func (cs *Connections) Page(ctx context.Context, installationID string, p Page) ([]Connection, error) {
	q := cs.db.WithContext(ctx).Where("installation_id = ?", installationID)
	if p.UserID != "" {
		q = q.Where("user_id = ?", p.UserID)
	}
	if p.AfterConfig != "" {
		q = q.Where("(user_id > ? OR (user_id = ? AND config_id > ?))", p.AfterUser, p.AfterUser, p.AfterConfig)
	}
	if p.Limit > 0 {
		q = q.Limit(p.Limit)
	}
	var out []Connection
	if err := q.Order("user_id, config_id").Find(&out).Error; err != nil {
		return nil, errs.From(err, "listing connections")
	}
	var cerrs []ConfigError
	if err := cs.db.WithContext(ctx).Where("installation_id = ?", installationID).Find(&cerrs).Error; err != nil {
		return nil, errs.From(err, "listing connections")
	}
	for _, e := range cerrs {
		for i := range out {
			if out[i].ConfigID == e.ConfigID && out[i].Status != ReauthorizationRequired {
				out[i].Status, out[i].LastError, out[i].LastErrorAt = ConfigurationError, e.Message, &e.CreatedAt
			}
		}
	}
	return out, nil
}
