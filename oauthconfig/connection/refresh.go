package connection

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/oauthconfig"
	"github.com/latchkey/latchkey/oauthconfig/token"
	"github.com/latchkey/latchkey/settings"
)

// Linker makes authorize links, so that an error that asks an end user to
// connect again can say where. callback.Handler is one.
type Linker interface {
	AuthorizeURL(ctx context.Context, installationID, configID, userID string) (string, error)
}

// Refresher keeps access tokens fresh. Before a call it renews a token that
// is about to expire; after an API refused a token it renews it once. A
// renewal never loses a token: the new access and refresh tokens are stored
// in one transaction, transient failures keep the old ones, and concurrent
// callers, in one process (single-flight) or in replicas sharing one
// database (a lease row, then a re-read; see withLock), cause one request
// to the provider.
type Refresher struct {
	db          *gorm.DB
	settings    *settings.Store
	conns       *Connections
	tokens      *token.Client
	links       Linker
	redirectURI string
	log         *slog.Logger
	group       singleflight.Group
	now         func() time.Time

	// Attempts is how many times a renewal that fails transiently
	// (timeout, 5xx, 429) is tried; Backoff the base of the jittered
	// exponential wait between tries; MaxRetryAfter the longest
	// Retry-After that is waited for rather than given up on.
	Attempts      int
	Backoff       time.Duration
	MaxRetryAfter time.Duration

	// PendingFor is how long a renewed token the database did not take is
	// kept in memory and retried (see keep); PendingRetry the first wait
	// between writes, doubled each time up to 30 seconds.
	PendingFor   time.Duration
	PendingRetry time.Duration
	// LeaseFor is how long a renewal may hold its lease (see withLock):
	// longer than all of its attempts take.
	LeaseFor time.Duration

	// DatabaseShare is the share of the time renewals may hold their slot
	// in the database (see busy), at most 1; 0 counts as 1.
	DatabaseShare float64

	slots     chan struct{} // see busy
	heldSince time.Time     // when the slot's holder took it

	pendingMu sync.Mutex
	pending   map[string]*pendingWrite
	stop      chan struct{}
	stopOnce  sync.Once
}

// NewRefresher returns a Refresher. links may be nil until SetLinker.
func NewRefresher(db *gorm.DB, s *settings.Store, conns *Connections, tokens *token.Client, redirectURI string, log *slog.Logger) *Refresher {
	return &Refresher{
		db: db, settings: s, conns: conns, tokens: tokens, redirectURI: redirectURI, log: log,
		now:      func() time.Time { return time.Now().UTC() },
		Attempts: 3, Backoff: 200 * time.Millisecond, MaxRetryAfter: 10 * time.Second,
		PendingFor: 15 * time.Minute, PendingRetry: time.Second, LeaseFor: 2 * time.Minute, DatabaseShare: 1,
		pending: make(map[string]*pendingWrite), stop: make(chan struct{}),
		// One renewal in the database at a time: measured with 1,000 at
		// once (BenchmarkRefreshStorm), a second slot makes the storm
		// about 20% shorter and the ordinary routes' p99 meanwhile about
		// half as long again.
		slots: make(chan struct{}, 1),
	}
}

// Connections is the store the Refresher reads and writes connections in.
func (rf *Refresher) Connections() *Connections { return rf.conns }

// SetLinker sets where authorize links for reauthorization errors come from.
func (rf *Refresher) SetLinker(l Linker) { rf.links = l }

// Fresh returns the installation's and user's settings with an access token
// that does not expire within the config's margin, renewing it first when
// needed. userID may be "" for a config with organization-level tokens.
//
// Errors are *errs.Error: Reauthorize (with an authorize link) when the end
// user must connect (again); Timeout or Upstream when a needed renewal
// failed at the provider; Invalid when a request cannot be rendered.
func (rf *Refresher) Fresh(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config) (settings.Resolved, error) {
	key := connKey(inst, userID, cfg)
	conn, err := connection(ctx, rf.conns, inst, userID, cfg)
	if err != nil {
		return settings.Resolved{}, err
	}
	// A connection whose token expires within the margin is renewed
	// whatever the settings hold, and the renewal reads them under its
	// lease: reading them here too would be a second read of the same
	// rows when the caches are cold (a storm of expired tokens).
	if conn.Status == Connected && conn.ExpiresAt != nil && rf.expiring(cfg, conn) && rf.pendingFor(key) == nil {
		return rf.Renew(ctx, inst, userID, cfg, "", false)
	}
	r, err := rf.settings.Resolve(ctx, inst, userID)
	if err != nil {
		return settings.Resolved{}, err
	}
	r, conn = rf.overlay(key, cfg, r, conn)
	if cfg.GrantType == oauthconfig.AuthorizationCode && conn.Status == ReauthorizationRequired {
		return settings.Resolved{}, rf.reauthorize(ctx, inst, userID, cfg, conn.LastError)
	}
	if !rf.due(cfg, r, conn) {
		return r, nil
	}
	return rf.Renew(ctx, inst, userID, cfg, r.Values[cfg.AccessTokenSetting], false)
}

