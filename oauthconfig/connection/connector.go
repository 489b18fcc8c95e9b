package connection

import (
	"context"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/oauthconfig"
	"github.com/latchkey/latchkey/oauthconfig/token"
	"github.com/latchkey/latchkey/settings"
)

// Connector completes a connection after a code exchange: it stores the
// tokens first (a token the provider issued is never dropped), then runs
// the config's identity request, if any, and stores what it maps. If the
// identity request fails, the connection records why and the caller gets
// the error; the tokens stay stored.
type Connector struct {
	tokens      *token.Client
	conns       *Connections
	settings    *settings.Store
	redirectURI string
}

// NewConnector returns a Connector.
func NewConnector(tokens *token.Client, conns *Connections, s *settings.Store, redirectURI string) *Connector {
	return &Connector{tokens: tokens, conns: conns, settings: s, redirectURI: redirectURI}
}

// Tokens is the token client the Connector sends identity requests with.
func (cn *Connector) Tokens() *token.Client { return cn.tokens }

// Connections is the store the Connector saves connections to.
func (cn *Connector) Connections() *Connections { return cn.conns }

// RedirectURI is Latchkey's callback URL, the redirect_uri of configs
// that set none.
func (cn *Connector) RedirectURI() string { return cn.redirectURI }

// Save stores a connection's tokens and identifies it; errors as
// Connections.Save and Identify.
func (cn *Connector) Save(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config, tok token.Token) error {
	saveErr := cn.conns.Save(ctx, inst, userID, cfg, tok)
	if saveErr != nil && !errs.Is(saveErr, errs.Upstream) {
		return saveErr // not stored
	}
	if cfg.IdentityURL == "" {
		return saveErr
	}
	extra, err := cn.identify(ctx, inst, userID, cfg, tok)
	if err == nil {
		err = cn.conns.SaveValues(ctx, inst, userID, cfg, extra)
	}
	if err != nil {
		reason := "the tokens are stored, but the identity request failed: " + errs.MessageOf(err)
		if ferr := cn.conns.Fail(ctx, inst, userID, cfg, reason, "", false); ferr != nil {
			return ferr
		}
		return err
	}
	return saveErr
}

// identify runs the identity request with the installation's settings and
// tok in place of the stored tokens.
func (cn *Connector) identify(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config, tok token.Token) (map[string]string, error) {
	r, err := cn.settings.Resolve(ctx, inst, userID)
	if err != nil {
		return nil, err
	}
	values := make(map[string]string, len(r.Values)+len(tok.Extra)+2)
	for k, v := range r.Values {
		values[k] = v
	}
	for k, v := range tok.Extra {
		values[k] = v
	}
	values[cfg.AccessTokenSetting] = tok.AccessToken
	if cfg.RefreshTokenSetting != "" && tok.RefreshToken != "" {
		values[cfg.RefreshTokenSetting] = tok.RefreshToken
	}
	vars := token.FlowValues(cfg, values, r.Secret, cn.redirectURI, nil)
	return cn.tokens.Identify(ctx, cfg, vars, token.LogMeta{InstallationID: inst.ID, UserID: cfg.Owner(userID)})
}
