package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/cache"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/template"
)

// API is a provider API that an app calls through Latchkey: where it is,
// which methods it allows, and the headers and query parameters, written
// as templates over settings, that carry its credentials, e.g.
// "Authorization: Bearer <<access_token>>".
type API struct {
	ID          string
	AppID       string
	Name        string // unique per app; names the API in call URLs
	Description string
	Methods     []string `gorm:"serializer:json"`
	// BaseURL is a URL template without query, e.g.
	// https://<<subdomain>>.acme.example/api/v2; calls add a path under it.
	BaseURL string
	// ConfigID is the OAuth config whose tokens the templates use, kept
	// fresh before each call; nil for an API whose credentials are plain
	// settings (an API key).
	ConfigID  *string
	Headers   map[string]string `gorm:"serializer:json"`
	Query     map[string]string `gorm:"serializer:json"`
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TableName tells GORM where APIs live.
func (API) TableName() string { return "apis" }

// Methods an API may allow.
var apiMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}

var apiNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// AllowsMethod reports whether m is one of the API's methods.
func (a *API) AllowsMethod(m string) bool {
	for _, x := range a.Methods {
		if x == m {
			return true
		}
	}
	return false
}

func (a *API) applyDefaults() {
	if len(a.Methods) == 0 {
		a.Methods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	}
	if a.Headers == nil {
		a.Headers = map[string]string{}
	}
	if a.Query == nil {
		a.Query = map[string]string{}
	}
}

// Validate checks the API's fields; known reports the variables its
// templates may use (the app's settings). It returns an errs.Invalid error
// naming each bad field, with the position inside a template when known.
func (a *API) Validate(known func(string) bool) error {
	var fs errs.Fields
	if !apiNamePattern.MatchString(a.Name) {
		fs.Add("name", "must be 1-63 lowercase letters, digits, '_' or '-', starting with a letter")
	}
	checkText(&fs, "description", a.Description, 0, 2000)
	for i, m := range a.Methods {
		ok := false
		for _, x := range apiMethods {
			ok = ok || m == x
		}
		if !ok {
			fs.Add(fmt.Sprintf("methods[%d]", i), "must be one of %s", strings.Join(apiMethods, ", "))
		}
	}
	switch {
	case a.BaseURL == "":
		fs.Add("base_url", "is required")
	case strings.ContainsAny(a.BaseURL, "?#"):
		fs.Add("base_url", "must not have a query or fragment; put query parameters in query")
	default:
		checkAPITemplate(&fs, "base_url", a.BaseURL, template.URL, known)
	}
	if len(a.Headers) > 50 {
		fs.Add("headers", "at most 50 headers")
	}
	for name, src := range a.Headers {
		field := "headers." + name
		switch {
		case !IsHeaderName(name):
			fs.Add(field, "is not a valid header name")
		case ReservedHeader(name):
			fs.Add(field, "cannot be set: Latchkey or the HTTP connection owns it")
		default:
			checkAPITemplate(&fs, field, src, template.Header, known)
		}
	}
	if len(a.Query) > 50 {
		fs.Add("query", "at most 50 query parameters")
	}
	for name, src := range a.Query {
		field := "query." + name
		if name == "" || len(name) > 100 {
			fs.Add(field, "must be a name of 1 to 100 characters")
			continue
		}
		checkAPITemplate(&fs, field, src, template.Query, known)
	}
	return fs.Err()
}

func checkAPITemplate(fs *errs.Fields, field, src string, ctx template.Context, known func(string) bool) {
	if len(src) > 4096 {
		fs.Add(field, "must be at most 4096 bytes")
		return
	}
	t, err := template.Parse(src, ctx)
	if err == nil {
		err = t.Check(known)
	}
	var te *template.Error
	switch {
	case errors.As(err, &te):
		fs.AddAt(field, te.Pos, "%s", te.Msg)
	case err != nil:
		fs.Add(field, "%v", err)
	}
}

// IsHeaderName reports whether s is a valid HTTP header name (an RFC 9110
// token) of at most 100 bytes.
func IsHeaderName(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}