// Renew renews the access token unless the stored one is no longer stale
// (another caller renewed it meanwhile), and returns the settings with the
// new token. refused says the API refused stale; without it, a renewal that
// fails transiently answers the old token while it has not expired.
func (rf *Refresher) Renew(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config, stale string, refused bool) (settings.Resolved, error) {
	// Fresh enough: another caller or replica renewed it while we waited.
	renewed := func(r settings.Resolved, conn Connection) bool {
		current := r.Values[cfg.AccessTokenSetting]
		return current != "" && current != stale && !rf.due(cfg, r, conn)
	}
	return rf.renew(ctx, inst, userID, cfg, renewed, refused)
}

// KeepAlive refreshes a connection whose token was issued before cutoff, so
// that a provider that revokes unused refresh tokens does not revoke it. A
// connection renewed meanwhile (by a call, or by another replica's
// keep-alive) is left alone.
func (rf *Refresher) KeepAlive(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config, cutoff time.Time) error {
	recent := func(_ settings.Resolved, conn Connection) bool {
		return conn.Status != Connected || conn.IssuedAt == nil || conn.IssuedAt.After(cutoff)
	}
	_, err := rf.renew(ctx, inst, userID, cfg, recent, false)
	return err
}

// renew runs one renewal per user and config at a time in this process,
// unless fresh says the stored token needs none.
func (rf *Refresher) renew(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config, fresh func(settings.Resolved, Connection) bool, refused bool) (settings.Resolved, error) {
	key := connKey(inst, userID, cfg)
	ch := rf.group.DoChan(key, func() (any, error) {
		// Shared by every waiter: one caller going away must not fail
		// the renewal the others wait for. Each attempt is bounded by
		// the outbound client's timeout.
		return rf.renewLocked(context.WithoutCancel(ctx), key, inst, userID, cfg, fresh, refused)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return settings.Resolved{}, res.Err
		}
		return res.Val.(settings.Resolved), nil
	case <-ctx.Done():
		return settings.Resolved{}, errs.Wrap(errs.Timeout, ctx.Err(), "gave up waiting for the token renewal")
	}
}

// connKey names a connection, for single-flight, locks and kept tokens.
func connKey(inst settings.Installation, userID string, cfg *oauthconfig.Config) string {
	return inst.ID + "\x00" + cfg.Owner(userID) + "\x00" + cfg.ID
}

