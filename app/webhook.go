package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/cache"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/secret"
)

// Events an app's webhooks receive.
var Events = []string{
	"connection.created",                  // an end user connected an account
	"connection.refreshed",                // a token was renewed
	"connection.refresh_failed",           // a renewal failed for a reason that may pass
	"connection.reauthorization_required", // the provider refused the grant: the user must connect again
	"connection.recovered",                // a connection that had failed works again
	"connection.configuration_error",      // the provider refused the installation's client credentials
	"connection.configuration_recovered",  // those credentials work again
	"connection.removed",                  // a connection was removed through the API or the console
	"provider.event",                      // a provider sent a verified event for an installation (app/hooks)
}

// Webhook is an endpoint of an app that receives events, signed with its
// secret.
type Webhook struct {
	ID        string
	AppID     string
	URL       string
	Secret    string   // sealed; see Webhooks.Create
	Events    []string `gorm:"serializer:json"` // empty: every event
	CreatedAt time.Time
}

// TableName tells GORM where webhooks live.
func (Webhook) TableName() string { return "webhooks" }

// Delivery is one event on its way to one webhook: the outbox row.
type Delivery struct {
	ID            string
	WebhookID     string
	Event         string
	Payload       string
	Attempts      int
	NextAttemptAt time.Time
	LockedUntil   *time.Time
	DeliveredAt   *time.Time
	FailedAt      *time.Time
	LastStatus    int
	LastError     string
	CreatedAt     time.Time
}

// TableName tells GORM where deliveries live.
func (Delivery) TableName() string { return "webhook_deliveries" }

// Webhooks stores webhooks and queues their deliveries.
type Webhooks struct {
	db     *gorm.DB
	cipher *secret.Cipher
	now    func() time.Time

	bus  *cache.Bus
	some *cache.Cache[bool] // by app: whether it has webhooks; see UseCache
}

// UseCache makes w remember which apps have no webhooks, so that the
// events of those (most of them, and every token renewal of theirs)
// cost no query. A webhook created on another replica gets the events of
// that replica once the change reaches it, within the bus's delay.
func (w *Webhooks) UseCache(bus *cache.Bus) {
	w.bus = bus
	w.some = cache.New[bool](bus, "webhooks")
}

func webhooksChange(appID string) cache.Change { return cache.Change{Topic: "webhooks", Key: appID} }

// NewWebhooks returns Webhooks over db; cipher seals their secrets.
func NewWebhooks(db *gorm.DB, cipher *secret.Cipher) *Webhooks {
	return &Webhooks{db: db, cipher: cipher, now: func() time.Time { return time.Now().UTC() }}
}

func sealAAD(id string) string { return "webhook:" + id }

// Create stores a webhook for app appID and returns its signing secret,
// which is shown once. Errors: Invalid naming the bad fields.
func (w *Webhooks) Create(ctx context.Context, h *Webhook) (string, error) {
	var fs errs.Fields
	if msg := CheckWebURL(h.URL); msg != "" {
		fs.Add("url", "%s", msg)
	}
	for i, e := range h.Events {
		if !knownEvent(e) {
			fs.Add(fmt.Sprintf("events[%d]", i), "unknown event; events are %v", Events)
		}
	}
	if err := fs.Err(); err != nil {
		return "", err
	}
	if h.Events == nil {
		h.Events = []string{}
	}
	plain := "whsec_" + secret.NewToken()
	h.ID = database.NewID()
	h.CreatedAt = w.now()
	sealed, err := w.cipher.Seal(plain, sealAAD(h.ID))
	if err != nil {
		return "", errs.Wrap(errs.Internal, err, "sealing the webhook secret")
	}
	h.Secret = sealed
	err = w.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(h).Error; err != nil {
			return err
		}
		return w.bus.ChangedAll(tx, webhooksChange(h.AppID))
	})
	if err != nil {
		return "", errs.From(err, "creating webhook")
	}
	return plain, nil
}

func knownEvent(e string) bool {
	for _, x := range Events {
		if x == e {
			return true
		}
	}
	return false
}

// List returns the app's webhooks, oldest first.
func (w *Webhooks) List(ctx context.Context, appID string) ([]Webhook, error) {
	var out []Webhook
	err := w.db.WithContext(ctx).Where("app_id = ?", appID).Order("created_at, id").Find(&out).Error
	return out, errs.From(err, "listing webhooks")
}

// Find returns the app's webhook id.
func (w *Webhooks) Find(ctx context.Context, appID, id string) (Webhook, error) {
	var h Webhook
	err := w.db.WithContext(ctx).Where("app_id = ? AND id = ?", appID, id).Take(&h).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Webhook{}, errs.NotFoundf("webhook %q not found", id)
	}
	return h, errs.From(err, "reading webhook")
}

