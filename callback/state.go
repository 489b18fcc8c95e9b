// Package callback runs the end user's side of the authorization-code flow:
// authorize links that a platform hands to its users, the redirect to the
// provider with a fresh state, and the callback that exchanges the code and
// stores the tokens.
package callback

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/secret"
)

const (
	// LinkTTL is how long an authorize link works. A link may be opened
	// more than once (users double-click, or come back); each opening
	// starts a fresh state.
	LinkTTL = time.Hour
	// StateTTL is how long a user may take at the provider (RFC 6749 §10.12
	// asks for state to be short-lived and single-use).
	StateTTL = 10 * time.Minute
)

// Link is an authorize link: it names the installation, config and user,
// so the person who opens it cannot choose them.
type Link struct {
	ID             string
	TokenHash      string
	InstallationID string
	ConfigID       string
	UserID         string
	ReturnURL      string
	ExpiresAt      time.Time
	CreatedAt      time.Time
}

// TableName tells GORM where links live.
func (Link) TableName() string { return "authorize_links" }

// State is one trip to the provider. Only a hash of the state value is
// stored, so a database reader cannot complete someone's flow; the PKCE
// verifier is sealed. BrowserHash binds the state to the browser that
// started the flow through a cookie (RFC 6749 §10.12), so a state sent from
// another browser (a forged callback, login CSRF) is refused.
type State struct {
	StateHash      string `gorm:"primaryKey"`
	InstallationID string
	ConfigID       string
	UserID         string
	CodeVerifier   string // sealed
	BrowserHash    string
	ReturnURL      string
	ExpiresAt      time.Time
	UsedAt         *time.Time
	CreatedAt      time.Time
}

// TableName tells GORM where states live.
func (State) TableName() string { return "oauth_states" }

// Store keeps links and states.
type Store struct {
	db  *gorm.DB
	now func() time.Time
}

// NewStore returns a Store over db.
func NewStore(db *gorm.DB) *Store {
	return &Store{db: db, now: func() time.Time { return time.Now().UTC() }}
}

// CreateLink stores a link and returns its token, which goes in the URL.
func (s *Store) CreateLink(ctx context.Context, l *Link) (string, error) {
	token := secret.NewToken()
	l.ID = database.NewID()
	l.TokenHash = secret.Hash(token)
	l.CreatedAt = s.now()
	l.ExpiresAt = l.CreatedAt.Add(LinkTTL)
	if err := s.db.WithContext(ctx).Create(l).Error; err != nil {
		return "", errs.From(err, "creating authorize link")
	}
	return token, nil
}

// Link returns the link with that token; an unknown or expired one is
// errs.Gone.
func (s *Store) Link(ctx context.Context, token string) (Link, error) {
	var l Link
	err := s.db.WithContext(ctx).Where("token_hash = ?", secret.Hash(token)).Take(&l).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Link{}, errs.New(errs.Gone, "this link is not valid; ask the app for a new one")
	}
	if err != nil {
		return Link{}, errs.From(err, "reading authorize link")
	}
	if !s.now().Before(l.ExpiresAt) {
		return Link{}, errs.New(errs.Gone, "this link has expired; ask the app for a new one")
	}
	return l, nil
}

// CreateState stores st under the hash of a new state value, which it
// returns.
func (s *Store) CreateState(ctx context.Context, st *State, state string) error {
	st.StateHash = secret.Hash(state)
	st.CreatedAt = s.now()
	st.ExpiresAt = st.CreatedAt.Add(StateTTL)
	return errs.From(s.db.WithContext(ctx).Create(st).Error, "storing state")
}

// ConsumeState marks a state used and returns it, if browser is the nonce
// of the browser that started the flow. It succeeds once per state: a
// replay, even a concurrent one (a double click, a browser's prefetch),
// gets errs.Gone, as do unknown and expired states; another browser gets
// errs.Forbidden and leaves the state unused.
func (s *Store) ConsumeState(ctx context.Context, state, browser string) (State, error) {
	h := secret.Hash(state)
	now := s.now()
	res := s.db.WithContext(ctx).Model(&State{}).
		Where("state_hash = ? AND used_at IS NULL AND expires_at > ? AND browser_hash = ?", h, now, secret.Hash(browser)).
		Update("used_at", now)
	if res.Error != nil {
		return State{}, errs.From(res.Error, "reading state")
	}
	var st State
	err := s.db.WithContext(ctx).Where("state_hash = ?", h).Take(&st).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return State{}, errs.New(errs.Gone, "this sign-in is not known; start again from the app")
	case err != nil:
		return State{}, errs.From(err, "reading state")
	case res.RowsAffected == 1:
		return st, nil
	case st.BrowserHash != secret.Hash(browser):
		return State{}, errs.New(errs.Forbidden, "this sign-in was started in another browser; start again from the app in this browser")
	case st.UsedAt != nil:
		return State{}, errs.New(errs.Gone, "this sign-in was already completed; start again from the app to connect again")
	default:
		return State{}, errs.New(errs.Gone, "this sign-in took longer than %s and expired; start again from the app", StateTTL)
	}
}

// DeleteExpired removes states and links that can no longer be used.
func (s *Store) DeleteExpired(ctx context.Context) error {
	now := s.now()
	if err := s.db.WithContext(ctx).Where("expires_at < ?", now.Add(-time.Hour)).Delete(&State{}).Error; err != nil {
		return errs.From(err, "deleting expired states")
	}
	return errs.From(s.db.WithContext(ctx).Where("expires_at < ?", now).Delete(&Link{}).Error, "deleting expired links")
}
