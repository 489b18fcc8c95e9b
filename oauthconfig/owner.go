package oauthconfig

import (
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/settings"
)

// CheckOwner checks a request's user_id against the config's token level.
func CheckOwner(cfg *Config, userID string) error {
	if cfg.TokenLevel == settings.User {
		if fe := settings.CheckID("user_id", userID); fe != nil {
			return errs.Fields{{Field: "user_id", Message: "is required: this config keeps a token per end user"}}.Err()
		}
	} else if userID != "" {
		return errs.Fields{{Field: "user_id", Message: "must be empty: this config keeps one token for the installation"}}.Err()
	}
	return nil
}

// Owner is whose tokens a config keeps: userID, or "" when its tokens
// belong to the whole installation.
func (c *Config) Owner(userID string) string {
	if c.TokenLevel == settings.Organization {
		return ""
	}
	return userID
}