func (rf *Refresher) renewLocked(ctx context.Context, key string, inst settings.Installation, userID string, cfg *oauthconfig.Config, fresh func(settings.Resolved, Connection) bool, refused bool) (settings.Resolved, error) {
	// The renewal's database work holds one of its slots (busy), and does
	// not wait in the calls' share of the pool (see database.Share) that
	// a call's ctx may carry; the provider's round trip, made without a
	// slot, logs the request in that share.
	shared, ctx := ctx, database.Unshared(ctx)
	var out settings.Resolved
	var failure error // kept out of the transaction's error so that Fail is committed
	var kept bool     // the answer is kept in memory: the database did not take it
	err := rf.withLock(ctx, key, func(db *gorm.DB, l *lease) error {
		r, conn, err := rf.read(ctx, db, inst, userID, cfg)
		if err != nil {
			return err
		}
		if cfg.GrantType == oauthconfig.AuthorizationCode && conn.Status == ReauthorizationRequired {
			failure = rf.reauthorize(ctx, inst, userID, cfg, conn.LastError)
			return nil
		}
		current := r.Values[cfg.AccessTokenSetting]
		if fresh(r, conn) {
			out = r
			return nil
		}
		if !canRenew(cfg, r) {
			if current != "" && !refused {
				out = r
				return nil
			}
			failure = rf.cannotRenew(ctx, inst, userID, cfg)
			return nil
		}
		// A configuration error stands until the organization's settings
		// change: sending the same credentials again cannot help. It is
		// read from the cache: rare, and the same for every user.
		ce, hadConfigError, err := rf.conns.ConfigError(ctx, inst.ID, cfg.ID)
		if err != nil {
			return err
		}
		if hadConfigError && ce.SettingsDigest == r.OrganizationDigest() {
			out, failure = rf.meanwhile(cfg, r, conn, refused, rf.configurationError(cfg, r, ce.Message))
			return nil
		}
		// The intent record, committed before the request: if this process
		// dies before the answer is stored, the next refresh knows why the
		// provider refuses the refresh token it then sends.
		leftover := conn.RefreshStartedAt
		if conn.Status != "" {
			if err := rf.conns.BeginRefresh(ctx, inst, userID, cfg); err != nil {
				return err
			}
		}
		rf.idle() // the provider's round trip uses no database
		tok, entryID, usedRefresh, err := rf.request(shared, inst, userID, cfg, r)
		rf.busy()
		if err == nil {
			// The provider has issued tokens: from here on they must not
			// be lost. If the database does not take them, they are kept
			// in memory, served, and written when it is back.
			rf.supersede(key)
			before := &Before{Conn: conn, Settings: r, ConfigError: hadConfigError}
			steps := cfg.RenewSteps(usedRefresh)
			if len(steps) == 0 {
				before.Release = l.Release // no more to do under the lease
			}
			written, err := rf.conns.WithTx(db).SaveRefreshed(ctx, inst, userID, cfg, tok, before)
			if err != nil {
				rf.keep(key, inst, userID, cfg, tok)
				out, _ = rf.overlay(key, cfg, r, conn)
				kept = true
				return err
			}
			l.released = before.Release != nil
			if later := written.Problems[len(tok.Problems):]; len(later) > 0 {
				rf.tokens.Annotate(ctx, entryID, later) // the entry has tok.Problems already
			}
			// The settings as stored: those read, with what was written.
			out = r.With(written)
			if len(steps) > 0 {
				// Under the lock, so that no call uses the new token
				// before what the steps make from it (Bullhorn's session).
				if failure, err = rf.runSteps(ctx, shared, db, inst, userID, cfg, r, tok, steps); err != nil {
					return err
				}
				// What the steps stored, read back.
				out, err = rf.settings.WithTx(db).Resolve(ctx, inst, userID)
			}
			return err
		}
		out, failure = rf.failed(ctx, db, inst, userID, cfg, r, conn, leftover, refused, err)
		return nil
	})
	if kept {
		return out, nil
	}
	if err != nil {
		return settings.Resolved{}, errs.From(err, "renewing the token")
	}
	return out, failure
}