// Delete removes the app's webhook id and its pending deliveries.
func (w *Webhooks) Delete(ctx context.Context, appID, id string) error {
	err := w.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Where("app_id = ? AND id = ?", appID, id).Delete(&Webhook{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return errs.NotFoundf("webhook %q not found", id)
		}
		return w.bus.ChangedAll(tx, webhooksChange(appID))
	})
	return errs.From(err, "deleting webhook")
}

// Deliveries returns the last 100 deliveries of a webhook, newest first.
func (w *Webhooks) Deliveries(ctx context.Context, webhookID string) ([]Delivery, error) {
	var out []Delivery
	err := w.db.WithContext(ctx).Where("webhook_id = ?", webhookID).Order("created_at DESC, id DESC").Limit(100).Find(&out).Error
	return out, errs.From(err, "listing deliveries")
}

// DeliveryFilter selects an app's deliveries; empty fields match all.
type DeliveryFilter struct {
	AppID     string // required
	WebhookID string
	Event     string
	Outcome   string // "delivered", "failed" (given up) or "pending"
	// Data matches fields of the event's data by their exact value, such
	// as {"installation_id": id, "user_id": "user-7"}.
	Data   map[string]string
	Before string // deliveries older than this delivery id: the next page
	Limit  int    // default and maximum 100
}

// ListDeliveries returns the deliveries of f.AppID's webhooks that f
// selects, newest first (ids are UUIDv7, so by id).
func (w *Webhooks) ListDeliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error) {
	hooks := w.db.Session(&gorm.Session{NewDB: true}).Model(&Webhook{}).Select("id").Where("app_id = ?", f.AppID)
	q := w.db.WithContext(ctx).Where("webhook_id IN (?)", hooks)
	if f.WebhookID != "" {
		q = q.Where("webhook_id = ?", f.WebhookID)
	}
	if f.Event != "" {
		q = q.Where("event = ?", f.Event)
	}
	switch f.Outcome {
	case "delivered":
		q = q.Where("delivered_at IS NOT NULL")
	case "failed":
		q = q.Where("failed_at IS NOT NULL")
	case "pending":
		q = q.Where("delivered_at IS NULL AND failed_at IS NULL")
	}
	keys := make([]string, 0, len(f.Data))
	for k := range f.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		// The payload is the json.Marshal of an Event, whose data fields
		// are written "key":value: the same encoding finds them.
		field, _ := json.Marshal(map[string]string{k: f.Data[k]}) // {"key":"value"}
		q = q.Where(`payload LIKE ? ESCAPE '\'`, "%"+likeEscape(string(field[1:len(field)-1]))+"%")
	}
	if f.Before != "" {
		q = q.Where("id < ?", f.Before)
	}
	if f.Limit <= 0 || f.Limit > 100 {
		f.Limit = 100
	}
	var out []Delivery
	err := q.Order("id DESC").Limit(f.Limit).Find(&out).Error
	return out, errs.From(err, "listing deliveries")
}

// likeEscape escapes s for a LIKE pattern with ESCAPE '\'.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(s)
}

// Event is the JSON body every webhook receives.
type Event struct {
	ID        string    `json:"id"` // the delivery's id: receivers dedupe on it
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	Data      any       `json:"data"`
}

// Enqueue writes an event for each of the app's webhooks that want it,
// through tx: called in the transaction of the change it reports, an event
// is queued exactly when the change is stored (the outbox pattern).
//
// Only that an app has none comes from the cache: its webhooks themselves
// are read in tx, so that none deleted meanwhile is written to.
func (w *Webhooks) Enqueue(tx *gorm.DB, appID, event string, data any) error {
	var hooks []Webhook
	read := false
	some, err := w.some.Load(appID, func() (bool, error) {
		read = true
		err := tx.Where("app_id = ?", appID).Find(&hooks).Error
		return len(hooks) > 0, err
	})
	if err != nil || !some {
		return err
	}
	if !read {
		if err := tx.Where("app_id = ?", appID).Find(&hooks).Error; err != nil {
			return err
		}
	}
	now := w.now()
	for _, h := range hooks {
		if len(h.Events) > 0 && !contains(h.Events, event) {
			continue
		}
		d := Delivery{ID: database.NewID(), WebhookID: h.ID, Event: event, NextAttemptAt: now, CreatedAt: now}
		body, err := json.Marshal(Event{ID: d.ID, Type: event, CreatedAt: now, Data: data})
		if err != nil {
			return err
		}
		d.Payload = string(body)
		if err := tx.Create(&d).Error; err != nil {
			return err
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Sign returns the Latchkey-Signature header value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<unix seconds>.<body>">".
// Receivers recompute it with their secret, compare in constant time, and
// refuse timestamps too far from their clock (replays).
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}
