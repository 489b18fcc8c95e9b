package hooks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/settings"
)

// Event is the event app webhooks receive for a verified provider event.
const Event = "provider.event"

// DedupeWindow is how long a provider event id is remembered: a second
// delivery of it within the window is dropped. Providers retry for hours
// (Slack 3 times within an hour, GitHub on request, Stripe for 3 days in
// live mode; Stripe's retries of one event reuse its id, so a retry after
// the window is delivered again, at least once as the outbox promises).
const DedupeWindow = 24 * time.Hour

// eventQueue queues an event for an app's webhooks in the transaction tx
// (app.Webhooks, the outbox).
type eventQueue interface {
	Enqueue(tx *gorm.DB, appID, event string, data any) error
}

// Store keeps webhook sources and takes in their events.
type Store struct {
	db     *gorm.DB
	events eventQueue
	now    func() time.Time
}

// NewStore returns a Store over db that queues events with events.
func NewStore(db *gorm.DB, events eventQueue) *Store {
	return &Store{db: db, events: events, now: func() time.Time { return time.Now().UTC() }}
}

// Create validates s against the app's setting definitions and stores it
// with a new unguessable id. Errors: errs.Invalid naming each bad field.
func (st *Store) Create(ctx context.Context, s *Source, defs []settings.Definition) error {
	s.applyDefaults()
	if err := s.Validate(defs); err != nil {
		return err
	}
	s.ID = secret.NewToken()
	s.CreatedAt = st.now()
	s.UpdatedAt = s.CreatedAt
	return errs.From(st.db.WithContext(ctx).Create(s).Error, "creating webhook source")
}

// List returns the app's sources, oldest first.
func (st *Store) List(ctx context.Context, appID string) ([]Source, error) {
	var out []Source
	err := st.db.WithContext(ctx).Where("app_id = ?", appID).Order("created_at, id").Find(&out).Error
	return out, errs.From(err, "listing webhook sources")
}

// Find returns the app's source id. Errors: errs.NotFound.
func (st *Store) Find(ctx context.Context, appID, id string) (Source, error) {
	var s Source
	err := st.db.WithContext(ctx).Where("app_id = ? AND id = ?", appID, id).Take(&s).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Source{}, errs.NotFoundf("webhook source %q not found", id)
	}
	return s, errs.From(err, "reading webhook source")
}

// FindByID returns the source id, whatever its app: the public endpoint
// knows only the id. Errors: errs.NotFound, which never names the id (it
// is the URL's only secret-like part, and may be a guess).
func (st *Store) FindByID(ctx context.Context, id string) (Source, error) {
	var s Source
	err := st.db.WithContext(ctx).Where("id = ?", id).Take(&s).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Source{}, errs.NotFoundf("no such webhook source")
	}
	return s, errs.From(err, "reading webhook source")
}

// Update is a partial change to a source; nil fields stay. Nested objects
// are replaced whole.
type Update struct {
	Name         *string
	Verification *Verification
	Handshake    *Handshake
	Routing      *Routing
	EventType    *Locator
	EventID      *Locator
}

// Update applies u to the app's source id and validates the result against
// defs. Errors: errs.NotFound, errs.Invalid.
func (st *Store) Update(ctx context.Context, appID, id string, u Update, defs []settings.Definition) (Source, error) {
	var s Source
	err := st.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if s, err = (&Store{db: tx, now: st.now}).Find(ctx, appID, id); err != nil {
			return err
		}
		set(&s.Name, u.Name)
		set(&s.Verification, u.Verification)
		set(&s.Handshake, u.Handshake)
		set(&s.Routing, u.Routing)
		set(&s.EventType, u.EventType)
		set(&s.EventID, u.EventID)
		s.applyDefaults()
		if err := s.Validate(defs); err != nil {
			return err
		}
		s.UpdatedAt = st.now()
		return tx.Save(&s).Error
	})
	return s, errs.From(err, "updating webhook source")
}

// Delete removes the app's source id; the provider's requests to its URL
// answer 404 from then on. Errors: errs.NotFound.
func (st *Store) Delete(ctx context.Context, appID, id string) error {
	res := st.db.WithContext(ctx).Where("app_id = ? AND id = ?", appID, id).Delete(&Source{})
	if res.Error != nil {
		return errs.From(res.Error, "deleting webhook source")
	}
	if res.RowsAffected == 0 {
		return errs.NotFoundf("webhook source %q not found", id)
	}
	return nil
}

// seen is a provider event id taken in lately.
type seen struct {
	SourceID string `gorm:"primaryKey"`
	EventID  string `gorm:"primaryKey"`
	SeenAt   time.Time
}

func (seen) TableName() string { return "webhook_events_seen" }

// EventData is the data of a provider.event.
type EventData struct {
	SourceID       string `json:"source_id"`
	InstallationID string `json:"installation_id"`
	OrganizationID string `json:"organization_id"`
	UserID         string `json:"user_id"`    // "" when the event was not routed to a user
	EventType      string `json:"event_type"` // "" when the source has no event_type or the event none
	EventID        string `json:"event_id"`
	ContentType    string `json:"content_type"`
	Body           string `json:"body"`
	BodyEncoding   string `json:"body_encoding"` // "text", or "base64" for a body that is not UTF-8
	// Redacted reports that a secret Latchkey knows for the event was
	// replaced with redact.Mark in the body or another field: the body is
	// then no longer the provider's byte for byte.
	Redacted bool `json:"redacted"`
}

// Accept queues the event for the app's webhooks, unless the source has
// taken in the same provider event id within DedupeWindow; dup reports
// that. The claim on the id and the queued deliveries commit together, so
// an event is neither lost nor sent twice by a failure between them, and
// of two concurrent deliveries of one event only one is queued.
func (st *Store) Accept(ctx context.Context, s Source, d EventData) (dup bool, err error) {
	key := d.EventID
	if len(key) > 200 {
		// A key must fit a btree entry; providers' ids are far shorter.
		sum := sha256.Sum256([]byte(key))
		key = "sha256:" + hex.EncodeToString(sum[:])
	}
	err = st.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if key != "" {
			now := st.now()
			res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&seen{SourceID: s.ID, EventID: key, SeenAt: now})
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				// Seen before: a repeat, unless so long ago that the
				// sweep has merely not removed it yet.
				res = tx.Model(&seen{}).Where("source_id = ? AND event_id = ? AND seen_at < ?", s.ID, key, now.Add(-DedupeWindow)).
					Update("seen_at", now)
				if res.Error != nil {
					return res.Error
				}
				if res.RowsAffected == 0 {
					dup = true
					return nil
				}
			}
		}
		return st.events.Enqueue(tx, s.AppID, Event, d)
	})
	return dup, errs.From(err, "queueing the provider event")
}

// DeleteSeenBefore forgets event ids seen before t. Any replica may run it
// at any time.
func (st *Store) DeleteSeenBefore(ctx context.Context, t time.Time) error {
	return st.db.WithContext(ctx).Where("seen_at < ?", t).Delete(&seen{}).Error
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
