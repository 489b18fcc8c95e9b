package call

import (
	"context"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/oauthconfig"
	"github.com/latchkey/latchkey/oauthconfig/connection"
	"github.com/latchkey/latchkey/oauthconfig/token"
	"github.com/latchkey/latchkey/settings"
)

// installationConfig finds the :installation and :config of a request, both
// of the caller's account.
func (h *Caller) installationConfig(c echo.Context) (settings.Installation, oauthconfig.Config, error) {
	id, err := httpapi.Param(c, "installation")
	if err != nil {
		return settings.Installation{}, oauthconfig.Config{}, err
	}
	inst, a, err := oauthconfig.CallersInstallation(c, h.settings, h.apps, id)
	if err != nil {
		return settings.Installation{}, oauthconfig.Config{}, err
	}
	cid, err := httpapi.Param(c, "config")
	if err != nil {
		return settings.Installation{}, oauthconfig.Config{}, err
	}
	cfg, err := h.configs.Find(c.Request().Context(), a.ID, cid)
	return inst, cfg, err
}

type codeRequest struct {
	Code   string `json:"code"`
	UserID string `json:"user_id"`
}

// exchangeCode trades an authorization code that someone pasted (from a
// provider's console, a "self client") exactly as the callback would: the
// same token request, extraction, identity request and storage.
func (h *Caller) exchangeCode(c echo.Context) error {
	ctx := c.Request().Context()
	var req codeRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	inst, cfg, err := h.installationConfig(c)
	if err != nil {
		return err
	}
	if cfg.GrantType != oauthconfig.AuthorizationCode {
		return errs.New(errs.Invalid, "OAuth config %q uses the %s grant, which has no authorization code; fetch a token instead", cfg.Name, cfg.GrantType)
	}
	if err := oauthconfig.CheckOwner(&cfg, req.UserID); err != nil {
		return err
	}
	req.Code = strings.TrimSpace(req.Code)
	if req.Code == "" || len(req.Code) > 4096 {
		return errs.Fields{{Field: "code", Message: "must be 1 to 4096 characters"}}.Err()
	}
	r, err := h.settings.Resolve(ctx, inst, req.UserID)
	if err != nil {
		return err
	}
	// No PKCE verifier: a pasted code was not asked for with a challenge.
	vars := token.FlowValues(&cfg, r.Values, r.Secret, h.connector.RedirectURI(), map[string]string{"auth_code": req.Code})
	tok, err := h.connector.Tokens().Exchange(ctx, &cfg, vars, token.LogMeta{InstallationID: inst.ID, UserID: cfg.Owner(req.UserID)})
	if err != nil {
		if errs.Is(err, errs.Invalid) && strings.Contains(err.Error(), "<<code_verifier>>") {
			return errs.New(errs.Invalid, "the token body of OAuth config %q uses <<code_verifier>>, and a pasted code has none: set pkce to \"off\" or use a token_body without it", cfg.Name)
		}
		return err
	}
	if err := h.connector.Save(ctx, inst, req.UserID, &cfg, tok); err != nil {
		return err
	}
	conn, extracted, err := h.report(ctx, inst, req.UserID, &cfg)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, fetchResponse{Connection: connection.NewResponse(conn), Extracted: extracted})
}

type checkRequest struct {
	UserID string `json:"user_id"`
}

type checkResponse struct {
	Connection connection.Response `json:"connection"`
	Identity   map[string]string   `json:"identity"` // setting -> value, secret ones masked
}

// checkConnection checks a connection now (see Check).
func (h *Caller) checkConnection(c echo.Context) error {
	var req checkRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	inst, cfg, err := h.installationConfig(c)
	if err != nil {
		return err
	}
	conn, identity, err := h.Check(c.Request().Context(), inst, &cfg, req.UserID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, checkResponse{Connection: connection.NewResponse(conn), Identity: identity})
}

// Check runs the config's identity request now with the stored (fresh)
// token and stores what it maps: "is this connection still good?". It
// returns the connection and the mapped values (setting -> value, secret
// ones masked). A failed check is recorded on the connection. Errors are
// *errs.Error: Invalid for a config without an identity request or a user
// id that does not fit the config's token level, and those of
// Refresher.Fresh and Client.Identify.
func (h *Caller) Check(ctx context.Context, inst settings.Installation, cfg *oauthconfig.Config, userID string) (connection.Connection, map[string]string, error) {
	if cfg.IdentityURL == "" {
		return connection.Connection{}, nil, errs.New(errs.Invalid, "OAuth config %q has no identity request (identity_url) to check with", cfg.Name)
	}
	if err := oauthconfig.CheckOwner(cfg, userID); err != nil {
		return connection.Connection{}, nil, err
	}
	r, err := h.refresher.Fresh(ctx, inst, userID, cfg)
	if err != nil {
		return connection.Connection{}, nil, err
	}
	vars := token.FlowValues(cfg, r.Values, r.Secret, h.connector.RedirectURI(), nil)
	got, err := h.connector.Tokens().Identify(ctx, cfg, vars, token.LogMeta{InstallationID: inst.ID, UserID: cfg.Owner(userID)})
	if err != nil {
		if ferr := h.connector.Connections().Fail(ctx, inst, userID, cfg, "the identity request failed: "+errs.MessageOf(err), "", false); ferr != nil {
			return connection.Connection{}, nil, ferr
		}
		return connection.Connection{}, nil, err
	}
	if err := h.connector.Connections().SaveValues(ctx, inst, userID, cfg, got); err != nil {
		return connection.Connection{}, nil, err
	}
	conn, err := h.connector.Connections().Get(ctx, inst.ID, cfg.Owner(userID), cfg.ID)
	if err != nil {
		return connection.Connection{}, nil, err
	}
	identity := map[string]string{}
	for k, v := range got {
		if r.Secret[k] {
			v = token.Mask(v)
		}
		identity[k] = v
	}
	return conn, identity, nil
}

// report returns a connection's state and the values stored for it,
// masked (setting -> value).
func (h *Caller) report(ctx context.Context, inst settings.Installation, userID string, cfg *oauthconfig.Config) (connection.Connection, map[string]string, error) {
	conn, err := h.connector.Connections().Get(ctx, inst.ID, cfg.Owner(userID), cfg.ID)
	if err != nil {
		return connection.Connection{}, nil, err
	}
	r, err := h.settings.Resolve(ctx, inst, userID)
	if err != nil {
		return connection.Connection{}, nil, err
	}
	extracted := map[string]string{}
	keys := []string{cfg.AccessTokenSetting, cfg.RefreshTokenSetting}
	for _, m := range append(append([]oauthconfig.Mapping{}, cfg.Mappings...), cfg.IdentityMappings...) {
		keys = append(keys, m.Setting)
	}
	for _, k := range keys {
		if k != "" {
			extracted[k] = token.Mask(r.Values[k])
		}
	}
	return conn, extracted, nil
}
