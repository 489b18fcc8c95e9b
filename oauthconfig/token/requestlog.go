package token

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/redact"
	"github.com/latchkey/latchkey/oauthconfig"
)

// LogMeta says whose request a token request is.
type LogMeta struct {
	InstallationID string
	UserID         string
	Kind           string // exchange, refresh or identity

	// Recorded, if set, is told the id of the entry a logged request got,
	// so that a page can show it as a reference (see LogFilter.ID).
	Recorded func(entryID string)
}

// Entry is one logged token request and its response, with every secret
// and token redacted before it is stored.
type Entry struct {
	ID             string
	ConfigID       string
	InstallationID string
	UserID         string
	Kind           string
	Method         string
	URL            string
	RequestHeader  map[string]string `gorm:"column:request_headers;serializer:json"`
	RequestBody    string
	Status         int
	ResponseHeader map[string]string `gorm:"column:response_headers;serializer:json"`
	ResponseBody   string
	Error          string
	Duration       time.Duration `gorm:"-"`
	DurationMS     int64
	CreatedAt      time.Time
}

// TableName tells GORM where entries live.
func (Entry) TableName() string { return "oauth_requests" }

// RequestLog stores entries of configs with LogRequests on.
type RequestLog struct {
	db  *gorm.DB
	log *slog.Logger
}

// NewRequestLog returns a RequestLog over db; failures to record are
// reported to log.
func NewRequestLog(db *gorm.DB, log *slog.Logger) *RequestLog {
	return &RequestLog{db: db, log: log}
}

// maxLoggedBody bounds each stored body.
const maxLoggedBody = 8 << 10

// Record stores e and sets e.ID. A failure is logged, not returned: the
// flow that made the request must not fail because its log entry could not
// be written; e.ID is "" then.
func (l *RequestLog) Record(ctx context.Context, e *Entry) {
	e.ID = database.NewID()
	e.CreatedAt = time.Now().UTC()
	e.DurationMS = e.Duration.Milliseconds()
	e.RequestBody = truncate(e.RequestBody)
	e.ResponseBody = truncate(e.ResponseBody)
	rec := *e
	// A renewal made for a call logs in the calls' share of the pool, if
	// ctx carries one: it holds none of the renewals' slots then.
	release, err := database.Take(ctx)
	if err != nil {
		l.log.Error("recording OAuth request", "config_id", e.ConfigID, "error", err.Error())
		e.ID = ""
		return
	}
	defer release()
	if rec.InstallationID == "" {
		// The column is a nullable foreign key.
		if err := l.db.WithContext(ctx).Omit("InstallationID").Create(&rec).Error; err != nil {
			l.log.Error("recording OAuth request", "config_id", e.ConfigID, "error", err.Error())
			e.ID = ""
		}
		return
	}
	if err := l.db.WithContext(ctx).Create(&rec).Error; err != nil {
		l.log.Error("recording OAuth request", "config_id", e.ConfigID, "error", err.Error())
		e.ID = ""
	}
}

// Annotate adds note to the error column of entry id: what went wrong
// after the request, such as a value of a successful answer that did not
// fit its setting. A failure is logged, not returned.
func (l *RequestLog) Annotate(ctx context.Context, id, note string) {
	if id == "" {
		return
	}
	var e Entry
	err := l.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Select("error").Where("id = ?", id).Take(&e).Error; err != nil {
			return err
		}
		if e.Error != "" {
			note = e.Error + "; " + note
		}
		return tx.Model(&Entry{}).Where("id = ?", id).Update("error", note).Error
	})
	if err != nil {
		l.log.Error("annotating OAuth request", "id", id, "error", err.Error())
	}
}

func truncate(s string) string {
	if len(s) > maxLoggedBody {
		return s[:maxLoggedBody] + "…[truncated]"
	}
	return s
}

// LogFilter selects entries; empty fields match all.
type LogFilter struct {
	ID             string // one entry, e.g. the reference a result page showed
	ConfigID       string
	InstallationID string
	AppID          string // entries of the app's configs
	UserID         string
	Outcome        string // "ok" (a 2xx answer, no error) or "failed"
	Before         string // entries older than this entry id: the next page
	Limit          int    // default and maximum 100
}

// List returns entries, newest first: entry ids are UUIDv7, ordered as
// they were recorded, so the order is by id, and Before pages by it.
func (l *RequestLog) List(ctx context.Context, f LogFilter) ([]Entry, error) {
	q := l.db.WithContext(ctx)
	if f.ID != "" {
		q = q.Where("id = ?", f.ID)
	}
	if f.ConfigID != "" {
		q = q.Where("config_id = ?", f.ConfigID)
	}
	if f.InstallationID != "" {
		q = q.Where("installation_id = ?", f.InstallationID)
	}
	if f.AppID != "" {
		q = q.Where("config_id IN (?)", l.db.Session(&gorm.Session{NewDB: true}).Model(&oauthconfig.Config{}).Select("id").Where("app_id = ?", f.AppID))
	}
	if f.UserID != "" {
		q = q.Where("user_id = ?", f.UserID)
	}
	switch f.Outcome {
	case "ok":
		q = q.Where("status BETWEEN 200 AND 299 AND error = ''")
	case "failed":
		q = q.Where("(status NOT BETWEEN 200 AND 299 OR error <> '')")
	}
	if f.Before != "" {
		q = q.Where("id < ?", f.Before)
	}
	if f.Limit <= 0 || f.Limit > 100 {
		f.Limit = 100
	}
	var out []Entry
	err := q.Order("id DESC").Limit(f.Limit).Find(&out).Error
	return out, errs.From(err, "listing OAuth requests")
}

// newRedactor returns the redactor for one request's context: every secret
// variable's value (secret settings, hidden secret defaults, the code, the
// PKCE verifier, the refresh token, the password), the tokens the request
// got, and the credentials the request carried in its headers (a Basic
// header's encoded pair). Everything the provider answered to that request
// passes it before it is stored, logged, returned or sent on.
func newRedactor(vars Vars, tok Token, sent http.Header) *redact.Redactor {
	r := redact.New(tok.AccessToken, tok.RefreshToken)
	for name, v := range vars.Values {
		if vars.IsSecret(name) {
			r.Add(v)
		}
	}
	for setting, v := range tok.Extra {
		if vars.IsSecret(setting) {
			r.Add(v) // a mapping into a secret setting
		}
	}
	for name, vs := range sent {
		if !redact.SensitiveHeader(name) {
			continue
		}
		for _, v := range vs {
			r.Add(v)
			if _, cred, ok := strings.Cut(v, " "); ok {
				r.Add(cred) // "Basic <base64>", "Bearer <token>"
			}
		}
	}
	return r
}

// Redactor returns the redactor for text a provider sent outside a token
// request, such as an error in its redirect to the callback.
func Redactor(vars Vars) *redact.Redactor { return newRedactor(vars, Token{}, nil) }

// redactError removes the request's secrets from an error built from a
// provider's answer: its shown message and the provider's description.
func redactError(err error, r *redact.Redactor) error {
	var e *errs.Error
	if !errors.As(err, &e) {
		return err
	}
	out := *e
	out.Message = r.String(e.Message)
	var re *RetrieveError
	if errors.As(e.Err, &re) {
		c := *re
		c.ErrorDescription = r.String(re.ErrorDescription)
		out.Err = &c
	}
	return &out
}