// ReservedHeader reports headers that neither an API template nor a caller
// may set: hop-by-hop headers (RFC 9110 §7.6.1), framing, and the ones
// that say who is calling or from where, which a proxy owns.
func ReservedHeader(name string) bool {
	switch strings.ToLower(name) {
	case "host", "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
		"te", "trailer", "transfer-encoding", "upgrade", "content-length", "expect",
		"forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip", "via", "cookie":
		return true
	}
	return false
}

// APIUpdate is a partial change to an API; nil fields stay as they are.
type APIUpdate struct {
	Name        *string
	Description *string
	Methods     *[]string
	BaseURL     *string
	ConfigID    **string
	Headers     *map[string]string
	Query       *map[string]string
}

// CreateAPI validates and stores a new API of app appID.
func (s *Store) CreateAPI(ctx context.Context, a *API, known func(string) bool) error {
	a.applyDefaults()
	if err := a.Validate(known); err != nil {
		return err
	}
	a.ID = database.NewID()
	a.CreatedAt = s.now()
	a.UpdatedAt = a.CreatedAt
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(a).Error; err != nil {
			return err
		}
		return s.bus.Changed(tx, "api", "")
	})
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return apiNameTaken(a.Name)
	}
	return errs.From(err, "creating API")
}

func apiNameTaken(name string) error {
	return &errs.Error{Code: errs.Conflict, Message: "the app already has an API with this name",
		Fields: []errs.FieldError{{Field: "name", Message: "is taken: " + name}}}
}

// FindAPI returns the app's API whose id or name is ref.
func (s *Store) FindAPI(ctx context.Context, appID, ref string) (API, error) {
	return s.apis.Load(appID+cache.Sep+ref, func() (API, error) { return s.findAPI(ctx, appID, ref) })
}

func (s *Store) findAPI(ctx context.Context, appID, ref string) (API, error) {
	var a API
	q := s.db.WithContext(ctx).Where("app_id = ?", appID)
	if isUUID(ref) {
		q = q.Where("id = ?", ref)
	} else {
		q = q.Where("name = ?", ref)
	}
	err := q.Take(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return API{}, errs.NotFoundf("API %q not found", ref)
	}
	return a, errs.From(err, "reading API")
}

// ListAPIs returns the app's APIs, oldest first.
func (s *Store) ListAPIs(ctx context.Context, appID string) ([]API, error) {
	var out []API
	err := s.db.WithContext(ctx).Where("app_id = ?", appID).Order("created_at, id").Find(&out).Error
	return out, errs.From(err, "listing APIs")
}

// UpdateAPI applies u to the app's API ref, validating the result.
func (s *Store) UpdateAPI(ctx context.Context, appID, ref string, u APIUpdate, known func(string) bool) (API, error) {
	var a API
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if a, err = NewStore(tx).FindAPI(ctx, appID, ref); err != nil {
			return err
		}
		set(&a.Name, u.Name)
		set(&a.Description, u.Description)
		set(&a.Methods, u.Methods)
		set(&a.BaseURL, u.BaseURL)
		set(&a.ConfigID, u.ConfigID)
		set(&a.Headers, u.Headers)
		set(&a.Query, u.Query)
		a.applyDefaults()
		if err := a.Validate(known); err != nil {
			return err
		}
		a.UpdatedAt = s.now()
		if err := tx.Save(&a).Error; err != nil {
			return err
		}
		return s.bus.Changed(tx, "api", "")
	})
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return API{}, apiNameTaken(a.Name)
	}
	return a, errs.From(err, "updating API")
}

// DeleteAPI removes the app's API ref.
func (s *Store) DeleteAPI(ctx context.Context, appID, ref string) error {
	a, err := s.FindAPI(ctx, appID, ref)
	if err != nil {
		return err
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Delete(&API{}, "id = ?", a.ID).Error; err != nil {
			return err
		}
		return s.bus.Changed(tx, "api", "")
	})
	return errs.From(err, "deleting API")
}
