package oauthconfig

import (
	"github.com/latchkey/latchkey/internal/cache"
	"github.com/latchkey/latchkey/internal/database"
)

// Columns are the columns of oauth_configs that Dest scans, for reads
// written in plain SQL (the call path's joined read on a cache miss, see
// oauthconfig/call). TestColumns checks that they are all the model's.
var Columns = []string{
	"id", "app_id", "name", "description", "grant_type", "redirect_uri", "link_url", "token_url", "refresh_url",
	"token_body", "refresh_body", "body_format", "token_method", "token_params", "content_type", "refresh_method",
	"assertion_key_setting", "assertion_alg", "assertion_claims", "headers", "client_auth",
	"auth_code_path", "access_token_path", "refresh_token_path", "expires_in_path", "mappings",
	"access_token_setting", "refresh_token_setting", "scopes", "scope_separator", "pkce", "logo_url", "log_requests",
	"token_level", "refresh_margin_seconds", "default_expires_in", "expired_statuses", "expired_body_path", "expired_body_value",
	"grant_gone_errors", "grant_gone_body_path", "grant_gone_body_value", "keepalive_seconds",
	"identity_url", "identity_method", "identity_headers", "identity_mappings", "callback_mappings",
	"steps", "client_cert_setting", "client_key_setting",
	"created_at", "updated_at",
}

// Dest returns where the columns of Columns go in c. Every destination
// takes NULL as the zero value, for rows of a LEFT JOIN.
func Dest(c *Config) []any {
	return []any{
		database.Null(&c.ID), database.Null(&c.AppID), database.Null(&c.Name), database.Null(&c.Description),
		database.Null(&c.GrantType), database.Null(&c.RedirectURI), database.Null(&c.LinkURL), database.Null(&c.TokenURL), database.Null(&c.RefreshURL),
		database.Null(&c.TokenBody), database.Null(&c.RefreshBody), database.Null(&c.BodyFormat), database.Null(&c.TokenMethod), database.Null(&c.TokenParams), database.Null(&c.ContentType), database.Null(&c.RefreshMethod),
		database.Null(&c.AssertionKeySetting), database.Null(&c.AssertionAlg), database.JSON(&c.AssertionClaims), database.JSON(&c.Headers), database.Null(&c.ClientAuth),
		database.Null(&c.AuthCodePath), database.Null(&c.AccessTokenPath), database.Null(&c.RefreshTokenPath), database.Null(&c.ExpiresInPath), database.JSON(&c.Mappings),
		database.Null(&c.AccessTokenSetting), database.Null(&c.RefreshTokenSetting), database.JSON(&c.Scopes), database.Null(&c.ScopeSeparator), database.Null(&c.PKCE), database.Null(&c.LogoURL), database.Null(&c.LogRequests),
		database.Null(&c.TokenLevel), database.Null(&c.RefreshMargin), database.Null(&c.DefaultExpiresIn), database.JSON(&c.ExpiredStatuses), database.Null(&c.ExpiredBodyPath), database.Null(&c.ExpiredBodyValue),
		database.JSON(&c.GrantGoneErrors), database.Null(&c.GrantGoneBodyPath), database.Null(&c.GrantGoneBodyValue), database.Null(&c.KeepAlive),
		database.Null(&c.IdentityURL), database.Null(&c.IdentityMethod), database.JSON(&c.IdentityHeaders), database.JSON(&c.IdentityMappings), database.JSON(&c.CallbackMappings),
		database.JSON(&c.Steps), database.Null(&c.ClientCertSetting), database.Null(&c.ClientKeySetting),
		database.Null(&c.CreatedAt), database.Null(&c.UpdatedAt),
	}
}

// Cached returns config id when it is in memory, as FindByID would,
// without reading the database.
func (s *Store) Cached(id string) (Config, bool) { return s.configs.Get(id) }

// Marked is the state of the store's cache before a caller read configs
// with a query of its own (see Mark).
type Marked struct{ configs cache.Mark[Config] }

// Mark is for a caller that reads a config together with other rows when
// its cached copy misses: taken before that query, it keeps what the query
// read (Keep) unless a change came in between.
func (s *Store) Mark() Marked { return Marked{s.configs.Mark()} }

// Keep keeps c as what FindByID(c.ID) answers.
func (m Marked) Keep(c Config) { m.configs.Keep(c.ID, c) }
