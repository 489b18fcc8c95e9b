package connection

import (
	"context"
	"sync"
	"time"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/oauthconfig"
	"github.com/latchkey/latchkey/oauthconfig/token"
	"github.com/latchkey/latchkey/settings"
)

// pendingWrite is a renewal's answer that could not be stored: the
// provider has issued the tokens (and, if it rotates refresh tokens, spent
// the old one), so they are kept in memory, used by calls, and written as
// soon as the database takes them.
type pendingWrite struct {
	inst    settings.Installation
	userID  string
	cfg     oauthconfig.Config
	tok     token.Token
	issued  time.Time
	expires time.Time
	// exchanged is an answer to a code exchange (a new connection), not
	// to a renewal; then, if set, runs once it is stored.
	exchanged bool
	then      func(context.Context)

	mu         sync.Mutex // held while a write of this answer is in flight
	superseded bool       // a newer answer was stored or kept: do not write this one
}

// KeepExchanged is keep for the answer to a code exchange that the
// database did not take: the code is spent, so the tokens could never be
// had again. then runs once they are written (the config's steps), unless
// a newer answer superseded them.
func (rf *Refresher) KeepExchanged(inst settings.Installation, userID string, cfg *oauthconfig.Config, tok token.Token, then func(context.Context)) {
	rf.keepAnswer(connKey(inst, userID, cfg), inst, userID, cfg, tok, true, then)
}

// keep holds tok in memory for the connection of key and starts writing it
// in the background, with backoff, for at most rf.PendingFor; then the
// token is logged as lost.
func (rf *Refresher) keep(key string, inst settings.Installation, userID string, cfg *oauthconfig.Config, tok token.Token) {
	rf.keepAnswer(key, inst, userID, cfg, tok, false, nil)
}

func (rf *Refresher) keepAnswer(key string, inst settings.Installation, userID string, cfg *oauthconfig.Config, tok token.Token, exchanged bool, then func(context.Context)) {
	now := rf.now()
	lifetime := tok.ExpiresIn
	if lifetime <= 0 {
		lifetime = int64(cfg.DefaultExpiresIn)
	}
	p := &pendingWrite{inst: inst, userID: userID, cfg: *cfg, tok: tok, issued: now,
		expires: now.Add(time.Duration(lifetime) * time.Second), exchanged: exchanged, then: then}
	if tok.RefreshToken == "" {
		// Kept tokens overlay the stored ones; a refresh token the
		// answer did not renew is the one already stored.
		if old := rf.pendingFor(key); old != nil {
			p.tok.RefreshToken = old.tok.RefreshToken
		}
	}
	rf.supersede(key)
	rf.pendingMu.Lock()
	rf.pending[key] = p
	rf.pendingMu.Unlock()
	rf.log.Error("the database did not take a token the provider issued; it is kept in memory and written when the database is back",
		"installation_id", inst.ID, "config_id", cfg.ID, "user_id", cfg.Owner(userID))
	go rf.writeLater(key, p)
}

// pendingFor returns the kept answer of key, or nil.
func (rf *Refresher) pendingFor(key string) *pendingWrite {
	rf.pendingMu.Lock()
	defer rf.pendingMu.Unlock()
	return rf.pending[key]
}

// supersede stops the write of key's kept answer, if any, waiting for one
// in flight: a newer answer is about to be stored.
func (rf *Refresher) supersede(key string) {
	rf.pendingMu.Lock()
	p := rf.pending[key]
	delete(rf.pending, key)
	rf.pendingMu.Unlock()
	if p != nil {
		p.mu.Lock()
		p.superseded = true
		p.mu.Unlock()
	}
}

// overlay puts key's kept answer, if any, over what the database holds.
func (rf *Refresher) overlay(key string, cfg *oauthconfig.Config, r settings.Resolved, conn Connection) (settings.Resolved, Connection) {
	p := rf.pendingFor(key)
	if p == nil {
		return r, conn
	}
	r.Values[cfg.AccessTokenSetting] = p.tok.AccessToken
	if cfg.RefreshTokenSetting != "" && p.tok.RefreshToken != "" {
		r.Values[cfg.RefreshTokenSetting] = p.tok.RefreshToken
	}
	for k, v := range p.tok.Extra {
		r.Values[k] = v
	}
	issued, expires := p.issued, p.expires
	conn.Status, conn.IssuedAt, conn.ExpiresAt = Connected, &issued, &expires
	return r, conn
}

// writeLater writes p until the database takes it, p is superseded, or
// rf.PendingFor has passed.
func (rf *Refresher) writeLater(key string, p *pendingWrite) {
	log := rf.log.With("installation_id", p.inst.ID, "config_id", p.cfg.ID, "user_id", p.cfg.Owner(p.userID))
	deadline := time.Now().Add(rf.PendingFor)
	wait := rf.PendingRetry
	for {
		select {
		case <-time.After(wait):
		case <-rf.stop:
			log.Error("LOST TOKEN: shutting down with a renewed token the database never took; the user may have to connect again")
			return
		}
		p.mu.Lock()
		if p.superseded {
			p.mu.Unlock()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var err error
		if p.exchanged {
			// Stored with problems (a mapped value that does not fit) is
			// stored: the problems are on the connection.
			if err = rf.conns.Save(ctx, p.inst, p.userID, &p.cfg, p.tok); errs.Is(err, errs.Upstream) {
				err = nil
			}
		} else {
			_, err = rf.conns.SaveRefreshed(ctx, p.inst, p.userID, &p.cfg, p.tok, nil)
		}
		cancel()
		if err == nil {
			p.superseded = true
			p.mu.Unlock()
			rf.pendingMu.Lock()
			if rf.pending[key] == p {
				delete(rf.pending, key)
			}
			rf.pendingMu.Unlock()
			log.Info("stored a token kept in memory while the database was away")
			if p.then != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				p.then(ctx)
				cancel()
			}
			return
		}
		p.mu.Unlock()
		if time.Now().After(deadline) {
			rf.pendingMu.Lock()
			if rf.pending[key] == p {
				delete(rf.pending, key)
			}
			rf.pendingMu.Unlock()
			log.Error("LOST TOKEN: the database did not take a renewed token in time; the user may have to connect again",
				"kept_for", rf.PendingFor.String(), "error", err.Error())
			return
		}
		wait = min(wait*2, 30*time.Second)
	}
}

// Stop ends the background writes of kept tokens, logging each one left
// as lost. Call it on shutdown, after the last call has been served.
func (rf *Refresher) Stop() {
	rf.stopOnce.Do(func() { close(rf.stop) })
}