// failed decides what a failed renewal means, and records it:
//   - the installation's client credentials were refused (invalid_client,
//     unauthorized_client; any refusal of client credentials), or its
//     client certificate cannot be used or was refused in the handshake
//     (errs.ConfigurationError): a configuration error of the
//     installation, which stands until its organization settings change;
//     users' connections keep their state;
//   - the user's grant is gone (invalid_grant, or what the config declares
//     equivalent): the connection needs reauthorization, unless another
//     worker rotated the tokens meanwhile (its refresh made ours invalid);
//   - another 4xx refusal (not 408 or 429): counted; the third in a row, a
//     minute apart or more, ends the grant as invalid_grant would;
//   - anything else is transient: the tokens are kept.
//
// Unless the grant ended, the old access token is still used while it has
// not expired.
func (rf *Refresher) failed(ctx context.Context, db *gorm.DB, inst settings.Installation, userID string, cfg *oauthconfig.Config, r settings.Resolved, conn Connection, leftover *time.Time, refused bool, cause error) (settings.Resolved, error) {
	var re *token.RetrieveError
	errors.As(cause, &re)
	conns := rf.conns.WithTx(db)
	reason := errs.MessageOf(cause) // the shown part only: the cause may name a URL
	answered := re != nil && re.Status != 0
	log := rf.log.With("installation_id", inst.ID, "config_id", cfg.ID)
	if errs.Is(cause, errs.ConfigurationError) {
		// The installation's client certificate cannot be used, or the
		// provider refused it in the TLS handshake (RFC 8705): its
		// settings are wrong, as with invalid_client, and sending it
		// again cannot help until they change.
		if err := conns.SetConfigError(ctx, inst, userID, cfg, reason, r.OrganizationDigest()); err != nil {
			return settings.Resolved{}, err
		}
		if err := conns.Fail(ctx, inst, userID, cfg, reason, "", false); err != nil {
			return settings.Resolved{}, err
		}
		log.Warn("the installation's client certificate cannot be used; no token request is sent until its settings change")
		return rf.meanwhile(cfg, r, conn, refused, rf.configurationError(cfg, r, reason))
	}
	if re == nil || re.Transient || !answered {
		if err := conns.Fail(ctx, inst, userID, cfg, reason, "", answered); err != nil {
			return settings.Resolved{}, err
		}
		log.Warn("token renewal failed; the tokens are kept", "error", reason)
		return rf.meanwhile(cfg, r, conn, refused, cause)
	}
	if clientRefused(cfg, re) {
		if err := conns.SetConfigError(ctx, inst, userID, cfg, reason, r.OrganizationDigest()); err != nil {
			return settings.Resolved{}, err
		}
		if err := conns.Fail(ctx, inst, userID, cfg, reason, "", true); err != nil {
			return settings.Resolved{}, err
		}
		log.Warn("the provider refused the installation's client credentials; no token request is sent until its settings change", "error_code", re.ErrorCode)
		return rf.meanwhile(cfg, r, conn, refused, rf.configurationError(cfg, r, reason))
	}
	rule := grantGone(cfg, re)
	if rule == "" && re.Status >= 400 && re.Status < 500 && re.Status != http.StatusRequestTimeout {
		n, err := conns.Refused(ctx, inst, userID, cfg, reason)
		if err != nil {
			return settings.Resolved{}, err
		}
		if n < 3 {
			log.Warn("token renewal refused", "status", re.Status, "refusals_in_a_row", n)
			return rf.meanwhile(cfg, r, conn, refused, cause)
		}
		rule = EndRefusals
		reason = fmt.Sprintf("the provider refused the refresh %d times in a row: %s", n, reason)
	}
	if rule == "" {
		if err := conns.Fail(ctx, inst, userID, cfg, reason, "", true); err != nil {
			return settings.Resolved{}, err
		}
		return rf.meanwhile(cfg, r, conn, refused, cause)
	}
	again, _, err := rf.read(ctx, db, inst, userID, cfg)
	if err == nil && (again.Values[cfg.RefreshTokenSetting] != r.Values[cfg.RefreshTokenSetting] ||
		again.Values[cfg.AccessTokenSetting] != r.Values[cfg.AccessTokenSetting]) {
		return again, nil
	}
	if leftover != nil && rule != EndRefusals {
		rule = EndLostToCrash
		reason = fmt.Sprintf("a refresh sent at %s got no stored answer (Latchkey stopped or lost the provider's answer), and the provider now refuses the refresh token: the tokens it issued then are lost (%s)",
			leftover.UTC().Format(time.RFC3339), reason)
		log.Error("LOST TOKEN: a refresh's answer was never stored; the user must connect again", "user_id", cfg.Owner(userID))
	}
	if cfg.GrantType != oauthconfig.AuthorizationCode && cfg.GrantType != oauthconfig.RefreshToken {
		rule = EndGrantRefused
	}
	if err := conns.Fail(ctx, inst, userID, cfg, reason, rule, true); err != nil {
		return settings.Resolved{}, err
	}
	log.Warn("the user's grant is gone; the connection needs reauthorization", "rule", rule, "error_code", re.ErrorCode)
	return settings.Resolved{}, rf.reauthorize(ctx, inst, userID, cfg, reason)
}

// meanwhile answers a renewal that failed without ending the grant: the
// current token while it has not expired (unless the API just refused it),
// else the failure.
func (rf *Refresher) meanwhile(cfg *oauthconfig.Config, r settings.Resolved, conn Connection, refused bool, failure error) (settings.Resolved, error) {
	if !refused && r.Values[cfg.AccessTokenSetting] != "" && conn.ExpiresAt != nil && rf.now().Before(*conn.ExpiresAt) {
		return r, nil
	}
	return settings.Resolved{}, failure
}

