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
// the config's steps and identity request, if any, and stores what they
// give. If one fails, the connection records why and the caller gets the
// error; the tokens, and what the steps before it gave, stay stored.
type Connector struct {
	tokens      *token.Client
	conns       *Connections
	settings    *settings.Store
	redirectURI string
	keeper      Keeper
}

// Keeper keeps a code exchange's tokens that the database did not take,
// and writes them when it is back (the Refresher does); then it calls
// then, which runs what the exchange could not run without the database.
type Keeper interface {
	KeepExchanged(inst settings.Installation, userID string, cfg *oauthconfig.Config, tok token.Token, then func(context.Context))
}

// SetKeeper sets where tokens go that the database does not take.
func (cn *Connector) SetKeeper(k Keeper) { cn.keeper = k }

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

// Save stores a connection's tokens and runs its steps; errors as
// Connections.Save and Client.RunSteps.
func (cn *Connector) Save(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config, tok token.Token) error {
	saveErr := cn.conns.Save(ctx, inst, userID, cfg, tok)
	if saveErr != nil && !errs.Is(saveErr, errs.Upstream) {
		if cn.keeper == nil {
			return saveErr // not stored
		}
		// The code is spent: these tokens could never be had again. They
		// are kept and written when the database is back; the steps,
		// which need it, run then.
		cn.keeper.KeepExchanged(inst, userID, cfg, tok, func(ctx context.Context) {
			cn.steps(ctx, inst, userID, cfg, tok) // recorded on the connection
		})
		return nil
	}
	if err := cn.steps(ctx, inst, userID, cfg, tok); err != nil {
		return err
	}
	return saveErr
}

// steps runs the config's steps after a code exchange whose tokens are
// stored, and stores what they give; see Connections.StepsDone.
func (cn *Connector) steps(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config, tok token.Token) error {
	steps := cfg.ConnectSteps()
	if len(steps) == 0 {
		return nil
	}
	res, failure := cn.runSteps(ctx, inst, userID, cfg, tok, steps)
	failure, err := cn.conns.StepsDone(ctx, inst, userID, cfg, res, failure, "the tokens are stored")
	if err != nil {
		return err
	}
	return failure
}

// runSteps runs steps with the installation's settings and tok in place
// of the stored tokens.
func (cn *Connector) runSteps(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config, tok token.Token, steps []oauthconfig.Step) (token.Stepped, error) {
	r, err := cn.settings.Resolve(ctx, inst, userID)
	if err != nil {
		return token.Stepped{Token: tok}, err
	}
	vars := StepVars(cfg, r, tok, cn.redirectURI)
	return cn.tokens.RunSteps(ctx, cfg, steps, vars, tok, token.LogMeta{InstallationID: inst.ID, UserID: cfg.Owner(userID)})
}

// StepVars are the values steps see: the settings r, with the tokens of
// tok in place of the stored ones, and the flow's own variables.
func StepVars(cfg *oauthconfig.Config, r settings.Resolved, tok token.Token, redirectURI string) token.Vars {
	values := make(map[string]string, len(r.Values)+len(tok.Extra)+len(tok.Callback)+2)
	for k, v := range r.Values {
		values[k] = v
	}
	for k, v := range tok.Callback {
		values[k] = v
	}
	for k, v := range tok.Extra {
		values[k] = v
	}
	values[cfg.AccessTokenSetting] = tok.AccessToken
	if cfg.RefreshTokenSetting != "" && tok.RefreshToken != "" {
		values[cfg.RefreshTokenSetting] = tok.RefreshToken
	}
	return token.FlowValues(cfg, values, r.Secret, redirectURI, nil)
}
