// Package install serves the hosted install page: a platform makes a
// short-lived, single-use install link for one of its organizations, and
// whoever opens it fills in the app's organization-level settings in a
// form that Latchkey renders and checks with the same validation as the
// API (settings.Store.Install).
package install

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/settings"
)

// LinkTTL is how long an install link works. Long enough to look up a
// client id and secret at the provider, short enough that a link pasted
// into a ticket soon stops working.
const LinkTTL = time.Hour

// Link is an install link. It names the app and the organization, so the
// person who opens it cannot choose them; UserID, when the platform gave
// it, is the person's own id, so the page can offer to connect their
// account right after installing.
type Link struct {
	ID             string
	TokenHash      string
	AppID          string
	OrganizationID string
	UserID         string
	InstallationID *string // set when the link was used
	ExpiresAt      time.Time
	UsedAt         *time.Time
	CreatedAt      time.Time
}

// TableName tells GORM where links live.
func (Link) TableName() string { return "install_links" }

// Store keeps install links and installs through them.
type Store struct {
	db       *gorm.DB
	settings *settings.Store
	now      func() time.Time
}

// NewStore returns a Store over db that installs with s.
func NewStore(db *gorm.DB, s *settings.Store) *Store {
	return &Store{db: db, settings: s, now: func() time.Time { return time.Now().UTC() }}
}

// CreateLink stores l, which expires LinkTTL from now, and returns its
// token.
func (s *Store) CreateLink(ctx context.Context, l *Link) (string, error) {
	token := secret.NewToken()
	l.ID = database.NewID()
	l.TokenHash = secret.Hash(token)
	l.CreatedAt = s.now()
	l.ExpiresAt = l.CreatedAt.Add(LinkTTL)
	l.UsedAt, l.InstallationID = nil, nil
	if err := s.db.WithContext(ctx).Create(l).Error; err != nil {
		return "", errs.From(err, "creating install link")
	}
	return token, nil
}

// Link returns the usable link with that token. An unknown, expired or
// used link is errs.Gone, each with its own message.
func (s *Store) Link(ctx context.Context, token string) (Link, error) {
	var l Link
	err := s.db.WithContext(ctx).Where("token_hash = ?", secret.Hash(token)).Take(&l).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return Link{}, errs.New(errs.Gone, "this install link is not valid; ask for a new one")
	case err != nil:
		return Link{}, errs.From(err, "reading install link")
	case l.UsedAt != nil:
		return Link{}, errs.New(errs.Gone, "this install link was already used: the app is installed for this organization")
	case !s.now().Before(l.ExpiresAt):
		return Link{}, errs.New(errs.Gone, "this install link has expired; ask for a new one")
	}
	return l, nil
}

// Install installs the link's app for its organization with values,
// exactly as settings.Store.Install does (and with its errors: an
// errs.Invalid naming every bad value, errs.Conflict if the organization
// has installed the app already), and spends the link in the same
// transaction, so a link installs once and a failed try leaves it usable.
// A link that is not usable is errs.Gone, as for Link.
func (s *Store) Install(ctx context.Context, token string, values map[string]string) (settings.Installation, Link, error) {
	var (
		inst settings.Installation
		l    Link
	)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if l, err = (&Store{db: tx, now: s.now}).Link(ctx, token); err != nil {
			return err
		}
		// Claimed first: of two submissions at once, the second waits for
		// this row (PostgreSQL) or the database (SQLite) and finds it used.
		now := s.now()
		res := tx.Model(&Link{}).Where("id = ? AND used_at IS NULL", l.ID).Update("used_at", now)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return errs.New(errs.Gone, "this install link was already used: the app is installed for this organization")
		}
		if inst, err = s.settings.WithTx(tx).Install(ctx, l.AppID, l.OrganizationID, values); err != nil {
			return err
		}
		l.UsedAt, l.InstallationID = &now, &inst.ID
		return tx.Model(&Link{}).Where("id = ?", l.ID).Update("installation_id", inst.ID).Error
	})
	if err != nil {
		return settings.Installation{}, Link{}, errs.From(err, "installing through a link")
	}
	return inst, l, nil
}

// DeleteExpired removes links that can no longer be used: expired ones,
// used or not, an hour after they expire.
func (s *Store) DeleteExpired(ctx context.Context) error {
	err := s.db.WithContext(ctx).Where("expires_at < ?", s.now().Add(-time.Hour)).Delete(&Link{}).Error
	return errs.From(err, "deleting expired install links")
}