// clientRefused reports a refusal of the installation's client credentials
// (RFC 6749 §5.2 invalid_client, unauthorized_client). A grant without a
// user has no user's grant to lose, so any refusal of it is one too.
func clientRefused(cfg *oauthconfig.Config, re *token.RetrieveError) bool {
	switch re.ErrorCode {
	case "invalid_client", "unauthorized_client":
		return true
	}
	return (cfg.GrantType == oauthconfig.ClientCredentials || cfg.GrantType == oauthconfig.JWTBearer) && re.ErrorCode != "" && re.Status < 500
}

// grantGone returns the rule by which a refusal says the user's grant is
// gone, or "".
func grantGone(cfg *oauthconfig.Config, re *token.RetrieveError) string {
	if re.ErrorCode == "invalid_grant" {
		return EndInvalidGrant
	}
	for _, code := range cfg.GrantGoneErrors {
		if re.ErrorCode != "" && re.ErrorCode == code {
			return EndGoneError
		}
	}
	if cfg.GrantGoneBodyPath != "" && re.Body() != nil {
		v, ok, err := token.LookupString(cfg.GrantGoneBodyPath, re.Body())
		if err == nil && ok && (cfg.GrantGoneBodyValue == "" || v == cfg.GrantGoneBodyValue) {
			return EndGoneBody
		}
	}
	return ""
}

// configurationError is the error calls get while the provider refuses an
// installation's client credentials, or its client certificate cannot be
// used: it names the organization settings the token request uses, which
// are the ones to fix; reason says what is wrong.
func (rf *Refresher) configurationError(cfg *oauthconfig.Config, r settings.Resolved, reason string) error {
	names := cfg.OrganizationSettingsUsed(r)
	fix := "its organization settings"
	if len(names) > 0 {
		fix = "organization settings " + strings.Join(names, ", ")
	}
	return errs.New(errs.ConfigurationError, "OAuth config %q gets no token with this installation's client credentials: fix %s; the next call after they change tries again (%s)", cfg.Name, fix, reason)
}

// permanent reports RFC 6749 §5.2 errors that retrying cannot fix: the
// grant or the client is no longer accepted.
func permanent(code string) bool {
	switch code {
	case "invalid_grant", "invalid_client", "unauthorized_client":
		return true
	}
	return false
}

// request sends the renewal: a refresh (RFC 6749 §6) when there is a
// refresh token, otherwise a new token request for grants that need no end
// user. Transient failures are retried with jittered exponential backoff,
// honouring a short Retry-After.
func (rf *Refresher) request(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config, r settings.Resolved) (tok token.Token, entryID string, useRefresh bool, err error) {
	refreshToken := r.Values[cfg.RefreshTokenSetting]
	useRefresh = cfg.RefreshTokenSetting != "" && refreshToken != "" && cfg.GrantType != oauthconfig.ClientCredentials
	vars := token.FlowValues(cfg, r.Values, r.Secret, rf.redirectURI, map[string]string{"refresh_token": refreshToken})
	meta := token.LogMeta{InstallationID: inst.ID, UserID: cfg.Owner(userID), Recorded: func(id string) { entryID = id }}
	for attempt := 1; ; attempt++ {
		if useRefresh {
			tok, err = rf.tokens.Refresh(ctx, cfg, vars, meta)
		} else {
			tok, err = rf.tokens.Exchange(ctx, cfg, vars, meta)
		}
		var re *token.RetrieveError
		if err != nil && useRefresh && cfg.GrantType == oauthconfig.Password && errors.As(err, &re) && permanent(re.ErrorCode) {
			// The refresh token is spent, but the password grant can
			// start over without the user.
			useRefresh = false
			continue
		}
		if err == nil || attempt >= rf.Attempts || !errors.As(err, &re) || !re.Transient {
			return tok, entryID, useRefresh, err
		}
		wait := rf.Backoff << (attempt - 1)
		wait = wait/2 + rand.N(wait/2+1) // jitter, so replicas do not retry in step
		if re.RetryAfter > 0 {
			if re.RetryAfter > rf.MaxRetryAfter {
				return tok, entryID, useRefresh, err
			}
			wait = re.RetryAfter
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return tok, entryID, useRefresh, err
		}
	}
}

