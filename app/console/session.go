package console

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/secret"
)

const (
	// MaxAge is how long a session lasts however busy it is: a stolen
	// cookie stops working within a working day.
	MaxAge = 12 * time.Hour
	// IdleTimeout ends a session nobody has used for that long.
	IdleTimeout = 2 * time.Hour
	// touchEvery bounds the writes that record use: one a minute, not
	// one per page.
	touchEvery = time.Minute
)

// Session is a browser signed in to the console. The browser holds a
// random session id in a cookie; only its hash is stored, so a database
// reader cannot sign in as anyone. It sees what its API key's account
// sees, and ends with that key (ON DELETE CASCADE).
type Session struct {
	IDHash     string `gorm:"primaryKey"`
	AccountID  string
	KeyID      string
	KeyPrefix  string // the first characters of the key, to show who is signed in
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time // CreatedAt + MaxAge
}

// TableName tells GORM where sessions live.
func (Session) TableName() string { return "console_sessions" }

// Sessions keeps console sessions.
type Sessions struct {
	db  *gorm.DB
	now func() time.Time
}

// NewSessions returns Sessions over db; now is the clock (nil: the real
// one), which tests move to expire sessions.
func NewSessions(db *gorm.DB, now func() time.Time) *Sessions {
	if now == nil {
		now = func() time.Time { return time.Now().UTC() }
	}
	return &Sessions{db: db, now: now}
}

// Create starts a session for key and returns its id, the cookie's value.
// Sessions that have ended are deleted first: sign-ins are rare, so this
// keeps the table small without a background job.
func (s *Sessions) Create(ctx context.Context, key app.APIKey) (string, Session, error) {
	if err := s.DeleteExpired(ctx); err != nil {
		return "", Session{}, err
	}
	id := secret.NewToken()
	now := s.now()
	sess := Session{IDHash: secret.Hash(id), AccountID: key.AccountID, KeyID: key.ID, KeyPrefix: key.Prefix,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(MaxAge)}
	if err := s.db.WithContext(ctx).Create(&sess).Error; err != nil {
		return "", Session{}, errs.From(err, "starting a console session")
	}
	return id, sess, nil
}

// Find returns the live session whose id is id, recording its use. An
// unknown, ended or idle session is errs.Unauthorized (and deleted).
func (s *Sessions) Find(ctx context.Context, id string) (Session, error) {
	var sess Session
	err := s.db.WithContext(ctx).Where("id_hash = ?", secret.Hash(id)).Take(&sess).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Session{}, errs.New(errs.Unauthorized, "not signed in")
	}
	if err != nil {
		return Session{}, errs.From(err, "reading the console session")
	}
	now := s.now()
	if !now.Before(sess.ExpiresAt) || !now.Before(sess.LastSeenAt.Add(IdleTimeout)) {
		if err := s.Delete(ctx, id); err != nil {
			return Session{}, err
		}
		return Session{}, errs.New(errs.Unauthorized, "the session has ended")
	}
	if now.Sub(sess.LastSeenAt) >= touchEvery {
		err := s.db.WithContext(ctx).Model(&Session{}).Where("id_hash = ?", sess.IDHash).Update("last_seen_at", now).Error
		if err != nil {
			return Session{}, errs.From(err, "recording the console session's use")
		}
		sess.LastSeenAt = now
	}
	return sess, nil
}

// Delete ends the session whose id is id (signing out); an unknown one is
// not an error.
func (s *Sessions) Delete(ctx context.Context, id string) error {
	err := s.db.WithContext(ctx).Where("id_hash = ?", secret.Hash(id)).Delete(&Session{}).Error
	return errs.From(err, "ending the console session")
}

// DeleteExpired deletes sessions that have ended or been idle too long.
func (s *Sessions) DeleteExpired(ctx context.Context) error {
	now := s.now()
	err := s.db.WithContext(ctx).Where("expires_at <= ? OR last_seen_at <= ?", now, now.Add(-IdleTimeout)).Delete(&Session{}).Error
	return errs.From(err, "deleting ended console sessions")
}

// CSRF protection. Every form of a session carries a token derived from
// the session id, HMAC-SHA256(session id, purpose): only a page of this
// origin, served to the browser holding the cookie, can know it (the
// cookie is HttpOnly and SameSite=Strict, and the id is never shown), and
// it needs no storage. The sign-in form, before any session, does the same
// with a random nonce in a short-lived cookie of its own (a double submit,
// signed), so another site cannot sign a browser in to its own account.

// formToken returns the form token for purpose of the browser holding id.
func formToken(id, purpose string) string {
	mac := hmac.New(sha256.New, []byte(id))
	mac.Write([]byte("latchkey-console:" + purpose))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// checkFormToken reports, in constant time, whether got is the form token
// for purpose of the browser holding id.
func checkFormToken(id, purpose, got string) bool {
	if id == "" || got == "" {
		return false
	}
	return hmac.Equal([]byte(got), []byte(formToken(id, purpose)))
}
