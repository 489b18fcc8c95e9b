// Package app holds what an app developer owns: accounts, their API keys,
// and apps.
package app

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/latchkey/latchkey/internal/errs"
)

// Account is an app developer's account. Everything an API key can see
// belongs to its account.
type Account struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// APIKey authenticates calls to the REST API. Only a SHA-256 hash of the key
// is stored: keys are 256 random bits, so a slow hash adds nothing.
type APIKey struct {
	ID         string
	AccountID  string
	Name       string
	Prefix     string // the first characters of the key, to recognise it
	Hash       string
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

// App is an app published by a developer account.
type App struct {
	ID          string
	AccountID   string
	Name        string
	Slug        string // unique within the account
	Description string
	LogoURL     string
	// ReturnURLs are where an end user may be sent back after connecting
	// an account; a flow may only name one of these, never any URL.
	ReturnURLs []string `gorm:"serializer:json"`
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

var slugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Validate checks an app's fields and returns an errs.Invalid error naming
// each bad one.
func (a *App) Validate() error {
	var fs errs.Fields
	checkText(&fs, "name", a.Name, 1, 200)
	switch {
	case !slugPattern.MatchString(a.Slug):
		fs.Add("slug", "must be 1-63 lowercase letters, digits or '-', starting with a letter or digit")
	case isUUID(a.Slug):
		fs.Add("slug", "must not look like an app id")
	}
	checkText(&fs, "description", a.Description, 0, 2000)
	if a.LogoURL != "" {
		if msg := CheckWebURL(a.LogoURL); msg != "" {
			fs.Add("logo_url", "%s", msg)
		}
	}
	if len(a.ReturnURLs) > 20 {
		fs.Add("return_urls", "at most 20 URLs")
	}
	for i, u := range a.ReturnURLs {
		if msg := CheckWebURL(u); msg != "" {
			fs.Add(fmt.Sprintf("return_urls[%d]", i), "%s", msg)
		}
	}
	return fs.Err()
}

// HasReturnURL reports whether u is one of the app's return URLs, exactly.
func (a *App) HasReturnURL(u string) bool {
	for _, r := range a.ReturnURLs {
		if r == u {
			return true
		}
	}
	return false
}

// CheckWebURL returns why s is not an absolute http(s) URL fit to show a
// user, or "" when it is.
func CheckWebURL(s string) string {
	if len(s) > 2048 {
		return "must be at most 2048 bytes"
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "must be an absolute http or https URL"
	}
	if u.User != nil {
		return "must not contain a user name or password"
	}
	return ""
}

func checkText(fs *errs.Fields, field, s string, min, max int) {
	n := utf8.RuneCountInString(s)
	switch {
	case !utf8.ValidString(s):
		fs.Add(field, "must be valid UTF-8")
	case n < min && min == 1:
		fs.Add(field, "is required")
	case n < min || n > max:
		fs.Add(field, "must be %d to %d characters", min, max)
	case strings.ContainsAny(s, "\x00"):
		fs.Add(field, "must not contain NUL")
	}
}

// SlugFrom derives a slug from a name: "Acme CRM!" becomes "acme-crm".
func SlugFrom(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case b.Len() > 0 && !dash:
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 63 {
			break
		}
	}
	return strings.TrimRight(b.String(), "-")
}

func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}