// runSteps runs a renewal's steps after its tokens are stored, and stores
// what they give in db, the renewal's. A step that fails is recorded on
// the connection and returned as failure: the renewed tokens stay stored,
// but a call would go out without what the step makes. err is a storage
// error.
// The steps' round trips hold no slot and log their requests in shared's
// share of the pool, as the token request does.
func (rf *Refresher) runSteps(ctx, shared context.Context, db *gorm.DB, inst settings.Installation, userID string, cfg *oauthconfig.Config, r settings.Resolved, tok token.Token, steps []oauthconfig.Step) (failure, err error) {
	vars := StepVars(cfg, r, tok, rf.redirectURI)
	rf.idle()
	res, failure := rf.tokens.RunSteps(shared, cfg, steps, vars, tok, token.LogMeta{InstallationID: inst.ID, UserID: cfg.Owner(userID)})
	rf.busy()
	return rf.conns.WithTx(db).StepsDone(ctx, inst, userID, cfg, res, failure, "the token was renewed")
}

// due reports whether the access token must be renewed before a call: it
// is missing, or expires within the margin.
func (rf *Refresher) due(cfg *oauthconfig.Config, r settings.Resolved, conn Connection) bool {
	if r.Values[cfg.AccessTokenSetting] == "" {
		return true
	}
	if conn.ExpiresAt == nil {
		return false // stored by hand, without an expiry: used until refused
	}
	return rf.expiring(cfg, conn)
}

// expiring reports whether conn's access token, whose expiry is known,
// expires within the margin.
func (rf *Refresher) expiring(cfg *oauthconfig.Config, conn Connection) bool {
	return !rf.now().Before(conn.ExpiresAt.Add(-margin(cfg, conn)))
}

// margin is how long before expiry a token is renewed: the config's, or
// the smaller of 5 minutes and 10% of the token's lifetime, so that a
// 10-minute token is not renewed every call.
func margin(cfg *oauthconfig.Config, conn Connection) time.Duration {
	if cfg.RefreshMargin > 0 {
		return time.Duration(cfg.RefreshMargin) * time.Second
	}
	m := 5 * time.Minute
	if conn.IssuedAt != nil && conn.ExpiresAt != nil {
		if tenth := conn.ExpiresAt.Sub(*conn.IssuedAt) / 10; tenth < m {
			m = tenth
		}
	}
	return m
}

// canRenew reports whether a new access token can be had without the end
// user: with a refresh token, or by a grant that needs no user.
func canRenew(cfg *oauthconfig.Config, r settings.Resolved) bool {
	switch cfg.GrantType {
	case oauthconfig.ClientCredentials, oauthconfig.Password, oauthconfig.JWTBearer:
		return true
	}
	return cfg.RefreshTokenSetting != "" && r.Values[cfg.RefreshTokenSetting] != ""
}

func (rf *Refresher) cannotRenew(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config) error {
	if cfg.GrantType == oauthconfig.RefreshToken {
		return errs.New(errs.Invalid, "setting %q has no refresh token to get an access token with", cfg.RefreshTokenSetting)
	}
	return rf.reauthorize(ctx, inst, userID, cfg, "")
}

// reauthorize is the error that asks the end user to connect (again),
// with a fresh authorize link where the grant has one.
func (rf *Refresher) reauthorize(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config, reason string) error {
	var e *errs.Error
	switch {
	case cfg.GrantType != oauthconfig.AuthorizationCode:
		e = errs.New(errs.Reauthorize, "the provider refused this installation's credentials for OAuth config %q; fix its settings and try again", cfg.Name)
	case reason == "":
		e = errs.New(errs.Reauthorize, "user %q has not connected OAuth config %q", userID, cfg.Name)
	default:
		e = errs.New(errs.Reauthorize, "user %q must connect OAuth config %q again", userID, cfg.Name)
	}
	if reason != "" {
		e.Message += ": " + reason
	}
	if cfg.GrantType == oauthconfig.AuthorizationCode && rf.links != nil && userID != "" {
		link, err := rf.links.AuthorizeURL(ctx, inst.ID, cfg.ID, userID)
		if err != nil {
			return err
		}
		e.AuthorizeURL = link
	}
	return e
}

// read resolves, under the renewal lease (db), the connection and the
// settings with the values at the config's token level read from the
// database, which re-reads what another worker may have stored. Tokens
// kept in memory (see keep) are newer than the stored ones and overlay
// them.
func (rf *Refresher) read(ctx context.Context, db *gorm.DB, inst settings.Installation, userID string, cfg *oauthconfig.Config) (settings.Resolved, Connection, error) {
	r, err := rf.settings.Reread(ctx, inst, userID, cfg.TokenLevel)
	if err != nil {
		return settings.Resolved{}, Connection{}, err
	}
	conn, err := connection(ctx, rf.conns.WithTx(db), inst, userID, cfg)
	if err != nil {
		return settings.Resolved{}, Connection{}, err
	}
	r, conn = rf.overlay(connKey(inst, userID, cfg), cfg, r, conn)
	return r, conn, nil
}

