package oauthconfig

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/errs"
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
	Limit          int // default and maximum 100
}

// List returns entries, newest first.
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
	if f.Limit <= 0 || f.Limit > 100 {
		f.Limit = 100
	}
	var out []Entry
	err := q.Order("created_at DESC, id DESC").Limit(f.Limit).Find(&out).Error
	return out, errs.From(err, "listing OAuth requests")
}

// redactor removes secrets from what is logged: every secret variable's
// value and every token, in each form it can take on the wire, and the
// values of token-like keys in JSON bodies.
type redactor struct {
	secrets []string
}

const redacted = "[REDACTED]"

func newRedactor(vars Vars, tok Token) *redactor {
	var vals []string
	for name, v := range vars.Values {
		if vars.secret(name) && len(v) >= 4 {
			vals = append(vals, v)
		}
	}
	for _, v := range []string{tok.AccessToken, tok.RefreshToken} {
		if len(v) >= 4 {
			vals = append(vals, v)
		}
	}
	r := &redactor{}
	for _, v := range vals {
		j, _ := json.Marshal(v)
		r.secrets = append(r.secrets, v, url.QueryEscape(v), url.PathEscape(v), string(j[1:len(j)-1]))
	}
	// Longest first, so a secret that contains another is removed whole.
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
	return r
}

func (r *redactor) text(s string) string {
	for _, v := range r.secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, redacted)
		}
	}
	return s
}

var sensitiveHeader = regexp.MustCompile(`(?i)^(authorization|cookie|set-cookie|proxy-authorization|x-api-key|api-key)$|token|secret|password`)

func (r *redactor) header(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, vs := range h {
		v := strings.Join(vs, ", ")
		if sensitiveHeader.MatchString(k) {
			v = redacted
		}
		out[k] = r.text(v)
	}
	return out
}

var sensitiveKey = regexp.MustCompile(`(?i)token|secret|password|code|assertion|key`)

// body redacts a response body: known values everywhere, and for JSON the
// values of keys that look like they hold a credential (an id_token we do
// not extract is still a credential).
func (r *redactor) body(b []byte) string {
	var doc any
	if json.Unmarshal(b, &doc) == nil {
		if m, ok := doc.(map[string]any); ok {
			redactKeys(m)
			if out, err := json.Marshal(m); err == nil {
				return r.text(string(out))
			}
		}
	}
	if vals, err := url.ParseQuery(string(b)); err == nil && len(vals) > 0 && !strings.ContainsAny(string(b), "<{ ") {
		for k := range vals {
			if sensitiveKey.MatchString(k) && k != "error" {
				vals.Set(k, redacted)
			}
		}
		return r.text(vals.Encode())
	}
	return r.text(string(b))
}

func redactKeys(m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case map[string]any:
			redactKeys(v)
		case string:
			if sensitiveKey.MatchString(k) && k != "error" && k != "token_type" && k != "error_description" {
				m[k] = redacted
			}
		}
	}
}