// connection returns the connection of userID for cfg from conns, or the
// zero Connection when there is none.
func connection(ctx context.Context, conns *Connections, inst settings.Installation, userID string, cfg *oauthconfig.Config) (Connection, error) {
	conn, err := conns.Get(ctx, inst.ID, cfg.Owner(userID), cfg.ID)
	if errs.Is(err, errs.NotFound) {
		return Connection{}, nil
	}
	return conn, err
}

// withLock runs fn holding the renewal lease of key: one worker at a time
// per connection, in this process (single-flight already) and across
// replicas sharing the database. The lease is a row claimed in one short
// statement (refresh_leases) and released after fn: no transaction, and so
// no pooled connection, stays open for the provider's round trip, and N
// renewals of N connections at once cost the pool N short statements, not
// N connections for as long as the provider takes. A waiting replica polls
// until the holder is done, then fn re-reads what it stored. A lease
// outlives a crashed holder by at most rf.LeaseFor. fn may give the lease
// back itself, in the transaction that stores what it renewed (see lease).
func (rf *Refresher) withLock(ctx context.Context, key string, fn func(db *gorm.DB, l *lease) error) error {
	h := sha256.Sum256([]byte(key))
	l := &lease{id: hex.EncodeToString(h[:16]), owner: database.NewID()}
	db := rf.db.WithContext(ctx)
	for wait := 20 * time.Millisecond; ; wait = min(wait*2, 500*time.Millisecond) {
		rf.busy()
		now := rf.now()
		res := db.Exec(`INSERT INTO refresh_leases (key, owner, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
			WHERE refresh_leases.expires_at < ?`, l.id, l.owner, now.Add(rf.LeaseFor), now)
		if res.Error != nil {
			rf.idle()
			return fmt.Errorf("taking the renewal lease: %w", res.Error)
		}
		if res.RowsAffected == 1 {
			break
		}
		rf.idle()
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer rf.idle()
	defer func() {
		if !l.released {
			rf.release(l)
		}
	}()
	return fn(db, l)
}

// lease is a renewal lease held. Its holder gives it back in the
// transaction that stores the renewed tokens (Release, then released once
// that committed), which spares the database a statement and a commit of
// its own; else withLock gives it back after.
type lease struct {
	id, owner string
	released  bool
}

// Release deletes the lease in tx.
func (l *lease) Release(tx *gorm.DB) error {
	return tx.Exec("DELETE FROM refresh_leases WHERE key = ? AND owner = ?", l.id, l.owner).Error
}

// busy takes the renewals' slot in the database, and idle gives it back.
// However many connections are renewed at once, one renewal uses the
// database at a time (none while waiting for a provider), so that
// ordinary requests still find free pooled connections. With a
// DatabaseShare below 1, a slot held for d rests for d×(1/share − 1)
// before the next renewal takes it, leaving the database and the
// processors that much to other requests. In BenchmarkRefreshStorm (5
// interleaved pairs of runs), the server's default 0.5 kept the ordinary
// route's p99 at 1.36x its idle value (median) where 1 let it reach 2.05x,
// and 1,000 renewals took 14 s instead of 5.3 s.
func (rf *Refresher) busy() {
	rf.slots <- struct{}{}
	rf.heldSince = time.Now() // the slot's own: one holder at a time
}

func (rf *Refresher) idle() {
	var rest time.Duration
	if s := rf.DatabaseShare; s > 0 && s < 1 {
		rest = time.Duration(float64(time.Since(rf.heldSince)) * (1/s - 1))
	}
	if rest <= 0 {
		<-rf.slots
		return
	}
	time.AfterFunc(rest, func() { <-rf.slots })
}

// release gives a lease back, trying again in the background while the
// database does not answer, until the lease would have expired anyway.
func (rf *Refresher) release(l *lease) {
	del := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return l.Release(rf.db.WithContext(ctx))
	}
	if del() == nil {
		return
	}
	go func() {
		for deadline := time.Now().Add(rf.LeaseFor); time.Now().Before(deadline); {
			select {
			case <-time.After(time.Second):
			case <-rf.stop:
				return
			}
			if del() == nil {
				return
			}
		}
	}()
}
